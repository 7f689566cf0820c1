"""Merge a saved LoRA adapter into its base model and save a plain transformers model.

    cutalign export runs/cut merged/
    python -c "from transformers import AutoModelForCausalLM; AutoModelForCausalLM.from_pretrained('merged')"

ADAPTER is what cutalign train, baseline or online saved (an adapter directory); its base model loads as cutalign
loads it, offline: the embedded SmolLM2 when the adapter was trained on it (the GGUF file becomes ordinary
safetensors weights here), a directory, or a hub model in the local cache. The adapter is merged into the base
weights (PEFT's merge_and_unload), and the merged model and the tokenizer are written to OUTPUT_DIR with
save_pretrained: AutoModelForCausalLM.from_pretrained(OUTPUT_DIR) loads it without cutalign or PEFT. A full model
(no adapter) is saved as it is, so `cutalign export default DIR` writes the embedded model as safetensors.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SUMMARY = "merge a saved adapter into its base model and save a plain transformers model"

DTYPES = ("float32", "bfloat16", "float16")


@dataclass
class ExportArguments:
    """The export command's arguments."""

    adapter: str = field(metadata={
        "positional": True, "help": "saved adapter directory (or a model: 'default', a directory, a hub name)"})
    output_dir: str = field(metadata={
        "positional": True, "help": "where the merged model (safetensors, config) and the tokenizer are written"})
    dtype: str = field(default="float32", metadata={
        "help": "dtype of the saved weights (the merge itself runs in float32)", "choices": DTYPES})


def arguments() -> tuple:
    return (ExportArguments,)


def parse(argv: list[str]) -> tuple:
    """(ExportArguments,) from the command line and --config FILE."""
    from . import options

    return options.parse(argv, arguments(), prog="cutalign export", description=__doc__)


def run(argv: list[str]) -> int:
    (args,) = parse(argv)
    from .checks import require_model

    require_model(args.adapter, "ADAPTER")
    merged, was_adapter = export(args.adapter, args.output_dir, dtype=args.dtype)
    what = "merged the adapter into its base model and saved" if was_adapter else "saved the model"
    print(f"{what} ({type(merged).__name__}, {args.dtype}) and its tokenizer to {args.output_dir}")
    return 0


def export(adapter: str, output_dir: str, *, dtype: str = "float32"):
    """Save ``adapter`` merged into its base model (or a model as it is) with its tokenizer to ``output_dir``;
    return the saved model and whether an adapter was merged."""
    import torch
    from peft import PeftModel

    from ..models import load_model, load_tokenizer

    model = load_model(adapter)  # float32: the merge adds the LoRA product to the base weights at full precision
    was_adapter = isinstance(model, PeftModel)
    if was_adapter:
        model = model.merge_and_unload()
    model = model.to(getattr(torch, dtype))
    model.save_pretrained(output_dir)
    load_tokenizer(adapter).save_pretrained(output_dir)
    return model, was_adapter

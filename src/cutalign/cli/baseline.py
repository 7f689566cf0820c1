"""Train a baseline method on the same judgment data, with the same training options, as cutalign train.

    cutalign baseline METHOD --train_data data.jsonl --output_dir out [--model DIR] [--max_steps 100]
    cutalign baseline dpo --config run.yaml --output_dir runs/dpo

Methods: sft-positive, sft-all, fp (Forward Prediction), ilf, coh (Chain of Hindsight), dpo, kto. The options are
cutalign train's: ModelConfig (model, LoRA) and CUTConfig (every transformers TrainingArguments field, with its
defaults), so the run.yaml of a CUT run trains a baseline under the same budget, template and max_length. Every
TrainingArguments field goes into TRL's SFTConfig, DPOConfig or KTOConfig by name (bf16 stays off unless asked
for); CUT's loss settings (threshold, alpha, the loss weights, positive_ratio) do not apply to a baseline and are
ignored. The adapter (or model) and tokenizer are saved to --output_dir with baseline_metrics.json; cutalign eval
--model DIR evaluates it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from .data_options import DATA_FORMATS, FORMAT_HELP, SOURCE_HELP, SPLIT_HELP

SUMMARY = "train a baseline (SFT, FP, ILF, CoH, DPO, KTO) on judgment data"

# The same tuple as cutalign.baselines.METHODS (a test keeps them equal): importing that package loads TRL, which
# would slow down every `cutalign` command's start.
METHODS = ("sft-positive", "sft-all", "fp", "ilf", "coh", "dpo", "kto")


@dataclass
class BaselineArguments:
    """The baseline command's own options: the method, its data, and the settings only some methods have."""

    method: str = field(metadata={
        "positional": True, "choices": METHODS, "help": f"the baseline to train: {', '.join(METHODS)}"})
    train_data: str = field(metadata={"help": f"judgment data to train on: {SOURCE_HELP}"})
    format: str = field(default="auto", metadata={"help": FORMAT_HELP, "choices": DATA_FORMATS})
    split: str | None = field(default=None, metadata={"help": f"--train_data: {SPLIT_HELP}"})
    beta: float = field(default=0.1, metadata={"help": "DPO/KTO beta"})
    refine_max_new_tokens: int = field(default=128, metadata={
        "help": "ILF: new tokens per refinement the model generates when the data has none"})


def arguments() -> tuple:
    """The dataclasses the options fill: (ModelConfig, BaselineArguments, CUTConfig), as cutalign train's."""
    from ..config import CUTConfig, ModelConfig

    return ModelConfig, BaselineArguments, CUTConfig


def parse(argv: list[str]) -> tuple:
    """(ModelConfig, BaselineArguments, CUTConfig) from the command line and --config FILE."""
    from . import options

    return options.parse(argv, arguments(), prog="cutalign baseline", description=__doc__)


def run(argv: list[str]) -> int:
    model_config, args, config = parse(argv)

    from ..data import load_judgments
    from .checks import leave_process_group, require_model, require_reporting, require_supported_launch

    require_supported_launch(config.use_cpu)
    require_reporting(config.report_to)
    data = load_judgments(args.train_data, format=args.format, split=args.split,
                          positive_score=config.positive_score)  # read and checked before the model loads
    require_model(model_config.model)

    from ..baselines import train_baseline
    from ..data.templates import resolve_template
    from ..generation import SamplingConfig, generate
    from ..io import write_json
    from ..models import load_model, load_tokenizer

    tokenizer = load_tokenizer(model_config.model)
    template = resolve_template(config.template, tokenizer)  # "auto": as cutalign train resolves it
    init_kwargs = {**(config.model_init_kwargs or {}), **model_config.model_init_kwargs()}
    model = load_model(model_config.model, **init_kwargs)
    refine = None
    if args.method == "ilf":
        sampling = SamplingConfig(max_new_tokens=args.refine_max_new_tokens)

        def refine(prompts):  # the model refines before it is trained
            return generate(model, tokenizer, prompts, sampling, template=template, description="refining")

    trainer = train_baseline(args.method, model, data, tokenizer, training_args=config,
                             peft_config=model_config.peft_config(), template=template,
                             max_length=config.max_length, refine=refine, beta=args.beta)
    trainer.save_model(config.output_dir)
    if trainer.is_world_process_zero():
        tokenizer.save_pretrained(config.output_dir)
        metrics = {"method": args.method, "data": trainer.baseline_counts,
                   "train": dict(trainer.state.log_history[-1])}
        write_json(Path(config.output_dir) / "baseline_metrics.json", metrics)
        print(json.dumps(metrics, indent=2))
        print(f"saved the {'adapter' if model_config.lora else 'model'} and tokenizer to {config.output_dir}")
    leave_process_group()
    return 0

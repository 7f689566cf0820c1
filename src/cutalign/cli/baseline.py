"""Train a baseline method on the same judgment data CUT trains on.

    cutalign baseline METHOD --train_data data.jsonl --output_dir out [--model DIR] [--lora false]

Methods: sft-positive, sft-all, fp (Forward Prediction), ilf, coh (Chain of Hindsight), dpo, kto. The model and
LoRA options are cutalign train's (ModelConfig), with the same defaults, so a baseline and CUT trained from the
same data and options are comparable. The adapter (or model) and tokenizer are saved to --output_dir with
baseline_metrics.json; cutalign eval --model DIR evaluates it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

SUMMARY = "train a baseline (SFT, FP, ILF, CoH, DPO, KTO) on judgment data"

# The same tuple as cutalign.baselines.METHODS (a test keeps them equal): importing that package loads TRL, which
# would slow down every `cutalign` command's start.
METHODS = ("sft-positive", "sft-all", "fp", "ilf", "coh", "dpo", "kto")


@dataclass
class BaselineArguments:
    """The baseline command's flags besides the model's (ModelConfig)."""

    method: str = field(metadata={
        "positional": True, "choices": METHODS, "help": f"the baseline to train: {', '.join(METHODS)}"})
    train_data: str = field(metadata={"help": "judgment data (any format cutalign train reads)"})
    output_dir: str = field(metadata={"help": "where to save the adapter (or model), tokenizer and metrics"})
    template: str = field(default="chat", metadata={
        "help": "prompt template: chat (the tokenizer's chat template) or alpaca", "choices": ("chat", "alpaca")})
    learning_rate: float = field(default=3e-4, metadata={"help": "learning rate"})
    num_train_epochs: float = field(default=2.0, metadata={"help": "training epochs"})
    per_device_train_batch_size: int = field(default=4, metadata={"help": "examples per step and device"})
    gradient_accumulation_steps: int = field(default=1, metadata={"help": "steps accumulated per update"})
    seed: int = field(default=42, metadata={"help": "random seed"})
    max_length: int = field(default=1024, metadata={"help": "maximum tokens per row (SFT-style methods)"})
    beta: float = field(default=0.1, metadata={"help": "DPO/KTO beta"})
    refine_max_new_tokens: int = field(default=128, metadata={
        "help": "ILF: new tokens per refinement the model generates when the data has none"})

    def __post_init__(self):
        if not self.num_train_epochs > 0 or not self.learning_rate > 0:
            raise ValueError("--num_train_epochs and --learning_rate must be > 0")


def arguments() -> tuple:
    """The dataclasses the options fill: (ModelConfig, BaselineArguments)."""
    from ..config import ModelConfig

    return ModelConfig, BaselineArguments


def parse(argv: list[str]) -> tuple:
    """(ModelConfig, BaselineArguments) from the command line and --config FILE."""
    from . import options

    return options.parse(argv, arguments(), prog="cutalign baseline", description=__doc__)


def run(argv: list[str]) -> int:
    model_config, args = parse(argv)

    from ..data import load_judgments
    from .checks import require_model

    data = load_judgments(args.train_data)  # read and checked before the model loads
    require_model(model_config.model)

    import torch

    from ..baselines import train_baseline
    from ..io import write_json
    from ..models import load_model, load_tokenizer
    from ..generation import SamplingConfig, generate

    tokenizer = load_tokenizer(model_config.model)
    model = load_model(model_config.model, **model_config.model_init_kwargs())
    training_args = dict(
        output_dir=args.output_dir, learning_rate=args.learning_rate, num_train_epochs=args.num_train_epochs,
        per_device_train_batch_size=args.per_device_train_batch_size,
        gradient_accumulation_steps=args.gradient_accumulation_steps, seed=args.seed, save_strategy="no",
        report_to=[], logging_steps=10,
        # TRL's configs default to bf16, which a CPU cannot train in: bf16 only where the GPU supports it.
        bf16=torch.cuda.is_available() and torch.cuda.is_bf16_supported(), use_cpu=not torch.cuda.is_available(),
    )
    refine = None
    if args.method == "ilf":
        sampling = SamplingConfig(max_new_tokens=args.refine_max_new_tokens)

        def refine(prompts):  # the model refines before it is trained
            return generate(model, tokenizer, prompts, sampling, template=args.template, description="refining")

    trainer = train_baseline(args.method, model, data, tokenizer, training_args=training_args,
                             peft_config=model_config.peft_config(), template=args.template,
                             max_length=args.max_length, refine=refine, beta=args.beta)
    trainer.save_model(args.output_dir)
    tokenizer.save_pretrained(args.output_dir)
    metrics = {"method": args.method, "data": trainer.baseline_counts,
               "train": dict(trainer.state.log_history[-1])}
    write_json(Path(args.output_dir) / "baseline_metrics.json", metrics)
    print(json.dumps(metrics, indent=2))
    print(f"saved the {'adapter' if model_config.lora else 'model'} and tokenizer to {args.output_dir}")
    return 0

"""Train a model with CUT on judgment data.

    cutalign train --config run.yaml [--option value ...]
    cutalign train --train_data data.jsonl --output_dir out --threshold 1.2

Options are the fields of ModelConfig (model, LoRA), the data files, and CUTConfig (the CUT settings and every
transformers TrainingArguments field). --config FILE gives any of them in YAML (option: value); the command line
overrides the file. The data (a file, a save_to_disk directory or a hub dataset; --format, --split) is read and
checked, report_to's packages and the model are found, before the model loads. Several processes (docs/scale-out.md):
accelerate launch --config_file configs/accelerate/ddp.yaml -m cutalign train --config run.yaml
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .data_options import DATA_FORMATS, FORMAT_HELP, SOURCE_HELP, SPLIT_HELP

SUMMARY = "train a model with CUT on judgment data"


@dataclass
class TrainDataArguments:
    """The judgment data to train on and, optionally, to evaluate on."""

    train_data: str = field(metadata={"help": f"judgment data to train on: {SOURCE_HELP}"})
    eval_data: str | None = field(default=None, metadata={
        "help": "judgment data to evaluate on (the CUT loss and its metrics): the same kinds of source"})
    format: str = field(default="auto", metadata={
        "help": f"{FORMAT_HELP} (both data sources)", "choices": DATA_FORMATS})
    split: str | None = field(default=None, metadata={"help": f"--train_data: {SPLIT_HELP}"})
    eval_split: str | None = field(default=None, metadata={
        "help": "--eval_data: the same, e.g. test when both name one hub dataset"})

    def __post_init__(self):
        if self.eval_split is not None and self.eval_data is None:
            raise ValueError("--eval_split picks a split of --eval_data, which is not given")


def arguments() -> tuple:
    """The dataclasses the options fill: (ModelConfig, TrainDataArguments, CUTConfig)."""
    from ..config import CUTConfig, ModelConfig

    return ModelConfig, TrainDataArguments, CUTConfig


def parse(argv: list[str]) -> tuple:
    """(ModelConfig, TrainDataArguments, CUTConfig) from the command line and --config FILE."""
    from . import options

    return options.parse(argv, arguments(), prog="cutalign train", description=__doc__)


def run(argv: list[str]) -> int:
    model, data, config = parse(argv)
    return train(model, data, config)


def train(model, data: TrainDataArguments, config) -> int:
    """Check the data and the model, train, save the adapter (or model) and ``cutalign_metrics.json``."""
    from ..data import load_judgments
    from ..io import write_json
    from .checks import leave_process_group, require_model, require_reporting, require_supported_launch

    require_supported_launch(config.use_cpu)
    require_reporting(config.report_to)
    # The data is read and checked before the model loads.
    train_data = load_judgments(data.train_data, format=data.format, split=data.split,
                                positive_score=config.positive_score)
    eval_data = load_judgments(data.eval_data, format=data.format, split=data.eval_split,
                               positive_score=config.positive_score) if data.eval_data else None
    require_model(model.model)
    if model.load_in_4bit:
        config.model_init_kwargs = {**(config.model_init_kwargs or {}), **model.model_init_kwargs()}

    from ..trainer import CUTTrainer

    trainer = CUTTrainer(model.model, config, train_dataset=train_data, eval_dataset=eval_data,
                         peft_config=model.peft_config())
    result = trainer.train(resume_from_checkpoint=config.resume_from_checkpoint)
    trainer.save_model(config.output_dir)
    # Every process evaluates (the evaluation gathers across processes); the main process writes the report.
    evaluation = trainer.evaluate() if eval_data is not None else None
    if trainer.is_world_process_zero():
        report = {"train": result.metrics, "data": {
            split: {**r, "tokenization": r["tokenization"].summary()} for split, r in trainer.data_reports.items()}}
        if evaluation is not None:
            report["eval"] = evaluation
        write_json(Path(config.output_dir) / "cutalign_metrics.json", report)
        print(f"saved the {'adapter' if model.lora else 'model'} and tokenizer to {config.output_dir}")
    leave_process_group()
    return 0

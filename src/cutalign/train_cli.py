"""`cutalign train --config run.yaml [--key value ...]`: CUT training from a YAML file plus command-line overrides.

Every key is a field of :class:`TrainScriptArguments` (model, data, LoRA) or of :class:`cutalign.CUTConfig` (the CUT
settings and all of transformers' ``TrainingArguments``); ``cutalign train --help`` lists them all. Values on the
command line override the YAML file. An unknown key is an error that names the closest known keys.

Also runnable as ``python -m cutalign.train_cli`` (e.g. under ``accelerate launch``).
"""

from __future__ import annotations

import difflib
import json
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .errors import UsageError
from .io import write_json

logger = logging.getLogger("cutalign")


@dataclass
class TrainScriptArguments:
    """The data to train on (the model is ModelConfig's, the rest of the options are CUTConfig's)."""

    train_data: str | None = field(default=None, metadata={
        "help": "judgment data: reference JSON/JSONL or canonical JSONL/CSV/Parquet (prompt, completion, judgment)"})
    eval_data: str | None = field(default=None, metadata={"help": "optional evaluation data, same formats"})


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a model with CUT on judgment data",
        description="Train with CUT. Options come from --config (YAML) and from the command line; "
        "run `cutalign train --help` for every option.",
        add_help=False,
    )
    # Everything after `train` is parsed by run() (HfArgumentParser over all the options).
    parser.set_defaults(run=run, takes_options=True)


def _argument_parser():
    from transformers import HfArgumentParser

    from .config import CUTConfig, ModelConfig

    parser = HfArgumentParser((ModelConfig, TrainScriptArguments, CUTConfig), prog="cutalign train")
    parser.add_argument("--config", default=None, help="YAML file with any of the options below")
    return parser


def _yaml_to_argv(path: str, known: set[str]) -> list[str]:
    """Turn a YAML mapping into command-line arguments, rejecting unknown keys."""
    try:
        values = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError:
        raise UsageError(f"{path}: config file not found") from None
    except yaml.YAMLError as error:
        raise UsageError(f"{path}: invalid YAML: {error}") from None
    if values is None:
        return []
    if not isinstance(values, dict):
        raise UsageError(f"{path}: the config must be a mapping of option: value")
    argv = []
    for key, value in values.items():
        if key not in known:
            raise UsageError(f"{path}: unknown option {key!r}{_suggest(key, known)}")
        if value is None:
            continue
        if isinstance(value, bool):
            argv += [f"--{key}", str(value).lower()]
        elif isinstance(value, list):
            if not value:
                raise UsageError(f"{path}: option {key!r} needs at least one value (for report_to, use none)")
            argv += [f"--{key}", *map(str, value)]
        elif isinstance(value, dict):
            argv += [f"--{key}", json.dumps(value)]
        else:
            argv += [f"--{key}", str(value)]
    return argv


def _suggest(key: str, known: set[str]) -> str:
    close = difflib.get_close_matches(key, sorted(known), n=3)
    return f" (did you mean {', '.join(close)}?)" if close else ""


def parse_options(argv: list[str]):
    """(ModelConfig, TrainScriptArguments, CUTConfig) from `--config FILE` plus `--key value` overrides."""
    parser = _argument_parser()
    known = {action.dest for action in parser._actions if action.dest != "help"}
    config_file = None
    if "--config" in argv:
        index = argv.index("--config")
        if index + 1 >= len(argv):
            raise UsageError("--config needs a file name")
        config_file = argv[index + 1]
        argv = argv[:index] + argv[index + 2:]
    full = (_yaml_to_argv(config_file, known) if config_file else []) + argv
    # Returns the two dataclasses, a namespace holding --config, and the unparsed strings.
    model, script, config, _, unknown = parser.parse_args_into_dataclasses(args=full, return_remaining_strings=True)
    if unknown:
        names = [u for u in unknown if u.startswith("--")]
        hint = _suggest(names[0].lstrip("-"), known) if names else ""
        raise UsageError(f"unknown option(s) {' '.join(unknown)}{hint}")
    if script.train_data is None:
        raise UsageError("train_data is required (in the config or as --train_data FILE)")
    return model, script, config


def run(args) -> int:
    if "--help" in args.options or "-h" in args.options:
        _argument_parser().print_help()
        return 0
    model, script, config = parse_options(args.options)
    return train(model, script, config)


def train(model, script: TrainScriptArguments, config) -> int:
    from .data import load_judgments
    from .trainer import CUTTrainer

    train_data = load_judgments(script.train_data)  # validate before loading the model
    eval_data = load_judgments(script.eval_data) if script.eval_data else None
    if model.load_in_4bit:
        config.model_init_kwargs = {**(config.model_init_kwargs or {}), **model.model_init_kwargs()}
    trainer = CUTTrainer(model.model, config, train_dataset=train_data, eval_dataset=eval_data,
                         peft_config=model.peft_config())
    result = trainer.train(resume_from_checkpoint=config.resume_from_checkpoint)
    trainer.save_model(config.output_dir)
    if trainer.is_world_process_zero():
        report = {"train": result.metrics, "data": {
            split: {**r, "tokenization": r["tokenization"].summary()} for split, r in trainer.data_reports.items()}}
        if eval_data is not None:
            report["eval"] = trainer.evaluate()
        write_json(Path(config.output_dir) / "cutalign_metrics.json", report)
        print(f"saved the {'adapter' if model.lora else 'model'} and tokenizer to {config.output_dir}")
    return 0


if __name__ == "__main__":
    from .cli import main

    sys.exit(main(["train", *sys.argv[1:]]))

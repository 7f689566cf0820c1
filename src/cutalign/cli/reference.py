"""The configuration reference (docs/reference.md), written from the dataclasses the commands parse.

    python -m cutalign.cli.reference > docs/reference.md

Each command's options, ModelConfig, the settings CUTConfig declares (TrainingArguments' are linked, not copied),
and the online-loop YAML schema. tests/test_docs.py fails when docs/reference.md differs from this output, so the
reference changes with the code.
"""

from __future__ import annotations

import dataclasses
import json
import re
import typing

TRAINING_ARGUMENTS_DOCS = "https://huggingface.co/docs/transformers/main_classes/trainer#transformers.TrainingArguments"

SHARED = ("ModelConfig", "CUTConfig")
"""Dataclasses several commands (and the online config) share: described once, in their own sections."""


def render() -> str:
    """The whole reference, as Markdown."""
    from ..config import CUTConfig, ModelConfig
    from . import COMMANDS

    lines = [
        "# Configuration reference",
        "",
        "Generated from the dataclasses the commands parse: `python -m cutalign.cli.reference > docs/reference.md`",
        "(tests/test_docs.py checks that this file is current). Do not edit it by hand.",
        "",
        "Every option is a flag, `--name value`, spelled with underscores. Every command but `online` also takes",
        "`--config FILE`: a YAML mapping of any of its options (`name: value`, the flag's name without `--`); the",
        "command line overrides the file. A true/false option given as a bare flag (`--no_progress`) is true.",
        "",
    ]
    for name, module in COMMANDS.items():
        lines += [f"## cutalign {name}", "", module.SUMMARY[0].upper() + module.SUMMARY[1:] + ".", ""]
        for cls in module.arguments():
            if cls.__name__ in SHARED:
                lines += [f"The [{cls.__name__}](#{cls.__name__.lower()}) options.", ""]
            else:
                lines += _table(cls, flags=True)
    lines += ["## ModelConfig", "", _doc(ModelConfig), ""] + _table(ModelConfig, flags=True)
    lines += ["## CUTConfig", "", _doc(CUTConfig), "",
              "The settings CUTConfig declares (the CUT loss, the data, the model's loading):", ""]
    lines += _table(CUTConfig, flags=True, own=True)
    lines += [f"Every [`transformers.TrainingArguments`]({TRAINING_ARGUMENTS_DOCS}) field is accepted too",
              "(`output_dir`, `learning_rate`, `num_train_epochs`, `per_device_train_batch_size`, `save_strategy`,",
              "...), as a flag and as a YAML key.", ""]
    lines += _online_schema()
    return "\n".join(lines).rstrip() + "\n"


def _online_schema() -> list[str]:
    from ..generation import SamplingConfig
    from ..judges.config import JUDGE_KEYS, JudgeConfig
    from ..online.config import EvalConfig, LauncherConfig, OnlineConfig, PromptsConfig, TaskConfig
    from ..online.guard import GuardConfig

    lines = ["## Online loop config (YAML)", "",
             "The file `cutalign online --config` reads (a path, or a shipped config's name: `online-rule`,",
             "`online-trained-judge`, `online-endpoint`). " + _doc(OnlineConfig), "",
             "### Top-level keys", ""]
    lines += _table(OnlineConfig, flags=False)
    lines += ["`model:` is a [ModelConfig](#modelconfig) mapping (or just the model's name); `training:` is a mapping",
              "of [CUTConfig](#cutconfig) fields, except `output_dir` and `seed`, which the loop sets for each round.",
              ""]
    for key, cls in (("task", TaskConfig), ("prompts", PromptsConfig), ("generation", SamplingConfig),
                     ("eval (a list; each entry)", EvalConfig), ("judge", JudgeConfig), ("launcher", LauncherConfig),
                     ("guard", GuardConfig)):
        lines += [f"### {key}: {cls.__name__}", "", _doc(cls), ""] + _table(cls, flags=False)
    kinds = "; ".join(f"`{kind}`: {', '.join(f'`{k}`' for k in keys) or 'no other key'}"
                      for kind, keys in JUDGE_KEYS.items())
    lines += [f"The keys each judge kind reads besides `kind`: {kinds}.", ""]
    return lines


def _table(cls, *, flags: bool, own: bool = False) -> list[str]:
    """A Markdown table of dataclass ``cls``'s fields: option, type, default, description."""
    hints = typing.get_type_hints(cls)
    declared = vars(cls).get("__annotations__", {})
    rows = ["| Option | Type | Default | Description |", "| --- | --- | --- | --- |"]
    for field in dataclasses.fields(cls):
        if not field.init or (own and field.name not in declared):
            continue
        if field.metadata.get("positional"):
            name = field.name.upper() + " (positional)"
        else:
            name = f"--{field.name}" if flags else field.name
        help_text = " ".join(str(field.metadata.get("help", "")).split())
        rows.append(f"| `{name}` | {_escape(f'`{_type(hints[field.name])}`')} | {_default(field)} | {_escape(help_text)} |")
    return rows + [""]


def _type(hint) -> str:
    return hint.__name__ if isinstance(hint, type) else str(hint).replace("typing.", "")


def _default(field: dataclasses.Field) -> str:
    if field.default is not dataclasses.MISSING:
        value = field.default
    elif field.default_factory is not dataclasses.MISSING:
        value = field.default_factory()
    else:
        return "required"
    if dataclasses.is_dataclass(value):
        return "its defaults"
    if isinstance(value, list) and value and all(dataclasses.is_dataclass(item) for item in value):
        return f"{len(value)} entr{'y' if len(value) == 1 else 'ies'} with their defaults"
    return _escape(f"`{json.dumps(value)}`")


def _escape(text: str) -> str:
    return text.replace("|", "\\|")


def _doc(cls) -> str:
    """The class docstring as one Markdown paragraph (reST roles and double backquotes made code spans)."""
    text = re.sub(r":\w+:`", "`", " ".join((cls.__doc__ or "").split()))
    return text.replace("``", "`")


if __name__ == "__main__":
    print(render(), end="")

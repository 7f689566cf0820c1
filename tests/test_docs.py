"""docs/reference.md is the output of its generator: a changed option, default or help text needs a regenerated file."""

from pathlib import Path

from cutalign.cli.reference import render

REFERENCE = Path(__file__).resolve().parents[1] / "docs" / "reference.md"


def test_reference_is_current():
    assert REFERENCE.read_text(encoding="utf-8") == render(), (
        "docs/reference.md is out of date: run python -m cutalign.cli.reference > docs/reference.md")


def test_reference_lists_every_command_and_option():
    from dataclasses import fields

    from cutalign.cli import COMMANDS
    from cutalign.config import CUTConfig, ModelConfig

    text = render()
    for name, module in COMMANDS.items():
        assert f"## cutalign {name}\n" in text
        for cls in module.arguments():
            if cls not in (CUTConfig, ModelConfig):
                for f in fields(cls):
                    assert f"`--{f.name}`" in text or f"`{f.name.upper()} (positional)`" in text, (name, f.name)
    for f in fields(ModelConfig):
        assert f"| `--{f.name}` |" in text
    cut_section = text.split("## CUTConfig\n")[1].split("\n## ")[0]
    assert "| `--threshold` |" in cut_section and "| `--padding_free` |" in cut_section
    assert "| `--learning_rate` |" not in cut_section  # TrainingArguments' own fields are linked, not listed
    assert "transformers.TrainingArguments" in cut_section

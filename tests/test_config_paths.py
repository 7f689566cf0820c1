"""Every CUT option is declared once (CUTConfig) and reaches every way of setting it without another edit.

For each field CUTConfig declares itself, a non-default value set through the Python API, `cutalign train` (flag and
YAML), the online loop's `training:` map and `cutalign train-judge` arrives unchanged, and the generated reference
documents it. The loss settings reach `cut_loss` through one method, whose keywords are exactly the loss's.
"""

import dataclasses
import inspect
import json
from pathlib import Path

import pytest

from cutalign import CUTConfig, cut_loss
from cutalign.cli import train, train_judge
from cutalign.online.config import config_from_dict

ROOT = Path(__file__).resolve().parents[1]
OWN_FIELDS = [f for f in dataclasses.fields(CUTConfig) if f.name in vars(CUTConfig)["__annotations__"]]


def other_value(field: dataclasses.Field):
    """A valid value of ``field`` that differs from its default, and how to write it on a command line."""
    default = field.default
    if field.name == "model_init_kwargs":
        return {"dtype": "float32"}, json.dumps({"dtype": "float32"})
    if field.name == "reduction":
        value = "reference" if default != "reference" else "normalized"
    elif field.name == "template":
        value = "chat" if default != "chat" else "alpaca"
    elif field.name == "chat_judgment_template":
        value = default + " Be brief."
    elif field.name == "contrast_judgment":
        value = "The response is wrong."
    elif field.name == "max_flagged_fraction":
        value = default - 0.5
    elif isinstance(default, bool):
        value = not default
    elif isinstance(default, int):
        value = default + 1
    elif isinstance(default, float):
        value = default + 0.5
    else:
        raise AssertionError(f"add a value for the new CUTConfig field {field.name!r} to this test")
    return value, str(value).lower() if isinstance(value, bool) else str(value)


@pytest.mark.parametrize("field", OWN_FIELDS, ids=lambda f: f.name)
def test_a_cut_option_reaches_every_path(field, tmp_path):
    value, text = other_value(field)
    # Python API
    assert getattr(CUTConfig(output_dir=str(tmp_path), **{field.name: value}), field.name) == value
    # cutalign train: a flag, and a YAML key
    data = tmp_path / "data.jsonl"
    data.write_text('{"prompt": "Say hi.", "completion": "Hi.", "judgment": null}\n')
    _, _, args = train.parse(["--train_data", str(data), "--output_dir", str(tmp_path), f"--{field.name}", text])
    assert getattr(args, field.name) == value
    config = tmp_path / "run.yaml"
    config.write_text(f"train_data: {data}\noutput_dir: {tmp_path}\n{field.name}: {json.dumps(value)}\n")
    _, _, args = train.parse(["--config", str(config)])
    assert getattr(args, field.name) == value
    # cutalign train-judge (the same CUTConfig under the judge's recipe)
    _, _, args = train_judge.parse([f"--{field.name}", text])
    assert getattr(args, field.name) == value
    # the online loop's training: map
    online = config_from_dict({"judge": {"kind": "rule"}, "training": {field.name: value}})
    assert getattr(online.cut_config(output_dir=str(tmp_path), seed=0), field.name) == value
    # the generated option reference
    assert f"`--{field.name}`" in (ROOT / "docs" / "reference.md").read_text()


def test_loss_settings_reach_the_loss_through_one_method(tmp_path):
    """CUTConfig.loss_kwargs gives exactly cut_loss's settings (no setting dropped, none invented)."""
    parameters = inspect.signature(cut_loss).parameters
    # num_items_in_batch and contrast_logps are batch data, not settings
    settings = {name for name, p in parameters.items() if p.kind is p.KEYWORD_ONLY} - {"num_items_in_batch",
                                                                                       "contrast_logps"}
    assert set(CUTConfig(output_dir=str(tmp_path)).loss_kwargs()) == settings
    required = {name for name in settings if parameters[name].default is inspect.Parameter.empty}
    assert required == {"threshold", "alpha", "reduction"}  # the loss has no defaults of its own for these


def test_train_takes_the_shipped_reference_mix_by_name(tmp_path):
    """``cutalign train --config reference-mix`` is the paper's loss mix; the command line still overrides it."""
    data = tmp_path / "data.jsonl"
    data.write_text('{"prompt": "Say hi.", "completion": "Hi.", "judgment": null}\n')
    _, _, args = train.parse(["--config", "reference-mix", "--train_data", str(data), "--output_dir", str(tmp_path),
                              "--positive_ratio", "0.5"])
    assert (args.align_n_weight, args.unflagged_weight, args.reduction, args.positive_ratio) == \
        (1.0, 1.0, "reference", 0.5)
    _, _, args = train.parse(["--train_data", str(data), "--output_dir", str(tmp_path)])
    assert (args.align_n_weight, args.unflagged_weight, args.reduction) == (0.0, 0.0, "normalized")

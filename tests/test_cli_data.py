"""What the commands read before any model loads: --format and --split reach load_judgments for every command that
reads judgment data, and report_to names only integrations that are installed."""

import json

import datasets
import pytest
import transformers
from conftest import tiny_examples

import cutalign.data
from cutalign.cli import main
from cutalign.cli.checks import REPORTING_PACKAGES
from cutalign.cli.data_options import DATA_FORMATS


@pytest.fixture
def no_model_loads(monkeypatch):
    """Any attempt to load a model or tokenizer fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError("a model or tokenizer was loaded")

    for cls in (transformers.AutoModelForCausalLM, transformers.AutoTokenizer):
        monkeypatch.setattr(cls, "from_pretrained", refuse)


@pytest.fixture
def loads(monkeypatch):
    """The calls of cutalign.data.load_judgments (source, format, split) and the number of rows each returned."""
    real, calls = cutalign.data.load_judgments, []

    def spy(source, **kwargs):
        dataset = real(source, **kwargs)
        calls.append((str(source), kwargs.get("format"), kwargs.get("split"), len(dataset)))
        return dataset

    monkeypatch.setattr(cutalign.data, "load_judgments", spy)
    return calls


@pytest.fixture
def splits_dir(tmp_path):
    """A DatasetDict saved with save_to_disk: 6 train rows, 2 test rows."""
    path = tmp_path / "saved"
    datasets.DatasetDict({"train": datasets.Dataset.from_list(tiny_examples(3, 3)),
                          "test": datasets.Dataset.from_list(tiny_examples(1, 1))}).save_to_disk(str(path))
    return str(path)


def test_the_cli_offers_the_formats_the_loader_reads():
    from cutalign.data.formats import DATA_FORMATS as LOADER_FORMATS

    assert DATA_FORMATS == LOADER_FORMATS


@pytest.mark.parametrize("argv,expected", [
    (["train", "--train_data", "DIR", "--split", "test", "--eval_data", "DIR", "--output_dir", "OUT"],
     [("DIR", "auto", "test", 2), ("DIR", "auto", None, 6)]),
    (["train", "--train_data", "DIR", "--eval_data", "DIR", "--eval_split", "test", "--output_dir", "OUT"],
     [("DIR", "auto", None, 6), ("DIR", "auto", "test", 2)]),
    (["baseline", "sft-all", "--train_data", "DIR", "--split", "test", "--output_dir", "OUT"],
     [("DIR", "auto", "test", 2)]),
    (["eval", "--references", "DIR", "--split", "test", "--output_dir", "OUT"], [("DIR", "auto", "test", 2)]),
])
def test_split_picks_the_split_of_a_saved_dataset(argv, expected, splits_dir, tmp_path, loads, no_model_loads,
                                                  capsys):
    argv = [{"DIR": splits_dir, "OUT": str(tmp_path / "o")}.get(arg, arg) for arg in argv]
    assert main([*argv, "--model", str(tmp_path / "missing-model")]) == 2  # the data is read, then the model fails
    assert "is not 'default', an existing directory" in capsys.readouterr().err
    assert loads == [(splits_dir, *rest) for _, *rest in expected]


@pytest.mark.parametrize("command", [
    ["train", "--output_dir", "OUT"], ["baseline", "kto", "--output_dir", "OUT"], ["eval", "--output_dir", "OUT"]])
def test_format_reaches_the_loader(command, tmp_path, loads, no_model_loads, capsys):
    """An UltraFeedback-layout file read with --format ultrafeedback: one example per completion, scored."""
    path = tmp_path / "uf.jsonl"
    completions = [{"response": "Paris.", "overall_score": 8.5, "critique": "Fine."},
                   {"response": "Lyon.", "overall_score": 2.0, "critique": "Wrong city: the capital is Paris."}]
    path.write_text(json.dumps({"instruction": "Name the capital of France.", "completions": completions}) + "\n")
    data_flag = "--references" if command[0] == "eval" else "--train_data"
    argv = [{"OUT": str(tmp_path / "o")}.get(arg, arg) for arg in command]
    assert main([*argv, data_flag, str(path), "--format", "ultrafeedback", "--model", str(tmp_path / "none")]) == 2
    assert loads == [(str(path), "ultrafeedback", None, 2)]


def test_a_split_of_a_file_is_one_error_line(tmp_path, no_model_loads, capsys):
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in tiny_examples()))
    assert main(["train", "--train_data", str(data), "--split", "test", "--output_dir", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: split='test' does not apply to a file") and len(err.splitlines()) == 1
    assert main(["train", "--train_data", str(data), "--eval_split", "test", "--output_dir", str(tmp_path)]) == 2
    assert "--eval_split picks a split of --eval_data, which is not given" in capsys.readouterr().err


def test_data_options_say_which_sources_they_read(capsys):
    for command in ("train", "baseline"):
        assert main([command, "--help"]) == 0  # the shipped page (cutalign.cli.shipped_help)
        text = " ".join(capsys.readouterr().out.split())
        assert "save_to_disk" in text and "Hugging Face Hub dataset name" in text, command
        assert "{auto,ultrafeedback,shepherd,summarization}" in text and "--split" in text, command


# --- report_to: every integration it names is installed, checked before the data and the model

@pytest.mark.parametrize("command", [["train"], ["baseline", "sft-all"]])
def test_a_missing_reporting_integration_is_one_line_naming_the_extra(command, tmp_path, no_model_loads, capsys):
    if transformers.integrations.is_tensorboard_available():
        pytest.skip("tensorboard is installed here")
    config = tmp_path / "run.yaml"
    config.write_text(f"report_to: tensorboard\ntrain_data: {tmp_path / 'not-read-yet.jsonl'}\n"
                      f"output_dir: {tmp_path / 'o'}\n")
    assert main([*command, "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert err == ("error: --report_to tensorboard: tensorboard is not installed; pip install "
                   "'cutalign[tensorboard]' (or --report_to none)\n")
    assert main([*command, "--config", str(config), "--report_to", "tensorbored"]) == 2
    assert "not an integration transformers knows" in capsys.readouterr().err


def test_every_reporting_integration_has_an_install_hint():
    """A transformers release that adds an integration fails here until the check knows what to install."""
    from transformers.integrations.integration_utils import INTEGRATION_TO_CALLBACK

    assert {*REPORTING_PACKAGES, "kubeflow"} == set(INTEGRATION_TO_CALLBACK)


def test_the_extras_named_exist_in_pyproject():
    import tomllib
    from pathlib import Path

    pyproject = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    extras = pyproject["project"]["optional-dependencies"]
    assert extras["tensorboard"] == ["tensorboard>=2.14"] and extras["trackio"] == ["trackio"]
    for hint in REPORTING_PACKAGES.values():
        if hint.startswith("'cutalign["):
            assert hint[len("'cutalign["):-2] in extras, hint

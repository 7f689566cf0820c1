"""`cutalign inspect DATA`: the rows with their flagged tokens, the flagged-share table, and the HTML page."""

import json
import sys

import pytest
from conftest import make_model, make_tokenizer, tiny_examples

from cutalign.cli import main


@pytest.fixture
def tiny(tmp_path):
    model_dir, data = tmp_path / "tiny", tmp_path / "data.jsonl"
    make_model("llama").save_pretrained(model_dir)
    make_tokenizer().save_pretrained(model_dir)
    data.write_text("".join(json.dumps(row) + "\n" for row in tiny_examples(2, 3)))
    return str(model_dir), str(data)


def test_inspect_prints_the_rows_and_the_table_and_writes_the_page(tiny, tmp_path, capsys, monkeypatch):
    model_dir, data = tiny
    page = tmp_path / "pages" / "inspect.html"
    argv = ["inspect", data, "--model", model_dir, "--limit", "2", "--threshold", "1.3", "--thresholds", "1", "2",
            "--template", "chat", "--max_length", "256", "--batch_size", "1", "--html", str(page)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.count("── row ") == 2 and "flagged at λ = 1.3" in out and "\x1b[" not in out  # not a terminal
    table = out.split("flagged tokens\n")[1].splitlines()
    assert [line.split()[0] for line in table[:3]] == ["1.00", "1.30", "2.00"] and "<- threshold" in table[1]
    html = page.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and html.count("<section>") == 2 and "λ = 1.3" in html
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert main(argv[:-2]) == 0 and "\x1b[" in capsys.readouterr().out  # a terminal: colors
    assert main([*argv[:-2], "--no_color"]) == 0 and "\x1b[" not in capsys.readouterr().out


def test_inspect_checks_data_and_model_before_loading(tiny, tmp_path, capsys):
    model_dir, data = tiny
    assert main(["inspect", data, "--model", str(tmp_path / "missing")]) == 2
    assert "is not 'default', an existing directory" in capsys.readouterr().err
    assert main(["inspect", data, "--model", model_dir, "--split", "test"]) == 2
    assert "does not apply to a file" in capsys.readouterr().err
    assert main(["inspect", data, "--limit", "0"]) == 2
    assert "--limit must be >= 1" in capsys.readouterr().err


def test_the_command_defaults_are_the_librarys():
    import cutalign.inspect as library
    from cutalign.cli import inspect as command

    assert command.DEFAULT_THRESHOLD == library.DEFAULT_THRESHOLD
    assert command.DEFAULT_THRESHOLDS == library.DEFAULT_THRESHOLDS
    assert (command.DEFAULT_TEMPLATE, command.DEFAULT_MAX_LENGTH) == (library.DEFAULT_TEMPLATE,
                                                                      library.DEFAULT_MAX_LENGTH)


def test_inspect_selects_tokens_as_the_training_options_do(tiny, tmp_path, capsys):
    """--max_flagged_fraction caps each row's flags and --contrast_judgment takes the ratio against j0; the shown
    counts are the library's for the same options."""
    from cutalign.inspect import inspect_judgments

    model_dir, data = tiny
    base = ["inspect", data, "--model", model_dir, "--threshold", "1.0", "--template", "alpaca", "--max_length", "256"]
    page = tmp_path / "capped.html"

    def flagged_counts(extra):
        assert main([*base, *extra]) == 0
        return [int(line.split(": ")[1].split(" of ")[0]) for line in capsys.readouterr().out.splitlines()
                if line.startswith("── row ")]

    rows = inspect_judgments(data, model_dir, template="alpaca", max_length=256)
    assert flagged_counts([]) == [sum(row.flags(1.0)) for row in rows]
    capped = flagged_counts(["--max_flagged_fraction", "0.2", "--html", str(page)])
    assert capped == [sum(row.flags(1.0, 0.2)) for row in rows] != [sum(row.flags(1.0)) for row in rows]
    assert "at most 0.2 of a row" in page.read_text(encoding="utf-8")
    neutral = "The response does not follow the instruction."
    contrast = inspect_judgments(data, model_dir, template="alpaca", max_length=256, contrast_judgment=neutral)
    assert flagged_counts(["--contrast_judgment", neutral]) == [sum(row.flags(1.0)) for row in contrast]
    assert main([*base, "--max_flagged_fraction", "0"]) == 2
    assert "--max_flagged_fraction must be in (0, 1]" in capsys.readouterr().err

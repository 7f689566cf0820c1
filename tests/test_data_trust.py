"""Data that is not what it seems: a lone JSON object, failed judgments, misspelt columns, lone surrogates.

Each case used to load as plausible training data or fail without saying where; now each is refused (or, for a
failed judgment, left out and counted) with the file, the row and the field named.
"""

import json
import logging
from pathlib import Path

import datasets
import pytest

from conftest import write_jsonl
from cutalign.data import (
    FAILED_JUDGMENT_MARKERS,
    DataError,
    FailedJudgment,
    count_examples,
    load_judgments,
    read_judgments,
    validate_example,
)

REAL_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "cut-online"


@pytest.fixture(autouse=True)
def _quiet(quiet_datasets):
    yield


# --- 1. a .json file holding one object -----------------------------------------------------------------------


@pytest.mark.parametrize("text", ['{"prompt": "p", "completion": "c"}', '{"prompt": "p",\n "completion": "c"}\n'])
def test_a_json_file_holding_one_object_is_refused(tmp_path, text):
    path = tmp_path / "d.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DataError) as info:
        load_judgments(path)
    assert info.value.file == str(path) and info.value.row is None
    assert "holds a single JSON object" in info.value.message
    assert "a JSON array of rows" in info.value.message and "JSON Lines" in info.value.message


def test_one_row_of_json_lines_loads_from_a_jsonl_file(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"prompt": "p", "completion": "c"}', encoding="utf-8")
    assert len(load_judgments(path)) == 1


def test_json_lines_in_a_json_file_are_still_read(tmp_path):
    path = write_jsonl(tmp_path / "d.json", [{"prompt": "p", "completion": "c"}, {"prompt": "q", "completion": "d"}])
    assert load_judgments(path)["prompt"] == ["p", "q"]


# --- 2. failed judgments ---------------------------------------------------------------------------------------


def test_the_failure_marker_set_holds_the_reference_marker():
    assert "$ERROR$" in FAILED_JUDGMENT_MARKERS


def test_validate_example_refuses_a_failed_judgment():
    with pytest.raises(FailedJudgment) as info:
        validate_example({"prompt": "p", "completion": "c", "judgment": " $ERROR$\n"}, file="d.jsonl", row=4)
    assert isinstance(info.value, DataError)
    assert (info.value.file, info.value.row, info.value.field) == ("d.jsonl", 4, "judgment")


def test_failed_judgments_are_left_out_counted_and_reported(tmp_path, caplog):
    rows = [
        {"id": 0, "instruction": "i0", "input": "", "output": "o0", "judgment": None},
        {"id": 1, "instruction": "i1", "input": "", "output": "o1", "judgment": "$ERROR$"},
        {"id": 2, "instruction": "i2", "input": "", "output": "o2", "judgment": "Too short."},
        {"id": 3, "instruction": "i3", "input": "", "output": "o3", "judgment": "$ERROR$", "score": 9},
    ]
    path = tmp_path / "ref.json"
    path.write_text(json.dumps(rows), encoding="utf-8")
    with caplog.at_level(logging.INFO, logger="cutalign.data"):
        loaded = read_judgments(path)
    assert loaded.failed_rows == [2, 4]
    assert loaded.dataset["id"] == ["0", "2"]
    assert count_examples(loaded.dataset) == {"positives": 1, "negatives": 1, "total": 2}
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "left out 2 of 4 rows" in warnings[0] and "rows 2, 4" in warnings[0]
    assert str(path) in warnings[0] and "$ERROR$" in warnings[0]
    assert load_judgments(path)["id"] == ["0", "2"]


def test_rows_without_an_id_keep_their_position_as_id_when_failed_rows_are_left_out():
    rows = [{"prompt": f"q{i}", "completion": "c", "judgment": "$ERROR$" if i == 1 else None} for i in range(3)]
    assert load_judgments(rows)["id"] == ["0", "2"]


def test_a_file_of_only_failed_judgments_holds_no_examples(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"prompt": "p", "completion": "c", "judgment": "$ERROR$"}] * 2)
    with pytest.raises(DataError, match=r"holds no examples: all 2 rows have a failed judgment"):
        load_judgments(path)


@pytest.mark.parametrize("name", ["iter1.json", "iter2.json"])
@pytest.mark.skipif(not REAL_DATA.exists(), reason="shared CUT data not available")
def test_real_reference_files_leave_out_every_failed_judgment(name):
    path = REAL_DATA / name
    rows = json.loads(path.read_text(encoding="utf-8"))
    markers = [number for number, row in enumerate(rows, start=1) if row["judgment"] == "$ERROR$"]
    judged = sum(row["judgment"] is not None and row["judgment"].strip() != "" for row in rows)
    assert markers  # the reference files do carry failed judgings (47 in iter1.json)

    loaded = read_judgments(path)
    assert loaded.failed_rows == markers
    counts = count_examples(loaded.dataset)
    assert counts["total"] == len(rows) - len(markers)
    assert counts["negatives"] == judged - len(markers)
    assert "$ERROR$" not in loaded.dataset["judgment"]
    assert set(loaded.dataset["id"]).isdisjoint(str(rows[number - 1]["id"]) for number in markers)


# --- 3. unknown columns ----------------------------------------------------------------------------------------


def load_error(tmp_path, rows) -> DataError:
    path = write_jsonl(tmp_path / "d.jsonl", rows)
    with pytest.raises(DataError) as info:
        load_judgments(path)
    assert info.value.file == str(path)
    return info.value


def test_a_misspelt_judgment_column_is_an_error_with_a_suggestion(tmp_path):
    rows = [{"prompt": "p", "completion": "c", "judgement": "Wrong."}, {"prompt": "q", "completion": "d"}]
    error = load_error(tmp_path, rows)
    assert (error.row, error.field) == (1, "judgement")
    assert "unknown column" in error.message and "Did you mean 'judgment'?" in error.message


@pytest.mark.parametrize(
    ("row", "column", "hint"),
    [
        ({"prompt": "p", "response": "c", "judgment": "j"}, "response", "Did you mean 'completion'?"),
        ({"prompt": "p", "output": "c"}, "output", "Did you mean 'completion'?"),
        ({"instruction": "i", "completion": "c"}, "completion", "Did you mean 'output'?"),
        ({"messages": [{"role": "user", "content": "hi"}], "completion": "c"}, "messages", "'prompt'"),
        ({"prompt": "p", "chosen": "a", "rejected": "b"}, "chosen", "preference pairs"),
        ({"prompt": "p", "chosen": "a", "rejected": "b"}, "chosen", "format='ultrafeedback'"),
        ({"instruction": "i", "completions": [{"response": "r"}]}, "completions",
         "This looks like UltraFeedback: load with format='ultrafeedback' (cutalign train --format ultrafeedback)."),
        ({"question": "q", "answer": "a", "feedback": "f"}, "question",
         "This looks like Shepherd's feedback file: load with format='shepherd' (cutalign train --format shepherd)."),
        ({"metadata": {"context": "q"}, "prompt": "p", "completion": "c"}, "metadata",
         "This looks like Shepherd's raw file, which holds no critiques: load its feedback file with "
         "format='shepherd', or pair the two with cutalign.data.converters.convert_shepherd(feedback, raw)"),
        ({"data": {"passage": {"text": "t"}}}, "data",
         "This looks like summarization critiques: load with format='summarization' (cutalign train --format "
         "summarization)."),
    ],
)
def test_unknown_columns_name_the_column_and_a_way_out(tmp_path, row, column, hint):
    error = load_error(tmp_path, [row])
    assert error.field == column and "unknown column" in error.message
    assert hint in error.message


def test_an_unknown_column_names_the_first_row_carrying_it(tmp_path):
    error = load_error(tmp_path, [{"prompt": "p", "completion": "c"}, {"prompt": "q", "completion": "d", "scor": 3}])
    assert (error.row, error.field) == (2, "scor") and "Did you mean 'score'?" in error.message


def test_columns_the_schemas_and_the_generators_carry_are_accepted(tmp_path):
    canonical = {"prompt": "p", "completion": "c", "judgment": "j", "score": 2, "id": "a", "refinement": "r"}
    reference = {"id": 0, "instruction": "i", "input": "x", "output": "o", "judgment": None, "score": 3}
    evaluated = {"instruction": "i", "output": "o", "generator": "m", "dataset": "d",
                 "prompt": [{"role": "user", "content": "i"}]}  # `cutalign eval` outputs, AlpacaEval references
    for number, row in enumerate((canonical, reference, evaluated)):
        assert len(load_judgments(write_jsonl(tmp_path / f"{number}.jsonl", [row]))) == 1
    assert len(load_judgments(datasets.Dataset.from_list([canonical]))) == 1


def test_unknown_columns_can_be_reported_without_refusing(tmp_path, caplog):
    path = write_jsonl(tmp_path / "d.jsonl", [{"prompt": "p", "completion": "c", "seed": 3}])
    with caplog.at_level(logging.WARNING, logger="cutalign.data"):
        loaded = read_judgments(path, unknown_columns="warn")
    assert len(loaded.dataset) == 1 and loaded.unknown_columns == ["seed"]
    assert "unknown column" in caplog.text and "'seed'" in caplog.text
    with pytest.raises(ValueError, match="unknown_columns must be"):
        read_judgments(path, unknown_columns="ignore")


# --- 4. lone surrogates ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("row", "field"),
    [
        ('{"prompt": "p", "completion": "bad \\ud800 text"}', "completion"),
        ('{"prompt": "\\udfff", "completion": "c"}', "prompt"),
        ('{"prompt": [{"role": "user", "content": "\\ud800"}], "completion": "c"}', "prompt"),
        ('{"prompt": "p", "completion": "c", "judgment": "\\ud83d"}', "judgment"),
        ('{"prompt": "p", "completion": "c", "id": "\\ud800"}', "id"),
        ('{"prompt": "p", "completion": "c", "refinement": "\\ud800"}', "refinement"),
        ('{"instruction": "i", "input": "\\ud800", "output": "o"}', "input"),
        ('{"instruction": "i", "output": "\\ud800"}', "output"),
    ],
)
def test_a_lone_surrogate_names_file_row_and_field(tmp_path, row, field):
    path = tmp_path / "d.jsonl"
    path.write_text('{"prompt": "ok", "completion": "ok"}\n' + row + "\n", encoding="utf-8")
    if '"instruction"' in row:
        path.write_text('{"instruction": "ok", "output": "ok"}\n' + row + "\n", encoding="utf-8")
    with pytest.raises(DataError) as info:
        load_judgments(path)
    assert (info.value.file, info.value.row, info.value.field) == (str(path), 2, field)
    assert "lone surrogate" in info.value.message


def test_a_paired_surrogate_escape_is_ordinary_text(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"prompt": "p", "completion": "smile \\ud83d\\ude00"}\n', encoding="utf-8")
    assert load_judgments(path)["completion"] == ["smile \U0001f600"]


# --- 5. the missing field of a reference row -------------------------------------------------------------------


def test_a_reference_row_without_output_names_output(tmp_path):
    path = tmp_path / "ref.json"
    path.write_text(json.dumps([{"id": 0, "instruction": "i", "input": "", "judgment": None}]), encoding="utf-8")
    with pytest.raises(DataError) as info:
        load_judgments(path)
    assert str(info.value) == f"{path}, row 1, field 'output': is missing"

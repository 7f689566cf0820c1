"""Tests for cutalign.data: the example schema, the loaders and their errors, and positive down-sampling."""

import json
import logging
import pickle
import random
from pathlib import Path

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import write_jsonl
from cutalign.data import (
    DataError,
    count_examples,
    downsample_positives,
    is_negative,
    load_judgments,
    validate_example,
    validate_reference_example,
)

REAL_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "cut-online"


@pytest.fixture(autouse=True)
def _quiet(quiet_datasets):
    yield


def canonical_rows(n=4):
    """Alternating negatives and positives, with a score on every third row."""
    rows = []
    for i in range(n):
        row = {"prompt": f"question {i}", "completion": f"answer {i}", "judgment": f"wrong {i}" if i % 2 else None}
        if i % 3 == 0:
            row["score"] = float(i)
        rows.append(row)
    return rows


# --- DataError ----------------------------------------------------------------------------------------------


def test_data_error_message_names_file_row_and_field():
    error = DataError("is empty", file="data.jsonl", row=3, field="completion")
    assert str(error) == "data.jsonl, row 3, field 'completion': is empty"
    assert (error.file, error.row, error.field, error.message) == ("data.jsonl", 3, "completion", "is empty")
    assert isinstance(error, ValueError)


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, "bad"),
        ({"file": Path("a/b.csv")}, "a/b.csv: bad"),
        ({"row": 7}, "row 7: bad"),
        ({"field": "score"}, "field 'score': bad"),
        ({"file": "x.json", "field": "id"}, "x.json, field 'id': bad"),
    ],
)
def test_data_error_omits_missing_parts(kwargs, expected):
    assert str(DataError("bad", **kwargs)) == expected


def test_data_error_survives_pickling():
    error = pickle.loads(pickle.dumps(DataError("is empty", file="f.jsonl", row=2, field="prompt")))
    assert (error.file, error.row, error.field) == ("f.jsonl", 2, "prompt")
    assert str(error) == "f.jsonl, row 2, field 'prompt': is empty"


# --- validate_example ---------------------------------------------------------------------------------------


def test_validate_example_returns_only_canonical_keys():
    raw = {"prompt": "p", "completion": "c", "judgment": "too short", "score": "3.5", "id": 12, "extra": [1, 2]}
    expected = {"prompt": "p", "completion": "c", "judgment": "too short", "score": 3.5, "id": "12"}
    assert validate_example(raw) == expected


def test_validate_example_defaults_optional_fields_to_none():
    assert validate_example({"prompt": "p", "completion": "c"}) == {
        "prompt": "p", "completion": "c", "judgment": None, "score": None, "id": None,
    }


def test_validate_example_keeps_refinement_only_when_present():
    assert validate_example({"prompt": "p", "completion": "c", "refinement": "better"})["refinement"] == "better"
    assert validate_example({"prompt": "p", "completion": "c", "refinement": None})["refinement"] is None
    assert "refinement" not in validate_example({"prompt": "p", "completion": "c"})


@pytest.mark.parametrize("judgment", ["", "   ", "\n\t"])
def test_blank_judgment_becomes_none(judgment):
    example = validate_example({"prompt": "p", "completion": "c", "judgment": judgment})
    assert example["judgment"] is None
    assert not is_negative(example)


@pytest.mark.parametrize(("score", "negative"), [(6.99, True), (7, False), (7.0, False), ("9", False), (10, False)])
def test_score_at_or_above_threshold_is_positive(score, negative):
    example = validate_example({"prompt": "p", "completion": "c", "judgment": "meh", "score": score})
    assert is_negative(example) is negative
    assert example["judgment"] == ("meh" if negative else None)
    assert example["score"] == float(score)


def test_positive_score_threshold_is_configurable():
    raw = {"prompt": "p", "completion": "c", "judgment": "meh", "score": 5}
    assert validate_example(raw, positive_score=5)["judgment"] is None
    assert validate_example(raw, positive_score=5.5)["judgment"] == "meh"


def test_conversational_prompt_keeps_role_and_content_only():
    prompt = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi", "name": "bob"}]
    example = validate_example({"prompt": prompt, "completion": "hello"})
    assert example["prompt"] == [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]


@pytest.mark.parametrize(
    ("raw", "field", "message"),
    [
        ({"completion": "c"}, "prompt", "is missing"),
        ({"prompt": "p"}, "completion", "is missing"),
        ({"prompt": 3, "completion": "c"}, "prompt", "must be a string or a list of messages, got int"),
        ({"prompt": "  ", "completion": "c"}, "prompt", "is empty"),
        ({"prompt": [], "completion": "c"}, "prompt", "is an empty list of messages"),
        (
            {"prompt": ["hi"], "completion": "c"},
            "prompt",
            "message 1 must be an object with 'role' and 'content', got str",
        ),
        (
            {"prompt": [{"role": "user", "content": "a"}, {"role": "user"}], "completion": "c"},
            "prompt",
            "message 2: 'content' must be a string, got null",
        ),
        (
            {"prompt": [{"role": 1, "content": "a"}], "completion": "c"},
            "prompt",
            "message 1: 'role' must be a string, got int",
        ),
        ({"prompt": "p", "completion": ["c"]}, "completion", "must be a string, got list"),
        ({"prompt": "p", "completion": " \n "}, "completion", "is empty"),
        ({"prompt": "p", "completion": None}, "completion", "is empty"),
        ({"prompt": "p", "completion": "c", "judgment": 4}, "judgment", "must be a string or null, got int"),
        ({"prompt": "p", "completion": "c", "score": "high"}, "score", "is not a number: 'high'"),
        ({"prompt": "p", "completion": "c", "score": float("nan")}, "score", "is NaN"),
        ({"prompt": "p", "completion": "c", "score": "nan"}, "score", "is NaN"),
        ({"prompt": "p", "completion": "c", "score": True}, "score", "must be a number, got bool"),
        ({"prompt": "p", "completion": "c", "id": 1.5}, "id", "must be a string or an integer, got float"),
        ({"prompt": "p", "completion": "c", "refinement": 2}, "refinement", "must be a string or null, got int"),
    ],
)
def test_validate_example_errors(raw, field, message):
    with pytest.raises(DataError) as info:
        validate_example(raw, file="data.jsonl", row=3)
    assert (info.value.file, info.value.row, info.value.field, info.value.message) == ("data.jsonl", 3, field, message)
    assert str(info.value) == f"data.jsonl, row 3, field '{field}': {message}"


def test_validate_example_rejects_non_object():
    with pytest.raises(DataError, match=r"^d.json, row 5: must be an object, got list$"):
        validate_example(["prompt", "completion"], file="d.json", row=5)


# --- reference rows -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "prompt"),
    [
        ({"input": "the text"}, "Summarise.\nthe text"),
        ({"input": ""}, "Summarise."),
        ({"input": None}, "Summarise."),
        ({}, "Summarise."),
    ],
)
def test_reference_input_is_appended_after_a_newline(extra, prompt):
    raw = {"instruction": "Summarise.", "output": "Short.", "judgment": None, "id": 4, **extra}
    example = validate_reference_example(raw)
    assert example == {"prompt": prompt, "completion": "Short.", "judgment": None, "score": None, "id": "4"}


def test_reference_score_at_or_above_7_is_positive_whatever_the_judgment():
    raw = {"instruction": "i", "input": "", "output": "o", "judgment": "could be better"}
    assert validate_reference_example({**raw, "score": 7})["judgment"] is None
    assert validate_reference_example({**raw, "score": 6})["judgment"] == "could be better"


@pytest.mark.parametrize(
    ("raw", "field", "message"),
    [
        ({"output": "o"}, "instruction", "is missing"),
        ({"instruction": "i"}, "output", "is missing"),
        ({"instruction": "i", "output": ""}, "output", "is empty"),
        ({"instruction": "", "input": "", "output": "o"}, "instruction", "is empty"),
        ({"instruction": 5, "output": "o"}, "instruction", "must be a string, got int"),
        ({"instruction": "i", "input": 5, "output": "o"}, "input", "must be a string or null, got int"),
        ({"instruction": "i", "output": "o", "score": "x"}, "score", "is not a number: 'x'"),
    ],
)
def test_reference_errors_name_reference_columns(raw, field, message):
    with pytest.raises(DataError) as info:
        validate_reference_example(raw, file="ref.json", row=2)
    assert str(info.value) == f"ref.json, row 2, field '{field}': {message}"


# --- load_judgments: files ----------------------------------------------------------------------------------


def test_load_reference_json_array(tmp_path):
    rows = [
        {"id": 0, "instruction": "Add.", "input": "2+2", "output": "4", "judgment": None},
        {"id": 1, "instruction": "Name a colour.", "input": "", "output": "Dog", "judgment": "Not a colour."},
        {"id": 2, "instruction": "Rate.", "input": "", "output": "Ok", "judgment": "Vague.", "score": 8},
    ]
    path = tmp_path / "ref.json"
    path.write_text(json.dumps(rows, indent=2), encoding="utf-8")
    dataset = load_judgments(path)
    assert dataset.to_list() == [
        {"prompt": "Add.\n2+2", "completion": "4", "judgment": None, "score": None, "id": "0"},
        {"prompt": "Name a colour.", "completion": "Dog", "judgment": "Not a colour.", "score": None, "id": "1"},
        {"prompt": "Rate.", "completion": "Ok", "judgment": None, "score": 8.0, "id": "2"},
    ]
    assert count_examples(dataset) == {"positives": 2, "negatives": 1, "total": 3}


def test_dataset_schema_and_auto_ids(tmp_path):
    rows = canonical_rows(5)
    rows[2]["id"] = "custom"
    dataset = load_judgments(write_jsonl(tmp_path / "d.jsonl", rows))
    assert dataset.column_names == ["prompt", "completion", "judgment", "score", "id"]
    assert dataset.features["score"] == datasets.Value("float64")
    assert dataset.features["id"] == datasets.Value("string")
    assert dataset.features["judgment"] == datasets.Value("string")
    assert dataset.features["prompt"] == datasets.Value("string")
    assert dataset["id"][:] == ["0", "1", "custom", "3", "4"]
    assert dataset["score"][:] == [0.0, None, None, 3.0, None]


def test_jsonl_row_numbers_are_line_numbers(tmp_path):
    path = tmp_path / "d.jsonl"
    lines = [json.dumps(row) for row in canonical_rows(3)]
    path.write_text(lines[0] + "\n\n" + lines[1] + "\n" + json.dumps({"prompt": "p", "completion": ""}) + "\n")
    with pytest.raises(DataError) as info:
        load_judgments(path)
    assert str(info.value) == f"{path}, row 4, field 'completion': is empty"


def test_jsonl_blank_lines_are_not_rows_but_nothing_else_is_dropped(tmp_path):
    rows = canonical_rows(6)
    path = tmp_path / "d.jsonl"
    path.write_text("\n".join(json.dumps(row) for row in rows) + "\n\n  \n", encoding="utf-8")
    dataset = load_judgments(path)
    assert len(dataset) == len(rows)
    assert dataset["completion"][:] == [row["completion"] for row in rows]


def test_json_extension_accepts_json_lines(tmp_path):
    rows = canonical_rows(3)
    dataset = load_judgments(write_jsonl(tmp_path / "d.json", rows))
    assert dataset["prompt"][:] == [row["prompt"] for row in rows]


@pytest.mark.parametrize("suffix", ["jsonl", "csv", "parquet"])
def test_round_trip_through_files(tmp_path, suffix):
    original = load_judgments(canonical_rows(6))
    path = tmp_path / f"d.{suffix}"
    getattr(original, f"to_{'json' if suffix == 'jsonl' else suffix}")(str(path))
    assert load_judgments(path).to_list() == original.to_list()


@pytest.mark.parametrize("suffix", ["jsonl", "parquet"])
def test_round_trip_conversational(tmp_path, suffix):
    rows = [
        {"prompt": [{"role": "user", "content": f"q{i}"}], "completion": f"a{i}", "judgment": "bad" if i else None}
        for i in range(3)
    ]
    original = load_judgments(rows)
    string = datasets.Value("string")
    assert original.features["prompt"] == datasets.List({"role": string, "content": string})
    path = tmp_path / f"d.{suffix}"
    getattr(original, f"to_{'json' if suffix == 'jsonl' else suffix}")(str(path))
    assert load_judgments(path).to_list() == original.to_list()


def test_csv_empty_cells_are_null_and_scores_are_floats(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text('prompt,completion,judgment,score,id\nq1,a1,,,\nq2,a2,"too long,\nand rude",3,x\nq3,a3,bad,7.5,\n')
    assert load_judgments(path).to_list() == [
        {"prompt": "q1", "completion": "a1", "judgment": None, "score": None, "id": "0"},
        {"prompt": "q2", "completion": "a2", "judgment": "too long,\nand rude", "score": 3.0, "id": "x"},
        {"prompt": "q3", "completion": "a3", "judgment": None, "score": 7.5, "id": "2"},
    ]


def test_csv_row_numbers_count_the_header_as_line_1(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text('prompt,completion\nq1,a1\nq2,"two\nlines"\nq3,\n')
    with pytest.raises(DataError) as info:
        load_judgments(path)
    assert (info.value.row, info.value.field, info.value.message) == (5, "completion", "is empty")


def test_csv_wrong_number_of_cells(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("prompt,completion\nq1,a1\nq2,a2,extra\n")
    with pytest.raises(DataError, match=r", row 3: has 3 cells but the header has 2$"):
        load_judgments(path)


def test_csv_reference_layout(tmp_path):
    path = tmp_path / "ref.csv"
    path.write_text("instruction,input,output,judgment,score\nTranslate.,bonjour,hello,,\nAdd.,,5,Wrong.,2\n")
    assert load_judgments(path).to_list() == [
        {"prompt": "Translate.\nbonjour", "completion": "hello", "judgment": None, "score": None, "id": "0"},
        {"prompt": "Add.", "completion": "5", "judgment": "Wrong.", "score": 2.0, "id": "1"},
    ]


def test_file_format_overrides_extension(tmp_path):
    path = write_jsonl(tmp_path / "data.txt", canonical_rows(2))
    with pytest.raises(DataError, match=r"data.txt: unknown file extension '.txt'; pass file_format="):
        load_judgments(path)
    assert len(load_judgments(path, file_format="jsonl")) == 2
    assert len(load_judgments(str(path), file_format="jsonl")) == 2
    with pytest.raises(ValueError, match="unknown file_format 'yaml'"):
        load_judgments(path, file_format="yaml")


def test_format_names_what_the_rows_hold_and_points_a_file_type_at_file_format(tmp_path):
    path = write_jsonl(tmp_path / "data.jsonl", canonical_rows(2))
    assert len(load_judgments(path, format="auto")) == 2
    with pytest.raises(ValueError) as info:
        load_judgments(path, format="jsonl")
    assert str(info.value) == (
        "unknown format 'jsonl'; expected one of auto, ultrafeedback, shepherd, summarization "
        "('jsonl' is a file type: pass file_format='jsonl')"
    )
    with pytest.raises(ValueError, match="^unknown format 'alpaca'; expected one of auto, ultrafeedback"):
        load_judgments(path, format="alpaca")


def test_refinement_column_is_filled_for_all_rows():
    rows = canonical_rows(3)
    rows[1]["refinement"] = "a better answer"
    dataset = load_judgments(rows)
    assert dataset["refinement"][:] == [None, "a better answer", None]


# --- load_judgments: file errors ----------------------------------------------------------------------------


def test_missing_file(tmp_path):
    path = tmp_path / "nope.jsonl"
    with pytest.raises(DataError) as info:
        load_judgments(path)
    assert str(info.value) == f"{path}: file not found"


@pytest.mark.parametrize(
    ("name", "content"), [("e.jsonl", ""), ("e.json", " \n"), ("e.json", "[]"), ("e.csv", "prompt,completion\n")]
)
def test_empty_files(tmp_path, name, content):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(DataError) as info:
        load_judgments(path)
    assert str(info.value) == f"{path}: holds no examples"


def test_invalid_json_line(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"prompt": "p", "completion": "c"}\n{"prompt": "p", "completion": }\n')
    with pytest.raises(DataError) as info:
        load_judgments(path)
    assert info.value.row == 2 and info.value.file == str(path)
    assert str(info.value) == f"{path}, row 2: invalid JSON at column 31: Expecting value"


def test_invalid_json_array(tmp_path):
    path = tmp_path / "d.json"
    path.write_text('[\n  {"prompt": "p", "completion": "c"},\n  {"prompt": "p" "completion": "c"}\n]')
    with pytest.raises(DataError) as info:
        load_judgments(path)
    assert str(info.value) == f"{path}: invalid JSON at line 3, column 18: Expecting ',' delimiter"


def test_bad_utf8_in_json_lines_names_the_line(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_bytes(b'{"prompt": "p", "completion": "c"}\n{"prompt": "p\xff", "completion": "c"}\n')
    with pytest.raises(DataError) as info:
        load_judgments(path)
    assert info.value.row == 2
    assert str(info.value) == f"{path}, row 2: is not valid UTF-8 (invalid start byte) at byte 13 of the line"


def test_bad_utf8_in_json_array_names_the_byte_offset(tmp_path):
    path = tmp_path / "d.json"
    data = b'[{"prompt": "p", "completion": "c"},\n {"prompt": "\xc3(", "completion": "c"}]'
    path.write_bytes(data)
    with pytest.raises(DataError) as info:
        load_judgments(path)
    offset = data.index(b"\xc3")
    assert str(info.value) == f"{path}: is not valid UTF-8 (invalid continuation byte) at byte offset {offset}, line 2"


def test_bad_utf8_in_csv_names_the_line(tmp_path):
    path = tmp_path / "d.csv"
    path.write_bytes(b"prompt,completion\nq1,a1\nq2,a1\nq3,\xe9t\xe9\n")
    with pytest.raises(DataError) as info:
        load_judgments(path)
    assert (info.value.file, info.value.row) == (str(path), 4)
    assert "is not valid UTF-8" in info.value.message


def test_utf8_bom_is_accepted(tmp_path):
    path = tmp_path / "d.csv"
    path.write_bytes("prompt,completion\nq\u00e9,a\n".encode("utf-8-sig"))
    assert load_judgments(path)["prompt"][:] == ["q\u00e9"]


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("d.jsonl", '{"prompt": "p", "completion": "c"}\n[1, 2]\n'),
        ("d.json", '[{"prompt": "p", "completion": "c"}, 3, {}]'),
    ],
)
def test_json_value_that_is_not_an_object(tmp_path, name, content):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(DataError) as info:
        load_judgments(path)
    assert info.value.row == 2
    assert info.value.message.startswith("must be an object, got ")


def test_json_file_holding_a_single_object_is_not_an_array(tmp_path):
    path = tmp_path / "d.json"
    path.write_text('{"prompt": "p",\n "completion": "c"}')
    with pytest.raises(DataError) as info:
        load_judgments(path)
    assert info.value.row is None and info.value.message.startswith("holds a single JSON object, not rows")


def test_unreadable_parquet(tmp_path):
    path = tmp_path / "d.parquet"
    path.write_bytes(b"not parquet at all")
    with pytest.raises(DataError, match=r"d.parquet: cannot be read as Parquet: "):
        load_judgments(path)


def test_parquet_row_numbers_are_positions(tmp_path):
    path = tmp_path / "d.parquet"
    pq.write_table(pa.table({"prompt": ["a", "b", "c"], "completion": ["x", "y", None]}), path)
    with pytest.raises(DataError) as info:
        load_judgments(path)
    assert str(info.value) == f"{path}, row 3, field 'completion': is empty"


# --- load_judgments: datasets and lists ---------------------------------------------------------------------


def test_mixed_prompt_kinds_name_the_first_row_that_differs():
    rows = canonical_rows(4)
    rows[2]["prompt"] = [{"role": "user", "content": "hi"}]
    rows[3]["prompt"] = [{"role": "user", "content": "ho"}]
    with pytest.raises(DataError) as info:
        load_judgments(rows)
    assert str(info.value) == (
        "row 3, field 'prompt': is a list of messages but the prompt of row 1 is a string; "
        "all prompts must be of one kind"
    )


def test_mixed_prompt_kinds_in_a_file_name_the_file_and_line(tmp_path):
    rows = [{"prompt": [{"role": "user", "content": "hi"}], "completion": "c"}, {"prompt": "plain", "completion": "c"}]
    path = write_jsonl(tmp_path / "d.jsonl", rows)
    with pytest.raises(DataError) as info:
        load_judgments(path)
    assert (info.value.file, info.value.row, info.value.field) == (str(path), 2, "prompt")
    assert info.value.message.startswith("is a string but the prompt of row 1 is a list of messages")


def test_load_from_dataset_and_reload_is_identity():
    rows = canonical_rows(5)
    from_list = load_judgments(rows)
    source = datasets.Dataset.from_list([{**row, "score": row.get("score")} for row in rows])
    from_dataset = load_judgments(source)
    assert from_dataset.to_list() == from_list.to_list()
    assert load_judgments(from_list).to_list() == from_list.to_list()


def test_load_reference_rows_from_a_list():
    dataset = load_judgments([{"instruction": "i", "input": "x", "output": "o", "judgment": "j"}])
    assert dataset.to_list() == [{"prompt": "i\nx", "completion": "o", "judgment": "j", "score": None, "id": "0"}]


def test_row_errors_in_lists_are_1_based():
    rows = canonical_rows(3)
    rows[1]["score"] = float("nan")
    with pytest.raises(DataError, match=r"^row 2, field 'score': is NaN$"):
        load_judgments(rows)


def test_bad_sources():
    with pytest.raises(DataError, match="holds no examples"):
        load_judgments([])
    with pytest.raises(TypeError, match="got dict"):
        load_judgments({"prompt": ["p"], "completion": ["c"]})
    with pytest.raises(ValueError, match="file_format= only applies"):
        load_judgments(canonical_rows(1), file_format="json")


# --- counting and down-sampling -----------------------------------------------------------------------------


def make_dataset(negatives, positives):
    """Negatives scattered among positives at fixed random positions."""
    total = negatives + positives
    negative_indices = set(random.Random(0).sample(range(total), negatives))
    rows = [
        {"prompt": f"q{i}", "completion": f"a{i}", "judgment": f"bad {i}" if i in negative_indices else None}
        for i in range(total)
    ]
    return load_judgments(rows)


def test_count_examples_matches_a_naive_count():
    dataset = make_dataset(7, 30)
    naive_negatives = sum(1 for row in dataset.to_list() if row["judgment"] is not None)
    assert count_examples(dataset) == {"positives": 37 - naive_negatives, "negatives": naive_negatives, "total": 37}
    assert naive_negatives == 7


@pytest.mark.parametrize(
    ("ratio", "expected_positives"), [(0.25, 5), (0.0, 0), (0.5, 10), (1.0, 20), (2.0, 40), (10.0, 60)]
)
def test_downsample_counts(ratio, expected_positives):
    dataset = make_dataset(20, 60)
    kept = downsample_positives(dataset, ratio)
    assert count_examples(kept) == {"positives": expected_positives, "negatives": 20, "total": 20 + expected_positives}


def test_downsample_keeps_every_negative_and_the_original_order():
    dataset = make_dataset(12, 50)
    kept = downsample_positives(dataset, 0.25, seed=3)
    original_ids = dataset["id"][:]
    kept_ids = kept["id"][:]
    positions = [original_ids.index(example_id) for example_id in kept_ids]
    assert positions == sorted(positions)
    assert {row["id"] for row in dataset.to_list() if row["judgment"]} <= set(kept_ids)
    for row in kept.to_list():
        assert row == dataset[original_ids.index(row["id"])]


def test_downsample_is_deterministic_under_seed():
    dataset = make_dataset(20, 200)
    first = downsample_positives(dataset, 0.25, seed=42)["id"][:]
    assert downsample_positives(dataset, 0.25, seed=42)["id"][:] == first
    assert downsample_positives(dataset, 0.25)["id"][:] == first
    assert downsample_positives(dataset, 0.25, seed=7)["id"][:] != first


def test_negative_ratio_turns_downsampling_off():
    dataset = make_dataset(3, 40)
    assert downsample_positives(dataset, -1) is dataset


def test_downsample_logs_what_it_dropped(caplog):
    dataset = make_dataset(8, 30)
    with caplog.at_level(logging.INFO, logger="cutalign.data"):
        downsample_positives(dataset, 0.25)
    messages = [record.getMessage() for record in caplog.records if record.name == "cutalign.data"]
    assert messages == [
        "Down-sampling positives (ratio 0.25): kept 2 of 30 positives, dropped 28, kept all 8 negatives"
    ]


# --- real data ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["iter1.json", "iter2.json"])
@pytest.mark.skipif(not REAL_DATA.exists(), reason="shared CUT data not available")
def test_real_reference_files(name):
    path = REAL_DATA / name
    everything = json.loads(path.read_text(encoding="utf-8"))
    rows = [row for row in everything if row["judgment"] != "$ERROR$"]  # failed judgings are left out

    def scored_positive(row):
        return row.get("score") is not None and float(row["score"]) >= 7

    naive_negatives = sum(1 for row in rows if row["judgment"] is not None and not scored_positive(row))
    dataset = load_judgments(path)
    counts = count_examples(dataset)
    assert len(everything) == 1000
    assert counts["positives"] + counts["negatives"] == counts["total"] == len(rows)
    assert counts["negatives"] == naive_negatives
    assert 0 < counts["negatives"] < 500
    first = rows[0]
    expected_prompt = first["instruction"] + ("\n" + first["input"] if first["input"] else "")
    assert dataset[0]["prompt"] == expected_prompt and dataset[0]["id"] == str(first["id"])
    with_input = next(i for i, row in enumerate(rows) if row["input"])
    assert dataset[with_input]["prompt"] == rows[with_input]["instruction"] + "\n" + rows[with_input]["input"]
    kept = count_examples(downsample_positives(dataset, 0.25))
    kept_positives = int(0.25 * naive_negatives)
    assert kept == {
        "negatives": naive_negatives, "positives": kept_positives, "total": naive_negatives + kept_positives
    }

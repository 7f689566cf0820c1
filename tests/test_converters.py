"""Converters: small fixture files written here, checked against what each source's rules say, through the
file converters and through ``load_judgments(format=...)`` on files, saved datasets and lists."""

import json
import logging

import datasets
import pytest

from cutalign.io import write_jsonl
from cutalign.data import DataError, load_judgments, read_judgments
from cutalign.data.converters import (
    convert_shepherd,
    convert_summarization,
    convert_ultrafeedback,
    ultrafeedback_pairs,
)


def _write(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def _shepherd(tmp_path, n=3, break_row=None):
    feedback, raw = [], []
    for i in range(n):
        feedback.append({"question": f"Q{i}?", "answer": f"A{i}.", "feedback": f"A{i} is wrong."})
        raw.append({"metadata": {"context": f"Q{i}?", "output_candidate": f"A{i}.", "output_correct": f"C{i}."}})
    if break_row is not None:
        raw[break_row]["metadata"]["output_candidate"] = "something else"
    return _write(tmp_path / "feedback.jsonl", feedback), _write(tmp_path / "raw.jsonl", raw)


def test_shepherd_rows_are_negatives_with_refinements(tmp_path):
    result = convert_shepherd(*_shepherd(tmp_path))
    assert [r["completion"] for r in result.rows] == ["A0.", "A1.", "A2."]
    assert [r["judgment"] for r in result.rows] == ["A0 is wrong.", "A1 is wrong.", "A2 is wrong."]
    assert [r["refinement"] for r in result.rows] == ["C0.", "C1.", "C2."]
    assert result.counts == {"negative": 3}
    out = tmp_path / "out.jsonl"
    write_jsonl(out, result.rows)
    loaded = load_judgments(out)
    assert loaded["refinement"] == ["C0.", "C1.", "C2."] and loaded["prompt"][1] == "Q1?"


def test_shepherd_reports_first_mismatch(tmp_path):
    feedback, raw = _shepherd(tmp_path, n=4, break_row=2)
    with pytest.raises(DataError) as error:
        convert_shepherd(feedback, raw)
    assert error.value.row == 3 and error.value.field == "answer"
    assert "metadata.output_candidate" in str(error.value) and "'something else'" in str(error.value)


def test_shepherd_length_mismatch_and_missing_field(tmp_path):
    feedback, raw = _shepherd(tmp_path)
    raw.write_text(raw.read_text().splitlines()[0] + "\n")
    with pytest.raises(DataError, match="has 3 rows but .* has 1"):
        convert_shepherd(feedback, raw)
    feedback, raw = _shepherd(tmp_path)
    _write(raw, [{"metadata": {"context": "Q0?"}}] * 3)
    with pytest.raises(DataError) as error:
        convert_shepherd(feedback, raw)
    assert error.value.field == "metadata.output_candidate" and error.value.row == 1


def _summary_row(ratings):
    answers = []
    for i, critiques in enumerate(ratings):
        answers.append({"answer": f"answer {i}", "feedback": {"rating": 7 if not critiques else 3,
                                                              "critiques": critiques}})
    return answers


def test_summarization_takes_top_ranked_answer(tmp_path):
    critique = [{"text": "Misses the date.", "refinement": "r1"}, {"text": "Too long.", "refinement": "r2"}]
    rows = [
        {"data": {"passage": {"text": "P1"}, "questions": [
            {"question": "Summarize.", "rankings": [1, 3, 2], "answers": _summary_row([[], critique, []])},
            {"question": "Who?", "rankings": [2, 1], "answers": _summary_row([[], critique])},
        ]}},
        {"data": {"passage": {"text": "P2"}, "questions": [
            {"question": "Why?", "rankings": [1], "answers": [{"answer": "x", "feedback": {"skip": True}}]},
        ]}},
    ]
    result = convert_summarization(_write(tmp_path / "s.jsonl", rows))
    assert [r["completion"] for r in result.rows] == ["answer 1", "answer 0"]
    assert result.rows[0]["prompt"] == "P1\nSummarize."
    assert result.rows[0]["judgment"] == "Misses the date. Too long." and result.rows[0]["refinement"] == "r2"
    assert result.rows[1]["judgment"] is None
    assert result.counts == {"negative": 1, "positive": 1, "skipped: feedback.skip": 1}


def test_summarization_bad_rankings(tmp_path):
    rows = [{"data": {"passage": {"text": "P"}, "questions": [
        {"question": "Q", "rankings": [1], "answers": _summary_row([[], []])}]}}]
    with pytest.raises(DataError) as error:
        convert_summarization(_write(tmp_path / "s.jsonl", rows))
    assert error.value.field == "data.questions[0].rankings" and error.value.row == 1


def _ultra(tmp_path):
    rows = [
        {"instruction": "Say hi.", "completions": [
            {"response": "Hi!", "critique": "Fine.", "overall_score": 8},
            {"response": "Go away.", "critique": "Rude.", "overall_score": 2},
            {"response": "Hello.", "critique": "Ok but flat.", "overall_score": 6.5},
        ]},
        {"instruction": "Count to 2.", "completions": [
            {"response": "1 2", "critique": "Right.", "overall_score": 7},
            {"response": "1, 2", "critique": "Right.", "overall_score": 7},
        ]},
    ]
    return _write(tmp_path / "u.jsonl", rows)


def test_ultrafeedback_cut_and_pairs(tmp_path):
    path = _ultra(tmp_path)
    result = convert_ultrafeedback(path)
    assert [r["judgment"] for r in result.rows] == [None, "Rude.", "Ok but flat.", None, None]
    assert result.counts == {"positive": 3, "negative": 2}
    stricter = convert_ultrafeedback(path, positive_score=9)
    assert stricter.counts == {"negative": 5}
    assert stricter.rows[0]["judgment"] == "Fine."

    pairs = ultrafeedback_pairs(path)
    assert pairs.rows == [{"prompt": "Say hi.", "chosen": "Hi!", "rejected": "Go away.", "score_chosen": 8.0,
                           "score_rejected": 2.0, "id": "ultrafeedback-1"}]
    assert pairs.counts == {"pair": 1, "no pair: fewer than two distinct scores": 1}


def test_ultrafeedback_bad_score_names_field(tmp_path):
    path = _write(tmp_path / "u.jsonl", [{"instruction": "x", "completions": [{"response": "y", "overall_score": "a"}]}])
    with pytest.raises(DataError) as error:
        convert_ultrafeedback(path)
    assert error.value.field == "completions[0].overall_score" and error.value.row == 1
    path = _write(tmp_path / "u.jsonl", [{"instruction": "x", "completions": [{"response": "y", "overall_score": 1}]}])
    with pytest.raises(DataError, match="a negative needs a critique"):
        convert_ultrafeedback(path)


# --- format=: the converters behind load_judgments, on rows from any source -------------------------------------


def _ultra_rows():
    """Two UltraFeedback rows with the extra columns the public dataset carries, and a row without completions."""
    return [
        {"source": "s", "instruction": "Say hi.", "models": ["a", "b"], "completions": [
            {"model": "a", "response": "Hi!", "critique": "Fine.", "overall_score": 8.0},
            {"model": "b", "response": "Go away.", "critique": "Rude.", "overall_score": 2.0},
        ]},
        {"source": "s", "instruction": "Nothing.", "models": [], "completions": []},
        {"source": "s", "instruction": "Count to 2.", "models": ["c"], "completions": [
            {"model": "c", "response": "1 3", "critique": "Skips 2.", "overall_score": 6.5},
        ]},
    ]


ULTRA_EXPECTED = [
    {"prompt": "Say hi.", "completion": "Hi!", "judgment": None, "score": 8.0, "id": "ultrafeedback-1-0"},
    {"prompt": "Say hi.", "completion": "Go away.", "judgment": "Rude.", "score": 2.0, "id": "ultrafeedback-1-1"},
    {"prompt": "Count to 2.", "completion": "1 3", "judgment": "Skips 2.", "score": 6.5, "id": "ultrafeedback-3-0"},
]


def test_format_ultrafeedback_from_jsonl_parquet_and_a_saved_dataset(tmp_path):
    jsonl = _write(tmp_path / "u.jsonl", _ultra_rows())
    datasets.Dataset.from_list(_ultra_rows()).to_parquet(str(tmp_path / "u.parquet"))
    datasets.DatasetDict(train=datasets.Dataset.from_list(_ultra_rows())).save_to_disk(str(tmp_path / "saved"))
    for source in (jsonl, tmp_path / "u.parquet", tmp_path / "saved", _ultra_rows()):
        loaded = read_judgments(source, format="ultrafeedback")
        assert loaded.dataset.to_list() == ULTRA_EXPECTED, source
        assert loaded.conversion == {"positive": 1, "negative": 2, "skipped: row without completions": 1}
    stricter = load_judgments(jsonl, format="ultrafeedback", positive_score=9)
    assert stricter["judgment"] == ["Fine.", "Rude.", "Skips 2."]
    lenient = load_judgments(jsonl, format="ultrafeedback", positive_score=6.5)
    assert lenient["judgment"] == [None, "Rude.", None]


def test_format_ultrafeedback_errors_name_the_source_row_and_field(tmp_path):
    rows = _ultra_rows()
    rows[2]["completions"][0]["overall_score"] = None
    datasets.DatasetDict(test=datasets.Dataset.from_list(rows)).save_to_disk(str(tmp_path / "saved"))
    with pytest.raises(DataError) as info:
        load_judgments(tmp_path / "saved", split="test", format="ultrafeedback")
    assert str(info.value) == (
        f"{tmp_path / 'saved'} (split 'test'), row 3, field 'completions[0].overall_score': must be int or float, "
        "got null"
    )
    rows = _ultra_rows()
    rows[0]["instruction"] = "   "  # the converter keeps it; the loader's check names the source field
    with pytest.raises(DataError) as info:
        load_judgments(rows, format="ultrafeedback")
    assert (info.value.row, info.value.field, info.value.message) == (1, "instruction", "is empty")
    rows = _ultra_rows()
    rows[2]["completions"][0]["response"] = "bad \ud800"
    with pytest.raises(DataError) as info:
        load_judgments(_write(tmp_path / "u.jsonl", rows), format="ultrafeedback")
    assert (info.value.row, info.value.field) == (3, "completions[0].response")
    assert "lone surrogate" in info.value.message


def test_format_ultrafeedback_leaves_out_a_failed_critique_by_its_source_row(caplog):
    rows = _ultra_rows()
    rows[2]["completions"][0]["critique"] = "$ERROR$"
    with caplog.at_level(logging.WARNING, logger="cutalign.data"):
        loaded = read_judgments(rows, format="ultrafeedback")
    assert loaded.failed_rows == [3] and loaded.dataset["id"] == ["ultrafeedback-1-0", "ultrafeedback-1-1"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("left out 1 of 3 converted examples" in w and "rows 3" in w for w in warnings)
    assert any("skipped: row without completions: 1" in w for w in warnings)  # what the converter skipped, too


def test_format_shepherd_reads_the_feedback_rows_from_any_source(tmp_path):
    feedback = [{"question": f"Q{i}?", "answer": f"A{i}.", "feedback": f"A{i} is wrong."} for i in range(3)]
    feedback[1]["feedback"] = " "
    path = tmp_path / "feedback.json"
    path.write_text(json.dumps(feedback))
    loaded = read_judgments(path, format="shepherd")
    assert loaded.dataset.to_list() == [
        {"prompt": "Q0?", "completion": "A0.", "judgment": "A0 is wrong.", "score": None, "id": "shepherd-1",
         "refinement": None},
        {"prompt": "Q2?", "completion": "A2.", "judgment": "A2 is wrong.", "score": None, "id": "shepherd-3",
         "refinement": None},
    ]
    assert loaded.conversion == {"negative": 2, "skipped: empty feedback": 1}
    with pytest.raises(DataError, match=r"holds no examples: the shepherd converter kept none \(0 rows written; "
                                        r"skipped: empty feedback: 1\)"):
        load_judgments([(feedback[1])], format="shepherd")


def test_format_shepherd_points_the_raw_file_at_the_feedback_file(tmp_path):
    _, raw = _shepherd(tmp_path)
    with pytest.raises(DataError) as info:
        load_judgments(raw, format="shepherd")
    assert (info.value.row, info.value.field) == (1, "question")
    assert "looks like Shepherd's raw file" in info.value.message and "convert_shepherd(feedback, raw)" in str(
        info.value)


def test_format_summarization_from_a_saved_dataset_matches_the_file_converter(tmp_path):
    critique = [{"text": "Misses the date.", "refinement": "r1"}, {"text": "Too long.", "refinement": None}]
    rows = [
        {"data": {"passage": {"text": "P1"}, "questions": [
            {"question": "Summarize.", "rankings": [1, 3, 2], "answers": _summary_row([[], critique, []])},
            {"question": "Who?", "rankings": [2, 1], "answers": _summary_row([[], critique])},
        ]}},
        {"data": {"passage": {"text": "P2"}, "questions": [
            {"question": "Why?", "rankings": [1], "answers": [{"answer": "x", "feedback": {"skip": True}}]},
        ]}},
    ]
    expected = [
        {"prompt": "P1\nSummarize.", "completion": "answer 1", "judgment": "Misses the date. Too long.",
         "score": None, "id": "summarization-1-0", "refinement": "r1"},
        {"prompt": "P1\nWho?", "completion": "answer 0", "judgment": None, "score": None, "id": "summarization-1-1",
         "refinement": None},
    ]
    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "saved"))  # Arrow fills absent keys with null
    loaded = read_judgments(tmp_path / "saved", format="summarization")
    assert loaded.dataset.to_list() == expected
    assert loaded.conversion == {"negative": 1, "positive": 1, "skipped: feedback.skip": 1}
    path = _write(tmp_path / "s.jsonl", rows)
    assert load_judgments(path, format="summarization").to_list() == expected
    assert [r["id"] for r in convert_summarization(path).rows] == ["summarization-1-0", "summarization-1-1"]


def test_format_summarization_errors_name_the_nested_field(tmp_path):
    rows = [{"data": {"passage": {"text": "P"}, "questions": [
        {"question": "Q", "rankings": [2, 1], "answers": [{"answer": "a", "feedback": {"critiques": [{"txt": "x"}]}},
                                                          {"answer": "b", "feedback": {}}]}]}}]
    with pytest.raises(DataError) as info:
        load_judgments(_write(tmp_path / "s.jsonl", rows), format="summarization")
    assert str(info.value) == (
        f"{tmp_path / 's.jsonl'}, row 1, field 'data.questions[0].answers[0].feedback.critiques[0].text': is missing"
    )


def test_format_auto_hint_names_the_format_to_use(tmp_path):
    path = _write(tmp_path / "u.jsonl", _ultra_rows())
    with pytest.raises(DataError) as info:
        load_judgments(path)
    assert info.value.field == "source" and (
        "This looks like UltraFeedback: load with format='ultrafeedback' (cutalign train --format ultrafeedback)."
        in info.value.message
    )
    assert len(load_judgments(path, format="ultrafeedback")) == 3  # and the hint is right

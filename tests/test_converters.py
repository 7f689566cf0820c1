"""Converters: small fixture files written here, checked against what each source's rules say."""

import json

import pytest

from cutalign.io import write_jsonl
from cutalign.data import DataError, load_judgments
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

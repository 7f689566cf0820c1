"""Converters from public judgment datasets into the canonical schema (see :mod:`cutalign.data.schema`).

Three sources, each read from local JSONL files (nothing is downloaded):

* :func:`convert_shepherd`: Shepherd's human critiques, two files aligned line by line: the *feedback* file
  (``question``, ``answer``, ``feedback``) and the *raw* file (``metadata.context``, ``metadata.output_candidate``,
  ``metadata.output_correct``). Every row is a negative; the corrected answer is kept as ``refinement``.
* :func:`convert_summarization`: summarization critiques, one passage per line under ``data``. For each question
  the top-ranked answer is taken (as the CUT reference does); an answer without critiques is a positive.
* :func:`convert_ultrafeedback`: rows with ``instruction`` and ``completions[]`` (``response``, ``critique``,
  ``overall_score``). A completion scoring at least ``positive_score`` is positive, the others are negatives judged
  by their critique. :func:`ultrafeedback_pairs` builds chosen/rejected pairs from the same rows, so preference
  methods see the same data.

Each converter returns a :class:`Conversion`: the examples and a count of what was kept or skipped and why. A
malformed row raises :class:`DataError` naming the file, the 1-based line and the field.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .schema import POSITIVE_SCORE, DataError


@dataclass
class Conversion:
    """Converted rows (canonical examples, or pairs) and the counts of what happened to the input."""

    rows: list[dict]
    counts: Counter = field(default_factory=Counter)

    def summary(self) -> str:
        return f"{len(self.rows)} rows written; " + ", ".join(f"{key}: {n}" for key, n in sorted(self.counts.items()))


def read_jsonl(path) -> list[tuple[int, object]]:
    """``(line number, value)`` for each non-blank line of a JSON Lines file."""
    path = Path(path)
    if not path.is_file():
        raise DataError("file not found", file=path)
    rows = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                rows.append((number, json.loads(line)))
            except json.JSONDecodeError as error:
                raise DataError(f"invalid JSON at column {error.colno}: {error.msg}", file=path, row=number) from None
    if not rows:
        raise DataError("holds no rows", file=path)
    return rows


def _get(value, dotted: str, *, file, row, kind=str, optional=False):
    """``value["a"]["b"]`` for ``dotted="a.b"``, checked to be of ``kind``; errors name the dotted field."""
    current = value
    for part in dotted.split("."):
        if not isinstance(current, dict):
            raise DataError(f"must be an object, got {type(current).__name__}", file=file, row=row, field=dotted)
        if part not in current:
            if optional:
                return None
            raise DataError("is missing", file=file, row=row, field=dotted)
        current = current[part]
    if current is None and optional:
        return None
    if not isinstance(current, kind) or isinstance(current, bool) and kind is not bool:
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise DataError(f"must be {names}, got {type(current).__name__}", file=file, row=row, field=dotted)
    return current


def convert_shepherd(feedback_path, raw_path) -> Conversion:
    """Shepherd's human critiques: every row a negative, judged by ``feedback``, with ``refinement``.

    The two files must agree row by row (``question`` = ``metadata.context``, ``answer`` =
    ``metadata.output_candidate``); the first disagreement is an error naming the row and both fields.
    """
    feedback_rows, raw_rows = read_jsonl(feedback_path), read_jsonl(raw_path)
    if len(feedback_rows) != len(raw_rows):
        raise DataError(
            f"has {len(feedback_rows)} rows but {raw_path} has {len(raw_rows)}; the files must align line by line",
            file=feedback_path,
        )
    result = Conversion([])
    for position, ((line, feedback), (raw_line, raw)) in enumerate(zip(feedback_rows, raw_rows), start=1):
        question = _get(feedback, "question", file=feedback_path, row=line)
        answer = _get(feedback, "answer", file=feedback_path, row=line)
        judgment = _get(feedback, "feedback", file=feedback_path, row=line)
        context = _get(raw, "metadata.context", file=raw_path, row=raw_line)
        candidate = _get(raw, "metadata.output_candidate", file=raw_path, row=raw_line)
        correct = _get(raw, "metadata.output_correct", file=raw_path, row=raw_line, optional=True)
        for mine, theirs, name, other in ((question, context, "question", "metadata.context"),
                                          (answer, candidate, "answer", "metadata.output_candidate")):
            if mine != theirs:
                raise DataError(
                    f"does not match {other} of {raw_path} row {raw_line} (row {position} of each file): "
                    f"{mine[:60]!r} vs {theirs[:60]!r}",
                    file=feedback_path, row=line, field=name,
                )
        if not answer.strip():
            result.counts["skipped: empty answer"] += 1
            continue
        if not judgment.strip():
            result.counts["skipped: empty feedback"] += 1
            continue
        result.rows.append({"prompt": question, "completion": answer, "judgment": judgment,
                            "refinement": correct or None, "id": f"shepherd-{position}"})
        result.counts["negative"] += 1
    return result


def convert_summarization(path) -> Conversion:
    """Summarization critiques: per question, the top-ranked answer; no critiques = positive.

    The prompt is the passage, a newline, then the question. A negative's judgment joins the texts of its
    critiques; its refinement is the last critique's non-empty refinement. Answers marked ``skip`` or empty are
    skipped and counted.
    """
    result = Conversion([])
    for line, value in read_jsonl(path):
        data = _get(value, "data", file=path, row=line, kind=dict)
        passage = _get(data, "passage.text", file=path, row=line)
        questions = _get(data, "questions", file=path, row=line, kind=list)
        for q, question in enumerate(questions):
            where = f"data.questions[{q}]"
            if not isinstance(question, dict):
                raise DataError("must be an object", file=path, row=line, field=where)
            text = _get(question, "question", file=path, row=line)
            rankings = _get(question, "rankings", file=path, row=line, kind=list)
            answers = _get(question, "answers", file=path, row=line, kind=list)
            if not answers:
                result.counts["skipped: question without answers"] += 1
                continue
            if len(rankings) != len(answers) or not all(isinstance(r, (int, float)) for r in rankings):
                raise DataError(f"must hold one number per answer ({len(answers)}), got {rankings!r}",
                                file=path, row=line, field=f"{where}.rankings")
            best = rankings.index(max(rankings))
            answer = answers[best]
            at = f"{where}.answers[{best}]"
            if not isinstance(answer, dict):
                raise DataError("must be an object", file=path, row=line, field=at)
            output = _get(answer, "answer", file=path, row=line)
            feedback = _get(answer, "feedback", file=path, row=line, kind=dict)
            if feedback.get("skip") is True:
                result.counts["skipped: feedback.skip"] += 1
                continue
            if not output.strip():
                result.counts["skipped: empty answer"] += 1
                continue
            critiques = feedback.get("critiques") or []
            if not isinstance(critiques, list):
                raise DataError("must be a list", file=path, row=line, field=f"{at}.feedback.critiques")
            texts, refinement = [], None
            for c, critique in enumerate(critiques):
                texts.append(_get(critique, "text", file=path, row=line).strip())
                refinement = _get(critique, "refinement", file=path, row=line, optional=True) or refinement
            example = {"prompt": f"{passage}\n{text}", "completion": output, "id": f"summarization-{line}-{q}"}
            if texts and any(texts):
                example.update(judgment=" ".join(t for t in texts if t), refinement=refinement)
                result.counts["negative"] += 1
            else:
                example.update(judgment=None, refinement=None)
                result.counts["positive"] += 1
            result.rows.append(example)
    return result


def _ultrafeedback_rows(path):
    """``(line, instruction, [(response, critique, score), ...])`` for each row, checked."""
    for line, value in read_jsonl(path):
        instruction = _get(value, "instruction", file=path, row=line)
        completions = _get(value, "completions", file=path, row=line, kind=list)
        parsed = []
        for c, completion in enumerate(completions):
            where = f"completions[{c}]"
            if not isinstance(completion, dict):
                raise DataError("must be an object", file=path, row=line, field=where)
            response = _get(completion, "response", file=path, row=line)
            critique = _get(completion, "critique", file=path, row=line, optional=True)
            score = completion.get("overall_score")
            if isinstance(score, bool) or not isinstance(score, (int, float)):
                raise DataError(f"must be a number, got {type(score).__name__}", file=path, row=line,
                                field=f"{where}.overall_score")
            parsed.append((response, critique, float(score)))
        yield line, instruction, parsed


def convert_ultrafeedback(path, positive_score: float = POSITIVE_SCORE) -> Conversion:
    """One example per completion: ``overall_score >= positive_score`` is positive, else a negative judged by its
    critique. ``score`` is kept: load the file with the same ``positive_score`` (``load_judgments(...,
    positive_score=...)``) so the loader agrees."""
    result = Conversion([])
    for line, instruction, completions in _ultrafeedback_rows(path):
        for c, (response, critique, score) in enumerate(completions):
            if not response.strip():
                result.counts["skipped: empty response"] += 1
                continue
            positive = score >= positive_score
            if not positive and not (critique or "").strip():
                raise DataError(f"is empty but the score {score} is below {positive_score}: a negative needs a "
                                "critique", file=path, row=line, field=f"completions[{c}].critique")
            result.rows.append({"prompt": instruction, "completion": response,
                                "judgment": None if positive else critique, "score": score,
                                "id": f"ultrafeedback-{line}-{c}"})
            result.counts["positive" if positive else "negative"] += 1
    return result


def ultrafeedback_pairs(path) -> Conversion:
    """Chosen/rejected pairs: per row, the highest-scored completion against the lowest-scored one (the first of
    each on ties). Rows whose completions all score the same give no pair and are counted."""
    result = Conversion([])
    for line, instruction, completions in _ultrafeedback_rows(path):
        usable = [(score, c, response) for c, (response, _, score) in enumerate(completions) if response.strip()]
        if len(usable) < 2 or len({score for score, _, _ in usable}) < 2:
            result.counts["no pair: fewer than two distinct scores"] += 1
            continue
        best = max(usable, key=lambda item: (item[0], -item[1]))
        worst = min(usable, key=lambda item: (item[0], item[1]))
        result.rows.append({"prompt": instruction, "chosen": best[2], "rejected": worst[2],
                            "score_chosen": best[0], "score_rejected": worst[0], "id": f"ultrafeedback-{line}"})
        result.counts["pair"] += 1
    return result

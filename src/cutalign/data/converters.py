"""Converters from public judgment datasets into the canonical schema (see :mod:`cutalign.data.schema`).

Three sources. Each has a converter of rows, which :func:`cutalign.data.load_judgments` runs for ``format=``
on rows read from any source (a file of any type, a dataset directory, a hub name, a ``Dataset``), and a converter
of local JSONL files (nothing is downloaded):

* Shepherd's human critiques (``format="shepherd"``): rows of the *feedback* file (``question``, ``answer``,
  ``feedback``), every row a negative judged by ``feedback``. :func:`convert_shepherd` also reads the *raw* file,
  aligned line by line (``metadata.context``, ``metadata.output_candidate``, ``metadata.output_correct``), and
  keeps the corrected answer as ``refinement``.
* Summarization critiques (``format="summarization"``): one passage per row under ``data``. For each question the
  top-ranked answer is taken (as the CUT reference does); an answer without critiques is a positive.
* UltraFeedback (``format="ultrafeedback"``): rows with ``instruction`` and ``completions[]`` (``response``,
  ``critique``, ``overall_score``). A completion scoring at least ``positive_score`` is positive, the others are
  negatives judged by their critique. :func:`ultrafeedback_pairs` builds chosen/rejected pairs from the same rows,
  so preference methods see the same data.

Each converter returns a :class:`Conversion`: the examples, where each came from (row and fields, so that the
loader's checks name the source's fields) and a count of what was kept or skipped and why. A malformed row raises
:class:`DataError` naming the file, the row (the 1-based line of a file, the position in a dataset) and the field.
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
    origins: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    """Per row of ``rows``: the source row number and, per canonical key, the source field it came from."""

    def add(self, row: dict, source_row: int, fields: dict[str, str], count: str) -> None:
        """Keep ``row``, converted from ``source_row`` (``fields``: canonical key -> source field), counted as
        ``count``."""
        self.rows.append(row)
        self.origins.append((source_row, fields))
        self.counts[count] += 1

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


def _get(value, dotted: str, *, file, row, kind=str, optional=False, at: str = ""):
    """``value["a"]["b"]`` for ``dotted="a.b"``, checked to be of ``kind``; errors name the field ``at + dotted``
    (``at`` is where ``value`` sits in the row, such as ``"completions[2]."``)."""
    current, name = value, at + dotted
    for part in dotted.split("."):
        if not isinstance(current, dict):
            raise DataError(f"must be an object, got {type(current).__name__}", file=file, row=row, field=name)
        if part not in current:
            if optional:
                return None
            raise DataError("is missing", file=file, row=row, field=name)
        current = current[part]
    if current is None and optional:
        return None
    if not isinstance(current, kind) or isinstance(current, bool) and kind is not bool:
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        got = "null" if current is None else type(current).__name__
        raise DataError(f"must be {names}, got {got}", file=file, row=row, field=name)
    return current


# --- Shepherd ---------------------------------------------------------------------------------------------------


def convert_shepherd_rows(rows, *, file=None, refinements: dict[int, str] | None = None) -> Conversion:
    """Rows of Shepherd's feedback file: every row a negative, judged by ``feedback``.

    ``rows`` are ``(row number, row)`` pairs. ``refinements`` maps a row number to the corrected answer to keep as
    ``refinement`` (:func:`convert_shepherd` reads them from the raw file). A row of the raw file is refused with
    a pointer to the feedback file. Empty answers or feedback are skipped and counted.
    """
    result = Conversion([])
    for line, row in rows:
        if isinstance(row, dict) and "question" not in row and "metadata" in row:
            raise DataError(
                "is missing: this row looks like Shepherd's raw file (metadata.context, metadata.output_candidate); "
                "the critiques are in the feedback file (question, answer, feedback): load that one, or pair the "
                "two with cutalign.data.converters.convert_shepherd(feedback, raw) to keep the corrected answers",
                file=file, row=line, field="question",
            )
        question = _get(row, "question", file=file, row=line)
        answer = _get(row, "answer", file=file, row=line)
        judgment = _get(row, "feedback", file=file, row=line)
        if not answer.strip():
            result.counts["skipped: empty answer"] += 1
            continue
        if not judgment.strip():
            result.counts["skipped: empty feedback"] += 1
            continue
        refinement = (refinements or {}).get(line)
        fields = {"prompt": "question", "completion": "answer", "judgment": "feedback"}
        result.add({"prompt": question, "completion": answer, "judgment": judgment, "refinement": refinement or None,
                    "id": f"shepherd-{line}"}, line, fields, "negative")
    return result


def convert_shepherd(feedback_path, raw_path) -> Conversion:
    """Shepherd's two JSONL files: the feedback rows (:func:`convert_shepherd_rows`), with the raw file's
    ``metadata.output_correct`` as ``refinement``.

    The two files must agree row by row (``question`` = ``metadata.context``, ``answer`` =
    ``metadata.output_candidate``); the first disagreement is an error naming the row and both fields.
    """
    feedback_rows, raw_rows = read_jsonl(feedback_path), read_jsonl(raw_path)
    if len(feedback_rows) != len(raw_rows):
        raise DataError(
            f"has {len(feedback_rows)} rows but {raw_path} has {len(raw_rows)}; the files must align line by line",
            file=feedback_path,
        )
    refinements = {}
    for position, ((line, feedback), (raw_line, raw)) in enumerate(zip(feedback_rows, raw_rows), start=1):
        question = _get(feedback, "question", file=feedback_path, row=line)
        answer = _get(feedback, "answer", file=feedback_path, row=line)
        context = _get(raw, "metadata.context", file=raw_path, row=raw_line)
        candidate = _get(raw, "metadata.output_candidate", file=raw_path, row=raw_line)
        refinements[line] = _get(raw, "metadata.output_correct", file=raw_path, row=raw_line, optional=True)
        for mine, theirs, name, other in ((question, context, "question", "metadata.context"),
                                          (answer, candidate, "answer", "metadata.output_candidate")):
            if mine != theirs:
                raise DataError(
                    f"does not match {other} of {raw_path} row {raw_line} (row {position} of each file): "
                    f"{mine[:60]!r} vs {theirs[:60]!r}",
                    file=feedback_path, row=line, field=name,
                )
    return convert_shepherd_rows(feedback_rows, file=feedback_path, refinements=refinements)


# --- summarization critiques ------------------------------------------------------------------------------------


def convert_summarization_rows(rows, *, file=None) -> Conversion:
    """Summarization critiques: per question, the top-ranked answer; no critiques = positive.

    ``rows`` are ``(row number, row)`` pairs. The prompt is the passage, a newline, then the question. A
    negative's judgment joins the texts of its critiques; its refinement is the last critique's non-empty
    refinement. Answers marked ``skip`` or empty are skipped and counted, and so are questions without answers.
    """
    result = Conversion([])
    for line, value in rows:
        data = _get(value, "data", file=file, row=line, kind=dict)
        passage = _get(data, "passage.text", file=file, row=line, at="data.")
        questions = _get(data, "questions", file=file, row=line, kind=list, at="data.")
        for q, question in enumerate(questions):
            where = f"data.questions[{q}]"
            if not isinstance(question, dict):
                raise DataError("must be an object", file=file, row=line, field=where)
            text = _get(question, "question", file=file, row=line, at=f"{where}.")
            rankings = _get(question, "rankings", file=file, row=line, kind=list, at=f"{where}.")
            answers = _get(question, "answers", file=file, row=line, kind=list, at=f"{where}.")
            if not answers:
                result.counts["skipped: question without answers"] += 1
                continue
            if len(rankings) != len(answers) or not all(
                isinstance(r, (int, float)) and not isinstance(r, bool) for r in rankings
            ):
                raise DataError(f"must hold one number per answer ({len(answers)}), got {rankings!r}",
                                file=file, row=line, field=f"{where}.rankings")
            best = rankings.index(max(rankings))
            answer = answers[best]
            at = f"{where}.answers[{best}]"
            if not isinstance(answer, dict):
                raise DataError("must be an object", file=file, row=line, field=at)
            output = _get(answer, "answer", file=file, row=line, at=f"{at}.")
            feedback = _get(answer, "feedback", file=file, row=line, kind=dict, at=f"{at}.")
            if feedback.get("skip") is True:
                result.counts["skipped: feedback.skip"] += 1
                continue
            if not output.strip():
                result.counts["skipped: empty answer"] += 1
                continue
            critiques = feedback.get("critiques") or []
            if not isinstance(critiques, list):
                raise DataError("must be a list", file=file, row=line, field=f"{at}.feedback.critiques")
            texts, refinement = [], None
            for c, critique in enumerate(critiques):
                within = f"{at}.feedback.critiques[{c}]."
                texts.append(_get(critique, "text", file=file, row=line, at=within).strip())
                refinement = _get(critique, "refinement", file=file, row=line, optional=True, at=within) or refinement
            example = {"prompt": f"{passage}\n{text}", "completion": output, "id": f"summarization-{line}-{q}"}
            fields = {"prompt": f"{where}.question", "completion": f"{at}.answer",
                      "judgment": f"{at}.feedback.critiques", "refinement": f"{at}.feedback.critiques"}
            if any(texts):
                example.update(judgment=" ".join(t for t in texts if t), refinement=refinement)
                result.add(example, line, fields, "negative")
            else:
                example.update(judgment=None, refinement=None)
                result.add(example, line, fields, "positive")
    return result


def convert_summarization(path) -> Conversion:
    """:func:`convert_summarization_rows` on a local JSONL file."""
    return convert_summarization_rows(read_jsonl(path), file=path)


# --- UltraFeedback ----------------------------------------------------------------------------------------------


def _ultrafeedback_parsed(rows, file):
    """``(line, instruction, [(response, critique, score), ...])`` for each row, checked."""
    for line, value in rows:
        instruction = _get(value, "instruction", file=file, row=line)
        completions = _get(value, "completions", file=file, row=line, kind=list)
        parsed = []
        for c, completion in enumerate(completions):
            where = f"completions[{c}]"
            if not isinstance(completion, dict):
                raise DataError("must be an object", file=file, row=line, field=where)
            response = _get(completion, "response", file=file, row=line, at=f"{where}.")
            critique = _get(completion, "critique", file=file, row=line, optional=True, at=f"{where}.")
            score = _get(completion, "overall_score", file=file, row=line, kind=(int, float), at=f"{where}.")
            parsed.append((response, critique, float(score)))
        yield line, instruction, parsed


def convert_ultrafeedback_rows(rows, *, file=None, positive_score: float = POSITIVE_SCORE) -> Conversion:
    """One example per completion: ``overall_score >= positive_score`` is positive, else a negative judged by its
    critique. ``score`` is kept: load the result with the same ``positive_score`` (``load_judgments(...,
    positive_score=...)``) so the loader agrees. ``rows`` are ``(row number, row)`` pairs; empty responses and
    rows without completions are skipped and counted."""
    result = Conversion([])
    for line, instruction, completions in _ultrafeedback_parsed(rows, file):
        if not completions:
            result.counts["skipped: row without completions"] += 1
        for c, (response, critique, score) in enumerate(completions):
            if not response.strip():
                result.counts["skipped: empty response"] += 1
                continue
            positive = score >= positive_score
            if not positive and not (critique or "").strip():
                raise DataError(f"is empty but the score {score} is below {positive_score}: a negative needs a "
                                "critique", file=file, row=line, field=f"completions[{c}].critique")
            fields = {"prompt": "instruction", "completion": f"completions[{c}].response",
                      "judgment": f"completions[{c}].critique", "score": f"completions[{c}].overall_score"}
            result.add({"prompt": instruction, "completion": response, "judgment": None if positive else critique,
                        "score": score, "id": f"ultrafeedback-{line}-{c}"},
                       line, fields, "positive" if positive else "negative")
    return result


def convert_ultrafeedback(path, positive_score: float = POSITIVE_SCORE) -> Conversion:
    """:func:`convert_ultrafeedback_rows` on a local JSONL file."""
    return convert_ultrafeedback_rows(read_jsonl(path), file=path, positive_score=positive_score)


def ultrafeedback_pairs(path) -> Conversion:
    """Chosen/rejected pairs: per row, the highest-scored completion against the lowest-scored one (the first of
    each on ties). Rows whose completions all score the same give no pair and are counted."""
    result = Conversion([])
    for line, instruction, completions in _ultrafeedback_parsed(read_jsonl(path), path):
        usable = [(score, c, response) for c, (response, _, score) in enumerate(completions) if response.strip()]
        if len(usable) < 2 or len({score for score, _, _ in usable}) < 2:
            result.counts["no pair: fewer than two distinct scores"] += 1
            continue
        best = max(usable, key=lambda item: (item[0], -item[1]))
        worst = min(usable, key=lambda item: (item[0], item[1]))
        result.add({"prompt": instruction, "chosen": best[2], "rejected": worst[2], "score_chosen": best[0],
                    "score_rejected": worst[0], "id": f"ultrafeedback-{line}"},
                   line, {"prompt": "instruction"}, "pair")
    return result

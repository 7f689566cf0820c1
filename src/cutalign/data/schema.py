"""The canonical judgment example: what a row must hold, and what makes it positive or negative.

A canonical example is a dict with

* ``prompt``: a non-empty string, or a non-empty list of chat messages ``{"role": str, "content": str}``;
* ``completion``: the model's response, a non-empty string;
* ``judgment``: the critique of the response, or ``None`` when the response was judged good;
* ``score``: an optional float; ``score >= positive_score`` marks the response as good whatever the judgment says,
  as the reference implementation of CUT does with its threshold of 7;
* ``id``: an optional string;
* ``refinement``: an optional string, kept only when the row carries one.

An example with a judgment is *negative* (the judgment points at what is wrong); one without is *positive*.
A judgment that is a failure marker (:data:`FAILED_JUDGMENT_MARKERS`) is neither: the judging failed, and the
row raises :class:`FailedJudgment`, which :func:`cutalign.data.load_judgments` turns into a counted, reported
exclusion. Every string must be valid Unicode text (a JSON ``"\\ud800"`` escape is not). Every check raises
:class:`DataError` naming the file, the 1-based row and the field, so that a bad row in a 10,000-line file can be
found and fixed without guesswork.
"""

import logging
import math
import random

import datasets

logger = logging.getLogger("cutalign.data")

POSITIVE_SCORE = 7.0
"""Scores at or above this count as positive, as in the reference implementation."""

FAILED_JUDGMENT_MARKERS = frozenset({"$ERROR$"})
"""Judgments that record a failed judging, not a critique: the reference CUT data writes ``"$ERROR$"`` when its
judge failed (47 rows of its ``iter1.json``). Trained on, the marker would teach the model that "$ERROR$" is what
is wrong with a response. Compared after stripping surrounding whitespace, case-sensitively."""


class DataError(ValueError):
    """Bad input data. ``str()`` reads like ``data.jsonl, row 3, field 'completion': is empty``."""

    def __init__(self, message: str, *, file=None, row: int | None = None, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.file = None if file is None else str(file)
        self.row = row
        self.field = field

    def __str__(self) -> str:
        where = [part for part in (self.file,) if part is not None]
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.field is not None:
            where.append(f"field {self.field!r}")
        return f"{', '.join(where)}: {self.message}" if where else self.message

    def __reduce__(self):
        # Keep file/row/field when the error crosses a process boundary (e.g. ``Dataset.map(num_proc=...)``).
        return (type(self), (self.message,), self.__dict__)


class FailedJudgment(DataError):
    """The row's judgment is a failure marker (:data:`FAILED_JUDGMENT_MARKERS`): the row was never judged.

    A :class:`DataError` for callers of :func:`validate_example`; :func:`cutalign.data.load_judgments` catches it,
    leaves the row out and counts it.
    """


def is_failed_judgment(judgment) -> bool:
    """True when ``judgment`` is a string that, stripped, is one of :data:`FAILED_JUDGMENT_MARKERS`."""
    return isinstance(judgment, str) and judgment.strip() in FAILED_JUDGMENT_MARKERS


def _type_name(value) -> str:
    return "null" if value is None else type(value).__name__


def _check_text(value: str, error, where: str = "") -> str:
    """Return ``value`` if it encodes to UTF-8; a lone surrogate (JSON ``"\\ud800"``) raises ``error(...)``.

    Python's JSON reader accepts unpaired surrogate escapes, but no file, tokenizer or Arrow column can hold
    them: without this check the row fails much later with a bare ``UnicodeEncodeError`` naming nothing.
    """
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as bad:
        raise error(f"{where}holds a lone surrogate {value[bad.start]!r} at character {bad.start + 1}, which is not "
                    "valid Unicode text") from None
    return value


def _check_prompt(prompt, error):
    """Return the prompt as a string or as a list of plain ``{"role", "content"}`` messages."""
    if prompt is None or isinstance(prompt, str):
        if prompt is None or not prompt.strip():
            raise error("is empty")
        return _check_text(prompt, error)
    if not isinstance(prompt, list):
        raise error(f"must be a string or a list of messages, got {_type_name(prompt)}")
    if not prompt:
        raise error("is an empty list of messages")
    messages = []
    for position, message in enumerate(prompt, start=1):
        if not isinstance(message, dict):
            raise error(f"message {position} must be an object with 'role' and 'content', got {_type_name(message)}")
        for key in ("role", "content"):
            if not isinstance(message.get(key), str):
                raise error(f"message {position}: {key!r} must be a string, got {_type_name(message.get(key))}")
            _check_text(message[key], error, f"message {position}: {key!r} ")
        # Only role and content: extra keys would give rows different Arrow struct types.
        messages.append({"role": message["role"], "content": message["content"]})
    return messages


def _check_score(score, error) -> float | None:
    if score is None:
        return None
    if isinstance(score, bool) or not isinstance(score, (int, float, str)):
        raise error(f"must be a number, got {_type_name(score)}")
    if isinstance(score, str):
        if not score.strip():
            return None
        try:
            value = float(score)
        except ValueError:
            raise error(f"is not a number: {score!r}") from None
    else:
        value = float(score)
    if math.isnan(value):
        raise error("is NaN")
    return value


def _canonical(raw, *, file, row, positive_score, names) -> dict:
    """Validate a row holding canonical keys; ``names`` maps a canonical key to the column name shown in errors."""

    def error_for(key):
        return lambda message: DataError(message, file=file, row=row, field=names.get(key, key))

    if not isinstance(raw, dict):
        raise DataError(f"must be an object, got {_type_name(raw)}", file=file, row=row)
    for key in ("prompt", "completion"):
        if key not in raw:
            raise error_for(key)("is missing")

    prompt = _check_prompt(raw["prompt"], error_for("prompt"))
    completion = raw["completion"]
    if completion is not None and not isinstance(completion, str):
        raise error_for("completion")(f"must be a string, got {_type_name(completion)}")
    if completion is None or not completion.strip():  # null: an empty CSV cell, or no response at all
        raise error_for("completion")("is empty")
    _check_text(completion, error_for("completion"))

    judgment = raw.get("judgment")
    if judgment is not None and not isinstance(judgment, str):
        raise error_for("judgment")(f"must be a string or null, got {_type_name(judgment)}")
    if is_failed_judgment(judgment):
        raise FailedJudgment(f"is {judgment.strip()!r}, a failure marker: the judging of this row failed",
                             file=file, row=row, field=names.get("judgment", "judgment"))
    if judgment is not None and not judgment.strip():
        judgment = None
    if judgment is not None:
        _check_text(judgment, error_for("judgment"))

    score = _check_score(raw.get("score"), error_for("score"))
    if score is not None and score >= positive_score:
        judgment = None

    example_id = raw.get("id")
    if isinstance(example_id, bool) or not isinstance(example_id, (str, int, type(None))):
        raise error_for("id")(f"must be a string or an integer, got {_type_name(example_id)}")
    if isinstance(example_id, str):
        _check_text(example_id, error_for("id"))

    example = {
        "prompt": prompt,
        "completion": completion,
        "judgment": judgment,
        "score": score,
        "id": None if example_id is None else str(example_id),
    }
    if "refinement" in raw:
        refinement = raw["refinement"]
        if refinement is not None and not isinstance(refinement, str):
            raise error_for("refinement")(f"must be a string or null, got {_type_name(refinement)}")
        if refinement is not None:
            _check_text(refinement, error_for("refinement"))
        example["refinement"] = refinement
    return example


def validate_example(
    raw: dict, *, file=None, row: int | None = None, positive_score: float = POSITIVE_SCORE, fields: dict | None = None
) -> dict:
    """Check one row with canonical columns and return the canonical example.

    Columns other than the canonical ones (and ``refinement``) are ignored here; :func:`cutalign.data.load_judgments`
    refuses them for a whole source. An empty judgment becomes ``None``, and so does any judgment when ``score >=
    positive_score``. A failure marker as judgment raises :class:`FailedJudgment`, whatever the score. ``id`` is
    ``None`` when absent (loaders fill it in). ``fields`` maps a canonical key to the source field it was converted
    from (``{"completion": "completions[2].response"}``), so that an error names the field the user can find.
    """
    return _canonical(raw, file=file, row=row, positive_score=positive_score, names=fields or {})


def validate_reference_example(
    raw: dict, *, file=None, row: int | None = None, positive_score: float = POSITIVE_SCORE
) -> dict:
    """Check one row in the reference format (``instruction``, ``input``, ``output``, ``judgment``, ``score``, ``id``).

    As in the reference implementation, a non-empty ``input`` is appended to the instruction after a newline.
    Errors name the reference columns (``instruction``, ``output``), not the canonical ones.
    """
    if not isinstance(raw, dict):
        raise DataError(f"must be an object, got {_type_name(raw)}", file=file, row=row)
    if "instruction" not in raw:
        raise DataError("is missing", file=file, row=row, field="instruction")
    instruction, extra = raw["instruction"], raw.get("input")
    if instruction is None:
        raise DataError("is empty", file=file, row=row, field="instruction")
    if not isinstance(instruction, str):
        raise DataError(f"must be a string, got {_type_name(instruction)}", file=file, row=row, field="instruction")
    if extra is not None and not isinstance(extra, str):
        raise DataError(f"must be a string or null, got {_type_name(extra)}", file=file, row=row, field="input")
    for name, value in (("instruction", instruction), ("input", extra)):
        if value is not None:
            _check_text(value, lambda message, name=name: DataError(message, file=file, row=row, field=name))

    converted = {key: value for key, value in raw.items() if key not in ("instruction", "input", "output")}
    converted["prompt"] = f"{instruction}\n{extra}" if extra else instruction
    if "output" in raw:
        converted["completion"] = raw["output"]
    names = {"prompt": "instruction", "completion": "output"}
    return _canonical(converted, file=file, row=row, positive_score=positive_score, names=names)


def is_negative(example: dict) -> bool:
    """True when the example carries a judgment, i.e. its response was criticised."""
    return example["judgment"] is not None


def count_examples(dataset: datasets.Dataset) -> dict:
    """Count positives (no judgment) and negatives (with a judgment)."""
    negatives = sum(judgment is not None for judgment in dataset["judgment"])
    return {"positives": len(dataset) - negatives, "negatives": negatives, "total": len(dataset)}


def downsample_positives(dataset: datasets.Dataset, ratio: float, seed: int = 42) -> datasets.Dataset:
    """Keep every negative and at most ``int(ratio * n_negatives)`` positives, drawn at random under ``seed``.

    Positives usually outnumber negatives by far; the reference implementation keeps a quarter as many positives
    as negatives (``ratio=0.25``) so that the judgments are not drowned out. Kept rows stay in their original
    order. ``ratio < 0`` turns down-sampling off and returns ``dataset`` unchanged.
    """
    if ratio < 0:
        return dataset
    judgments = dataset["judgment"]
    negatives = [index for index, judgment in enumerate(judgments) if judgment is not None]
    positives = [index for index, judgment in enumerate(judgments) if judgment is None]
    keep = min(len(positives), int(ratio * len(negatives)))
    chosen = random.Random(seed).sample(positives, keep)
    dropped = len(positives) - keep
    if dropped:
        logger.info(
            "Down-sampling positives (ratio %s): kept %d of %d positives, dropped %d, kept all %d negatives",
            ratio, keep, len(positives), dropped, len(negatives),
        )
    if not negatives and positives:
        logger.warning("No negative examples: down-sampling with ratio %s dropped every positive", ratio)
    return dataset.select(sorted(negatives + chosen))

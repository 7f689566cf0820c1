"""Loading judgment data: from a file, a dataset directory, a hub dataset name, a ``Dataset`` or a list of dicts.

Where the rows come from is :mod:`cutalign.data.sources` (and :mod:`cutalign.data.files` for files); what they
hold is ``format``:

* ``"auto"`` (the default): the row layout is detected from the first row (``instruction`` makes it the reference
  layout):

  * ``"reference"``: the format of the reference CUT implementation, rows with ``instruction``, ``input``,
    ``output``, ``judgment`` and optional ``score`` and ``id``;
  * ``"canonical"``: rows with ``prompt``, ``completion``, ``judgment`` and optional ``score``, ``id``,
    ``refinement``.

  A column outside the layout is an error naming it, with a suggestion (see :mod:`cutalign.data.columns`);
* ``"ultrafeedback"``, ``"shepherd"``, ``"summarization"``: a public dataset's rows, turned into canonical examples
  by its converter (:mod:`cutalign.data.converters`); columns the converter does not read are ignored.

Row numbers in errors are 1-based positions within the source: the line number for JSON Lines and CSV files (for
CSV the header is line 1, so the first example is row 2), the position for JSON arrays, Parquet files, datasets
and lists. A converted example is checked under the row it came from, and errors name the source's field.

Every row becomes an example or raises :class:`DataError`; nothing is dropped silently. A row whose judgment is a
failure marker (``"$ERROR$"``, see :data:`~cutalign.data.schema.FAILED_JUDGMENT_MARKERS`) was never judged, so it
is left out, counted (:attr:`Loaded.failed_rows`) and reported in a warning; what a converter skips (an empty
response, an answer marked ``skip``) is counted (:attr:`Loaded.conversion`) and reported likewise.
"""

import functools
import logging
from collections import Counter
from dataclasses import dataclass, field

import datasets

from .columns import check_columns
from .converters import (
    Conversion,
    convert_shepherd_rows,
    convert_summarization_rows,
    convert_ultrafeedback_rows,
)
from .files import FILE_FORMATS
from .schema import (
    FAILED_JUDGMENT_MARKERS,
    POSITIVE_SCORE,
    DataError,
    FailedJudgment,
    count_examples,
    validate_example,
    validate_reference_example,
)
from .sources import read_rows

logger = logging.getLogger("cutalign.data")

DATA_FORMATS = ("auto", "ultrafeedback", "shepherd", "summarization")
"""What ``format=`` accepts: ``"auto"`` (canonical or reference layout, from the columns) or a public dataset."""

_STRING = datasets.Value("string")
_PROMPT_FEATURES = {
    False: _STRING,
    True: datasets.List({"role": _STRING, "content": _STRING}),
}


@dataclass
class Loaded:
    """What :func:`read_judgments` made of a source: the dataset and what was left out of it or ignored."""

    dataset: datasets.Dataset
    failed_rows: list[int] = field(default_factory=list)
    """Row numbers (as in errors) whose judgment is a failure marker: left out of ``dataset``. With a converter, one
    entry per left-out example, so a source row may appear more than once."""
    unknown_columns: list[str] = field(default_factory=list)
    """Columns outside the layout, ignored (only with ``unknown_columns="warn"``; otherwise they are an error)."""
    conversion: Counter = field(default_factory=Counter)
    """With a converter (``format`` other than ``"auto"``): what it kept and skipped, and why; empty otherwise."""


def load_judgments(
    source,
    *,
    format: str = "auto",
    split: str | None = None,
    file_format: str | None = None,
    positive_score: float = POSITIVE_SCORE,
) -> datasets.Dataset:
    """Load judgment examples into a ``datasets.Dataset`` with the canonical columns.

    ``source`` is a file path (``str`` or ``Path``: JSON, JSONL, CSV or Parquet), a directory written by
    ``Dataset.save_to_disk`` or ``DatasetDict.save_to_disk``, a Hugging Face Hub dataset name (``owner/name``,
    through ``datasets.load_dataset``; offline, only what the local cache holds), a ``datasets.Dataset`` or
    ``DatasetDict``, or a list of dicts; :mod:`cutalign.data.sources` says how a string is told apart.

    ``format`` is what the rows hold: ``"auto"`` (canonical or reference layout, detected from the columns),
    ``"ultrafeedback"``, ``"shepherd"`` or ``"summarization"`` (a public dataset, run through its converter).
    ``split`` picks the split of a ``DatasetDict`` or hub dataset (``"train"`` when not given); ``file_format``
    (one of ``FILE_FORMATS``) overrides a file's extension. Rows with ``score >= positive_score`` count as positive
    (the UltraFeedback converter uses the same threshold on ``overall_score``).

    The result has the columns ``prompt`` (all strings, or all lists of messages), ``completion``, ``judgment``
    (nullable string), ``score`` (nullable float64), ``id`` (string; the 0-based position of the row in the source
    when it has none) and ``refinement`` when any row carries one. Rows with a failed judgment are left out and
    reported (:func:`read_judgments` also returns their row numbers); an unknown column is an error.
    """
    return read_judgments(
        source, format=format, split=split, file_format=file_format, positive_score=positive_score
    ).dataset


def read_judgments(
    source,
    *,
    format: str = "auto",
    split: str | None = None,
    file_format: str | None = None,
    positive_score: float = POSITIVE_SCORE,
    unknown_columns: str = "error",
) -> Loaded:
    """:func:`load_judgments`, returning also the row numbers left out for a failed judgment and what a converter
    skipped.

    ``unknown_columns="warn"`` logs unknown columns instead of refusing the source, for readers that only show the
    rows to a person (the annotation page); training data should keep the default ``"error"``. It only applies to
    ``format="auto"``: converters read the fields they know and ignore the rest.
    """
    _check_format(format)
    rows, file = read_rows(source, file_format=file_format, split=split)
    if not rows:
        raise DataError("holds no examples", file=file)
    where = file or f"a {type(source).__name__}"

    conversion, ignored = None, []
    if format == "auto":
        first = rows[0][1]
        layout = "reference" if isinstance(first, dict) and "instruction" in first else "canonical"
        ignored = check_columns(rows, layout, file=file, unknown=unknown_columns)
        validate = validate_reference_example if layout == "reference" else validate_example
        items = [(row, raw, validate) for row, raw in rows]
        what, noun = f"{layout} layout", "rows"
    else:
        conversion = _convert(format, rows, file=file, positive_score=positive_score)
        _report_conversion(format, conversion, where)
        if not conversion.rows:
            raise DataError(f"holds no examples: the {format} converter kept none ({conversion.summary()})", file=file)
        # Each converted example is checked under its source row, naming the source's fields in errors.
        items = [(row, raw, functools.partial(validate_example, fields=fields))
                 for raw, (row, fields) in zip(conversion.rows, conversion.origins)]
        what, noun = f"{format} format", "converted examples"

    examples, numbers, failed = [], [], []
    for position, (row, raw, validate) in enumerate(items):
        try:
            example = validate(raw, file=file, row=row, positive_score=positive_score)
        except FailedJudgment:
            failed.append(row)
            continue
        if example["id"] is None:
            example["id"] = str(position)  # the position in the source: ids stay put when rows are left out
        examples.append(example)
        numbers.append(row)
    if failed:
        logger.warning(
            "%s: left out %d of %d %s whose judgment is a failure marker (%s), as their judging failed: rows %s",
            where, len(failed), len(items), noun, ", ".join(sorted(FAILED_JUDGMENT_MARKERS)), _row_list(failed),
        )
    if not examples:
        raise DataError(f"holds no examples: all {len(items)} {noun} have a failed judgment", file=file)
    dataset = _to_dataset(examples, numbers, file)

    counts = count_examples(dataset)
    by_score = sum(score is not None and score >= positive_score for score in dataset["score"])
    logger.info(
        "Loaded %d examples (%d negatives, %d positives, %d of them by score >= %s; %d left out for a failed "
        "judgment) from %s, %s",
        counts["total"], counts["negatives"], counts["positives"], by_score, positive_score, len(failed), where, what,
    )
    return Loaded(dataset, failed, ignored, Counter(conversion.counts) if conversion else Counter())


def _check_format(format: str) -> None:
    """Refuse a ``format`` outside :data:`DATA_FORMATS`, pointing a file type (``"jsonl"``) at ``file_format``."""
    if format in DATA_FORMATS:
        return
    message = f"unknown format {format!r}; expected one of {', '.join(DATA_FORMATS)}"
    if format in FILE_FORMATS:
        message += f" ({format!r} is a file type: pass file_format={format!r})"
    raise ValueError(message)


def _convert(format: str, rows, *, file, positive_score: float) -> Conversion:
    """Run the converter of ``format`` on ``(row number, row)`` pairs."""
    if format == "ultrafeedback":
        return convert_ultrafeedback_rows(rows, file=file, positive_score=positive_score)
    if format == "shepherd":
        return convert_shepherd_rows(rows, file=file)
    return convert_summarization_rows(rows, file=file)


def _report_conversion(format: str, conversion: Conversion, where: str) -> None:
    """Log what the converter did; a warning when it skipped anything, so that no row disappears unseen."""
    skipped = {key: n for key, n in conversion.counts.items() if key.startswith("skipped")}
    level = logging.WARNING if skipped else logging.INFO
    logger.log(level, "%s: %s converter: %s", where, format, conversion.summary())


def _row_list(numbers: list[int], shown: int = 20) -> str:
    """``1, 4, 9`` or, past ``shown`` numbers, the first ``shown`` and how many more."""
    listed = ", ".join(map(str, numbers[:shown]))
    return listed if len(numbers) <= shown else f"{listed} and {len(numbers) - shown} more"


def _to_dataset(examples: list[dict], row_numbers: list[int], file) -> datasets.Dataset:
    """Build a Dataset with one Arrow schema for all rows; mixed prompt kinds are an error."""
    conversational = isinstance(examples[0]["prompt"], list)
    kind = {False: "a string", True: "a list of messages"}
    for example, row in zip(examples, row_numbers):
        if isinstance(example["prompt"], list) != conversational:
            raise DataError(
                f"is {kind[not conversational]} but the prompt of row {row_numbers[0]} is {kind[conversational]}; "
                "all prompts must be of one kind",
                file=file, row=row, field="prompt",
            )
    features = {
        "prompt": _PROMPT_FEATURES[conversational],
        "completion": _STRING,
        "judgment": _STRING,
        "score": datasets.Value("float64"),
        "id": _STRING,
    }
    if any("refinement" in example for example in examples):
        features["refinement"] = _STRING
    columns = {name: [example.get(name) for example in examples] for name in features}
    return datasets.Dataset.from_dict(columns, features=datasets.Features(features))

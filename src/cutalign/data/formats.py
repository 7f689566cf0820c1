"""Loading judgment data from files, ``datasets.Dataset`` objects or lists of dicts.

Two row layouts are understood, detected from the first row (``instruction`` makes it the reference layout):

* ``"reference"``: the format of the reference CUT implementation, rows with ``instruction``, ``input``,
  ``output``, ``judgment`` and optional ``score`` and ``id``;
* ``"canonical"``: rows with ``prompt``, ``completion``, ``judgment`` and optional ``score``, ``id``, ``refinement``.

A column outside the layout is an error naming it, with a suggestion (see :mod:`cutalign.data.columns`).

Four file formats are read, chosen by extension unless ``format`` is given: ``json`` (a JSON array of objects, or
JSON Lines when the file does not start with ``[``; a file holding one JSON object is refused, as it is neither),
``jsonl``, ``csv`` (with a header; empty cells are null) and ``parquet``. Row numbers in errors are 1-based
positions within the source:

* JSON Lines and CSV: the line number in the file (for CSV the header is line 1, so the first example is row 2;
  a quoted cell spanning lines counts from the line where its record starts);
* JSON arrays, Parquet files, datasets and lists: the position in the array, table or list.

Every row becomes an example or raises :class:`DataError`; nothing is dropped silently. The one exclusion is a
row whose judgment is a failure marker (``"$ERROR$"``, see :data:`~cutalign.data.schema.FAILED_JUDGMENT_MARKERS`):
its judging failed, so it is left out, counted (:attr:`Loaded.failed_rows`) and reported in a warning.
"""

import codecs
import csv
import io
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import datasets
import pyarrow
import pyarrow.parquet

from .columns import check_columns
from .schema import (
    FAILED_JUDGMENT_MARKERS,
    POSITIVE_SCORE,
    DataError,
    FailedJudgment,
    count_examples,
    validate_example,
    validate_reference_example,
)

logger = logging.getLogger("cutalign.data")

FILE_FORMATS = ("json", "jsonl", "csv", "parquet")
_EXTENSIONS = {".json": "json", ".jsonl": "jsonl", ".csv": "csv", ".parquet": "parquet"}

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
    """Row numbers (as in errors) whose judgment is a failure marker: left out of ``dataset``."""
    unknown_columns: list[str] = field(default_factory=list)
    """Columns outside the layout, ignored (only with ``unknown_columns="warn"``; otherwise they are an error)."""


def load_judgments(
    source, *, format: str | None = None, positive_score: float = POSITIVE_SCORE
) -> datasets.Dataset:
    """Load judgment examples into a ``datasets.Dataset`` with the canonical columns.

    ``source`` is a path (``str`` or ``Path``), a ``datasets.Dataset`` or a list of dicts. ``format`` (one of
    ``FILE_FORMATS``) overrides the file extension. Rows with ``score >= positive_score`` count as positive.

    The result has the columns ``prompt`` (all strings, or all lists of messages), ``completion``, ``judgment``
    (nullable string), ``score`` (nullable float64), ``id`` (string; the 0-based position of the row in the source
    when it has none) and ``refinement`` when any row carries one. Rows with a failed judgment are left out and
    reported (:func:`read_judgments` also returns their row numbers); an unknown column is an error.
    """
    return read_judgments(source, format=format, positive_score=positive_score).dataset


def read_judgments(
    source, *, format: str | None = None, positive_score: float = POSITIVE_SCORE, unknown_columns: str = "error"
) -> Loaded:
    """:func:`load_judgments`, returning also the row numbers left out for a failed judgment.

    ``unknown_columns="warn"`` logs unknown columns instead of refusing the source, for readers that only show the
    rows to a person (the annotation page); training data should keep the default ``"error"``.
    """
    if isinstance(source, (str, os.PathLike)):
        file = str(source)
        rows = _read_file(Path(source), format)
    elif format is not None:
        raise ValueError("format= only applies when loading from a file path")
    elif isinstance(source, (datasets.Dataset, list)):
        file = None
        rows = list(enumerate(source, start=1))
    else:
        raise TypeError(f"expected a path, a datasets.Dataset or a list of dicts, got {type(source).__name__}")
    if not rows:
        raise DataError("holds no examples", file=file)

    first = rows[0][1]
    layout = "reference" if isinstance(first, dict) and "instruction" in first else "canonical"
    ignored = check_columns(rows, layout, file=file, unknown=unknown_columns)
    validate = validate_reference_example if layout == "reference" else validate_example
    examples, numbers, failed = [], [], []
    for position, (row, raw) in enumerate(rows):
        try:
            example = validate(raw, file=file, row=row, positive_score=positive_score)
        except FailedJudgment:
            failed.append(row)
            continue
        if example["id"] is None:
            example["id"] = str(position)  # the position in the source: ids stay put when rows are left out
        examples.append(example)
        numbers.append(row)
    where = file or f"a {type(source).__name__}"
    if failed:
        logger.warning(
            "%s: left out %d of %d rows whose judgment is a failure marker (%s), as their judging failed: rows %s",
            where, len(failed), len(rows), ", ".join(sorted(FAILED_JUDGMENT_MARKERS)), _row_list(failed),
        )
    if not examples:
        raise DataError(f"holds no examples: all {len(rows)} rows have a failed judgment", file=file)
    dataset = _to_dataset(examples, numbers, file)

    counts = count_examples(dataset)
    by_score = sum(score is not None and score >= positive_score for score in dataset["score"])
    logger.info(
        "Loaded %d examples (%d negatives, %d positives, %d of them by score >= %s; %d rows left out for a failed "
        "judgment) from %s, %s layout",
        counts["total"], counts["negatives"], counts["positives"], by_score, positive_score, len(failed), where,
        layout,
    )
    return Loaded(dataset, failed, ignored)


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


def _read_file(path: Path, format: str | None) -> list[tuple[int, object]]:
    """Read a file into ``(row number, raw row)`` pairs."""
    if format is not None and format not in FILE_FORMATS:
        raise ValueError(f"unknown format {format!r}; expected one of {', '.join(FILE_FORMATS)}")
    if not path.exists():
        raise DataError("file not found", file=path)
    if format is None:
        format = _EXTENSIONS.get(path.suffix.lower())
        if format is None:
            raise DataError(
                f"unknown file extension {path.suffix!r}; pass format= one of {', '.join(FILE_FORMATS)}", file=path
            )
    try:
        data = path.read_bytes()
    except OSError as error:
        raise DataError(f"cannot be read: {error.strerror}", file=path) from None
    data = data.removeprefix(codecs.BOM_UTF8)

    if format == "parquet":
        return _read_parquet(data, path)
    if format == "csv":
        return _read_csv(data, path)
    if format == "json" and data.lstrip()[:1] == b"[":
        return _read_json_array(data, path)
    if format == "json":
        _refuse_single_value(data, path)
    return _read_json_lines(data, path)


def _refuse_single_value(data: bytes, file) -> None:
    """Refuse a ``.json`` file that parses as one value other than an array: it is neither rows nor JSON Lines.

    Read as JSON Lines, a lone object would pass as a one-row dataset (or, pretty-printed, fail as invalid JSON
    on line 1). A file that is not one JSON value is left to the JSON Lines reader, whose errors name the line.
    """
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return
    kind = "object" if isinstance(value, dict) else "value"
    raise DataError(
        f"holds a single JSON {kind}, not rows: expected a JSON array of rows ([{{...}}, {{...}}]) or JSON Lines "
        "(one row per line); for one row, write [{...}] or name the file .jsonl",
        file=file,
    )


def _decode(data: bytes, file) -> str:
    """Decode a whole file; an error names the line and the byte offset of the bad bytes."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise DataError(
            f"is not valid UTF-8 ({error.reason}) at byte offset {error.start}, line {line}", file=file
        ) from None


def _read_json_array(data: bytes, file) -> list[tuple[int, object]]:
    try:
        value = json.loads(_decode(data, file))
    except json.JSONDecodeError as error:
        raise DataError(f"invalid JSON at line {error.lineno}, column {error.colno}: {error.msg}", file=file) from None
    if not isinstance(value, list):
        raise DataError(f"must hold a JSON array of objects, got {type(value).__name__}", file=file)
    return list(enumerate(value, start=1))


def _read_json_lines(data: bytes, file) -> list[tuple[int, object]]:
    rows = []
    for number, line in enumerate(data.split(b"\n"), start=1):
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as error:
            raise DataError(
                f"is not valid UTF-8 ({error.reason}) at byte {error.start} of the line", file=file, row=number
            ) from None
        if not text.strip():
            continue  # a blank line holds no row
        try:
            rows.append((number, json.loads(text)))
        except json.JSONDecodeError as error:
            raise DataError(f"invalid JSON at column {error.colno}: {error.msg}", file=file, row=number) from None
    return rows


def _read_csv(data: bytes, file) -> list[tuple[int, object]]:
    """Read a CSV file with a header line; empty cells become None, every other cell stays a string."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise DataError(f"is not valid UTF-8 ({error.reason})", file=file, row=line) from None
    reader = csv.reader(io.StringIO(text, newline=""))
    header, rows = None, []
    while True:
        start = reader.line_num + 1
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as error:
            raise DataError(f"invalid CSV: {error}", file=file, row=start) from None
        if not record:
            continue  # a blank line holds no row
        if header is None:
            header = record
            continue
        if len(record) != len(header):
            raise DataError(f"has {len(record)} cells but the header has {len(header)}", file=file, row=start)
        rows.append((start, {name: cell if cell != "" else None for name, cell in zip(header, record)}))
    return rows


def _read_parquet(data: bytes, file) -> list[tuple[int, object]]:
    try:
        table = pyarrow.parquet.read_table(pyarrow.BufferReader(data))
    except (pyarrow.ArrowException, OSError) as error:
        raise DataError(f"cannot be read as Parquet: {error}", file=file) from None
    return list(enumerate(table.to_pylist(), start=1))

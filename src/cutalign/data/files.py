"""Reading judgment rows from one file: JSON (array or JSON Lines), JSON Lines, CSV or Parquet.

The file type comes from the extension unless ``file_format`` names it. Each reader returns ``(row number, raw
row)`` pairs, numbered as errors name them: the line number for JSON Lines and CSV (the header is line 1, so the
first CSV example is row 2; a quoted cell spanning lines counts from the line where its record starts), the
1-based position for JSON arrays and Parquet files. Rows are returned as read; checking them is the loader's job.
"""

import codecs
import csv
import io
import json
from pathlib import Path

import pyarrow
import pyarrow.parquet

from .schema import DataError

FILE_FORMATS = ("json", "jsonl", "csv", "parquet")
FILE_EXTENSIONS = {".json": "json", ".jsonl": "jsonl", ".csv": "csv", ".parquet": "parquet"}


def read_file(path: Path, file_format: str | None = None) -> list[tuple[int, object]]:
    """Read a file into ``(row number, raw row)`` pairs; ``file_format`` (one of ``FILE_FORMATS``) overrides the
    extension."""
    if file_format is not None and file_format not in FILE_FORMATS:
        raise ValueError(f"unknown file_format {file_format!r}; expected one of {', '.join(FILE_FORMATS)}")
    if not path.exists():
        raise DataError("file not found", file=path)
    if path.is_dir():
        raise DataError("is a directory, not a file", file=path)
    if file_format is None:
        file_format = FILE_EXTENSIONS.get(path.suffix.lower())
        if file_format is None:
            raise DataError(
                f"unknown file extension {path.suffix!r}; pass file_format= one of {', '.join(FILE_FORMATS)}",
                file=path,
            )
    try:
        data = path.read_bytes()
    except OSError as error:
        raise DataError(f"cannot be read: {error.strerror}", file=path) from None
    data = data.removeprefix(codecs.BOM_UTF8)

    if file_format == "parquet":
        return _read_parquet(data, path)
    if file_format == "csv":
        return _read_csv(data, path)
    if file_format == "json" and data.lstrip()[:1] == b"[":
        return _read_json_array(data, path)
    if file_format == "json":
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

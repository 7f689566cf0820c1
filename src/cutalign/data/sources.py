"""Where judgment rows come from: a file, a dataset directory, a Hugging Face Hub dataset name, or memory.

A string source is a path or a hub name, decided without guessing at the hub first:

1. a path that exists is read from disk: a file (see :mod:`cutalign.data.files`) or a directory written by
   ``datasets.Dataset.save_to_disk`` / ``datasets.DatasetDict.save_to_disk``;
2. a string that cannot be a hub name (it ends in a data-file suffix such as ``.jsonl``, starts with ``/``, ``.``
   or ``~``, or has more than one ``/``) is a missing path: "file not found", never a hub lookup;
3. anything else (``owner/name`` or ``name``) is a hub name, loaded with ``datasets.load_dataset(name,
   split=...)``, which reads the local cache when ``HF_HUB_OFFLINE=1``. A name that cannot be had is one
   :class:`DataError` line naming it and saying how to bring it here (``save_to_disk`` on a machine with network).

A ``pathlib.Path`` is always a path. ``split`` picks the split of a ``DatasetDict`` (directory or object) or of a
hub dataset, ``"train"`` when not given; it is refused for sources that have no splits (a file, a saved
``Dataset``, a list), so that asking for a test split never silently returns everything.

Rows come back as ``(row number, raw row)`` pairs; for anything but a file the row number is the 1-based position.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import datasets
import datasets.exceptions

from .files import FILE_EXTENSIONS, read_file
from .schema import DataError

DEFAULT_SPLIT = "train"

FILE_SUFFIXES = frozenset(FILE_EXTENSIONS) | {
    ".arrow", ".txt", ".tsv", ".yaml", ".yml", ".xlsx", ".gz", ".bz2", ".xz", ".zst", ".zip", ".tar",
}
"""Suffixes that mark a string as a file name: a missing ``x.jsonl`` is "file not found", not a hub lookup."""

_HUB_NAME = re.compile(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?")
"""``name`` or ``owner/name`` as the Hub spells them: letters, digits, ``-``, ``_`` and ``.``."""


def looks_like_hub_name(text: str) -> bool:
    """True when ``text`` reads as ``owner/name`` or ``name`` and does not end in a file suffix."""
    return _HUB_NAME.fullmatch(text) is not None and Path(text).suffix.lower() not in FILE_SUFFIXES


def read_rows(source, *, file_format: str | None = None, split: str | None = None):
    """``(rows, file)``: the ``(row number, raw row)`` pairs of ``source`` and the name errors should give it
    (``None`` for an in-memory source).

    ``source`` is a path (``str`` or ``Path``), a hub name, a ``datasets.Dataset``, a ``datasets.DatasetDict`` or a
    list of dicts. ``file_format`` only applies to files, ``split`` only to sources with splits.
    """
    if isinstance(source, str) and not source.strip():
        raise DataError("no data source given: the path or dataset name is an empty string")
    if isinstance(source, str) and not os.path.lexists(source) and file_format is None and looks_like_hub_name(source):
        return _read_hub(source, split)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.is_dir() and file_format is None:
            return _read_directory(path, split)
        _refuse_split(split, "a file")
        return read_file(path, file_format), str(source)
    if file_format is not None:
        raise ValueError("file_format= only applies when loading from a file path")
    if isinstance(source, datasets.DatasetDict):
        return _positions(_pick_split(source, split, file=None)), None
    if isinstance(source, (datasets.Dataset, list)):
        _refuse_split(split, f"a {type(source).__name__}")
        return _positions(source), None
    raise TypeError(
        "expected a path, a hub dataset name, a datasets.Dataset or DatasetDict, or a list of dicts, "
        f"got {type(source).__name__}"
    )


def _positions(rows) -> list[tuple[int, object]]:
    return list(enumerate(rows, start=1))


def _refuse_split(split: str | None, what: str) -> None:
    if split is not None:
        raise ValueError(
            f"split={split!r} does not apply to {what}, which has no splits; it picks a split of a DatasetDict, a "
            "directory saved from one, or a hub dataset"
        )


def _pick_split(splits: datasets.DatasetDict, split: str | None, *, file) -> datasets.Dataset:
    split = split or DEFAULT_SPLIT
    if split not in splits:
        raise DataError(f"has no split {split!r}; its splits are {', '.join(map(repr, splits))}", file=file)
    return splits[split]


def _read_directory(path: Path, split: str | None):
    """Rows of a directory written by ``save_to_disk``; a ``DatasetDict`` one gives the rows of ``split``."""
    if not (path / "dataset_dict.json").is_file() and not (path / "state.json").is_file():
        raise DataError(
            "is a directory but not a dataset saved with datasets' save_to_disk (it has neither dataset_dict.json "
            "nor state.json): pass a data file, or such a directory",
            file=path,
        )
    try:
        loaded = datasets.load_from_disk(str(path))
    except (OSError, ValueError) as error:
        raise DataError(f"cannot be read as a saved dataset: {_first_line(error)}", file=path) from None
    if isinstance(loaded, datasets.DatasetDict):
        chosen = split or DEFAULT_SPLIT
        return _positions(_pick_split(loaded, chosen, file=path)), f"{path} (split {chosen!r})"
    _refuse_split(split, f"{path}, a saved Dataset")
    return _positions(loaded), str(path)


def _read_hub(name: str, split: str | None):
    """Rows of ``datasets.load_dataset(name, split=split)``; what cannot be had is one :class:`DataError` line."""
    split = split or DEFAULT_SPLIT
    where = f"{name} (split {split!r})"
    try:
        dataset = datasets.load_dataset(name, split=split)
    except datasets.exceptions.DatasetNotFoundError as error:
        raise DataError(
            f"no such file or directory, and no dataset of that name on the Hugging Face Hub ({_first_line(error)})",
            file=name,
        ) from None
    except ConnectionError:
        if datasets.config.HF_HUB_OFFLINE:
            reason = "not in the local Hugging Face cache (HF_HUB_OFFLINE is set)"
        else:
            reason = "not in the local Hugging Face cache, and the Hub could not be reached"
        raise DataError(
            f"dataset not available offline: no such file or directory here, and {reason}. To use it, run "
            f"datasets.load_dataset({name!r}, split={split!r}).save_to_disk('DIR') on a machine with network, copy "
            "DIR here and pass DIR instead of the name",
            file=name,
        ) from None
    except (OSError, ValueError) as error:  # e.g. an unknown split, a missing config name, a broken cache
        raise DataError(f"cannot be loaded from the Hugging Face Hub: {_first_line(error)}", file=where) from None
    return _positions(dataset), where


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__

"""The help and choices of the options that name judgment data, shared by the commands that read it.

``--train_data`` (and ``--eval_data``, ``inspect``'s ``DATA``, ``eval``'s ``--references``) go to
:func:`cutalign.data.load_judgments` with ``--format`` and ``--split``. Kept here, free of imports, so that every
command's ``--help`` says the same thing without loading ``datasets``.
"""

from __future__ import annotations

DATA_FORMATS = ("auto", "ultrafeedback", "shepherd", "summarization")
"""The formats ``load_judgments`` reads (``cutalign.data.formats.DATA_FORMATS``; a test keeps the two equal:
importing that module loads ``datasets``, which would slow down every ``--help``)."""

SOURCE_HELP = ("a data file (JSONL/JSON/CSV/Parquet, canonical or the reference layout), a directory written by "
               "datasets' save_to_disk, or a Hugging Face Hub dataset name (offline: one in the local cache)")

FORMAT_HELP = ("what the rows hold: auto (canonical or the reference layout, told from the columns), or a public "
               "dataset's layout, converted: ultrafeedback, shepherd, summarization")

SPLIT_HELP = ("the split to read from a save_to_disk DatasetDict directory or a hub dataset (default: train); "
              "refused for a file, which has no splits")

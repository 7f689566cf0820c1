"""The columns a judgment source may carry, and what to say about one it may not.

An unknown column is reported, never silently ignored: a misspelt ``judgement`` would make every row a positive,
and a ``response`` column would leave the rows without their completion. The report names the file, the first row
carrying the column and the column, and adds what is likely meant: a known synonym (``response`` ->
``completion``), a close spelling (:mod:`difflib`), or the ``format`` to load a recognisable public dataset with.
"""

from __future__ import annotations

import difflib
import logging

from .schema import DataError

logger = logging.getLogger("cutalign.data")

UNKNOWN_COLUMN_MODES = ("error", "warn")

CANONICAL_COLUMNS = ("prompt", "completion", "judgment", "score", "id", "refinement")
REFERENCE_COLUMNS = ("instruction", "input", "output", "judgment", "score", "id", "refinement")
REFERENCE_INFORMATIONAL = ("generator", "dataset", "prompt")
"""Accepted in the reference layout and dropped, because the generation files in that layout carry them:
``generator`` and ``dataset`` (AlpacaEval records, as `cutalign eval` writes and reads them as references) and
``prompt`` (the chat messages that `cutalign eval` keeps beside their text in ``instruction``)."""

ACCEPTED = {
    "canonical": frozenset(CANONICAL_COLUMNS),
    "reference": frozenset(REFERENCE_COLUMNS + REFERENCE_INFORMATIONAL),
}
_SYNONYMS = {
    "canonical": {
        "response": "completion", "output": "completion", "answer": "completion", "question": "prompt",
        "query": "prompt", "messages": "prompt", "critique": "judgment", "feedback": "judgment",
    },
    "reference": {"completion": "output", "response": "output", "critique": "judgment", "feedback": "judgment"},
}
_NOTES = {"messages": "(a prompt may be a list of chat messages; the response goes in 'completion')"}
_CONVERTERS = "cutalign.data.converters"


def _load_with(format: str) -> str:
    return f"load with format='{format}' (cutalign train --format {format})"


def format_hint(columns) -> str:
    """A sentence naming the ``format`` (or converter) for a recognisable public format among ``columns``, or ``""``."""
    columns = set(columns)
    if columns & {"chosen", "rejected"}:
        return (f"'chosen'/'rejected' are preference pairs (as {_CONVERTERS}.ultrafeedback_pairs writes them), not "
                "judgments: CUT needs a judgment per response, so load the data they came from with its format "
                f"(for UltraFeedback, {_load_with('ultrafeedback')})")
    if "completions" in columns:
        return f"this looks like UltraFeedback: {_load_with('ultrafeedback')}"
    if "feedback" in columns and columns & {"question", "answer"}:
        return f"this looks like Shepherd's feedback file: {_load_with('shepherd')}"
    if "metadata" in columns:
        return ("this looks like Shepherd's raw file, which holds no critiques: load its feedback file with "
                f"format='shepherd', or pair the two with {_CONVERTERS}.convert_shepherd(feedback, raw) to keep the "
                "corrected answers as refinements")
    if "data" in columns:
        return f"this looks like summarization critiques: {_load_with('summarization')}"
    return ""


def describe_unknown(column: str, layout: str, columns) -> str:
    """Why ``column`` is refused in ``layout``, with a suggestion and a format hint where there is one."""
    name = str(column)
    meant = _SYNONYMS[layout].get(name) or next(
        iter(difflib.get_close_matches(name, sorted(ACCEPTED[layout]), n=1, cutoff=0.75)), None
    )
    known = CANONICAL_COLUMNS if layout == "canonical" else REFERENCE_COLUMNS
    message = f"unknown column (the {layout} layout has {', '.join(known)})."
    if meant:
        message += f" Did you mean '{meant}'?" + (f" {_NOTES[name]}" if name in _NOTES else "")
    hint = format_hint(columns)
    if hint:
        message += f" {hint[0].upper()}{hint[1:]}."
    return message


def unknown_columns(rows, layout: str) -> dict:
    """``{column: first row number carrying it}`` for the columns ``layout`` does not accept, in order of appearance.

    ``rows`` are ``(row number, raw row)`` pairs; rows that are not objects are left to the row checks.
    """
    accepted, first_row = ACCEPTED[layout], {}
    for number, raw in rows:
        if isinstance(raw, dict):
            for column in raw:
                if column not in accepted and column not in first_row:
                    first_row[column] = number
    return first_row


def check_columns(rows, layout: str, *, file, unknown: str = "error") -> list[str]:
    """Report the unknown columns of ``rows`` (see :func:`unknown_columns`) and return their names.

    ``unknown="error"`` raises :class:`DataError` for the first one, naming the others; ``"warn"`` logs a warning
    per column and lets the rows load without them (for readers that only show rows, such as the annotation page).
    """
    if unknown not in UNKNOWN_COLUMN_MODES:
        raise ValueError(f"unknown_columns must be one of {', '.join(UNKNOWN_COLUMN_MODES)}, got {unknown!r}")
    found = unknown_columns(rows, layout)
    for column, row in found.items():
        message = describe_unknown(column, layout, found)
        if unknown == "error":
            others = [str(name) for name in found if name != column]
            if others:
                message += f" Other unknown columns: {', '.join(others)}."
            raise DataError(message, file=file, row=row, field=str(column))
        logger.warning("%s (ignored)", DataError(message, file=file, row=row, field=str(column)))
    return [str(column) for column in found]

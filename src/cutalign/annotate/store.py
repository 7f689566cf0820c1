"""Human judgments kept in an append-only journal next to the rows they judge.

The rows come from a file of (instruction, response) pairs: a generations file written by ``cutalign eval`` or
``cutalign online``, or any dataset in the canonical schema (read with :func:`cutalign.data.load_judgments`).
The journal lives beside it as ``<input>.judgments.jsonl``; every line is one record::

    {"row_id": "17", "verdict": "bad", "judgment": "The answer uses commas.", "annotator": "ana",
     "time": "2026-11-25T10:02:03.120000+00:00", "revision": 2}

* ``row_id``: the ``id`` of the judged row in the input;
* ``verdict``: ``"good"`` (the response needs no judgment), ``"bad"`` (``judgment`` holds the critique) or
  ``"skip"`` (the annotator passed on the row without deciding);
* ``judgment``: the critique for ``"bad"``, ``null`` otherwise;
* ``annotator``: who wrote the record; ``time``: when, in UTC, ISO 8601;
* ``revision``: 1 for the row's first record, 2 for the next one, ...: records are never rewritten, a later
  edit of a row is a new revision and the earlier ones stay visible.

The latest ``good``/``bad`` record of a row is its *decision*; a skip never replaces a decision. Appends happen
under a thread lock and an exclusive ``flock`` on the journal, each followed by ``fsync``, so that a saved record
survives a crash, and two people saving the same row (through one server or two) both land in the journal, in
order, with distinct revisions. A line torn by a crash mid-write was never acknowledged: it is reported and cut
off before the next append. Blank lines hold no record and are skipped.
"""

import datetime
import fcntl
import json
import logging
import os
import threading
from pathlib import Path

from cutalign.data import DataError, read_judgments
from cutalign.io import write_jsonl

logger = logging.getLogger("cutalign.annotate")

VERDICTS = ("good", "bad", "skip")
DECISIONS = ("good", "bad")
MAX_JUDGMENT_BYTES = 8 * 1024
"""A judgment longer than this (UTF-8 bytes) is refused: critiques are a few sentences, not documents."""


def journal_path(path) -> Path:
    """The journal of ``path``: ``<path>.judgments.jsonl`` in the same directory."""
    return Path(str(path).rstrip("/") + ".judgments.jsonl")


def load_rows(path) -> list[dict]:
    """The rows to annotate: ``{"id", "prompt", "completion", "judgment"}`` in input order, ids unique.

    ``judgment`` is the one the input already carries (e.g. an AI judge's), shown as a starting point. Columns the
    page does not show (a generations file's ``seed``, say) are reported in a warning, not refused; rows whose
    judgment is a failure marker are left out and reported, as in every load of judgment data.
    """
    rows = [
        {"id": row["id"], "prompt": row["prompt"], "completion": row["completion"], "judgment": row["judgment"]}
        for row in read_judgments(path, unknown_columns="warn").dataset.to_list()
    ]
    first_row = {}
    for number, row in enumerate(rows, start=1):
        if row["id"] in first_row:
            raise DataError(
                f"duplicate id {row['id']!r} (first on row {first_row[row['id']]}): judgments are keyed by id",
                file=path, row=number, field="id",
            )
        first_row[row["id"]] = number
    return rows


def _check_record(record, *, file, line: int, row_ids) -> dict:
    def fail(message, field=None):
        return DataError(message, file=file, row=line, field=field)

    if not isinstance(record, dict):
        raise fail(f"must be an object, got {type(record).__name__}")
    for key, kind, name in (("row_id", str, "a string"), ("verdict", str, "a string"), ("annotator", str, "a string"),
                            ("time", str, "a string"), ("revision", int, "an integer")):
        if not isinstance(record.get(key), kind) or isinstance(record.get(key), bool):
            raise fail(f"must be {name}, got {record.get(key)!r}", key)
    if record["row_id"] not in row_ids:
        raise fail(f"row id {record['row_id']!r} is not in the input file", "row_id")
    if record["verdict"] not in VERDICTS:
        raise fail(f"must be one of {', '.join(VERDICTS)}, got {record['verdict']!r}", "verdict")
    judgment = record.get("judgment")
    if record["verdict"] == "bad" and not (isinstance(judgment, str) and judgment.strip()):
        raise fail("a 'bad' verdict needs a non-empty judgment", "judgment")
    if record["verdict"] != "bad" and judgment is not None:
        raise fail(f"must be null for a {record['verdict']!r} verdict", "judgment")
    return record


def decision(revisions: list[dict]) -> dict | None:
    """The latest ``good``/``bad`` record of a row, or ``None`` when it was never decided."""
    return next((record for record in reversed(revisions) if record["verdict"] in DECISIONS), None)


def status(revisions: list[dict]) -> str:
    """``"good"``/``"bad"`` for a decided row, ``"skip"`` for a row only skipped, ``"open"`` otherwise."""
    decided = decision(revisions)
    if decided is not None:
        return decided["verdict"]
    return "skip" if revisions else "open"


class Journal:
    """The rows of one input file and the records of its journal, kept in step with the file.

    Other processes may append to the same journal: :meth:`refresh` reads what they wrote, and :meth:`append`
    refreshes under the file lock before numbering its revision.
    """

    def __init__(self, rows: list[dict], path):
        self.rows = rows
        self.path = Path(path)
        self.index = {row["id"]: position for position, row in enumerate(rows)}
        self.revisions: dict[str, list[dict]] = {row["id"]: [] for row in rows}
        self._offset = 0  # bytes of the journal already replayed
        self._lines = 0  # lines already replayed, for error messages
        self._torn = b""  # an unterminated last line left by a crash
        self._lock = threading.Lock()
        self.refresh()

    def _replay_new(self, handle) -> None:
        """Replay the complete lines appended since the last read; call holding the lock and a ``flock``."""
        handle.seek(self._offset)
        complete, _, torn = handle.read().rpartition(b"\n")
        if torn and torn != self._torn:
            logger.warning("%s ends with an unterminated line (a write cut short?), ignored: %r", self.path, torn)
        self._torn = torn
        if not complete:
            return
        for raw in complete.split(b"\n"):
            self._lines += 1
            if not raw.strip():
                continue  # a blank line (an editor's, say) holds no record; line numbers still count it
            try:
                record = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as error:
                raise DataError(f"is not a JSON record: {error}", file=self.path, row=self._lines) from None
            record = _check_record(record, file=self.path, line=self._lines, row_ids=self.index)
            self.revisions[record["row_id"]].append(record)
        self._offset += len(complete) + 1

    def refresh(self) -> None:
        """Pick up records appended since the last read, by this process or another."""
        with self._lock:
            try:
                handle = open(self.path, "rb")
            except FileNotFoundError:
                return
            with handle:
                fcntl.flock(handle, fcntl.LOCK_SH)  # never read another process's half-written line
                self._replay_new(handle)

    def append(self, row_id: str, verdict: str, judgment: str | None, annotator: str) -> tuple[dict, int]:
        """Write one record, durably; return it with the row's latest revision number before it."""
        if row_id not in self.index:
            raise KeyError(row_id)
        if verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {', '.join(VERDICTS)}, got {verdict!r}")
        with self._lock, open(self.path, "a+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file closes
            self._replay_new(handle)
            if self._torn:
                logger.warning("%s: cutting off the unterminated last line %r", self.path, self._torn)
                handle.truncate(self._offset)
                self._torn = b""
            previous = len(self.revisions[row_id])
            record = {
                "row_id": row_id,
                "verdict": verdict,
                "judgment": judgment if verdict == "bad" else None,
                "annotator": annotator,
                "time": datetime.datetime.now(datetime.timezone.utc).isoformat(),
                "revision": previous + 1,
            }
            line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())
            self.revisions[row_id].append(record)
            self._offset += len(line)
            self._lines += 1
        return record, previous

    def progress(self) -> dict:
        """``done`` (decided rows), ``skipped`` (skipped, undecided), ``total``."""
        statuses = [status(revisions) for revisions in self.revisions.values()]
        done = sum(state in DECISIONS for state in statuses)
        return {"done": done, "skipped": statuses.count("skip"), "total": len(statuses)}

    def start_index(self) -> int:
        """Where to continue: the first row never touched, else the first undecided (skipped) one, else 0."""
        for wanted in ("open", "skip"):
            for position, row in enumerate(self.rows):
                if status(self.revisions[row["id"]]) == wanted:
                    return position
        return 0


def export(path, out) -> dict:
    """Write the canonical judgment dataset of ``path``: one row per decided row, its latest decision.

    Rows are ``{"id", "prompt", "completion", "judgment"}`` (``judgment`` null for a good response), in input
    order, written to ``out`` as JSONL atomically. Returns the counts: ``exported``, ``good``, ``bad``,
    ``undecided`` (never decided rows, not exported) and ``total``.
    """
    out = Path(out)
    journal = Journal(load_rows(path), journal_path(path))
    if out.resolve() in (Path(path).resolve(), journal.path.resolve()):
        raise ValueError(f"refusing to overwrite {out} with the export: choose another output path")
    exported = []
    for row in journal.rows:
        decided = decision(journal.revisions[row["id"]])
        if decided is not None:
            exported.append({key: row[key] for key in ("id", "prompt", "completion")} | {"judgment": decided["judgment"]})
    write_jsonl(out, exported)
    bad = sum(row["judgment"] is not None for row in exported)
    if len(exported) < len(journal.rows):
        logger.warning(
            "%d of %d rows of %s have no decision yet (never judged, or only skipped) and were not exported",
            len(journal.rows) - len(exported), len(journal.rows), path,
        )
    return {
        "exported": len(exported),
        "good": len(exported) - bad,
        "bad": bad,
        "undecided": len(journal.rows) - len(exported),
        "total": len(journal.rows),
    }

"""The human judge: a person fills in a JSONL file of the rows, e.g. with ``cutalign annotate``."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

from ..data import DataError
from ..io import write_jsonl
from .base import Judgment, check_lengths


class HumanJudge:
    """A person judges the rows in a JSONL file; the judge waits until the file comes back complete.

    For each batch it writes ``<directory>/todo-<key>.jsonl`` with rows ``{"id", "prompt", "completion",
    "judgment": null}`` (``key`` is a hash of the rows, so the same rows give the same file after a restart) and
    waits, checking every ``poll_seconds``, for ``<directory>/done-<key>.jsonl``: the same rows with ``judgment``
    filled in (null or "" = good). ``cutalign annotate todo-<key>.jsonl`` and its export to ``done-<key>.jsonl``
    produce it; so does editing a copy by hand. The file is read only when every row is there; a row with an unknown
    id, a changed prompt or completion, or a judgment that is not a string or null is a :class:`DataError`.
    """

    def __init__(self, directory, *, poll_seconds: float = 10.0, timeout_s: float | None = None):
        self.directory = Path(directory)
        self.poll_seconds, self.timeout_s = poll_seconds, timeout_s

    def files(self, instructions, responses) -> tuple[Path, Path]:
        key = hashlib.sha256(json.dumps([list(instructions), list(responses)]).encode()).hexdigest()[:12]
        return self.directory / f"todo-{key}.jsonl", self.directory / f"done-{key}.jsonl"

    def __call__(self, instructions, responses) -> list[Judgment]:
        check_lengths(instructions, responses)
        todo, done = self.files(instructions, responses)
        rows = [{"id": str(i), "prompt": p, "completion": c, "judgment": None}
                for i, (p, c) in enumerate(zip(instructions, responses), start=1)]
        if not todo.exists():
            self.directory.mkdir(parents=True, exist_ok=True)
            write_jsonl(todo, rows)
        print(f"waiting for human judgments: judge the {len(rows)} rows of {todo} (e.g. `cutalign annotate {todo}`) "
              f"and write them to {done}", flush=True)
        started = time.monotonic()
        while True:
            judgments = read_human_judgments(done, rows)
            if judgments is not None:
                return judgments
            if self.timeout_s is not None and time.monotonic() - started > self.timeout_s:
                raise TimeoutError(f"{done} was not completed within {self.timeout_s} s")
            time.sleep(self.poll_seconds)


def read_human_judgments(path: Path, rows: list[dict]) -> list[Judgment] | None:
    """The judgments of ``rows`` from the filled-in file, in row order; None while the file lacks some rows."""
    if not path.exists():
        return None
    expected = {row["id"]: row for row in rows}
    found: dict[str, str | None] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataError(f"invalid JSON: {error.msg}", file=path, row=number) from None
        if not isinstance(record, dict):
            raise DataError("must be an object", file=path, row=number)
        row_id = str(record.get("id"))
        if row_id not in expected:
            raise DataError(f"unknown id {record.get('id')!r}", file=path, row=number, field="id")
        for key in ("prompt", "completion"):
            if key in record and record[key] != expected[row_id][key]:
                raise DataError(f"differs from the row given to judge (id {row_id})", file=path, row=number, field=key)
        judgment = record.get("judgment")
        if judgment is not None and not isinstance(judgment, str):
            raise DataError(f"must be a string or null, got {type(judgment).__name__}", file=path, row=number,
                            field="judgment")
        found[row_id] = judgment.strip() or None if isinstance(judgment, str) else None
    if len(found) < len(expected):
        return None
    return [found[row["id"]] for row in rows]

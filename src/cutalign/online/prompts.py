"""Where the online loop's instructions come from: the built-in task, or a file of the user's, and the held-out set.

``prompts:`` in the config (:class:`PromptsConfig`). Without ``file`` the instructions are the built-in task's
(``task:``; today's behaviour). With ``file`` they are the user's: a JSONL, JSON, CSV or Parquet file, or a
directory written by ``datasets.Dataset.save_to_disk``, whose ``column`` holds an instruction per row (a string, or
a list of chat messages ``{"role", "content"}``).

Before any model loads (:func:`prepare_prompts`, given the tokenizer) every instruction is checked: an empty set,
an instruction given twice (reported with counts and rows, never dropped silently) and an instruction whose
rendered prompt has more than ``max_prompt_length`` tokens (reported with row numbers; never cut) are errors.

Held-out instructions come from ``heldout_file`` or from a held-out split of ``heldout_size`` instructions drawn
under the seed; both, and the instructions of a pairwise evaluation's reference file, are removed from the training
instructions, so no round trains on an instruction it is evaluated on. The rest is shuffled once under the seed
and written to ``prompt_pool.json`` in the run directory: round ``k`` takes the ``k``-th slice of
``prompts_per_round`` instructions, so a round never repeats an earlier round's. When the slice runs past the end
the loop stops, or, with ``reuse: true``, goes round the pool again. A resumed run reads the pool back and refuses
to go on if a prompt file changed (its SHA-256 is recorded).
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from pathlib import Path

from ..data.templates import plain_prompt
from ..errors import UsageError
from ..generation import instruction_text
from ..io import read_json, write_json

PROMPT_COLUMNS = ("instruction", "prompt")
"""The columns looked for, in order, when ``prompts.column`` is not given."""

DEFAULT_TASK_HELDOUT = 48
"""Held-out prompts of the built-in task when ``heldout_size`` is not given (a file gets no split by default)."""


@dataclass
class PromptsConfig:
    """The ``prompts:`` section: the training instructions and the held-out ones (see the module docstring)."""

    file: str | None = None  # None: the built-in task (task:)
    column: str | None = None  # default: "instruction", else "prompt"
    heldout_file: str | None = None  # held-out instructions (same formats; e.g. an AlpacaEval reference file)
    heldout_size: int | None = None  # a seeded held-out split of `file` (default none); the task's: 48
    reuse: bool = False  # go round the pool again when it runs out, instead of stopping
    max_prompt_length: int = 1024  # tokens of a rendered prompt (chat template included)


def check_section(prompts: PromptsConfig, fail) -> None:
    """What can be checked without reading the files' rows: keys that fit the source, files that exist."""
    if prompts.file is None:
        for name, default in (("column", None), ("heldout_file", None), ("reuse", False)):
            if getattr(prompts, name) != default:
                fail(f"prompts.{name} applies to prompts.file only (the built-in task is configured by task:)")
    for name in ("file", "heldout_file"):
        path = getattr(prompts, name)
        if path is not None and not Path(path).exists():
            fail(f"prompts.{name}: {path} does not exist")
    if prompts.heldout_file is not None and prompts.heldout_size is not None:
        fail("prompts.heldout_file and prompts.heldout_size exclude each other (a file, or a split of prompts.file)")
    if prompts.heldout_size is not None and prompts.heldout_size < 0:
        fail(f"prompts.heldout_size must be >= 0, got {prompts.heldout_size}")
    if prompts.max_prompt_length < 1:
        fail(f"prompts.max_prompt_length must be >= 1, got {prompts.max_prompt_length}")


def read_instructions(path, column: str | None, key: str) -> list[tuple[int, object]]:
    """``(row number, instruction)`` pairs of a file or ``save_to_disk`` directory; :class:`UsageError` naming
    ``key`` (the config key) and the row for anything that is not an instruction."""
    from ..data.files import read_file  # the project's one reader of JSON/JSONL/CSV/Parquet, with row numbers
    from ..data.schema import DataError

    path = Path(path)
    try:
        if path.is_dir():
            import datasets

            data = datasets.load_from_disk(str(path))
            if not isinstance(data, datasets.Dataset):
                raise UsageError(f"{key}: {path} holds a DatasetDict ({', '.join(data)}); save the split to use")
            rows = list(enumerate(data, start=1))
        else:
            rows = read_file(path)
    except DataError as error:
        raise UsageError(f"{key}: {error}") from None
    except (OSError, ValueError) as error:
        raise UsageError(f"{key}: cannot read {path}: {error}") from None
    if not rows:
        raise UsageError(f"{key}: {path} holds no instructions")
    first = rows[0][1] if isinstance(rows[0][1], dict) else {}
    if column is None:
        column = next((c for c in PROMPT_COLUMNS if c in first), None)
        if column is None:
            raise UsageError(f"{key}: {path} has no column {' or '.join(PROMPT_COLUMNS)} (its columns: "
                             f"{', '.join(map(str, first)) or 'none'}); name the column with prompts.column")
    out = []
    for row, record in rows:
        value = record.get(column) if isinstance(record, dict) else None
        problem = _instruction_problem(value)
        if problem:
            raise UsageError(f"{key}: {path}, row {row}, column {column!r}: {problem}")
        out.append((row, value if isinstance(value, str) else [dict(m) for m in value]))
    return out


def _instruction_problem(value) -> str | None:
    """Why ``value`` is not an instruction (a non-empty string, or chat messages ending with a user turn)."""
    if isinstance(value, str):
        return None if value.strip() else "is empty"
    if not isinstance(value, list) or not value:
        return f"must be a string or a list of chat messages, got {type(value).__name__}"
    for message in value:
        if not isinstance(message, dict) or not all(isinstance(message.get(k), str) for k in ("role", "content")):
            return "every chat message must have the strings 'role' and 'content'"
    if value[-1]["role"] != "user":
        return "the last chat message must be the user's (the turn the model answers)"
    return None


def key_of(prompt) -> str:
    """What makes two instructions the same: the text, or the conversation as JSON."""
    return prompt if isinstance(prompt, str) else json.dumps(prompt, sort_keys=True, ensure_ascii=False)


def check_duplicates(rows: list[tuple[int, object]], where: str) -> None:
    """Refuse a set that holds an instruction twice: how many, which, and their rows."""
    seen: dict[str, list[int]] = {}
    for row, prompt in rows:
        seen.setdefault(key_of(prompt), []).append(row)
    repeated = [(k, r) for k, r in seen.items() if len(r) > 1]
    if repeated:
        extra = sum(len(r) - 1 for _, r in repeated)
        shown = "; ".join(f"{k[:60]!r} x{len(r)} (rows {', '.join(map(str, r[:5]))}{', ...' if len(r) > 5 else ''})"
                          for k, r in repeated[:5])
        raise UsageError(f"{where}: {len(repeated)} instruction(s) appear more than once ({extra} extra row(s) of "
                         f"{len(rows)}): {shown}{'; ...' if len(repeated) > 5 else ''}. Remove the repeats: a round "
                         "must not train twice on one instruction")


def check_lengths(rows: list[tuple[int, object]], where: str, tokenizer, template: str, limit: int) -> None:
    """Refuse instructions whose rendered prompt is longer than ``limit`` tokens (they are never cut)."""
    long = []
    for row, prompt in rows:
        text = plain_prompt(prompt, template, tokenizer)
        n = len(tokenizer(text, add_special_tokens=template == "alpaca")["input_ids"])
        if n > limit:
            long.append((row, n))
    if long:
        shown = ", ".join(f"{row} ({n} tokens)" for row, n in long[:20])
        raise UsageError(f"{where}: {len(long)} instruction(s) are longer than prompts.max_prompt_length ({limit} "
                         f"tokens, chat template included): rows {shown}{' and more' if len(long) > 20 else ''}. "
                         "Shorten or remove them, or raise max_prompt_length")


def file_digest(path) -> str:
    """SHA-256 of a file, or of a directory's files (names and bytes, in name order)."""
    digest = hashlib.sha256()
    path = Path(path)
    for file in sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]:
        digest.update(str(file.relative_to(path) if path.is_dir() else file.name).encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()


class PromptPool:
    """The training instructions of a run (in their seeded order) and its held-out instructions."""

    def __init__(self, train: list, heldout: list, prompts_per_round: int, reuse: bool):
        self.train, self.heldout = train, heldout
        self.n, self.reuse = prompts_per_round, reuse

    def for_round(self, index: int) -> list | None:
        """Round ``index``'s instructions (1-based), or None when the pool has run out (and ``reuse`` is off)."""
        start = (index - 1) * self.n
        if self.reuse:
            return [self.train[(start + i) % len(self.train)] for i in range(self.n)]
        if start + self.n > len(self.train):
            return None
        return self.train[start:start + self.n]

    def exhausted(self, index: int) -> str:
        left = max(0, len(self.train) - (index - 1) * self.n)
        return (f"round {index} needs {self.n} new instructions but {left} of the {len(self.train)} training "
                f"instructions are left unused: stopping after round {index - 1} (set prompts.reuse: true to go "
                "round them again, or add instructions to prompts.file)")


def prepare_prompts(config, run_dir: Path, tokenizer, template: str, exclude=()) -> PromptPool:
    """Read, check and split the user's instructions (or read them back from ``prompt_pool.json`` on resume).

    ``exclude``: further instructions no round may train on (a pairwise evaluation's reference instructions).
    """
    p = config.prompts
    path = run_dir / "prompt_pool.json"
    sources = {name: getattr(p, name) for name in ("file", "heldout_file") if getattr(p, name) is not None}
    digests = {name: file_digest(value) for name, value in sources.items()}
    if path.exists():
        saved = read_json(path)
        changed = [f"prompts.{name} ({sources[name]})" for name in sources if saved["sha256"].get(name) != digests[name]]
        if changed:
            raise UsageError(f"{run_dir}: {' and '.join(changed)} changed since this run started; restore the "
                             "file or start a new run (another output_dir)")
        return PromptPool(saved["train"], read_json(run_dir / "heldout.json"), config.prompts_per_round, p.reuse)

    rows = read_instructions(p.file, p.column, "prompts.file")
    check_duplicates(rows, f"prompts.file ({p.file})")
    check_lengths(rows, f"prompts.file ({p.file})", tokenizer, template, p.max_prompt_length)
    if p.heldout_file is not None:
        held_rows = read_instructions(p.heldout_file, p.column, "prompts.heldout_file")
        check_duplicates(held_rows, f"prompts.heldout_file ({p.heldout_file})")
        check_lengths(held_rows, f"prompts.heldout_file ({p.heldout_file})", tokenizer, template, p.max_prompt_length)
        heldout = [prompt for _, prompt in held_rows]
        rest = rows
    else:
        size = p.heldout_size or 0
        if size >= len(rows):
            raise UsageError(f"prompts.heldout_size ({size}) leaves none of the {len(rows)} instructions of "
                             f"{p.file} to train on")
        order = list(range(len(rows)))
        random.Random(config.seed).shuffle(order)
        held = sorted(order[:size])
        heldout = [rows[i][1] for i in held]
        rest = [rows[i] for i in sorted(order[size:])]
    excluded = {instruction_text(x) for x in [*heldout, *exclude]}  # by the instruction, whatever its form
    train = [prompt for _, prompt in rest if instruction_text(prompt) not in excluded]
    random.Random(config.seed + 1).shuffle(train)
    if len(train) < config.prompts_per_round:
        raise UsageError(f"prompts.file ({p.file}) leaves {len(train)} training instruction(s) after the held-out "
                         f"and reference ones ({len(rest) - len(train)} removed), fewer than prompts_per_round "
                         f"({config.prompts_per_round}); a round never repeats an instruction")
    write_json(run_dir / "heldout.json", heldout)
    write_json(path, {"sha256": digests, "sources": sources, "removed_as_heldout": len(rest) - len(train),
                      "train": train})
    return PromptPool(train, heldout, config.prompts_per_round, p.reuse)


def task_round_prompts(config, index: int) -> list[str]:
    """The built-in task's fresh prompts of round ``index`` (1-based), the same whatever the number of rounds.

    ``task_prompts`` visits the base instructions in an order fixed by the seed, so the slice of round ``index``
    holds base instructions no earlier round used until the task's instructions run out.
    """
    from ..tasks import task_prompts

    n = config.prompts_per_round
    kinds = tuple(config.task.kinds) if config.task.kinds else None
    prompts = task_prompts("train", n=n * index, kinds=kinds, seed=config.seed,
                           constraints_per_prompt=config.task.constraints_per_prompt)
    return prompts[n * (index - 1):]


def task_heldout_prompts(config, size: int) -> list[str]:
    """``size`` held-out prompts of the built-in task (no base instruction shared with the training prompts)."""
    from ..tasks import task_prompts

    kinds = tuple(config.task.kinds) if config.task.kinds else None
    return task_prompts("heldout", n=size, kinds=kinds, seed=config.seed,
                        constraints_per_prompt=config.task.constraints_per_prompt)


class TaskPrompts:
    """The built-in task as a prompt source: fresh training prompts per round, and its held-out prompts."""

    def __init__(self, config, run_dir: Path, default_size: int = DEFAULT_TASK_HELDOUT):
        self.config = config
        path = run_dir / "heldout.json"
        if not path.exists():
            write_json(path, task_heldout_prompts(config, config.prompts.heldout_size or default_size))
        self.heldout = read_json(path)

    def for_round(self, index: int) -> list:
        return task_round_prompts(self.config, index)

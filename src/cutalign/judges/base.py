"""What every judge shares: the judge protocol, :class:`JudgeFailure`, the judgment prompt and its parser.

A judge is any callable ``judge(instructions, responses) -> list`` that returns, for each row in order,

* ``None``: the response is good;
* a string: the judgment, a critique of what is wrong;
* a :class:`JudgeFailure`: this row could not be judged (an empty or unparseable judgment, an HTTP error that
  outlived its retries, an exception inside a user function). The online loop reports such rows, leaves them out
  of the round's training data and judges them again when the run is resumed before the round is trained.

An exception raised by the judge itself (not for one row) stops the run; rows judged before it are kept.

Model and endpoint judges are asked with :data:`JUDGE_PROMPT` (read from ``configs/prompts/judge.txt``; a config
may name another template file) and answer either with :data:`NO_ISSUES` or with a
critique; :func:`parse_judgment` turns the answer into ``None``, a critique or a failure.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

NO_ISSUES = "No issues."
"""The fixed answer of a model judge for a good response (what ``cutalign train-judge`` teaches for positives)."""

JUDGE_PROMPT_FILE = Path(__file__).resolve().parents[1] / "configs" / "prompts" / "judge.txt"
"""The default judgment prompt, a template with ``{instruction}`` and ``{response}`` (Python format fields)."""


def read_prompt_template(path) -> str:
    """A prompt template file's text, without the one newline that ends the file."""
    return Path(path).read_text(encoding="utf-8").removesuffix("\n")


JUDGE_PROMPT = read_prompt_template(JUDGE_PROMPT_FILE)


@dataclass(frozen=True)
class JudgeFailure:
    """A row the judge could not judge, and why."""

    reason: str


Judgment = str | None | JudgeFailure


class Judge(Protocol):
    """One judgment (or failure) per (instruction, response) row, in order."""

    def __call__(self, instructions: Sequence[str], responses: Sequence[str]) -> list[Judgment]: ...


def judge_prompt(instruction: str, response: str, template: str = JUDGE_PROMPT) -> str:
    """The request a model or endpoint judge answers: ``template`` (default :data:`JUDGE_PROMPT`) filled in."""
    return template.format(instruction=instruction, response=response)


def parse_judgment(text) -> Judgment:
    """A judge model's answer as ``None`` (good), a critique, or a failure.

    The answer is stripped (and a leading ``Judgment:`` label dropped). It is *good* when it starts with "no issues"
    (any case). It *fails* when it is empty or holds fewer than two words with letters (e.g. "...", "0 0", "ok").
    Anything else is the critique, as written.
    """
    if not isinstance(text, str):
        return JudgeFailure(f"the judge returned {type(text).__name__}, not text")
    text = re.sub(r"^\s*judgment\s*:\s*", "", text.strip(), flags=re.IGNORECASE).strip()
    if not text:
        return JudgeFailure("empty judgment")
    if re.match(r"no issues\b", text, flags=re.IGNORECASE):
        return None
    if sum(any(ch.isalpha() for ch in token) for token in text.split()) < 2:
        return JudgeFailure(f"unparseable judgment {text[:80]!r}")
    return text


def check_lengths(instructions: Sequence[str], responses: Sequence[str]) -> None:
    """A judge is given one response per instruction; anything else is the caller's bug."""
    if len(instructions) != len(responses):
        raise ValueError(f"got {len(instructions)} instructions and {len(responses)} responses")

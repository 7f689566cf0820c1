"""The rule judge: the built-in task's constraint checks (:func:`cutalign.tasks.rule_judge`) as a judge."""

from __future__ import annotations

from ..tasks import rule_judge
from .base import Judgment, check_lengths


class RuleJudge:
    """Judges each row by the constraints written in its instruction; it never fails a row."""

    def __call__(self, instructions, responses) -> list[Judgment]:
        check_lengths(instructions, responses)
        return [rule_judge(i, r) for i, r in zip(instructions, responses)]

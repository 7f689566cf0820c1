"""The rule judge for the built-in task, and the pass-rate scorer (:class:`cutalign.judges.RuleJudge` is its judge).

The judge works from the instruction text alone: it parses the constraint sentences out of the instruction (see
`parse_constraints`), so prompts read back from a JSON file judge exactly like freshly generated ones.

Rules:
- A response with fewer than `MIN_WORDS` words (after stripping) fails, whatever the instruction: the judgment says
  it is empty or too short to follow the instruction.
- Otherwise every parsed constraint is checked and the judgment joins the judgments of the violated ones.
- An instruction with no constraint sentence is judged by the emptiness rule only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from .constraints import KINDS, parse_constraints, too_short


def rule_judge(instruction: str, response: str) -> str | None:
    """One judgment naming every violated constraint of `instruction`, or None when all hold."""
    if not isinstance(response, str):
        raise TypeError(f"response must be a string, got {type(response).__name__}")
    constraints = parse_constraints(instruction)
    short = too_short(response)
    if short is not None:
        return short
    judgments = [j for j in (c.check(response) for c in constraints) if j is not None]
    return " ".join(judgments) or None


def _check_lengths(instructions: Sequence[str], responses: Sequence[str]) -> None:
    if len(instructions) != len(responses):
        raise ValueError(
            f"got {len(instructions)} instructions and {len(responses)} responses; they must pair up one to one"
        )


def pass_rate(instructions: Sequence[str], responses: Sequence[str]) -> dict:
    """The share of responses that pass `rule_judge`, overall and per constraint kind.

    Returns `{"pass_rate": float, "n": int, "per_kind": {kind: {"pass_rate": float, "n": int}}}`. Per kind, each
    constraint of that kind counts once, judged alone (an empty or near-empty response fails it too); kinds that
    no instruction uses are left out.
    """
    _check_lengths(instructions, responses)
    if not instructions:
        raise ValueError("pass_rate needs at least one response to score")
    passed = 0
    per_kind: dict[str, list[int]] = {}  # kind -> [passed, n]
    for instruction, response in zip(instructions, responses):
        passed += rule_judge(instruction, response) is None
        for constraint in parse_constraints(instruction):
            counts = per_kind.setdefault(constraint.kind, [0, 0])
            counts[0] += constraint.check(response) is None
            counts[1] += 1
    return {
        "pass_rate": passed / len(instructions),
        "n": len(instructions),
        "per_kind": {
            kind: {"pass_rate": per_kind[kind][0] / per_kind[kind][1], "n": per_kind[kind][1]}
            for kind in KINDS
            if kind in per_kind
        },
    }


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval for a binomial proportion (95% for the default z = 1.96).

    Unlike the normal approximation it stays inside [0, 1] and is sensible near 0 and 1, which matters for the
    small held-out sets of the benchmarks.
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n!r}")
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be between 0 and n ({n}), got {successes!r}")
    p = successes / n
    denominator = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, center - half), min(1.0, center + half)

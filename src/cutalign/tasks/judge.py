"""The rule judge for the built-in task, and the pass-rate scorer (:class:`cutalign.judges.RuleJudge` is its judge).

The judge works from the instruction text alone: it parses the constraint sentences out of the instruction (see
`parse_constraints`), so prompts read back from a JSON file judge exactly like freshly generated ones.

Rules:
- A response with fewer than `MIN_WORDS` words (after stripping) fails, whatever the instruction: the judgment says
  it is empty or too short to follow the instruction.
- Otherwise every parsed constraint is checked and the judgment names each violated one, quoting the evidence, in
  a wording drawn from a few styles (`tasks.feedback`) and seeded by the instruction and response, so the same
  pair always gets the same judgment.
- An instruction with no constraint sentence is judged by the emptiness rule only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from .constraints import KINDS, parse_constraints, phrasing_split, too_short
from .feedback import judgment_rng, write_judgment


def rule_judge(instruction: str, response: str) -> str | None:
    """One judgment naming every violated constraint of `instruction`, or None when all hold."""
    if not isinstance(response, str):
        raise TypeError(f"response must be a string, got {type(response).__name__}")
    constraints = parse_constraints(instruction)
    short = too_short(response)
    if short is not None:
        return short
    violations = [v for v in (c.violation(response) for c in constraints) if v is not None]
    if not violations:
        return None
    return write_judgment(violations, judgment_rng(instruction, response))


def _check_lengths(instructions: Sequence[str], responses: Sequence[str]) -> None:
    if len(instructions) != len(responses):
        raise ValueError(
            f"got {len(instructions)} instructions and {len(responses)} responses; they must pair up one to one"
        )


def pass_rate(instructions: Sequence[str], responses: Sequence[str]) -> dict:
    """The share of responses that pass `rule_judge`, overall, per constraint kind and per phrasing split.

    Returns `{"pass_rate": float, "n": int, "per_kind": {kind: {"pass_rate": float, "n": int}},
    "per_phrasing": {"seen" | "unseen": {"pass_rate": float, "n": int}}}`.

    - Per kind, each constraint of that kind counts once, judged alone (an empty or near-empty response fails it
      too); kinds that no instruction uses are left out.
    - Per phrasing, each instruction counts once, judged whole like the overall rate, under "unseen" when any of
      its constraint sentences uses a phrasing that training prompts never use, else under "seen"
      (`phrasing_split`); instructions without a constraint sentence count in neither, and a split that no
      instruction falls in is left out.
    """
    _check_lengths(instructions, responses)
    if not instructions:
        raise ValueError("pass_rate needs at least one response to score")
    passed = 0
    per_kind: dict[str, list[int]] = {}  # kind -> [passed, n]
    per_phrasing: dict[str, list[int]] = {}  # "seen" / "unseen" -> [passed, n]
    for instruction, response in zip(instructions, responses):
        ok = rule_judge(instruction, response) is None
        passed += ok
        constraints = parse_constraints(instruction)
        for constraint in constraints:
            counts = per_kind.setdefault(constraint.kind, [0, 0])
            counts[0] += constraint.check(response) is None
            counts[1] += 1
        split = phrasing_split(constraints)
        if split is not None:
            counts = per_phrasing.setdefault(split, [0, 0])
            counts[0] += ok
            counts[1] += 1
    return {
        "pass_rate": passed / len(instructions),
        "n": len(instructions),
        "per_kind": {
            kind: {"pass_rate": per_kind[kind][0] / per_kind[kind][1], "n": per_kind[kind][1]}
            for kind in KINDS
            if kind in per_kind
        },
        "per_phrasing": {
            split: {"pass_rate": per_phrasing[split][0] / per_phrasing[split][1], "n": per_phrasing[split][1]}
            for split in ("seen", "unseen")
            if split in per_phrasing
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

"""The guard: after each round's evaluation, keep the round, train it again more gently, or roll it back.

Online rounds can raise the score they are judged by while making the model worse: on the built-in task, three
rounds raised the rule pass rate mostly by shortening the answers (42 -> 25 words on average), and the final model
followed other instructions less often than the starting one. One round did no harm; the harm compounds. The guard
compares each round with the last round it accepted and refuses to build on a round that degrades.

The rule, for the evaluation the ``guard:`` section watches (``eval``; default the first evaluation), comparing the
round with the last accepted round (round 0, the starting model, is always accepted). The round fails when

* its headline score (pass rate, win rate or mean) is more than ``max_score_drop`` below the accepted round's;
* the mean words of its answers fall below ``(1 - max_length_drop)`` x the accepted round's;
* for a rule evaluation, any constraint kind's pass rate is more than ``max_kind_drop`` below the accepted round's.

A round that passes is kept. A round's first failure: it is trained again from the accepted adapter, on the same
data, with the learning rate x ``retrain_lr_factor``, and judged again. A second failure: it is rolled back, its
adapter replaced by a copy of the accepted one, so the next round starts from the accepted model.
:func:`decide` is the rule as a pure function; the loop (:mod:`cutalign.online.loop`) acts on its answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

KEEP, RETRAIN, ROLLBACK = "keep", "retrain", "rollback"
TOLERANCE = 1e-9
"""Float slack in every comparison, so that a drop of exactly the allowed amount passes."""


@dataclass
class GuardConfig:
    """The ``guard:`` section: when a round counts as degraded, and how gently it is trained again (see
    `cutalign.online.guard`). Absent: every round is kept."""

    eval: str | None = field(default=None, metadata={
        "help": "the evaluation whose headline score is watched (its name; default the first evaluation)"})
    max_score_drop: float = field(default=0.0, metadata={
        "help": "how far the score may fall below the last accepted round's"})
    max_length_drop: float = field(default=0.25, metadata={
        "help": "the answers' mean words may not fall below (1 - this) x the last accepted round's (0 to 1)"})
    max_kind_drop: float = field(default=0.25, metadata={
        "help": "a rule evaluation: how far any constraint kind's pass rate may fall (ignored without kinds)"})
    retrain_lr_factor: float = field(default=0.5, metadata={
        "help": "a failed round is trained once more with the learning rate times this (between 0 and 1)"})


def validate_guard(guard: GuardConfig, eval_names: list[str], fail) -> None:
    """Check the section's values and the watched evaluation's name; ``fail`` raises."""
    if guard.eval not in eval_names:
        fail(f"guard.eval must name an evaluation ({', '.join(eval_names)}), got {guard.eval!r}")
    if guard.max_score_drop < 0:
        fail(f"guard.max_score_drop must be >= 0, got {guard.max_score_drop}")
    if not 0 <= guard.max_length_drop <= 1:
        fail(f"guard.max_length_drop must be between 0 and 1, got {guard.max_length_drop}")
    if guard.max_kind_drop < 0:
        fail(f"guard.max_kind_drop must be >= 0, got {guard.max_kind_drop}")
    if not 0 < guard.retrain_lr_factor < 1:
        fail(f"guard.retrain_lr_factor must be between 0 and 1 (exclusive), got {guard.retrain_lr_factor}")


@dataclass
class Decision:
    """What the guard says about a round: ``keep``, ``retrain`` or ``rollback``, and why (empty when kept)."""

    action: str
    reasons: list[str]


def failures(accepted: dict, current: dict, guard: GuardConfig, score_key: str) -> list[str]:
    """Every rule the round breaks, as a sentence. ``accepted`` and ``current`` are the watched evaluation's
    headline figures (``score_key``, ``mean_words``, and ``per_kind`` for a rule evaluation) of the last accepted
    round and of this one."""
    reasons = []
    label = score_key.replace("_", " ")
    old, new = accepted[score_key], current[score_key]
    if new < old - guard.max_score_drop - TOLERANCE:
        reasons.append(f"{label} {new:.3f} < {old:.3f} - {guard.max_score_drop:g}")
    keep_share = 1 - guard.max_length_drop
    old_words, new_words = accepted["mean_words"], current["mean_words"]
    if new_words < keep_share * old_words - TOLERANCE:
        reasons.append(f"mean words {new_words:.1f} < {keep_share:g} x {old_words:.1f}")
    old_kinds, new_kinds = accepted.get("per_kind") or {}, current.get("per_kind") or {}
    for kind in old_kinds:
        if kind not in new_kinds:
            continue
        before, after = old_kinds[kind]["pass_rate"], new_kinds[kind]["pass_rate"]
        if after < before - guard.max_kind_drop - TOLERANCE:
            reasons.append(f"{kind} pass rate {after:.3f} < {before:.3f} - {guard.max_kind_drop:g}")
    return reasons


def decide(accepted: dict, current: dict, guard: GuardConfig, score_key: str, *, retrained: bool) -> Decision:
    """Keep a round that breaks no rule; retrain it on its first failure; roll it back when it was already
    retrained (see the module docstring)."""
    reasons = failures(accepted, current, guard, score_key)
    if not reasons:
        return Decision(KEEP, [])
    return Decision(ROLLBACK if retrained else RETRAIN, reasons)

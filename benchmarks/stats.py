"""The statistics of the mini-paper benchmark: intervals for one pass rate, and paired tests between two methods.

Every method answers the same held-out prompts, so two methods are compared *pairwise*, prompt by prompt, which
is far more sensitive than comparing two independent intervals: only the prompts where they disagree carry
information.

* :func:`wilson` is the Wilson score interval of one pass rate (the project's own
  :func:`cutalign.tasks.wilson_interval`, re-exported so the benchmark reads all its statistics from here).
* :func:`mcnemar_exact` is the exact McNemar test: among the discordant prompts (one method passes, the other
  fails), under "no difference" each side wins with probability 1/2, so the count of one side is
  Binomial(b + c, 1/2); the two-sided p-value doubles the smaller tail.
* :func:`paired_bootstrap` resamples the paired outcomes (or whole clusters of them, e.g. one held-out prompt with
  its answers under every seed) and gives an interval and a two-sided p-value for the difference in pass rate.

Pooling seeds: the benchmark's seeds answer the *same* held-out prompts, so the (seed, prompt) pairs are not
independent. McNemar on the pooled pairs treats them as independent and is therefore optimistic; the clustered
bootstrap (clusters = prompts) does not, and both are reported.

Only the standard library is used, so the numbers can be checked by hand (see tests/test_benchmarks.py).
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

from cutalign.tasks import wilson_interval as wilson

__all__ = ["discordant", "mcnemar_exact", "paired_bootstrap", "wilson"]


def discordant(a: Sequence[bool], b: Sequence[bool]) -> tuple[int, int]:
    """``(b, c)``: how many pairs ``a`` passes and ``b`` fails, and how many the other way round."""
    if len(a) != len(b):
        raise ValueError(f"paired outcomes must have the same length, got {len(a)} and {len(b)}")
    only_a = sum(1 for x, y in zip(a, b) if x and not y)
    only_b = sum(1 for x, y in zip(a, b) if y and not x)
    return only_a, only_b


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value for ``b`` and ``c`` discordant pairs.

    ``p = min(1, 2 * P(X <= min(b, c)))`` with ``X ~ Binomial(b + c, 1/2)``; 1 when there is no discordant pair.
    """
    if b < 0 or c < 0 or int(b) != b or int(c) != c:
        raise ValueError(f"discordant counts must be non-negative integers, got {b!r} and {c!r}")
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(b, c) + 1)) / 2**n
    return min(1.0, 2 * tail)


def paired_bootstrap(a: Sequence[bool], b: Sequence[bool], *, clusters: Sequence | None = None,
                     resamples: int = 10_000, seed: int = 0, level: float = 0.95) -> dict:
    """The difference in pass rate ``mean(a) - mean(b)`` over paired outcomes, with a bootstrap interval and p.

    Args:
        a, b: the outcomes (pass = True/1) of two methods on the same items, position by position.
        clusters: one label per item; whole clusters are resampled together (e.g. the held-out prompt, when the
            items are (seed, prompt) pairs, so that a prompt's answers under every seed stay together). Default:
            every item is its own cluster.
        resamples: bootstrap resamples.
        seed: seed of the resampling.
        level: coverage of the percentile interval.

    Returns ``{"diff", "ci": (low, high), "p"}``. ``p`` is two-sided: twice the smaller share of resampled
    differences at or beyond 0 on either side, with the usual +1 correction ``(k + 1) / (resamples + 1)`` so that
    it is never exactly 0, capped at 1.
    """
    if len(a) != len(b) or not a:
        raise ValueError(f"need the same, non-zero number of paired outcomes, got {len(a)} and {len(b)}")
    labels = list(range(len(a))) if clusters is None else list(clusters)
    if len(labels) != len(a):
        raise ValueError(f"need one cluster label per item, got {len(labels)} for {len(a)} items")
    # Per cluster: (sum of a - b, number of items); a resample draws clusters with replacement.
    groups: dict = {}
    for label, x, y in zip(labels, a, b):
        total, count = groups.get(label, (0, 0))
        groups[label] = (total + int(bool(x)) - int(bool(y)), count + 1)
    sums = [s for s, _ in groups.values()]
    counts = [n for _, n in groups.values()]
    rng = random.Random(seed)
    k = len(sums)
    diffs = []
    for _ in range(resamples):
        picks = [rng.randrange(k) for _ in range(k)]
        diffs.append(sum(sums[i] for i in picks) / sum(counts[i] for i in picks))
    diffs.sort()
    tail = (1 - level) / 2
    low = diffs[min(resamples - 1, int(math.floor(tail * resamples)))]
    high = diffs[min(resamples - 1, int(math.ceil((1 - tail) * resamples)) - 1)]
    at_or_below = sum(d <= 0 for d in diffs)
    at_or_above = sum(d >= 0 for d in diffs)
    p = min(1.0, 2 * (min(at_or_below, at_or_above) + 1) / (resamples + 1))
    return {"diff": sum(sums) / sum(counts), "ci": (low, high), "p": p}

"""The mini-paper benchmark's statistics and data helpers, checked against values computed by hand.

The benchmark itself (training ten methods) is too slow for the test suite on a CPU; its pieces are tested here.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import stats  # noqa: E402


# --- Wilson -----------------------------------------------------------------------------------------------------


def test_wilson_matches_hand_values():
    # 0 of 10: center = (z^2 / 2n) / (1 + z^2 / n) = 0.19208 / 1.38416, half-width the same: [0, 0.2775].
    low, high = stats.wilson(0, 10)
    assert low == 0.0 and high == pytest.approx(0.27753, abs=1e-4)
    # 5 of 10: symmetric about 0.5, half-width 1.96 * sqrt(0.025 + 0.0096) / 1.38416 = 0.26340.
    low, high = stats.wilson(5, 10)
    assert (low, high) == (pytest.approx(0.23659, abs=1e-4), pytest.approx(0.76341, abs=1e-4))


# --- McNemar ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("b, c, expected", [
    (0, 0, 1.0),                    # no discordant pair: no evidence either way
    (5, 0, 2 / 2**5),               # 2 * P(X = 0), X ~ Bin(5, 1/2) = 0.0625
    (0, 5, 2 / 2**5),               # symmetric
    (6, 1, 2 * (1 + 7) / 2**7),     # 2 * P(X <= 1), X ~ Bin(7, 1/2) = 0.125
    (10, 2, 2 * (1 + 12 + 66) / 2**12),  # 0.0385742...
    (3, 3, 1.0),                    # 2 * 42/64 > 1, capped
])
def test_mcnemar_exact_hand_values(b, c, expected):
    assert stats.mcnemar_exact(b, c) == pytest.approx(expected, rel=1e-12)


def test_mcnemar_rejects_bad_counts():
    with pytest.raises(ValueError):
        stats.mcnemar_exact(-1, 2)


def test_discordant_counts_each_side():
    a = [1, 1, 0, 0, 1]
    b = [1, 0, 1, 0, 0]
    assert stats.discordant(a, b) == (2, 1)
    with pytest.raises(ValueError):
        stats.discordant([1], [1, 0])


# --- paired bootstrap -------------------------------------------------------------------------------------------


def test_bootstrap_identical_outcomes_show_no_difference():
    result = stats.paired_bootstrap([1, 0, 1, 1], [1, 0, 1, 1], resamples=500)
    assert result["diff"] == 0 and result["ci"] == (0, 0) and result["p"] == 1.0


def test_bootstrap_one_sided_outcomes_give_the_smallest_p():
    result = stats.paired_bootstrap([1] * 6, [0] * 6, resamples=999)
    assert result["diff"] == 1 and result["ci"] == (1, 1)
    assert result["p"] == pytest.approx(2 / 1000)  # (0 + 1) / (999 + 1), doubled


def test_bootstrap_two_items_by_hand():
    # Item differences 1 and 0. A resample of two items has mean 1 (p 1/4), 1/2 (p 1/2) or 0 (p 1/4): the share at
    # or below 0 is 1/4, at or above 0 is 1, so p is about 2 * 1/4 = 0.5 and the 95% interval is [0, 1].
    result = stats.paired_bootstrap([1, 0], [0, 0], resamples=20_000, seed=1)
    assert result["diff"] == 0.5
    assert result["p"] == pytest.approx(0.5, abs=0.03)
    assert result["ci"] == (0, 1)


def test_bootstrap_clusters_resample_together():
    # One cluster holding every item: each resample is that cluster, so the difference never varies.
    result = stats.paired_bootstrap([1, 0, 1, 0], [0, 0, 0, 1], clusters=["x"] * 4, resamples=200)
    assert result["diff"] == pytest.approx(0.25) and result["ci"] == (0.25, 0.25)
    # Clusters weigh by their size: cluster "p" = items 0-1 (diff +1 each), cluster "q" = items 2-3 (diff 0). A
    # resample of two clusters has mean 1, 1/2 or 0, as in the two-item case above.
    result = stats.paired_bootstrap([1, 1, 0, 0], [0, 0, 0, 0], clusters=["p", "p", "q", "q"], resamples=20_000,
                                    seed=2)
    assert result["p"] == pytest.approx(0.5, abs=0.03)


def test_bootstrap_is_seeded():
    a, b = [1, 0, 1, 1, 0, 1, 0, 1], [0, 0, 1, 0, 1, 0, 0, 1]
    assert stats.paired_bootstrap(a, b, seed=3, resamples=300) == stats.paired_bootstrap(a, b, seed=3, resamples=300)


def test_bootstrap_rejects_unpaired_input():
    with pytest.raises(ValueError):
        stats.paired_bootstrap([1, 0], [1])
    with pytest.raises(ValueError):
        stats.paired_bootstrap([1, 0], [1, 0], clusters=["a"])

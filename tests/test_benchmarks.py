"""The mini-paper benchmark's statistics and data helpers, checked against values computed by hand.

The benchmark itself (training ten methods) is too slow for the test suite on a CPU; its pieces are tested here.
"""

from __future__ import annotations

import json
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


# --- the benchmark's data: prompt sets, content variants, the noisy judge -------------------------------------

import judgments  # noqa: E402
from cutalign.tasks import parse_constraints, rule_judge, task_prompts  # noqa: E402

KINDS = ("no_commas", "include_keyword", "max_words")


def judged_rows(responses=("Hello, world, this is it.", "A plain answer with no comma in it at all.")):
    prompts = judgments.prompt_set("train", 6, KINDS, seed=0)
    rows = []
    for i, prompt in enumerate(prompts):
        response = responses[i % len(responses)]
        rows.append({"prompt": prompt, "completion": response, "judgment": rule_judge(prompt, response), "id": str(i)})
    return rows


def test_prompt_set_has_one_and_two_constraint_halves():
    prompts = judgments.prompt_set("heldout", 8, KINDS, seed=0, phrasings="all")
    counts = [len(parse_constraints(p)) for p in prompts]
    assert counts == [1, 1, 1, 1, 2, 2, 2, 2]
    assert {c.kind for p in prompts for c in parse_constraints(p)} <= set(KINDS)


def test_generic_variant_replaces_only_negative_judgments():
    rows = judged_rows()
    generic = judgments.content_variant(rows, "generic", seed=0)
    for before, after in zip(rows, generic):
        if before["judgment"] is None:
            assert after["judgment"] is None
        else:
            assert after["judgment"] == judgments.GENERIC_JUDGMENT
        assert {k: v for k, v in after.items() if k != "judgment"} == {k: v for k, v in before.items()
                                                                      if k != "judgment"}
    assert rows[0]["judgment"] != judgments.GENERIC_JUDGMENT  # the input is not modified


def test_shuffled_variant_moves_every_judgment_to_another_prompt():
    rows = [{"prompt": f"p{i // 2}", "completion": "x y z", "judgment": f"j{i}", "id": str(i)} for i in range(8)]
    rows.append({"prompt": "p9", "completion": "x y z", "judgment": None, "id": "good"})
    shuffled = judgments.content_variant(rows, "shuffled", seed=3)
    moved = [s["judgment"] for s in shuffled[:8]]
    assert sorted(moved) == sorted(r["judgment"] for r in rows[:8])  # the same judgments, dealt again
    for i, judgment in enumerate(moved):
        source = int(judgment[1:])
        assert source != i and rows[source]["prompt"] != rows[i]["prompt"]
    assert shuffled[8]["judgment"] is None
    assert judgments.content_variant(rows, "shuffled", seed=3) == shuffled  # seeded


def test_content_variant_rejects_unknown_names():
    with pytest.raises(ValueError):
        judgments.content_variant(judged_rows(), "noisy", seed=0)


def test_noisy_judge_without_noise_is_the_rule_judge():
    rows = judged_rows()
    judge = judgments.NoisyRuleJudge(miss=0.0, false_flag=0.0, seed=0)
    assert judge([r["prompt"] for r in rows], [r["completion"] for r in rows]) == [r["judgment"] for r in rows]


def test_noisy_judge_always_wrong_misses_every_violation_and_flags_every_good_answer():
    judge = judgments.NoisyRuleJudge(miss=1.0, false_flag=1.0, seed=0)
    for row in judged_rows():
        noisy = judge.judge(row["prompt"], row["completion"])
        if row["judgment"] is None:
            blamed = [c.sentence() for c in parse_constraints(row["prompt"])]
            assert noisy is not None and any(sentence in noisy for sentence in blamed)
        else:
            assert noisy is None


def test_noisy_judge_rates_and_determinism():
    prompts = judgments.prompt_set("train", 200, KINDS, seed=1)
    bad, good = "Hello, world, this is it.", "fine"  # "fine" is too short: a violation for every prompt
    judge = judgments.NoisyRuleJudge(miss=0.2, false_flag=0.1, seed=5)
    missed = sum(judge.judge(p, good) is None for p in prompts)
    assert 20 <= missed <= 60  # 200 draws at 0.2: mean 40, sd 5.7
    assert [judge.judge(p, bad) for p in prompts] == [judge.judge(p, bad) for p in prompts]
    other = judgments.NoisyRuleJudge(miss=0.2, false_flag=0.1, seed=6)
    assert [judge.judge(p, good) for p in prompts] != [other.judge(p, good) for p in prompts]


def test_rejudged_keeps_rows_and_changes_judgments():
    rows = judged_rows()
    again = judgments.rejudged(rows, lambda instructions, responses: ["bad"] * len(instructions))
    assert [r["judgment"] for r in again] == ["bad"] * len(rows)
    assert [r["completion"] for r in again] == [r["completion"] for r in rows]


# --- the flag analysis's evidence -------------------------------------------------------------------------------

import flag_analysis  # noqa: E402


def test_evidence_spans_and_tokens():
    judgment = "Expected no commas, yet the answer uses 2 commas: 'Hello, world', 'world, this'."
    spans = flag_analysis.evidence_spans(judgment)
    assert spans == ["Hello, world", "world, this"]
    assert flag_analysis.is_evidence(",", spans) and flag_analysis.is_evidence(" world", spans)
    assert not flag_analysis.is_evidence(" answer", spans) and not flag_analysis.is_evidence("  ", spans)
    assert flag_analysis.evidence_spans(None) == []


# --- the report -------------------------------------------------------------------------------------------------

import mini_paper_report as report_module  # noqa: E402


def fake_cell(method, seed, passed, variant="rule", words=10.0):
    n = len(passed)
    half = n // 2
    task = {"pass_rate": sum(passed) / n, "n": n,
            "per_kind": {"no_commas": {"pass_rate": sum(passed) / n, "n": n}},
            "per_phrasing": {"seen": {"pass_rate": sum(passed[:half]) / half, "n": half},
                             "unseen": {"pass_rate": sum(passed[half:]) / (n - half), "n": n - half}}}
    return {"method": method, "variant": variant, "seed": seed, "passed": passed, "task": task, "train_seconds": 1.0,
            "guard": {"heldout_logp": -1.0, "mean_words": words, "distinct_2": 0.5}, "flagged_fraction_logged": [0.2]}


def test_report_pools_seeds_and_tests_pairs_by_hand():
    results = [fake_cell("base", 0, [False] * 4)]
    for seed in (0, 1):
        results.append(fake_cell("cut-best", seed, [True, True, True, False]))
        results.append(fake_cell("sft-positive", seed, [False, True, False, False]))
    best = report_module.cells(results, "cut-best")
    sft = report_module.cells(results, "sft-positive")
    # Per seed cut-best alone passes items 0 and 2: 4 discordant pairs one way, none the other; p = 2 / 2**4.
    test = report_module.paired(best, sft, prompts=4)
    assert (test["only_a"], test["only_b"]) == (4, 0)
    assert test["mcnemar_p"] == pytest.approx(0.125) and test["diff"] == pytest.approx(0.5)
    # The base cell serves every seed.
    assert set(report_module.cells(results, "base")) == {0} and report_module.paired(
        best, {s: results[0] for s in (0, 1)}, prompts=4)["only_a"] == 6
    pooled = report_module.pooled(best)
    assert pooled["pass_rate"] == 0.75 and pooled["n"] == 8 and pooled["seen"] == 1.0 and pooled["unseen"] == 0.5
    text = report_module.report(results, {}, {}, ["p"] * 4, "cmd", "setup")
    assert "| sft-positive | 0.250 |" in text and "| 4/0 | 0.125 |" in text


def test_report_content_section_appears_with_its_cells():
    results = [fake_cell("base", 0, [False] * 4)]
    for variant, passed in (("rule", [True] * 4), ("generic", [True, True, False, False]),
                            ("shuffled", [True, False, False, False])):
        results.append(fake_cell("cut-best", 0, passed, variant=variant))
    text = report_module.report(results, {}, {}, ["p"] * 4, "cmd", "setup")
    assert "Judgment content" in text and "| (b) generic judgment | 0.500 |" in text
    assert "| (c) shuffled judgments | 0.250 | " in text and "| 3/0 | 0.25 |" in text


def test_chart_writes_a_png(tmp_path):
    results = [fake_cell("base", 0, [False] * 4), fake_cell("cut-best", 0, [True] * 4),
               fake_cell("cut-best", 0, [True, False, True, False], variant="generic")]
    report_module.chart(results, tmp_path / "c.png", "title")
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"


# --- kind diagnosis -----------------------------------------------------------------------------------------------


def test_kind_rows_counts_by_hand():
    import kind_diagnosis

    no_commas = "Describe a lake. Do not use any commas in your answer."
    from cutalign.tasks import parse_constraints

    assert [c.kind for c in parse_constraints(no_commas)] == ["no_commas"]
    rows = [
        {"prompt": no_commas, "completion": "The lake is calm and blue under a pale morning sky today."},  # good
        {"prompt": no_commas, "completion": "The lake is calm, blue, and cold under a pale morning sky."},  # commas
    ]
    counts = kind_diagnosis.kind_rows(rows)["no_commas"]
    assert dict(counts) == {"prompts": 2, "good_rows": 1, "satisfied": 1, "violations": 1, "quotes_present": 1}


def test_report_marks_answers_shorter_than_the_guard_allows_and_keeps_variants_apart():
    results = [fake_cell("base", 0, [False] * 4, words=40.0), fake_cell("cut-best", 0, [True] * 4, words=36.0),
               fake_cell("kto", 0, [True] * 4, words=12.0), fake_cell("cut-best j0", 0, [True] * 4, words=40.0)]
    text = report_module.report(results, {}, {}, ["p"] * 4, "cmd", "setup")
    main = text.split("### CUT ablations")[0]
    assert "| 12.0 | 0.30 short |" in main and "| 36.0 | 0.90 |" in main
    assert "| kto | 1.000 | [0.51, 1.00] | 1.00* |" in main and "| cut-best | 1.000 | [0.51, 1.00] | 1.00 |" in main
    assert "cut-best j0" not in main and "| cut-best j0 | 1.000 |" in text.split("### CUT ablations")[1]


def test_baseline_variants_get_their_own_table_tested_against_cut_best():
    results = [fake_cell("cut-best", 0, [True, True, False, False]), fake_cell("dpo", 0, [False] * 4),
               fake_cell("dpo lr=1e-3", 0, [True, False, True, True]), fake_cell("cut-best j0", 0, [True] * 4)]
    text = report_module.report(results, {}, {}, ["p"] * 4, "cmd", "setup")
    main, rest = text.split("### CUT ablations")
    ablations, variants = rest.split("### Baseline variants")
    assert "| dpo |" in main and "dpo lr=1e-3" not in main and "dpo lr=1e-3" not in ablations
    assert "| cut-best j0 |" in ablations and "cut-best j0" not in variants
    assert "| dpo lr=1e-3 | 0.750 |" in variants and "| -0.250 | 1/2 |" in variants  # CUT-best minus the variant


def test_per_seed_rates_mark_the_seed_that_answered_short():
    """Pooled, two seeds at 36 and 20 words average 28 (0.70 of base's 40); per seed only the second is short."""
    runs = {0: fake_cell("dpo", 0, [True, False], words=36.0), 1: fake_cell("dpo", 1, [True, True], words=20.0)}
    figures = report_module.pooled(runs)
    assert report_module.per_seed(figures, 40.0) == "0.50, 1.00*"
    assert report_module.per_seed(figures, None) == "0.50, 1.00"


import online_paired  # noqa: E402


def write_round(run: Path, index: int, prompts: list[str], answers: list[str], pass_rate: float) -> None:
    folder = run / f"round-{index:02d}"
    folder.mkdir(parents=True)
    responses = [{"prompt": p, "completion": a} for p, a in zip(prompts, answers)]
    (folder / "eval.json").write_text(json.dumps({"pass_rate": pass_rate, "n": len(prompts), "responses": responses}))


def test_online_paired_rejudges_the_stored_answers_and_counts_the_discordant_prompts(tmp_path, capsys):
    prompts = task_prompts("heldout", 6, ("no_commas",))
    assert all(parse_constraints(p) for p in prompts)  # prompts the rule judge checks
    good, bad = "A plain answer with no comma at all.", "Well, this one has a comma."
    # Round 0 passes prompts 0-1; round 2 passes 0 and 2-5: four gained, one lost.
    write_round(tmp_path, 0, prompts, [good, good, bad, bad, bad, bad], 2 / 6)
    write_round(tmp_path, 2, prompts, [good, bad, good, good, good, good], 5 / 6)
    assert online_paired.main([str(tmp_path), "0", "2"]) == 0
    out = capsys.readouterr().out
    assert "round 0: 2/6 pass" in out and "round 2: 5/6 pass" in out
    assert f"only round 2 passes: 4; only round 0 passes: 1; exact McNemar p = {stats.mcnemar_exact(4, 1):.3g}" in out


def test_online_paired_refuses_answers_that_do_not_give_the_recorded_rate(tmp_path):
    prompts = task_prompts("heldout", 1, ("no_commas",))
    write_round(tmp_path, 0, prompts, ["No comma here at all."], 0.0)  # recorded 0 but the answer passes
    write_round(tmp_path, 1, prompts, ["No comma here at all."], 1.0)
    with pytest.raises(SystemExit, match="round-00/eval.json: re-judged 1/1, but the run recorded pass_rate 0.0000"):
        online_paired.main([str(tmp_path), "0", "1"])


# --- the whole benchmark, at its smoke size ---------------------------------------------------------------------

@pytest.mark.slow
def test_the_quick_run_trains_every_method_in_two_jobs_and_resumes_from_its_cells(tmp_path, capsys):
    """``mini_paper.py --quick --jobs 2`` on the embedded model: every main method's cell is trained and evaluated in
    the worker processes and cached, the report has a row for each, and a second invocation finds every cell."""
    import mini_paper

    args = ["--quick", "--jobs", "2", "--threads", "1", "--out", str(tmp_path)]
    assert mini_paper.main(args) == 0
    (folder,) = tmp_path.iterdir()
    cells = sorted(path.stem for path in (folder / "runs").glob("*.json"))
    assert cells == sorted("base" if m == "base" else f"{m}@rule-seed0" for m in mini_paper.MAIN_METHODS)
    report = (folder / "mini_paper.md").read_text()
    for method in mini_paper.MAIN_METHODS:
        assert f"| {method} |" in report, method
    assert "2 job(s) x 1 thread(s)" in report and "Not run" not in report
    capsys.readouterr()
    assert mini_paper.main([*args, "--report-only"]) == 0
    assert "Not run" not in capsys.readouterr().out


def test_report_only_refuses_an_output_folder_without_cached_data(tmp_path, capsys):
    import mini_paper

    assert mini_paper.main(["--quick", "--report-only", "--out", str(tmp_path)]) == 2
    assert "--report-only samples and trains nothing" in capsys.readouterr().err
    assert not list(tmp_path.glob("*/cache/*.json"))

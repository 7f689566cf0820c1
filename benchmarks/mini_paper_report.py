"""The mini-paper's tables, in Markdown: pooled pass rates with intervals, per kind and per phrasing, the guard,
and paired tests of CUT-best against every other method; the judgment-content and noisy-judge tables.

Pooling: every seed answers the same held-out prompts, so a method's outcomes over seeds are pooled into one list of
(seed, prompt) outcomes. Its Wilson interval treats them as independent (optimistic about seed variance; the per-seed
rates are listed beside it). Paired tests compare two methods on the same (seed, prompt) items: the exact McNemar
test on the pooled items (also optimistic, for the same reason) and a bootstrap that resamples whole prompts (all
seeds of a prompt together), which is not. A base-model cell is shared by every seed: its greedy answers do not
depend on the seed.
"""

from __future__ import annotations

from collections.abc import Sequence

from stats import discordant, mcnemar_exact, paired_bootstrap, wilson

BEST = "cut-best"


def cells(results: list[dict], method: str, variant: str = "rule") -> dict[int, dict]:
    """The cells of one method and data variant, by seed (the base model's cell under every seed)."""
    return {r["seed"]: r for r in results if r["method"] == method and (method == "base" or r["variant"] == variant)}


def pooled(runs: dict[int, dict]) -> dict:
    """Pass rate, Wilson interval, per-seed rates, seen/unseen rates and mean guard metrics over the seeds."""
    passed = [p for seed in sorted(runs) for p in runs[seed]["passed"]]
    n, k = len(passed), sum(passed)
    split = {}
    for name in ("seen", "unseen"):
        parts = [r["task"]["per_phrasing"].get(name) for r in runs.values()]
        total = sum(p["n"] for p in parts if p)
        split[name] = sum(round(p["pass_rate"] * p["n"]) for p in parts if p) / total if total else float("nan")
    mean = lambda key: sum(r["guard"][key] for r in runs.values()) / len(runs)  # noqa: E731
    return {"pass_rate": k / n, "ci": wilson(k, n), "n": n, "seen": split["seen"], "unseen": split["unseen"],
            "per_seed": [sum(runs[s]["passed"]) / len(runs[s]["passed"]) for s in sorted(runs)],
            "per_seed_words": [runs[s]["guard"]["mean_words"] for s in sorted(runs)],
            "logp": mean("heldout_logp"), "words": mean("mean_words"), "distinct_2": mean("distinct_2"),
            "train_s": sum(r["train_seconds"] for r in runs.values()) / len(runs)}


def per_kind(runs: dict[int, dict]) -> dict[str, float]:
    """Pass rate of each constraint kind (each constraint judged alone), pooled over seeds."""
    counts: dict[str, list[int]] = {}
    for r in runs.values():
        for kind, value in r["task"]["per_kind"].items():
            c = counts.setdefault(kind, [0, 0])
            c[0] += round(value["pass_rate"] * value["n"])
            c[1] += value["n"]
    return {kind: k / n for kind, (k, n) in counts.items()}


def paired(a: dict[int, dict], b: dict[int, dict], prompts: int) -> dict | None:
    """Paired tests of ``a`` against ``b`` over the seeds both have: diff, (b, c) discordant counts, McNemar p,
    clustered-bootstrap interval and p. None when they share no seed."""
    seeds = sorted(set(a) & set(b))
    if not seeds:
        return None
    x = [p for s in seeds for p in a[s]["passed"]]
    y = [p for s in seeds for p in b[s]["passed"]]
    clusters = [i for _ in seeds for i in range(prompts)]
    only_a, only_b = discordant(x, y)
    boot = paired_bootstrap(x, y, clusters=clusters, resamples=5000, seed=0)
    return {"diff": boot["diff"], "only_a": only_a, "only_b": only_b, "mcnemar_p": mcnemar_exact(only_a, only_b),
            "boot_ci": boot["ci"], "boot_p": boot["p"], "seeds": seeds}


def fmt_test(test: dict | None) -> list[str]:
    if test is None:
        return ["", "", "", ""]
    return [f"{test['diff']:+.3f}", f"{test['only_a']}/{test['only_b']}", f"{test['mcnemar_p']:.3g}",
            f"[{test['boot_ci'][0]:+.2f}, {test['boot_ci'][1]:+.2f}] p={test['boot_p']:.3g}"]


def table(header: Sequence[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def method_rows(results, entries: list[tuple[str, str, str]], against: tuple[str, str], prompts: int) -> list[list]:
    """One row per (label, method, variant): pooled figures and the paired test of the cells ``against`` (method,
    variant) minus it (none on the row of ``against`` itself)."""
    reference = cells(results, *against)
    base = cells(results, "base")
    base_words = pooled(base)["words"] if base else None
    rows = []
    for label, method, variant in entries:
        runs = cells(results, method, variant)
        if not runs:
            continue
        p = pooled(runs)
        test = None if (method, variant) == against else paired(reference, runs, prompts)
        rows.append([label, f"{p['pass_rate']:.3f}", f"[{p['ci'][0]:.2f}, {p['ci'][1]:.2f}]",
                     per_seed(p, base_words), f"{p['seen']:.2f}", f"{p['unseen']:.2f}",
                     *fmt_test(test), f"{p['logp']:.3f}", f"{p['words']:.1f}", length_check(p["words"], base_words),
                     f"{p['distinct_2']:.2f}", f"{p['train_s']:.0f}"])
    return rows


HEADER = ["method", "pass", "95% Wilson", "per seed", "seen", "unseen", "CUT-best − it", "b/c", "McNemar p",
          "bootstrap 95% CI, p", "held-out logp", "words", "words / base", "distinct-2", "train s"]

LENGTH_FLOOR = 0.75
"""The online guard's default length rule (``max_length_drop: 0.25``): a method whose answers average fewer than
0.75 x the base model's words is marked, since on these constraints (a word limit, no commas, an avoided word)
shorter answers pass more often whatever was learned."""


def per_seed(figures: dict, base_words: float | None) -> str:
    """The per-seed pass rates, a seed whose answers are short (below :data:`LENGTH_FLOOR`) marked with *: a pooled
    length can hide one seed that collapsed."""
    short = [bool(base_words) and words / base_words < LENGTH_FLOOR for words in figures["per_seed_words"]]
    return ", ".join(f"{rate:.2f}" + "*" * flag for rate, flag in zip(figures["per_seed"], short))


def length_check(words: float, base_words: float | None) -> str:
    """``words / base_words``, marked "short" below :data:`LENGTH_FLOOR` (empty without a base cell)."""
    if not base_words:
        return ""
    ratio = words / base_words
    return f"{ratio:.2f}" + (" short" if ratio < LENGTH_FLOOR else "")


def data_table(data: dict[int, dict[str, list[dict]]]) -> str:
    rows = []
    for seed, variants in sorted(data.items()):
        for name, rows_ in variants.items():
            if name in ("generic", "shuffled"):
                continue
            good = [r for r in rows_ if r["judgment"] is None]
            bad = [r for r in rows_ if r["judgment"] is not None]
            words = lambda rs: sum(len(r["completion"].split()) for r in rs) / max(len(rs), 1)  # noqa: E731
            rows.append([seed, name, len(rows_), len(good), len(bad), f"{words(good):.1f}", f"{words(bad):.1f}"])
    return table(["seed", "judge", "rows", "judged good", "judged bad", "words (good)", "words (bad)"], rows)


def is_ablation(method: str) -> bool:
    """A CUT recipe variant (``benchmarks/mini_paper.py``'s ABLATIONS), reported in its own table."""
    return method.startswith("cut-") and method not in (BEST, "cut-reference")


def is_baseline_variant(method: str) -> bool:
    """A baseline at other training settings (``benchmarks/mini_paper.py``'s BASELINE_VARIANTS, named
    ``"<method> <change>"``), reported in its own table."""
    return " " in method and not method.startswith("cut-")


def report(results: list[dict], data, flags, heldout: list[str], command: str, setup: str) -> str:
    """The whole Markdown report of one invocation."""
    prompts = len(heldout)
    best = cells(results, BEST)
    parts = [f"`{command}`\n\n{setup}\n", "### Training data\n", data_table(data)]
    main = [(m, m, "rule") for m in dict.fromkeys(r["method"] for r in results if r.get("variant") == "rule"
                                                   or r["method"] == "base")
            if not is_ablation(m) and not is_baseline_variant(m)]
    if main:
        parts += ["### Main comparison (rule judge)\n",
                  "CUT-best − it: pass-rate difference over the same (seed, prompt) items; b/c: items only CUT-best "
                  "passes / only the other passes; McNemar: exact, pooled over seeds; bootstrap: prompts resampled "
                  "with all their seeds; per seed: * marks a seed whose answers average under "
                  f"{LENGTH_FLOOR} x the base model's words.\n", table(HEADER, method_rows(results, main, (BEST, "rule"), prompts))]
        kinds = sorted({k for label, m, v in main for k in per_kind(cells(results, m, v))})
        rows = [[label, *(f"{per_kind(cells(results, m, v)).get(k, float('nan')):.2f}" for k in kinds)]
                for label, m, v in main]
        parts += ["### Per kind (each constraint judged alone, pooled over seeds)\n", table(["method", *kinds], rows)]
    content = [("(a) specific judgments", BEST, "rule"), ("(b) generic judgment", BEST, "generic"),
               ("(c) shuffled judgments", BEST, "shuffled")]
    if cells(results, BEST, "generic"):
        parts += ["### Judgment content (CUT-best; paired tests: (a) minus the row)\n",
                  table(HEADER, method_rows(results, content + [("sft-positive", "sft-positive", "rule"),
                                                                ("base", "base", "rule")], (BEST, "rule"), prompts))]
        kinds = sorted(per_kind(best))
        rows = [[label, *(f"{per_kind(cells(results, m, v)).get(k, float('nan')):.2f}" for k in kinds),
                 f"{_logged_flags(cells(results, m, v)):.3f}"] for label, m, v in content]
        parts += ["Per kind, and the flagged fraction logged during training (mean over logging steps and seeds):\n",
                  table(["variant", *kinds, "flagged (training)"], rows)]
    if flags:
        parts += ["### Tokens flagged at step 0 (untrained model, λ = 1.1, mean over seeds)\n",
                  "evidence: response tokens whose text is inside a span the specific judgment quotes.\n",
                  _flag_table(flags)]
    if cells(results, BEST, "noisy"):
        entries = [(f"{m} (noisy judge)", m, "noisy") for m in dict.fromkeys(
            r["method"] for r in results if r.get("variant") == "noisy")]
        parts += ["### Noisy judge (misses 20% of violations, flags 10% of good answers; tests: CUT-best on the "
                  "noisy judge minus the row)\n", table(HEADER, method_rows(results, entries, (BEST, "noisy"), prompts))]
        rows = []
        for label, m, _ in entries:
            test = paired(cells(results, m, "rule"), cells(results, m, "noisy"), prompts)
            rows.append([m, *fmt_test(test)])
        parts += ["Clean minus noisy judge, per method:\n",
                  table(["method", "clean − noisy", "b/c", "McNemar p", "bootstrap 95% CI, p"], rows)]
    for title, wanted in (("CUT ablations", is_ablation), ("Baseline variants", is_baseline_variant)):
        entries = [(r["method"], r["method"], "rule") for r in results if wanted(r["method"])
                   and r.get("variant") == "rule"]
        if entries:
            parts += [f"### {title} (tests: CUT-best minus the row)\n",
                      table(HEADER, method_rows(results, list(dict.fromkeys(entries)), (BEST, "rule"), prompts))]
    return "\n".join(parts)


def _logged_flags(runs: dict[int, dict]) -> float:
    values = [v for r in runs.values() for v in r.get("flagged_fraction_logged", [])]
    return sum(values) / len(values) if values else float("nan")


def _flag_table(flags: dict[int, dict]) -> str:
    names = list(next(iter(flags.values())))
    keys = ("flagged_fraction", "mean_ratio", "flags_on_evidence", "evidence_flagged", "jaccard_with_rule")
    rows = []
    for name in names:
        mean = {k: sum(f[name][k] for f in flags.values()) / len(flags) for k in (*keys, "evidence_fraction")}
        rows.append([name, *(f"{mean[k]:.3f}" for k in keys), f"{mean['evidence_fraction']:.3f}"])
    return table(["judgments", "flagged fraction", "mean r_t", "flags on evidence", "evidence flagged",
                  "overlap with specific (Jaccard)", "evidence share of tokens"], rows)


def chart(results: list[dict], path, title: str) -> None:
    """A bar chart of the pooled pass rate of every (method, variant) with its Wilson interval."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = list(dict.fromkeys((r["method"], "rule" if r["method"] == "base" else r["variant"]) for r in results))
    names, rates, low, high = [], [], [], []
    for method, variant in keys:
        p = pooled(cells(results, method, variant))
        names.append(method if variant == "rule" else f"{method} ({variant})")
        rates.append(p["pass_rate"])
        low.append(p["pass_rate"] - p["ci"][0])
        high.append(p["ci"][1] - p["pass_rate"])
    colors = ["#888888" if n == "base" else "#d95f02" if n.startswith("cut") else "#1b9e77" for n in names]
    figure, axis = plt.subplots(figsize=(max(6, 0.7 * len(names)), 4))
    axis.bar(range(len(names)), rates, yerr=[low, high], capsize=3, color=colors)
    axis.set_xticks(range(len(names)), names, rotation=40, ha="right", fontsize=8)
    axis.set_ylabel("held-out pass rate (95% Wilson CI)")
    axis.set_ylim(0, 1)
    axis.set_title(title, fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)

"""Why some constraint kinds move and others do not: what the judged training data offers CUT, kind by kind.

For each kind, over the cached training rows of a mini-paper run (``<out>/cache/train-seed*.json``):

* ``prompts``: training answers whose prompt carries the kind;
* ``satisfied``: the share of those answers that satisfy it (the base model's own rate on training prompts);
* ``good rows``: answers judged good overall that carry the kind: what Align-P MLE can imitate for it;
* ``quotes present text``: of the answers that violate the kind, the share whose judgment quotes text that is
  *in* the answer (a comma, a forbidden word, an extra bullet). Unlikelihood can only push down tokens that are
  there; a violation that is an *absence* (no bullet points, a missing keyword) gives it nothing to push down at
  the fault, and the fix (writing "- ", adding the word) has to come from the good rows;

and, from the cached cells, each kind's held-out pass rate for the base model and the trained methods (pooled over
seeds). Needs no model: it reads what ``benchmarks/mini_paper.py`` cached.

    python benchmarks/kind_diagnosis.py benchmarks/results/mini_paper/<size-tag>
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from flag_analysis import evidence_spans  # noqa: E402
from mini_paper_report import table  # noqa: E402

from cutalign.tasks import parse_constraints, rule_judge  # noqa: E402

METHODS = ("base", "sft-positive", "dpo", "cut-best")


def kind_rows(rows: list[dict]) -> dict[str, dict[str, int]]:
    """Per kind: answers, answers satisfying it, good rows carrying it, violations, violations quoting present text."""
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for row in rows:
        good = rule_judge(row["prompt"], row["completion"]) is None
        for constraint in parse_constraints(row["prompt"]):
            count = counts[constraint.kind]
            count["prompts"] += 1
            count["good_rows"] += good
            violation = constraint.check(row["completion"])
            if violation is None:
                count["satisfied"] += 1
                continue
            count["violations"] += 1
            spans = evidence_spans(violation)
            # "present" when some quoted span is (after trimming clip marks) text of the answer itself
            count["quotes_present"] += any(s.strip(" .…") and s.strip(" .…") in row["completion"] for s in spans)
    return counts


def pass_rates(out: Path) -> dict[str, dict[str, float]]:
    """Per method (main variant, every cached seed): per-kind held-out pass rate, pooled over seeds by items."""
    totals: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(lambda: [0.0, 0]))
    for path in sorted((out / "runs").glob("*.json")):
        cell = json.loads(path.read_text())
        if cell["method"] not in METHODS or cell.get("variant", "rule") != "rule" and cell["method"] != "base":
            continue
        for kind, result in cell["task"]["per_kind"].items():
            total = totals[cell["method"]][kind]
            total[0] += result["pass_rate"] * result["n"]
            total[1] += result["n"]
    return {m: {k: s / n for k, (s, n) in kinds.items()} for m, kinds in totals.items()}


def report(out: Path) -> str:
    rows = [row for path in sorted((out / "cache").glob("train-seed*.json")) for row in json.loads(path.read_text())]
    counts = kind_rows(rows)
    rates = pass_rates(out)
    methods = [m for m in METHODS if m in rates]
    header = ["kind", "answers", "satisfied", "good rows", "violations quoting present text",
              *(f"held-out {m}" for m in methods)]
    lines = []
    for kind in sorted(counts, key=lambda k: counts[k]["satisfied"] / counts[k]["prompts"]):
        c = counts[kind]
        lines.append([kind, c["prompts"], f"{c['satisfied'] / c['prompts']:.2f}", c["good_rows"],
                      f"{c['quotes_present'] / max(c['violations'], 1):.2f} of {c['violations']}",
                      *(f"{rates[m].get(kind, float('nan')):.2f}" for m in methods)])
    seeds = len(list((out / "cache").glob("train-seed*.json")))
    return (f"{len(rows)} judged training answers ({seeds} seeds); held-out pass rates pooled over the cached seeds.\n\n"
            + table(header, lines))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__.strip().splitlines()[-1].strip())
    print(report(Path(sys.argv[1])))

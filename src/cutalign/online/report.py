"""What the online loop prints and writes about its rounds: each round's report.md, the summary table, the chart.

A round's report (``report.json``) holds its data counts, the final training loss, the phase times and, under
``evals``, every evaluation's numbers by name (:func:`cutalign.online.evals.headline`); the evaluation named
``heldout`` is also under ``heldout``, where reports of earlier versions had their one evaluation. Reports written
by those versions (no ``evals``) are read as holding that one rule evaluation. With ``guard:``, ``guard`` holds the
guard's decision on the round (:func:`cutalign.online.loop.guard_summary`).
"""

from __future__ import annotations

from pathlib import Path

from .evals import HEADLINE, score_of

LABELS = {"rule": "pass rate", "pairwise": "win rate", "callable": "mean"}


def row_evals(row: dict) -> dict:
    """A report's evaluations by name (a report of an earlier version holds one, ``heldout``)."""
    return row["evals"] if "evals" in row else {"heldout": row["heldout"]}


def cell(kind: str, m: dict) -> str:
    """One evaluation's figures in a few characters."""
    low, high = m["ci95"]
    if kind == "rule":
        return f"{m['pass_rate']:.3f} ({m['passed']}/{m['n']}, {low:.2f}-{high:.2f})"
    if kind == "pairwise":
        return f"{m['win_rate']:.3f} ({low:.2f}-{high:.2f}; W/T/L {m['wins']}/{m['ties']}/{m['losses']})"
    return f"{m['mean']:.3f} ({low:.3f}-{high:.3f}, n={m['n']})"


def round_markdown(report: dict, kinds: dict[str, str]) -> str:
    """``report.md``: the round in a few lines. ``kinds`` maps evaluation names to their kinds."""
    lines = [f"# Round {report['round']}", "",
             f"- prompts: {report['prompts']}; judged negative: {report['negatives']}, positive: "
             f"{report['positives']}, failed: {report['failed']}; generation failed: "
             f"{report.get('generation_failed', 0)}; empty responses: {report['empty_responses']}",
             f"- trained on {report['trained_rows']} rows; final train loss: {report['train_loss']}"]
    for name, metrics in row_evals(report).items():
        kind = kinds.get(name, "rule")
        extra = ""
        if kind == "pairwise":
            extra = f", against {metrics.get('reference')}; consistent verdicts: {metrics.get('consistent', '-')}"
        lines.append(f"- eval {name} ({kind}), {LABELS[kind]}: {cell(kind, metrics)}{extra}")
    if "guard" in report:
        lines.append(f"- guard: {guard_line(report['guard'])}")
    lines.append(f"- seconds per phase: {report['seconds']}")
    lines += [f"- failed row {r['id']}: {r['failed']}" for r in report["failed_rows"]]
    return "\n".join(lines) + "\n"


def guard_line(guard: dict) -> str:
    """The guard's decision on a round in one sentence (``report.md``)."""
    tries = f"after {guard['attempts']} attempt{'s' if guard['attempts'] > 1 else ''}"
    why = f" ({'; '.join(guard['reasons'])})" if guard["reasons"] else ""
    if guard["action"] == "rollback":
        return (f"rolled back {tries}{why}; eval {guard['eval']}; the model stays round "
                f"{guard['accepted_round']}'s")
    return f"kept {tries}{' (retrained at a lower learning rate)' if guard['attempts'] > 1 else ''}; eval " \
        f"{guard['eval']}"


def guard_cell(row: dict) -> str:
    """The guard column of the summary table: kept, kept after a retrain, or rolled back to a round's model."""
    guard = row.get("guard")
    if guard is None:
        return "-"
    if guard["action"] == "rollback":
        return f"rolled back to {guard['accepted_round']}"
    return "kept (retrained)" if guard["attempts"] > 1 else "kept"


def summary_table(rows: list[dict], kinds: dict[str, str]) -> str:
    """A plain-text table: one line per round (round 0 is the starting model), one column per evaluation, and the
    guard's decision when a round has one."""
    names = list(kinds)
    guarded = any("guard" in r for r in rows)
    width = {name: max(30, len(f"{name}: {LABELS[kinds[name]]}")) for name in names}
    header = f"{'round':>5}  {'negatives':>9}  {'positives':>9}  {'failed':>6}  {'trained':>7}  {'loss':>7}  " + \
        "  ".join(f"{name + ': ' + LABELS[kinds[name]]:<{width[name]}}" for name in names)
    if guarded:
        header += f"  {'guard':<18}"
    lines = [header, "-" * len(header)]
    for r in rows:
        cells = ["-"] * 5 if r["round"] == 0 else [
            r["negatives"], r["positives"], r["failed"] + r.get("generation_failed", 0), r["trained_rows"],
            "-" if r["train_loss"] is None else f"{r['train_loss']:.3f}"]
        evals = row_evals(r)
        figures = "  ".join(f"{cell(kinds[n], evals[n]) if n in evals else '-':<{width[n]}}" for n in names)
        line = (f"{r['round']:>5}  {cells[0]:>9}  {cells[1]:>9}  {cells[2]:>6}  {cells[3]:>7}  {cells[4]:>7}  "
                f"{figures}")
        lines.append(line + f"  {guard_cell(r):<18}" if guarded else line)
    return "\n".join(lines)


def chart_name(kinds: dict[str, str]) -> str:
    """``pass_rate.png`` when every evaluation is a rule pass rate (as earlier versions named it), else
    ``evals.png``."""
    return "pass_rate.png" if all(k == "rule" for k in kinds.values()) else "evals.png"


def write_chart(path: Path, rows: list[dict], kinds: dict[str, str]) -> None:
    """Each evaluation's number per round with its 95% interval, one panel each, as a PNG (written atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(kinds)
    figure, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 3.2), squeeze=False)
    for axis, name in zip(axes[0], names):
        kind = kinds[name]
        points = [(r["round"], *score_of(kind, row_evals(r)[name])) for r in rows if name in row_evals(r)]
        x = [p[0] for p in points]
        y = [p[1] for p in points]
        low = [v - p[2][0] for v, p in zip(y, points)]
        high = [p[2][1] - v for v, p in zip(y, points)]
        axis.errorbar(x, y, yerr=[low, high], marker="o", capsize=3)
        if kind == "pairwise":
            axis.axhline(0.5, color="grey", linewidth=0.8, linestyle="--")
        axis.set(xlabel="round (0 = starting model)", ylabel=f"{name}: {LABELS[kind]}", xticks=x,
                 title=f"Online CUT: {name} ({HEADLINE[kind].replace('_', ' ')})")
        if kind in ("rule", "pairwise"):
            axis.set_ylim(0, 1)
    figure.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp")
    figure.savefig(tmp, format="png", dpi=100)
    plt.close(figure)
    tmp.replace(path)

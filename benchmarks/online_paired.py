"""A paired test between two rounds of a rule-judged online run: did the later round's model pass more held-out
prompts than the earlier one's, beyond chance?

Each round's ``eval.json`` keeps the answers its rule evaluation judged (``responses``, in the order of the run's
held-out prompts). This re-judges them with the rule judge, checks that the pass rates match the ones the run
recorded, and reports the exact McNemar test over the prompts only one of the two rounds passes. No model runs.

    python benchmarks/online_paired.py runs/online-multikind 0 2
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from stats import discordant, mcnemar_exact  # noqa: E402

from cutalign.generation import instruction_text  # noqa: E402
from cutalign.tasks import rule_judge  # noqa: E402


def passes(run: Path, index: int) -> tuple[list[str], list[bool]]:
    """The prompts and, per prompt, whether round ``index``'s stored answer passes the rule judge."""
    path = run / f"round-{index:02d}" / "eval.json"
    if not path.is_file():
        raise SystemExit(f"{path}: not found (round {index} has no rule evaluation in this run)")
    result = json.loads(path.read_text())
    if "responses" not in result:
        raise SystemExit(f"{path}: no 'responses' (not a rule evaluation's result)")
    prompts = [r["prompt"] for r in result["responses"]]
    passed = [rule_judge(instruction_text(r["prompt"]), r["completion"]) is None for r in result["responses"]]
    if abs(sum(passed) / len(passed) - result["pass_rate"]) > 1e-9:
        raise SystemExit(f"{path}: re-judged {sum(passed)}/{len(passed)}, but the run recorded pass_rate "
                         f"{result['pass_rate']:.4f} (was the rule judge changed since?)")
    return prompts, passed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", help="the online run's directory")
    parser.add_argument("before", type=int, help="the earlier round (0: the starting model)")
    parser.add_argument("after", type=int, help="the later round")
    args = parser.parse_args(argv)
    run = Path(args.run)
    (prompts_before, before), (prompts_after, after) = passes(run, args.before), passes(run, args.after)
    if prompts_before != prompts_after:
        raise SystemExit(f"{run}: rounds {args.before} and {args.after} were evaluated on different prompts")
    for index, passed in ((args.before, before), (args.after, after)):
        print(f"round {index}: {sum(passed)}/{len(passed)} pass")
    only_after, only_before = discordant(after, before)
    print(f"only round {args.after} passes: {only_after}; only round {args.before} passes: {only_before}; "
          f"exact McNemar p = {mcnemar_exact(only_after, only_before):.3g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A paired test between two rounds of a rule-judged online run: did the later round's model pass more held-out
prompts than the earlier one's, beyond chance?

An online run's ``eval.json`` keeps each round's pass rate, not which prompts passed, so this re-answers the run's
held-out prompts (``heldout.json``) greedily with each round's adapter, exactly as the loop's rule evaluation does
(same prompts, template, greedy decoding, new-token limit), checks that the pass rates it gets are the ones the run
recorded, and reports the exact McNemar test over the prompts only one of the two rounds passes.

    python benchmarks/online_paired.py runs/online-multikind 0 2 [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from stats import discordant, mcnemar_exact  # noqa: E402

from cutalign.generation import SamplingConfig, generate  # noqa: E402
from cutalign.tasks import rule_judge  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", help="the online run's directory")
    parser.add_argument("before", type=int, help="the earlier round (0: the starting model)")
    parser.add_argument("after", type=int, help="the later round")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    run = Path(args.run)
    config = json.loads((run / "config.json").read_text())
    spec = config["eval"][0]
    if spec["kind"] != "rule":
        parser.error(f"{run}: the first evaluation is {spec['kind']!r}; this test needs a rule evaluation")
    prompts = json.loads((run / "heldout.json").read_text())

    from peft import PeftModel

    from cutalign.models import load_model, load_tokenizer

    tokenizer = load_tokenizer(config["model"]["model"])
    passed = {}
    for index in (args.before, args.after):
        model = PeftModel.from_pretrained(load_model(config["model"]["model"]), run / f"round-{index:02d}" / "adapter")
        sampling = SamplingConfig(max_new_tokens=spec["max_new_tokens"], temperature=0.0, batch_size=spec["batch_size"])
        answers = generate(model, tokenizer, prompts, sampling, template=config["training"]["template"],
                           description=f"round {index}")
        passed[index] = [rule_judge(p, a) is None for p, a in zip(prompts, answers)]
        recorded = json.loads((run / f"round-{index:02d}" / "eval.json").read_text())["pass_rate"]
        print(f"round {index}: {sum(passed[index])}/{len(prompts)} pass (the run recorded {recorded:.3f})")
    only_after, only_before = discordant(passed[args.after], passed[args.before])
    print(f"only round {args.after} passes: {only_after}; only round {args.before} passes: {only_before}; "
          f"exact McNemar p = {mcnemar_exact(only_after, only_before):.3g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

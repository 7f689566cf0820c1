"""`cutalign demo`: the online loop on the embedded model, judged by rules, in minutes on a CPU.

1. Load the embedded SmolLM2-135M-Instruct (no network) and score it on held-out prompts of the built-in
   verifiable task (greedy answers, rule-checked): round 0.
2. Each round: sample one response per fresh training prompt, let the rule judge write a judgment for each failing
   one, train CUT with LoRA on those triplets (starting from the previous round's adapter), score the held-out
   prompts again.
3. Print the held-out pass rate per round and before / after with 95% intervals.

It is :func:`cutalign.online.run_online` with the shipped ``online-rule`` config (the demo's flags override a few
of its keys), so the output directory is an online run directory: run the same command again and it resumes; raise
``--rounds`` and it continues. The loss mix is that config's, the one the measurements on this model support
(docs/method.md, "Which loss mix"): Align-P MLE plus the unlikelihood of the tokens the judgment flags, with the
Align-N MLE term and the MLE on unflagged tokens of negatives switched off.
"""

from __future__ import annotations

from pathlib import Path

from .io import read_json, write_json, write_jsonl
from .tasks import KINDS

LOSS_KEYS = ("threshold", "alpha", "reduction", "align_p_weight", "align_n_weight", "unflagged_weight",
             "positive_ratio")
"""The loss settings recorded in the demo's metrics.json."""

DEMO_CONFIG = "online-rule"


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="online CUT on the embedded model: generate, judge with rules, train, score held-out prompts (CPU)",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument("--output-dir", default="demo-output", help="the run directory (default demo-output); "
                        "the same command resumes a stopped demo")
    parser.add_argument("--model", default="default", help="model to start from (default: embedded SmolLM2-135M)")
    parser.add_argument("--kinds", nargs="+", default=["no_commas"], choices=KINDS,
                        help="constraint kinds of the task prompts (default: no_commas)")
    parser.add_argument("--rounds", type=int, default=2, help="online rounds (default 2)")
    parser.add_argument("--prompts-per-round", type=int, default=48, help="fresh training prompts per round "
                        "(default 48)")
    parser.add_argument("--heldout-prompts", type=int, default=48, help="held-out prompts (default 48)")
    parser.add_argument("--max-new-tokens", type=int, default=64, help="response length limit (default 64)")
    parser.add_argument("--epochs", type=float, default=2, help="training epochs per round (default 2)")
    parser.add_argument("--learning-rate", type=float, default=3e-4, help="LoRA learning rate (default 3e-4)")
    parser.add_argument("--seed", type=int, default=0, help="seed for prompts, sampling and training")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    parser.set_defaults(run=run)


def demo_config(args):
    """The shipped ``online-rule`` config with the demo's flags applied."""
    import yaml

    from .config import config_file
    from .online.config import config_from_dict

    path = config_file(DEMO_CONFIG)
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    raw.update(output_dir=args.output_dir, seed=args.seed, rounds=args.rounds, prompts_per_round=args.prompts_per_round)
    raw["model"]["model"] = args.model
    raw["task"]["kinds"] = list(args.kinds)
    raw["generation"]["max_new_tokens"] = raw["eval"]["max_new_tokens"] = args.max_new_tokens
    raw["eval"]["size"] = args.heldout_prompts
    raw["training"].update(learning_rate=args.learning_rate, num_train_epochs=args.epochs)
    return config_from_dict(raw, source=f"cutalign demo ({path})")


def run(args) -> int:
    from .online.loop import round_dir, run_online

    config = demo_config(args)
    out = Path(config.output_dir)
    print(f"cutalign demo: {config.rounds} round(s) of online CUT on {config.model.model!r}, rule judge, run directory "
          f"{out}/")
    summary = run_online(config, progress=not args.no_progress)
    first, last = summary["rounds"][0], summary["rounds"][-1]
    # The held-out answers before and after, as rows `cutalign annotate` opens.
    for name, index in (("heldout_before.jsonl", first["round"]), ("heldout_after.jsonl", last["round"])):
        evaluation = read_json(round_dir(out, index) / "eval.json")
        write_jsonl(out / name, [{"id": f"heldout-{i}", **row} for i, row in enumerate(evaluation["responses"])])
    loss = {k: v for k, v in config.training.items() if k in LOSS_KEYS}
    metrics = {"model": config.model.model, "kinds": list(args.kinds), "seed": args.seed, "loss": loss,
               "rounds": config.rounds, "before": first["heldout"], "after": last["heldout"],
               "per_round": [{"round": r["round"], "pass_rate": r["heldout"]["pass_rate"]} for r in summary["rounds"]]}
    write_json(out / "metrics.json", metrics)

    def line(label, held):
        low, high = held["ci95"]
        return f"  {label:<7} {held['pass_rate']:.3f}  (95% CI {low:.3f}-{high:.3f}, n={held['n']})"

    print("\nHeld-out constraint pass rate (" + ", ".join(args.kinds) + "):")
    print(line("before", first["heldout"]))
    print(line("after", last["heldout"]))
    print(f"\nOutputs in {out}/: round-NN/ (prompts, generations, judgments, dataset, adapter, eval, report), "
          "summary.json, pass_rate.png, metrics.json.")
    print(f"Judge the held-out answers yourself: cutalign annotate {out / 'heldout_after.jsonl'}")
    return 0

"""Online CUT on the embedded model, judged by rules, in minutes on a CPU.

    cutalign demo [--rounds 2] [--output_dir demo-output]

1. Load the embedded SmolLM2-135M-Instruct (no network) and score it on held-out prompts of the built-in
   verifiable task (greedy answers, rule-checked): round 0.
2. Each round: sample one response per fresh training prompt, let the rule judge write a judgment for each failing
   one, train CUT with LoRA on those triplets (starting from the previous round's adapter), score the held-out
   prompts again.
3. Print the held-out pass rate per round and before / after with 95% intervals.

It is the online loop (cutalign online) with the shipped online-rule config, a few of its keys set by these flags,
so the output directory is an online run directory: the same command again resumes; a larger --rounds continues.
The loss mix is that config's (docs/method.md, "Which loss mix"): Align-P MLE plus the unlikelihood of the tokens
the judgment flags, with the Align-N MLE term and the MLE on unflagged tokens of negatives switched off.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..tasks import KINDS

SUMMARY = "online CUT on the embedded model: generate, judge with rules, train, score held-out prompts (CPU)"

DEMO_CONFIG = "online-rule"
"""The shipped online config the demo runs."""

LOSS_KEYS = ("threshold", "alpha", "reduction", "align_p_weight", "align_n_weight", "unflagged_weight",
             "positive_ratio")
"""The loss settings recorded in the demo's metrics.json."""


@dataclass
class DemoArguments:
    """The demo's flags: each sets one key of the online-rule config."""

    output_dir: str = field(default="demo-output", metadata={
        "help": "the run directory; the same command resumes a stopped demo"})
    model: str = field(default="default", metadata={
        "help": "model to start from: 'default' (the embedded SmolLM2-135M-Instruct) or a directory"})
    kinds: list[str] = field(default_factory=lambda: ["no_commas"], metadata={
        "help": f"constraint kinds of the task prompts: {', '.join(KINDS)}", "choices": KINDS, "metavar": "KIND"})
    rounds: int = field(default=2, metadata={"help": "online rounds"})
    prompts_per_round: int = field(default=48, metadata={"help": "fresh training prompts per round"})
    heldout_prompts: int = field(default=48, metadata={"help": "held-out prompts scored after every round"})
    max_new_tokens: int = field(default=64, metadata={"help": "response length limit"})
    num_train_epochs: float = field(default=1.0, metadata={
        "help": "training epochs per round (1 keeps the demo under 10 minutes on 2 CPU cores)"})
    learning_rate: float = field(default=3e-4, metadata={"help": "LoRA learning rate"})
    seed: int = field(default=0, metadata={"help": "seed for prompts, sampling and training"})
    no_progress: bool = field(default=False, metadata={"help": "hide the progress bars"})


def arguments() -> tuple:
    return (DemoArguments,)


def demo_config(args: DemoArguments):
    """The shipped ``online-rule`` config with the demo's flags applied (checked like any online config)."""
    from ..config import config_file
    from ..online.config import config_from_dict
    from ..io import read_yaml

    path = config_file(DEMO_CONFIG, online=True)
    raw = read_yaml(str(path))
    raw.update(output_dir=args.output_dir, seed=args.seed, rounds=args.rounds, prompts_per_round=args.prompts_per_round)
    raw["model"]["model"] = args.model
    raw["task"]["kinds"] = list(args.kinds)
    raw["generation"]["max_new_tokens"] = raw["eval"]["max_new_tokens"] = args.max_new_tokens
    raw["eval"]["size"] = args.heldout_prompts
    raw["training"].update(learning_rate=args.learning_rate, num_train_epochs=args.num_train_epochs)
    return config_from_dict(raw, source=f"cutalign demo ({path})")


def parse(argv: list[str]) -> tuple:
    """(DemoArguments,) from the command line and --config FILE."""
    from . import options

    return options.parse(argv, arguments(), prog="cutalign demo", description=__doc__)


def run(argv: list[str]) -> int:
    (args,) = parse(argv)
    config = demo_config(args)

    from ..io import read_json, write_json, write_jsonl
    from ..online.loop import round_dir, run_online

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

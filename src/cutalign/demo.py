"""`cutalign demo`: one round of learning from judgments on the embedded model, start to finish, in minutes.

1. Load the embedded SmolLM2-135M-Instruct (no network).
2. Score it on held-out prompts of the built-in verifiable task (greedy answers, rule-checked).
3. Sample one response per training prompt, and let the rule judge write a judgment for each failing one.
4. Train CUT with LoRA on those (prompt, response, judgment) triplets.
5. Score the trained model on the same held-out prompts and print before / after with 95% intervals.

The loss mix is the one the measurements on this model support (see README, "Which loss mix"): Align-P MLE plus
the unlikelihood of the tokens the judgment flags; the Align-N MLE term and the MLE on unflagged tokens of
negatives are switched off (weights 0), because on a 135M model they teach the judged-bad responses back.
Everything is written under one output directory: the judged training data, held-out answers before and after,
the adapter, and metrics.json.
"""

from __future__ import annotations

import time
from pathlib import Path

from .io import write_json, write_jsonl
from .tasks import KINDS

DEMO_LOSS = {"threshold": 1.1, "alpha": 1.0, "align_p_weight": 1.0, "align_n_weight": 0.0,
             "unflagged_weight": 0.0, "unlikelihood_weight": 1.0}


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="generate, judge with rules, train CUT and compare held-out pass rates (embedded model, CPU)",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument("--output-dir", default="demo-output", help="where everything is written (default "
                        "demo-output)")
    parser.add_argument("--model", default="default", help="model to start from (default: embedded SmolLM2-135M)")
    parser.add_argument("--kinds", nargs="+", default=["no_commas"], choices=KINDS,
                        help="constraint kinds of the task prompts (default: no_commas)")
    parser.add_argument("--train-prompts", type=int, default=128, help="training prompts (default 128)")
    parser.add_argument("--heldout-prompts", type=int, default=48, help="held-out prompts (default 48)")
    parser.add_argument("--max-new-tokens", type=int, default=64, help="response length limit (default 64)")
    parser.add_argument("--epochs", type=float, default=2, help="training epochs (default 2)")
    parser.add_argument("--learning-rate", type=float, default=3e-4, help="LoRA learning rate (default 3e-4)")
    parser.add_argument("--seed", type=int, default=0, help="seed for prompts, sampling and training")
    parser.set_defaults(run=run)


def _score(model, tokenizer, prompts, max_new_tokens, label):
    from .online.generate import SamplingConfig, generate
    from .tasks import pass_rate, rule_judge, wilson_interval

    answers = generate(model, tokenizer, prompts, SamplingConfig(max_new_tokens=max_new_tokens, batch_size=16),
                       description=f"held-out answers ({label})")
    report = pass_rate(prompts, answers)
    passed = round(report["pass_rate"] * report["n"])
    report["interval95"] = wilson_interval(passed, report["n"])
    rows = [{"id": f"heldout-{i}", "prompt": p, "completion": a, "judgment": rule_judge(p, a)}
            for i, (p, a) in enumerate(zip(prompts, answers))]
    return report, rows


def run(args) -> int:
    from peft import LoraConfig

    from .models import load_model, load_tokenizer
    from .online.generate import SamplingConfig, generate
    from .tasks import RuleJudge, task_prompts
    from .trainer import CUTConfig, CUTTrainer

    started = time.time()
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    kinds = tuple(args.kinds)
    print(f"[1/5] loading the model ({args.model})")
    tokenizer = load_tokenizer(args.model)
    model = load_model(args.model)
    train_prompts = task_prompts("train", n=args.train_prompts, kinds=kinds, seed=args.seed)
    heldout_prompts = task_prompts("heldout", n=args.heldout_prompts, kinds=kinds, seed=args.seed)

    print(f"[2/5] held-out pass rate before training ({len(heldout_prompts)} prompts)")
    before, before_rows = _score(model, tokenizer, heldout_prompts, args.max_new_tokens, "before")
    write_jsonl(out / "heldout_before.jsonl", before_rows)

    print(f"[3/5] sampling {len(train_prompts)} training responses and judging them with the rule judge")
    sampling = SamplingConfig(max_new_tokens=args.max_new_tokens, temperature=0.8, batch_size=16, seed=args.seed)
    responses = generate(model, tokenizer, train_prompts, sampling, description="training responses")
    judgments = RuleJudge()(train_prompts, responses)
    data = [{"id": f"train-{i}", "prompt": p, "completion": r, "judgment": j}
            for i, (p, r, j) in enumerate(zip(train_prompts, responses, judgments))]
    write_jsonl(out / "train_data.jsonl", data)
    negatives = sum(j is not None for j in judgments)
    print(f"      {negatives} of {len(data)} responses judged negative")

    print("[4/5] training CUT with LoRA")
    config = CUTConfig(
        output_dir=str(out / "checkpoints"), template="chat", max_length=512, positive_ratio=-1,
        num_train_epochs=args.epochs, learning_rate=args.learning_rate, per_device_train_batch_size=4,
        lr_scheduler_type="constant", warmup_steps=0, logging_steps=5, save_strategy="no", report_to=[],
        seed=args.seed, **DEMO_LOSS,
    )
    lora = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, task_type="CAUSAL_LM",
                      target_modules=["q_proj", "v_proj", "gate_proj", "up_proj", "down_proj"])
    trainer = CUTTrainer(model, config, train_dataset=data, processing_class=tokenizer, peft_config=lora)
    train_result = trainer.train()
    trainer.save_model(str(out / "adapter"))

    print("[5/5] held-out pass rate after training")
    after, after_rows = _score(trainer.model, tokenizer, heldout_prompts, args.max_new_tokens, "after")
    write_jsonl(out / "heldout_after.jsonl", after_rows)

    metrics = {
        "model": args.model, "kinds": list(kinds), "seed": args.seed, "loss": DEMO_LOSS,
        "train_examples": len(data), "train_negatives": negatives,
        "before": before, "after": after, "train": train_result.metrics,
        "seconds": round(time.time() - started, 1),
    }
    write_json(out / "metrics.json", metrics)

    def line(label, report):
        low, high = report["interval95"]
        return f"  {label:<7} {report['pass_rate']:.3f}  (95% CI {low:.3f}-{high:.3f}, n={report['n']})"

    print("\nHeld-out constraint pass rate (" + ", ".join(kinds) + "):")
    print(line("before", before))
    print(line("after", after))
    print(f"\nOutputs in {out}/ (train_data.jsonl, heldout_before.jsonl, heldout_after.jsonl, adapter/, "
          f"metrics.json); {metrics['seconds']:.0f} s in all.")
    print(f"Judge the held-out answers yourself: cutalign annotate {out / 'heldout_after.jsonl'}")
    return 0

"""`cutalign train-judge`: train an AI judge ((instruction, response) -> judgment) with LoRA and evaluate it.

    cutalign train-judge --output-dir runs/judge                       # the built-in task, rule-judged
    cutalign train-judge --data judged.jsonl --heldout-data held.jsonl --model DIR --output-dir runs/judge

The trained adapter is a ``model`` judge for the online loop (``judge: {kind: model, model: runs/judge}``).
"""

from __future__ import annotations

from .errors import UsageError


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "train-judge",
        help="train an AI judge on judgment data and report its agreement with held-out judgments",
        description="Train a judgment model with LoRA: the prompt asks for a judgment of (instruction, response), "
        "the target is the reference judgment, or 'No issues.' for a good response. Then evaluate it on held-out "
        "judgments: accuracy, precision and recall of the bad/good decision, and ROUGE-L of its critiques. Without "
        "--data it builds the data itself: responses of the model to the built-in task, judged by the rule judge.",
    )
    parser.add_argument("--data", default=None, help="judgment data (canonical JSONL/JSON/CSV/Parquet or the "
                        "reference JSON); default: build it from the built-in task with the rule judge")
    parser.add_argument("--heldout-data", default=None, help="held-out judgment data for the evaluation (default: "
                        "--heldout-fraction of --data, or the built-in task's held-out prompts)")
    parser.add_argument("--heldout-fraction", type=float, default=0.2,
                        help="share of --data held out when --heldout-data is not given (default 0.2)")
    parser.add_argument("--model", default="default", help="causal LM to train: a directory or 'default' "
                        "(the embedded SmolLM2-135M-Instruct)")
    parser.add_argument("--output-dir", default="runs/judge", help="where the adapter, tokenizer, data and "
                        "metrics go (default runs/judge)")
    parser.add_argument("--builtin-train", type=int, default=160,
                        help="built-in data: training responses to generate and rule-judge (default 160)")
    parser.add_argument("--builtin-heldout", type=int, default=48,
                        help="built-in data: held-out responses (default 48)")
    parser.add_argument("--kinds", nargs="+", default=["no_commas"],
                        help="built-in data: constraint kinds of the prompts (default no_commas)")
    parser.add_argument("--epochs", type=float, default=2.0, help="training epochs (default 2)")
    parser.add_argument("--learning-rate", type=float, default=5e-4, help="learning rate (default 5e-4)")
    parser.add_argument("--batch-size", type=int, default=4, help="examples per step (default 4)")
    parser.add_argument("--lora-r", type=int, default=16, help="LoRA rank (default 16)")
    parser.add_argument("--max-new-tokens", type=int, default=64,
                        help="longest judgment generated in the evaluation (default 64)")
    parser.add_argument("--seed", type=int, default=0, help="seed for sampling, splitting and training")
    parser.add_argument("--balance", action="store_true", help="repeat the rarer class (good or bad) until both are "
                        "as many")
    parser.set_defaults(run=run)


def run(args) -> int:
    from .judges.training import JudgeTrainingConfig, train_judge_command

    if not 0 < args.heldout_fraction < 1:
        raise UsageError(f"--heldout-fraction must be between 0 and 1, got {args.heldout_fraction}")
    for name in ("builtin_train", "builtin_heldout", "batch_size", "lora_r", "max_new_tokens"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if not args.epochs > 0 or not args.learning_rate > 0:
        raise UsageError("--epochs and --learning-rate must be > 0")
    config = JudgeTrainingConfig(
        model=args.model, output_dir=args.output_dir, epochs=args.epochs, learning_rate=args.learning_rate,
        batch_size=args.batch_size, lora_r=args.lora_r, max_new_tokens=args.max_new_tokens, seed=args.seed,
        balance=args.balance,
    )
    return train_judge_command(config, data=args.data, heldout_data=args.heldout_data,
                               heldout_fraction=args.heldout_fraction, builtin_train=args.builtin_train,
                               builtin_heldout=args.builtin_heldout, kinds=args.kinds)

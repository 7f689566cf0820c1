"""The mini-paper benchmark: every method trained on the same judged data, evaluated on the same held-out prompts.

    python benchmarks/mini_paper.py                 # CPU default: 1 seed, every method (about 27 min on 2 cores);
                                                    # updates the table and chart in README.md
    python benchmarks/mini_paper.py --ablations     # the same plus the CUT ablations (about 50 min)
    python benchmarks/mini_paper.py --quick         # a few-minute smoke run
    python benchmarks/mini_paper.py --scale gpu     # more prompts, more seeds, every constraint kind

Protocol (fixed for every method):

1. Training data, per seed, cached in ``<out>/cache/``: ``--samples`` sampled responses (temperature 0.8) of the
   embedded SmolLM2-135M-Instruct to each of ``--train-prompts`` training prompts of the built-in task, judged by
   the rule judge. Every method trains on exactly these rows. Two samples per prompt (not one) so that DPO finds
   prompts with a good and a bad response to pair.
2. Training: LoRA (r=16, alpha=32, q/v/gate/up/down projections), AdamW, the same constant learning rate, epochs
   and batch size for every method (DPO and KTO included: beta 0.1), chat template, no gradient checkpointing. (A
   first try at 3e-4 with linear decay and one epoch left both SFT baselines at the base model's pass rate.)
3. Evaluation: greedy answers to the held-out prompts (base instructions never seen in training); pass rate of the
   rule judge with a Wilson interval, and the guard: held-out log-likelihood of the base model's greedy answers to
   the held-out base instructions without constraints, mean length in words, distinct-1/2.

Results of each (method, seed) are cached as JSON in ``<out>/runs/``, so an interrupted run resumes. The table
(``<out>/mini_paper.md``) pools the held-out answers of all seeds for the pass rate and its Wilson interval (the
seeds reuse the same prompts, so the interval is optimistic about seed variance: per-seed values are listed too).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import random
import sys
import time
from pathlib import Path

import torch

from cutalign.baselines import METHODS
from cutalign.eval import generate_records, guard_metrics, task_accuracy
from cutalign.generation import SamplingConfig, generate
from cutalign.io import write_json, write_text
from cutalign.judges import RuleJudge
from cutalign.models import load_model, load_tokenizer
from cutalign.tasks import base_instructions, task_prompts, wilson_interval

LORA_TARGETS = ["q_proj", "v_proj", "gate_proj", "up_proj", "down_proj"]

# CUT recipes: CUTConfig keywords. "cut-reference" is the paper's online setting; the others are the variants and
# ablations the analysis asks for. positive_ratio -1 keeps every positive (the reference keeps 0.25 x negatives).
REFERENCE = dict(threshold=1.1, alpha=1.0, reduction="reference", positive_ratio=0.25)
CUT_RECIPES = {
    "cut-reference": REFERENCE,
    "cut-p+ul": dict(threshold=1.1, alpha=1.0, reduction="normalized", positive_ratio=-1, align_n_weight=0.0,
                     unflagged_weight=0.0),
}
# The ablations: λ and α around the demo mix; the reference mix without its unlikelihood term and with every positive.
ABLATIONS = {
    **{f"cut-p+ul λ={t}": {**CUT_RECIPES["cut-p+ul"], "threshold": t} for t in (1.0, 1.2, 1.5)},
    "cut-p+ul α=0.5": {**CUT_RECIPES["cut-p+ul"], "alpha": 0.5},
    "cut-reference no UL": {**REFERENCE, "alpha": 0.0},
    "cut-reference all positives": {**REFERENCE, "positive_ratio": -1},
}
BASELINES = METHODS

SCALES = {
    # train prompts, samples per prompt, held-out prompts (None: all), constraint kinds, new tokens, seeds
    "quick": dict(train_prompts=32, samples=2, heldout=24, kinds=("no_commas",), new_tokens=32, seeds=(0,),
                  epochs=1),
    "cpu": dict(train_prompts=64, samples=2, heldout=48, kinds=("no_commas",), new_tokens=64, seeds=(0,),
                epochs=1),
    "gpu": dict(train_prompts=1024, samples=2, heldout=None, kinds=None, new_tokens=128, seeds=(0, 1, 2),
                epochs=2),
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke run: 32 prompts, 1 seed, 1 epoch, no ablations")
    parser.add_argument("--scale", choices=("cpu", "gpu"), default="cpu",
                        help="cpu: 64 prompts x 2 samples, 'no commas', 1 seed, 1 epoch (about 27 min on 2 cores); "
                        "gpu: 1024 prompts, every constraint kind, 3 seeds, 2 epochs")
    parser.add_argument("--seeds", default=None, help="comma-separated seeds (default: the scale's)")
    parser.add_argument("--methods", default=None,
                        help="comma-separated subset of methods to run (default: all of the scale)")
    parser.add_argument("--ablations", action="store_true", help="also run the CUT ablations (lambda, alpha, without "
                        "the unlikelihood term, all positives): about 25 more minutes on 2 CPU cores")
    parser.add_argument("--ablation-seeds", default="0", help="seeds the ablations run on (default: 0)")
    parser.add_argument("--learning-rate", type=float, default=5e-4,
                        help="learning rate of every method, constant (default 5e-4)")
    parser.add_argument("--batch-size", type=int, default=4, help="per-device batch size of every method")
    parser.add_argument("--out", default="benchmarks/results", help="output directory")
    parser.add_argument("--no-readme", action="store_true", help="do not copy the table and chart into README.md "
                        "(quick runs never do)")
    return parser.parse_args(argv)


def training_args(args, scale, seed, run_dir) -> dict:
    return dict(output_dir=str(run_dir), learning_rate=args.learning_rate, num_train_epochs=scale["epochs"],
                per_device_train_batch_size=args.batch_size, gradient_accumulation_steps=1, seed=seed,
                lr_scheduler_type="constant", warmup_steps=0, weight_decay=0.0, logging_steps=10,
                save_strategy="no", report_to=[], disable_tqdm=True, gradient_checkpointing=False,
                use_cpu=not torch.cuda.is_available(), bf16=torch.cuda.is_available())


def lora_config():
    from peft import LoraConfig

    return LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, target_modules=LORA_TARGETS, task_type="CAUSAL_LM")


def judged_data(model, tokenizer, scale, seed, cache: Path) -> list[dict]:
    """The sampled and judged training rows of one seed (cached)."""
    path = cache / f"train-seed{seed}.json"
    if path.is_file():
        return json.loads(path.read_text())
    prompts = task_prompts("train", n=scale["train_prompts"], kinds=scale["kinds"], seed=0)
    asked = [p for p in prompts for _ in range(scale["samples"])]
    sampling = SamplingConfig(max_new_tokens=scale["new_tokens"], temperature=0.8, top_p=1.0, batch_size=32,
                              seed=seed)
    responses = generate(model, tokenizer, asked, sampling, description=f"sampling seed {seed}")
    judgments = RuleJudge()(asked, responses)
    rows = [{"prompt": p, "completion": r, "judgment": j, "id": f"s{seed}-{i}"}
            for i, (p, r, j) in enumerate(zip(asked, responses, judgments)) if r.strip()]
    write_json(path, rows)
    return rows


def references(model, tokenizer, scale, cache: Path) -> tuple[list[str], list[str]]:
    """Held-out base instructions (no constraint) and the base model's greedy answers: the guard's references."""
    path = cache / "guard-references.json"
    if path.is_file():
        value = json.loads(path.read_text())
        return value["prompts"], value["references"]
    prompts = [b.text for b in base_instructions("heldout")][:48]
    answers = generate(model, tokenizer, prompts, SamplingConfig(max_new_tokens=scale["new_tokens"], batch_size=16),
                       description="guard references")
    keep = [(p, a) for p, a in zip(prompts, answers) if a.strip()]
    write_json(path, {"prompts": [p for p, _ in keep], "references": [a for _, a in keep]})
    return [p for p, _ in keep], [a for _, a in keep]


def train(method, base_model, tokenizer, rows, args, scale, seed, run_dir):
    """Train one method on a fresh LoRA over a copy of the base model; returns (model, details)."""
    from peft import get_peft_model

    # The LoRA wrap happens here, the same for every method.
    model = get_peft_model(copy.deepcopy(base_model), lora_config())
    targs = training_args(args, scale, seed, run_dir)
    if method in CUT_RECIPES or method in ABLATIONS:
        from cutalign import CUTConfig, CUTTrainer

        recipe = {**CUT_RECIPES, **ABLATIONS}[method]
        config = CUTConfig(**targs, template="chat", max_length=1024, **recipe)
        trainer = CUTTrainer(model, config, train_dataset=rows, processing_class=tokenizer)
        trainer.train()
        report = trainer.data_reports["train"]
        details = {"recipe": recipe, "trained_on": report["after_downsampling"]}
        return trainer.model, details
    from cutalign.baselines import train_baseline

    refine = None
    if method == "ilf":
        sampling = SamplingConfig(max_new_tokens=scale["new_tokens"], batch_size=32)

        def refine(prompts):
            with model.disable_adapter():  # the untrained model refines, before any training
                return generate(model, tokenizer, prompts, sampling, description="ILF refinements")

    trainer = train_baseline(method, model, rows, tokenizer, training_args=targs,
                             template="chat", refine=refine)
    return trainer.model, {"data": trainer.baseline_counts}


def evaluate(model, tokenizer, method, scale, heldout, guard_prompts, guard_refs) -> dict:
    transform = None
    if method == "coh":
        from cutalign.baselines import inference_prompt as transform
    records = generate_records(model, tokenizer, heldout, generator=method, template="chat", prompt_transform=transform,
                               sampling=SamplingConfig(max_new_tokens=scale["new_tokens"], batch_size=16),
                               progress=False)
    outputs = [r["output"] for r in records]
    return {
        "task": task_accuracy(heldout, outputs),
        "guard": guard_metrics(outputs, model, tokenizer, guard_prompts, guard_refs),
        "outputs": records,
    }


def run_one(method, seed, base_model, tokenizer, rows, args, scale, heldout, guard, out: Path) -> dict:
    path = out / "runs" / f"{method.replace(' ', '_').replace('=', '')}-seed{seed}.json"
    if path.is_file():
        return json.loads(path.read_text())
    torch.manual_seed(seed)
    random.seed(seed)
    start = time.perf_counter()
    if method == "base":
        model, details, train_s = base_model, {}, 0.0
    else:
        model, details = train(method, base_model, tokenizer, rows, args, scale, seed, out / "tmp" / method)
        train_s = time.perf_counter() - start
    result = {"method": method, "seed": seed, "train_seconds": train_s, **details,
              **evaluate(model, tokenizer, method, scale, heldout, *guard)}
    result["eval_seconds"] = time.perf_counter() - start - train_s
    write_json(path, result)
    print(f"[{time.strftime('%H:%M:%S')}] {method} seed {seed}: pass {result['task']['pass_rate']:.3f} "
          f"train {train_s:.0f}s", flush=True)
    return result


def summarize(results: list[dict], order: list[str]) -> list[dict]:
    """One row per method: pooled pass rate + Wilson interval, per-seed pass rates, mean guard metrics and time."""
    table = []
    for method in order:
        runs = [r for r in results if r["method"] == method]
        if not runs:
            continue
        n = sum(r["task"]["n"] for r in runs)
        passed = sum(round(r["task"]["pass_rate"] * r["task"]["n"]) for r in runs)
        mean = lambda key: sum(r["guard"][key] for r in runs) / len(runs)  # noqa: E731
        table.append({
            "method": method, "pass_rate": passed / n, "ci": wilson_interval(passed, n), "n": n,
            "per_seed": [round(r["task"]["pass_rate"], 3) for r in sorted(runs, key=lambda r: r["seed"])],
            "heldout_logp": mean("heldout_logp"), "mean_words": mean("mean_words"),
            "distinct_2": mean("distinct_2"), "train_seconds": sum(r["train_seconds"] for r in runs) / len(runs),
        })
    return table


def markdown(table: list[dict], title: str) -> str:
    lines = [f"### {title}", "",
             "| method | pass rate | 95% CI | per seed | held-out logp/token | mean words | distinct-2 | train s |",
             "|---|---|---|---|---|---|---|---|"]
    for row in table:
        lines.append(
            f"| {row['method']} | {row['pass_rate']:.3f} | [{row['ci'][0]:.2f}, {row['ci'][1]:.2f}] | "
            f"{', '.join(f'{v:.2f}' for v in row['per_seed'])} | {row['heldout_logp']:.3f} | "
            f"{row['mean_words']:.1f} | {row['distinct_2']:.2f} | {row['train_seconds']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def chart(table: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [row["method"] for row in table]
    rates = [row["pass_rate"] for row in table]
    errors = [[r - row["ci"][0] for r, row in zip(rates, table)], [row["ci"][1] - r for r, row in zip(rates, table)]]
    colors = ["#888888" if n == "base" else "#d95f02" if n.startswith("cut") else "#1b9e77" for n in names]
    figure, axis = plt.subplots(figsize=(max(6, 0.7 * len(names)), 4))
    axis.bar(range(len(names)), rates, yerr=errors, capsize=3, color=colors)
    axis.set_xticks(range(len(names)), names, rotation=40, ha="right", fontsize=8)
    axis.set_ylabel("held-out pass rate (95% Wilson CI)")
    axis.set_ylim(0, 1)
    axis.set_title(title, fontsize=10)
    figure.tight_layout()
    temporary = path.with_suffix(".tmp.png")
    figure.savefig(temporary, dpi=120)
    plt.close(figure)
    os.replace(temporary, path)


README = Path(__file__).resolve().parents[1] / "README.md"
MARKERS = ("<!-- mini-paper:start -->", "<!-- mini-paper:end -->")


def update_readme(text: str, chart_path: Path, command: str) -> None:
    """Put the tables and the chart between the README's mini-paper markers; the chart goes to docs/."""
    import shutil

    readme = README.read_text(encoding="utf-8")
    start, end = readme.index(MARKERS[0]) + len(MARKERS[0]), readme.index(MARKERS[1])
    shutil.copyfile(chart_path, README.parent / "docs" / "mini_paper.png")
    block = f"\n\n`{command}`\n\n{text}\n![mini-paper chart](docs/mini_paper.png)\n\n"
    write_text(README, readme[:start] + block + readme[end:])


def main(argv=None) -> int:
    args = parse_args(argv)
    scale = dict(SCALES["quick" if args.quick else args.scale])
    seeds = tuple(int(s) for s in args.seeds.split(",")) if args.seeds else scale["seeds"]
    methods = ["base", *BASELINES, *CUT_RECIPES]
    if args.methods:
        methods = [m.strip() for m in args.methods.split(",")]
        unknown = [m for m in methods if m not in ("base", *BASELINES, *CUT_RECIPES, *ABLATIONS)]
        if unknown:
            print(f"error: unknown method(s) {unknown}", file=sys.stderr)
            return 2
    ablations = list(ABLATIONS) if args.ablations and not (args.quick or args.methods) else []
    ablation_seeds = [s for s in (int(x) for x in args.ablation_seeds.split(",")) if s in seeds]
    out = Path(args.out) / ("quick" if args.quick else "")
    (out / "cache").mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(min(os.cpu_count() or 1, 16))

    started = time.perf_counter()
    tokenizer = load_tokenizer("default")
    base_model = load_model("default")
    if torch.cuda.is_available():
        base_model = base_model.to("cuda")
    heldout = task_prompts("heldout", n=scale["heldout"], kinds=scale["kinds"], seed=0)
    guard = references(base_model, tokenizer, scale, out / "cache")
    results = []
    for seed in seeds:
        rows = judged_data(base_model, tokenizer, scale, seed, out / "cache")
        negatives = sum(r["judgment"] is not None for r in rows)
        print(f"seed {seed}: {len(rows)} judged responses, {negatives} negative", flush=True)
        for method in methods + (ablations if seed in ablation_seeds else []):
            results.append(run_one(method, seed, base_model, tokenizer, rows, args, scale, heldout, guard, out))

    kinds = ", ".join(scale["kinds"] or ("all kinds",))
    title = (f"SmolLM2-135M-Instruct, {scale['train_prompts']}x{scale['samples']} judged samples ({kinds}), "
             f"{len(heldout)} held-out prompts, seeds {','.join(map(str, seeds))}")
    main_table = summarize(results, methods)
    text = markdown(main_table, "Main comparison")
    if ablations:
        text += "\n" + markdown(summarize(results, ["cut-reference", "cut-p+ul", *ablations]),
                                f"CUT ablations (seed {','.join(map(str, ablation_seeds))})")
    text += (f"\n{title}. Wall time {time.perf_counter() - started:.0f} s on {os.cpu_count()} CPU core(s)"
             f"{' + GPU' if torch.cuda.is_available() else ''}.\n")
    (out / "mini_paper.md").write_text(text)
    chart(main_table, out / "mini_paper.png", title)
    write_json(out / "mini_paper.json", [{k: v for k, v in r.items() if k != "outputs"} for r in results])
    if not (args.quick or args.no_readme):
        command = " ".join(["python benchmarks/mini_paper.py", *(argv or sys.argv[1:])])
        update_readme(text, out / "mini_paper.png", command)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The mini-paper benchmark (v2): every method trained on the same judged data, over several seeds, evaluated on the
same held-out prompts, with paired significance tests, plus the judgment-content and noisy-judge comparisons.

    python benchmarks/mini_paper.py                  # the main comparison: 10 methods x 3 seeds (CPU scale)
    python benchmarks/mini_paper.py --content        # + CUT-best on generic and on shuffled judgments
    python benchmarks/mini_paper.py --noisy          # + the competitive methods under a noisy judge
    python benchmarks/mini_paper.py --ablations      # + the CUT recipe variants (λ, α, loss mix, token selection,
                                                     #   learning rate, epochs, a pairwise term) and SFT-positive
                                                     #   and DPO at the same learning rate and epochs
    python benchmarks/mini_paper.py --ablations "cut-best j0"   # + only the named variant(s), comma-separated
    python benchmarks/mini_paper.py --quick          # a few-minute smoke run (tiny sizes, one seed)
    python benchmarks/mini_paper.py --scale gpu      # more prompts, every constraint kind

Protocol (the same for every method):

1. Prompts: ``--kinds`` constraint kinds the base model sometimes satisfies; half of the prompts carry one
   constraint, half two. Held-out prompts use held-out base instructions and both seen and unseen phrasings.
2. Training data, per seed (cached in ``<out>/cache/``): ``--samples`` sampled answers (temperature 0.8) of the
   embedded SmolLM2-135M-Instruct per training prompt, judged by the rule judge. Every method trains on exactly
   these rows; the content and noise variants change only the judgments (``benchmarks/judgments.py``).
3. Training: LoRA (r = 16 on q/v/gate/up/down), AdamW, constant learning rate 5e-4, one epoch, batch 4, for every
   method (DPO and KTO: beta 0.1).
4. Evaluation: greedy answers to the held-out prompts; rule-judge pass rate (overall, per kind, per seen/unseen
   phrasing), the guard (held-out log-likelihood of the base model's answers to unconstrained held-out
   instructions, mean words, distinct-n), and paired tests of CUT-best against every other method
   (``benchmarks/stats.py``; report in ``benchmarks/mini_paper_report.py``).

Each (method, data variant, seed) cell is cached as JSON in ``<out>/runs/``: an interrupted run resumes. On a CPU
the work runs ``--jobs`` at a time (default: one per core), each task in a worker process with its own copy of the
base model: first the guard's references and every seed's training data, then a seed's cells as soon as its data
are there, so that no core waits while one seed is sampled. Runs of different seeds can also go on
different machines (``--seeds 0``, ``--seeds 1``) and be reported together afterwards (``--seeds 0,1``: every cell
is found in the cache).
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

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine, model_dir  # noqa: E402
from judgments import (  # noqa: E402
    GENERIC_JUDGMENT,
    NoisyRuleJudge,
    content_variant,
    prompt_set,
    rejudged,
    sample_and_judge,
)
from mini_paper_report import chart, report  # noqa: E402

from cutalign.baselines import METHODS  # noqa: E402
from cutalign.eval import generate_records, guard_metrics, task_accuracy  # noqa: E402
from cutalign.generation import SamplingConfig, generate  # noqa: E402
from cutalign.io import write_json, write_text  # noqa: E402
from cutalign.tasks import base_instructions, rule_judge  # noqa: E402

LORA_TARGETS = ["q_proj", "v_proj", "gate_proj", "up_proj", "down_proj"]

# CUT recipes (CUTConfig keywords). "cut-best" is the "p+ul" mix (Align-P MLE + unlikelihood on flagged tokens,
# λ = 1.1, α = 1), chosen from v1 before any v2 run: the highest pass rate whose guard stayed near the base model
# (λ = 1.0 scored higher but cost most of the held-out log-likelihood). positive_ratio -1 keeps every positive.
REFERENCE = dict(threshold=1.1, alpha=1.0, align_n_weight=1.0, unflagged_weight=1.0, positive_ratio=0.25,
                 reduction="reference")  # cutalign.config.REFERENCE_MIX at the online λ and α
CUT_BEST = dict(threshold=1.1, alpha=1.0, reduction="normalized", positive_ratio=-1, align_n_weight=0.0,
                unflagged_weight=0.0)
CUT_RECIPES = {"cut-reference": REFERENCE, "cut-best": CUT_BEST}
ABLATIONS = {
    **{f"cut-best λ={t}": {**CUT_BEST, "threshold": t} for t in (1.0, 1.2, 1.5)},
    "cut-best α=0.5": {**CUT_BEST, "alpha": 0.5},
    "cut-reference no UL": {**REFERENCE, "alpha": 0.0},
    # Without the unlikelihood, CUT-best is MLE on the good answers alone (the bad ones add no loss): what the
    # flagged-token term adds over the positives, inside the same trainer, batches and steps.
    "cut-best no UL": {**CUT_BEST, "alpha": 0.0},
    # Token selection: a threshold relative to the row (its 10% highest ratios above 1), and the ratio taken against
    # a neutral judgment j0 (the content ablation's generic sentence) instead of against no judgment.
    "cut-best top10": {**CUT_BEST, "threshold": 1.0, "max_flagged_fraction": 0.1},
    "cut-best j0": {**CUT_BEST, "contrast_judgment": GENERIC_JUDGMENT},
    # Training length: one epoch at 5e-4 (24 steps at 48 training prompts) may stop before CUT's signal has acted.
    "cut-best lr=1e-3": {**CUT_BEST, "learning_rate": 1e-3},
    "cut-best 2 epochs": {**CUT_BEST, "num_train_epochs": 2},
    # A DPO term (beta 0.1, as the DPO baseline) on the prompts that have both a good and a bad answer, next to the
    # flagged-token unlikelihood on every bad answer.
    "cut-best +pairwise": {**CUT_BEST, "pairwise_weight": 1.0},
}
BASELINE_VARIANTS = {
    # The competitive baselines at CUT-best's training-length variants, so that the recipe search is not CUT's alone:
    # SFT on the good answers sees about a quarter of the rows (6 steps an epoch), so it may be the undertrained one.
    **{f"{method} lr=1e-3": (method, {"learning_rate": 1e-3}) for method in ("sft-positive", "dpo")},
    **{f"{method} 2 epochs": (method, {"num_train_epochs": 2}) for method in ("sft-positive", "dpo")},
}
"""Baseline variants: ``name -> (method, training-argument overrides)``, run with ``--ablations`` as the CUT ones."""
MAIN_METHODS = ["base", *METHODS, *CUT_RECIPES]
GREEDY_BATCH = 64
"""Batch size of every greedy generation (held-out answers, ILF's refinements, the guard's references). Measured on
the 2-core CPU machine, one thread per job: each row's answer does not depend on its batch neighbours (batches of 16,
32 and 64 gave byte-identical answers for the base model and a trained LoRA), and one batch of 64 answers the 64
held-out prompts in 35% less time than four of 16 (64 s against 99 s), which decode at one memory-bound step a token.
Sampling (the training data) keeps batches of 16: its random draws depend on the batch."""
NOISY_METHODS = ["sft-positive", "dpo", "cut-best"]
"""Under the noisy judge: the methods that learned the constraint in v1 and v2 with a clean judge (KTO's v1 score was
one answer repeated for every prompt)."""

DEFAULT_KINDS = ("no_commas", "include_keyword", "avoid_word", "max_words", "bullet_points")
"""Kinds the base model sometimes satisfies (v1's six-kind runs: 0.1-0.75 each; lowercase 0 and left out), so
there are good answers to imitate and pairs to prefer, and that fit in 64 new tokens."""

SCALES = {
    # train prompts, samples per prompt, held-out prompts, kinds (None: all), new tokens, seeds, epochs, and the
    # unconstrained held-out instructions whose base-model answers give the guard's held-out log-likelihood.
    # cpu: 32 training prompts keep the main comparison (3 seeds) under 90 minutes on 2 cores; at 48 it took 101
    # (measured from an empty folder). The content, noisy-judge and ablation comparisons were run at 48
    # (--train-prompts 48): a size is its own cache folder, so both sizes' cells are kept.
    "quick": dict(train_prompts=8, samples=2, heldout=8, kinds=DEFAULT_KINDS, new_tokens=16, seeds=(0,), epochs=1,
                  guard=8),
    "cpu": dict(train_prompts=32, samples=2, heldout=64, kinds=DEFAULT_KINDS, new_tokens=64, seeds=(0, 1, 2),
                epochs=1, guard=48),
    "gpu": dict(train_prompts=1024, samples=2, heldout=256, kinds=None, new_tokens=128, seeds=(0, 1, 2), epochs=2,
                guard=48),
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke run: 8 prompts, 1 seed, 16 new tokens")
    parser.add_argument("--scale", choices=("cpu", "gpu"), default="cpu",
                        help="cpu: 32 prompts x 2 samples, 5 kinds, 64 held-out prompts, 3 seeds; gpu: 1024 prompts, "
                        "every kind, 256 held-out prompts, 3 seeds, 2 epochs")
    parser.add_argument("--seeds", default=None, help="comma-separated seeds (default: the scale's)")
    parser.add_argument("--train-prompts", type=int, default=None, help="training prompts (default: the scale's)")
    parser.add_argument("--heldout", type=int, default=None, help="held-out prompts (default: the scale's)")
    parser.add_argument("--new-tokens", type=int, default=None, help="max new tokens (default: the scale's)")
    parser.add_argument("--kinds", default=None, help="comma-separated constraint kinds (default: the scale's)")
    parser.add_argument("--methods", default=None,
                        help=f"comma-separated subset of the main methods (default: all: {', '.join(MAIN_METHODS)})")
    parser.add_argument("--content", action="store_true", help="judgment-content ablation: cut-best trained on "
                        "generic and on shuffled judgments (the rule judge's are the main run's)")
    parser.add_argument("--noisy", action="store_true", help=f"noisy judge (misses 20%% of violations, flags 10%% "
                        f"of good answers): {', '.join(NOISY_METHODS)} trained on its judgments")
    parser.add_argument("--ablations", nargs="?", const=",".join([*ABLATIONS, *BASELINE_VARIANTS]), default="",
                        help=f"CUT recipe and baseline variants, comma-separated (alone: all of "
                        f"{', '.join([*ABLATIONS, *BASELINE_VARIANTS])})")
    parser.add_argument("--report-only", action="store_true",
                        help="train and evaluate nothing: report the cached cells of the requested ones, and list the "
                        "missing")
    parser.add_argument("--learning-rate", type=float, default=5e-4, help="learning rate of every method (constant)")
    parser.add_argument("--batch-size", type=int, default=4, help="per-device batch size of every method")
    parser.add_argument("--jobs", type=int, default=None, help="cells trained and evaluated at once, each in its "
                        "own process (default: one per CPU core, at most 4; 1 on a GPU)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads per job (default: the cores "
                        "divided among the jobs; on a machine shared with other jobs, 1 thread was 8x faster than 2)")
    parser.add_argument("--out", default="benchmarks/results/mini_paper", help="output directory")
    return parser.parse_args(argv)


def lora_model(base_model):
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, target_modules=LORA_TARGETS, task_type="CAUSAL_LM")
    return get_peft_model(copy.deepcopy(base_model), config)


def train(method, base_model, tokenizer, rows, args, scale, seed, run_dir):
    """Train one method on a fresh LoRA over a copy of the base model; returns (model, details)."""
    model = lora_model(base_model)
    targs = dict(output_dir=str(run_dir), learning_rate=args.learning_rate, num_train_epochs=scale["epochs"],
                 per_device_train_batch_size=args.batch_size, gradient_accumulation_steps=1, seed=seed,
                 lr_scheduler_type="constant", warmup_steps=0, weight_decay=0.0, logging_steps=5,
                 save_strategy="no", report_to=[], disable_tqdm=True, activation_checkpointing=False,
                 use_cpu=not torch.cuda.is_available(), bf16=torch.cuda.is_available())
    recipes = {**CUT_RECIPES, **ABLATIONS}
    if method in recipes:
        from cutalign import CUTConfig, CUTTrainer

        config = CUTConfig(**{**targs, **recipes[method]}, template="chat", max_length=1024)  # a recipe may set lr
        trainer = CUTTrainer(model, config, train_dataset=rows, processing_class=tokenizer)
        trainer.train()
        logs = trainer.state.log_history
        details = {"recipe": recipes[method], "trained_on": trainer.data_reports["train"]["after_downsampling"],
                   "flagged_fraction_logged": [e["flagged_fraction"] for e in logs if "flagged_fraction" in e]}
        if config.pairwise_weight > 0:  # the DPO term's own figures, to tell a learned preference from a shorter answer
            details["pairwise_logged"] = [{k: e[k] for k in ("pairwise", "pairwise/margin", "pairwise/accuracy")}
                                          for e in logs if "pairwise/accuracy" in e]
        return trainer.model, details
    from cutalign.baselines import train_baseline

    method, overrides = BASELINE_VARIANTS.get(method, (method, {}))
    targs.update(overrides)
    refine = None
    if method == "ilf":
        sampling = SamplingConfig(max_new_tokens=scale["new_tokens"], batch_size=GREEDY_BATCH)

        def refine(prompts):
            with model.disable_adapter():  # the untrained model refines, before any training
                return generate(model, tokenizer, prompts, sampling, description="ILF refinements")

    trainer = train_baseline(method, model, rows, tokenizer, training_args=targs, template="chat", refine=refine)
    return trainer.model, {"data": trainer.baseline_counts}


def evaluate(model, tokenizer, method, scale, heldout, guard) -> dict:
    transform = None
    if method == "coh":
        from cutalign.baselines import inference_prompt as transform
    records = generate_records(model, tokenizer, heldout, generator=method, template="chat", prompt_transform=transform,
                               sampling=SamplingConfig(max_new_tokens=scale["new_tokens"], batch_size=GREEDY_BATCH),
                               progress=False)
    outputs = [r["output"] for r in records]
    return {"task": task_accuracy(heldout, outputs), "guard": guard_metrics(outputs, model, tokenizer, *guard),
            "passed": [rule_judge(p, o) is None for p, o in zip(heldout, outputs)], "outputs": records}


def cell_path(method, variant, seed, out: Path) -> Path:
    """Where a cell's result is cached. The base model's cell is shared by every seed and variant."""
    name = "base" if method == "base" else f"{method}@{variant}-seed{seed}"
    return out / "runs" / (name.replace(" ", "_").replace("=", "") + ".json")


def run_cell(method, variant, seed, base_model, tokenizer, rows, args, scale, heldout, guard, out: Path) -> dict | None:
    """One (method, data variant, seed) cell, from the cache when it is there (None with ``--report-only`` when it
    is not). The base model is trained on nothing and decodes greedily, so its cell is shared by every seed and
    variant."""
    name = "base" if method == "base" else f"{method}@{variant}-seed{seed}"
    path = cell_path(method, variant, seed, out)
    if path.is_file():
        return {**json.loads(path.read_text()), "seed": seed, "variant": variant}
    if args.report_only:
        return None
    torch.manual_seed(seed)
    random.seed(seed)
    start = time.perf_counter()
    if method == "base":
        model, details, train_s = base_model, {}, 0.0
    else:
        model, details = train(method, base_model, tokenizer, rows, args, scale, seed, out / "tmp" / name)
        train_s = time.perf_counter() - start
    result = {"method": method, "variant": variant, "seed": seed, "train_seconds": train_s, **details,
              **evaluate(model, tokenizer, method, scale, heldout, guard)}
    result["eval_seconds"] = time.perf_counter() - start - train_s
    write_json(path, result)
    print(f"[{time.strftime('%H:%M:%S')}] {name}: pass {result['task']['pass_rate']:.3f} train {train_s:.0f}s "
          f"eval {result['eval_seconds']:.0f}s", flush=True)
    return result


_WORKER = {}  # in a --jobs worker process: its own base model and tokenizer


def _start_worker(threads: int) -> None:
    torch.set_num_threads(threads)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _WORKER["tokenizer"] = AutoTokenizer.from_pretrained(model_dir())
    model = AutoModelForCausalLM.from_pretrained(model_dir())
    _WORKER["model"] = model.to("cuda") if torch.cuda.is_available() else model


def _in_worker(function, *args):
    """``function(base_model, tokenizer, *args)`` with this worker's base model and tokenizer."""
    return function(_WORKER["model"], _WORKER["tokenizer"], *args)


def _cell(base_model, tokenizer, method, variant, seed, rows, args, scale, heldout, guard, out) -> dict:
    return run_cell(method, variant, seed, base_model, tokenizer, rows, args, scale, heldout, guard, out)


def guard_references(model, tokenizer, prompts: list[str], new_tokens: int) -> dict:
    """The base model's greedy answers to the guard's unconstrained instructions (empty answers dropped)."""
    answers = generate(model, tokenizer, prompts, SamplingConfig(max_new_tokens=new_tokens, batch_size=GREEDY_BATCH),
                       description="guard references")
    keep = [(p, a) for p, a in zip(prompts, answers) if a.strip()]
    return {"prompts": [p for p, _ in keep], "references": [a for _, a in keep]}


def queue_cells(pool, cells, data, args, scale, heldout, guard, out: Path, queued: dict) -> None:
    """Queue ``cells`` that are neither cached nor already in ``queued`` (the base cell is shared by every seed) in
    the worker ``pool``, the costliest methods first so that the last cells to finish are short ones. A cell's result
    does not depend on which process ran it."""
    for method, variant, seed in sorted(cells, key=lambda cell: -CELL_COST.get(cell[0].split(" ")[0], 1.0)):
        path = cell_path(method, variant, seed, out)
        if not path.is_file() and path not in queued:
            queued[path] = pool.submit(_in_worker, _cell, method, variant, seed, data[seed][variant], args, scale,
                                       heldout, guard, out)


CELL_COST = {"base": 0.3, "sft-positive": 0.4, "dpo": 0.5, "sft-all": 0.9, "fp": 1.3, "ilf": 1.3, "coh": 1.2,
             "kto": 1.1, "cut-reference": 1.0, "cut-best": 1.0}
"""Relative CPU time of a method's cell (train + evaluate, 2-core machine), for ordering the --jobs queue only."""


def size_tag(scale: dict, kinds) -> str:
    """The results folder of one set of sizes, so that cells of different sizes never mix in one cache."""
    import hashlib

    digest = hashlib.sha256(",".join(kinds).encode()).hexdigest()[:6]
    return (f"p{scale['train_prompts']}x{scale['samples']}-h{scale['heldout']}-t{scale['new_tokens']}"
            f"-e{scale['epochs']}-k{len(kinds)}{digest}")


def cached(path: Path, make, queued: dict | None = None):
    """The JSON at ``path``, or else the value of its future in ``queued`` or of ``make()``, written there first."""
    if path.is_file():
        return json.loads(path.read_text())
    value = queued.pop(path).result() if queued and path in queued else make()
    write_json(path, value)
    return value


def main(argv=None) -> int:
    args = parse_args(argv)
    scale = dict(SCALES["quick" if args.quick else args.scale])
    for key in ("train_prompts", "heldout", "new_tokens"):
        if getattr(args, key) is not None:
            scale[key] = getattr(args, key)
    if args.kinds:
        scale["kinds"] = tuple(k.strip() for k in args.kinds.split(","))
    seeds = tuple(int(s) for s in args.seeds.split(",")) if args.seeds else scale["seeds"]
    methods = [m.strip() for m in args.methods.split(",")] if args.methods else list(MAIN_METHODS)
    unknown = [m for m in methods if m not in MAIN_METHODS]
    if unknown:
        print(f"error: unknown method(s) {unknown}; expected some of {', '.join(MAIN_METHODS)}", file=sys.stderr)
        return 2
    ablations = [a.strip() for a in args.ablations.split(",") if a.strip()]
    unknown = [a for a in ablations if a not in ABLATIONS and a not in BASELINE_VARIANTS]
    if unknown:
        print(f"error: unknown ablation(s) {unknown}; expected some of "
              f"{', '.join([*ABLATIONS, *BASELINE_VARIANTS])}", file=sys.stderr)
        return 2
    from cutalign.tasks import KINDS

    kinds = scale["kinds"] or KINDS
    out = Path(args.out) / size_tag(scale, kinds)
    (out / "cache").mkdir(parents=True, exist_ok=True)
    guard_path = out / "cache" / "guard-references.json"
    train_paths = {seed: out / "cache" / f"train-seed{seed}.json" for seed in seeds}
    needed = [guard_path, *train_paths.values()]
    if args.report_only and not all(path.is_file() for path in needed):
        missing_files = ", ".join(str(path) for path in needed if not path.is_file())
        print(f"error: --report-only samples and trains nothing, and these are not cached: {missing_files}",
              file=sys.stderr)
        return 2
    cores = os.cpu_count() or 1
    jobs = args.jobs or (1 if torch.cuda.is_available() else max(1, min(cores, 4)))
    threads = args.threads or max(1, min(cores // jobs, 16))
    torch.set_num_threads(threads)

    started = time.perf_counter()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir())
    base_model = AutoModelForCausalLM.from_pretrained(model_dir())
    if torch.cuda.is_available():
        base_model = base_model.to("cuda")
    heldout = prompt_set("heldout", scale["heldout"], kinds, seed=0, phrasings="all")
    train_prompts = prompt_set("train", scale["train_prompts"], kinds, seed=0)
    guard_prompts = [b.text for b in base_instructions("heldout")][:scale["guard"]]
    # What each data file is made by: function(base_model, tokenizer, *arguments).
    makers = {guard_path: (guard_references, guard_prompts, scale["new_tokens"]),
              **{path: (sample_and_judge, train_prompts, scale["samples"], scale["new_tokens"], seed)
                 for seed, path in train_paths.items()}}

    # With --jobs > 1, everything that is not cached runs in the worker pool: the guard's references and the seeds'
    # training data first (in parallel), then each seed's cells as soon as its data are in. This process only reads
    # the results (and computes the content ablation's token flags).
    pool, queued, cells_queued = None, {}, {}
    if jobs > 1 and not args.report_only:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        pool = ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"), initializer=_start_worker,
                                   initargs=(threads,))
        for path, (function, *arguments) in makers.items():
            if not path.is_file():
                queued[path] = pool.submit(_in_worker, function, *arguments)

    def data_file(path: Path):
        function, *arguments = makers[path]
        return cached(path, lambda: function(base_model, tokenizer, *arguments), queued)

    try:
        guard_refs = data_file(guard_path)
        guard = (guard_refs["prompts"], guard_refs["references"])
        data, flags, cells = {}, {}, []
        for seed in seeds:
            rows = data_file(train_paths[seed])
            variants = {"rule": rows}
            if args.content:
                variants["generic"] = content_variant(rows, "generic", seed)
                variants["shuffled"] = content_variant(rows, "shuffled", seed)
            if args.noisy:
                variants["noisy"] = rejudged(rows, NoisyRuleJudge(miss=0.2, false_flag=0.1, seed=seed))
            data[seed] = variants
            seed_cells = [(method, "rule", seed) for method in methods]
            if args.content:
                seed_cells += [("cut-best", variant, seed) for variant in ("generic", "shuffled")]
            if args.noisy:
                seed_cells += [(method, "noisy", seed) for method in NOISY_METHODS]
            seed_cells += [(method, "rule", seed) for method in ablations]
            cells += seed_cells
            if pool is not None:
                queue_cells(pool, seed_cells, data, args, scale, heldout, guard, out, cells_queued)
            if args.content:
                from flag_analysis import flag_report

                content = {k: variants[k] for k in ("rule", "generic", "shuffled")}
                flags[seed] = cached(out / "cache" / f"flags-seed{seed}.json",
                                     lambda: flag_report(base_model, tokenizer, content, CUT_BEST["threshold"]))
        for future in cells_queued.values():
            future.result()
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    # Every cell the workers ran is cached now; the rest run here (jobs == 1) or are read from the cache.
    done = {cell: run_cell(*cell, base_model, tokenizer, data[cell[2]][cell[1]], args, scale, heldout, guard, out)
            for cell in dict.fromkeys(cells)}
    results = [done[cell] for cell in cells if done[cell] is not None]
    missing = [f"{method}@{variant}-seed{seed}" for (method, variant, seed) in cells if done[(method, variant, seed)]
               is None]

    command = " ".join(["python benchmarks/mini_paper.py", *(argv if argv is not None else sys.argv[1:])])
    setup = (f"SmolLM2-135M-Instruct; {len(train_prompts)} training prompts x {scale['samples']} samples, "
             f"{len(heldout)} held-out prompts (half with 1 constraint, half with 2; seen and unseen phrasings), "
             f"kinds {', '.join(kinds)}; {scale['new_tokens']} new tokens; {scale['epochs']} epoch(s); "
             f"seeds {','.join(map(str, seeds))}. This invocation: {time.perf_counter() - started:.0f} s wall on "
             f"{machine()}{' + GPU' if torch.cuda.is_available() else ''}"
             f"{'' if args.report_only else f', {jobs} job(s) x {threads} thread(s)'}.")
    if missing:
        setup += f" Not run (reported without them): {', '.join(missing)}."
    text = report(results, data, flags, heldout, command, setup)
    write_text(out / "mini_paper.md", text)
    chart(results, out / "mini_paper.png", f"{len(train_prompts)}x{scale['samples']} judged samples, "
          f"{len(heldout)} held-out prompts, seeds {','.join(map(str, seeds))}")
    write_json(out / "mini_paper.json", [{k: v for k, v in r.items() if k != "outputs"} for r in results])
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

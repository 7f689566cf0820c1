"""Training and evaluating AI judges: a causal LM that reads (instruction, response) and writes the judgment.

A judge is trained by supervised fine-tuning (LoRA) on judgment data: the prompt is
:func:`cutalign.judges.judge_prompt`, the target the reference judgment, or :data:`NO_ISSUES` for a good
response. It runs through :class:`cutalign.CUTTrainer` with every example positive, where the CUT loss is plain
MLE on the target. The trained adapter is a ``model`` judge for the online loop.

Evaluation follows the paper's check of its judgment models: agreement with held-out reference judgments on the
good/bad decision (accuracy, and precision and recall on the bad responses, the ones a judge must catch) and the
text overlap of the critiques with the reference critiques (ROUGE-L F1 over words, on the rows both call bad).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import random
import re
import shutil
from pathlib import Path

from ..config import CUTConfig, ModelConfig
from ..generation import SamplingConfig, generate, instruction_text
from ..io import write_json, write_jsonl
from .base import NO_ISSUES, JudgeFailure, judge_prompt
from .model import ModelJudge

logger = logging.getLogger("cutalign")


JUDGE_TRAINING = {"output_dir": "runs/judge", "learning_rate": 5e-4, "num_train_epochs": 2.0,
                  "per_device_train_batch_size": 4, "max_length": 512, "seed": 0, "positive_ratio": -1,
                  "save_strategy": "no", "report_to": "none", "logging_steps": 5}
"""The CUTConfig values a judge is trained with unless the user says otherwise (``cutalign train-judge`` starts its
options from them). Every judge example is a positive (plain SFT), so none is down-sampled; the adapter is saved
once, at the end, into ``output_dir``."""


def judge_examples(rows: list[dict]) -> list[dict]:
    """Canonical judgment rows -> SFT rows for the judge: judge prompt -> judgment (or :data:`NO_ISSUES`)."""
    return [{"id": str(row.get("id", i)), "prompt": judge_prompt(instruction_text(row["prompt"]), row["completion"]),
             "completion": row["judgment"] or NO_ISSUES, "judgment": None}
            for i, row in enumerate(rows)]


def balance_classes(rows: list[dict], seed: int) -> list[dict]:
    """``rows`` plus repeats of the rarer class (good or bad), drawn in a seeded order, until both are as many.

    Judgment data are usually lopsided (on the built-in task most sampled answers break a constraint), and a judge
    that has not learned the criterion falls back on the class prior. Measured on the built-in task with the embedded
    model (README, "Training an AI judge"): unbalanced, it called every answer bad; balanced, nearly every answer
    good. Balancing changes which way a judge errs, not whether it sees the flaw; hence off by default.
    """
    good = [row for row in rows if row["judgment"] is None]
    bad = [row for row in rows if row["judgment"] is not None]
    if not good or not bad:
        return list(rows)
    rare, common = sorted((good, bad), key=len)
    order = list(range(len(rare)))
    random.Random(seed).shuffle(order)
    extra = [rare[order[i % len(rare)]] for i in range(len(common) - len(rare))]
    return list(rows) + extra


def train_judge(rows: list[dict], *, model_config: ModelConfig, args: CUTConfig, balance: bool = False, model=None,
                tokenizer=None, callbacks=None):
    """Train a judge on canonical judgment ``rows``; save adapter and tokenizer to ``args.output_dir``.

    ``model_config`` names the model and its LoRA settings, ``args`` the training (see :data:`JUDGE_TRAINING`);
    ``balance`` repeats the rarer class first (:func:`balance_classes`). Returns the trained ``PeftModel`` and its
    tokenizer.
    """
    from ..models import load_model, load_tokenizer
    from ..trainer import CUTTrainer

    if not rows:
        raise ValueError("no judgment rows to train the judge on")
    if model_config.peft_config() is None:
        raise ValueError("a judge is trained as a LoRA adapter: set lora: true")
    tokenizer = tokenizer or load_tokenizer(model_config.model)
    model = model or load_model(model_config.model, **model_config.model_init_kwargs())
    output = Path(args.output_dir)
    trainer_args = dataclasses.replace(args, output_dir=str(output / "trainer"), positive_ratio=-1)
    examples = judge_examples(balance_classes(rows, args.seed) if balance else rows)
    trainer = CUTTrainer(model, trainer_args, train_dataset=examples, processing_class=tokenizer,
                         peft_config=model_config.peft_config(), callbacks=callbacks)
    result = trainer.train()
    tmp = output.with_name(output.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    trainer.save_model(str(tmp))  # adapter, tokenizer, model card
    write_json(tmp / "train_metrics.json", result.metrics)
    output.mkdir(parents=True, exist_ok=True)
    for path in tmp.iterdir():  # move the files in one by one: output_dir may already hold the data files
        path.replace(output / path.name)
    tmp.rmdir()
    shutil.rmtree(output / "trainer", ignore_errors=True)
    return trainer.model, tokenizer


_WORD = re.compile(r"\w+")


def rouge_l(candidate: str, reference: str) -> float:
    """ROUGE-L F1 over lowercase words: the longest common subsequence against both lengths."""
    a, b = _WORD.findall(candidate.lower()), _WORD.findall(reference.lower())
    if not a or not b:
        return 0.0
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b, start=1):
            current.append(previous[j - 1] + 1 if x == y else max(previous[j], current[j - 1]))
        previous = current
    lcs = previous[-1]
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(a), lcs / len(b)
    return 2 * precision * recall / (precision + recall)


def agreement(predictions: list, references: list[str | None]) -> dict:
    """Compare judge outputs (None, a critique or a :class:`JudgeFailure`) with reference judgments.

    "Bad" (a judgment) is the positive class. Failed rows are counted in ``failed`` and left out of the decision
    metrics. ``rouge_l`` averages over the rows both the judge and the reference call bad (None when there is none).
    """
    if len(predictions) != len(references):
        raise ValueError(f"got {len(predictions)} predictions for {len(references)} references")
    pairs = [(p, r) for p, r in zip(predictions, references) if not isinstance(p, JudgeFailure)]
    tp = sum(p is not None and r is not None for p, r in pairs)
    fp = sum(p is not None and r is None for p, r in pairs)
    fn = sum(p is None and r is not None for p, r in pairs)
    tn = sum(p is None and r is None for p, r in pairs)
    overlaps = [rouge_l(p, r) for p, r in pairs if p is not None and r is not None]
    return {
        "n": len(references), "failed": len(references) - len(pairs),
        "accuracy": (tp + tn) / len(pairs) if pairs else None,
        "precision_bad": tp / (tp + fp) if tp + fp else None,
        "recall_bad": tp / (tp + fn) if tp + fn else None,
        "rouge_l": sum(overlaps) / len(overlaps) if overlaps else None,
        "confusion": {"bad_as_bad": tp, "good_as_bad": fp, "bad_as_good": fn, "good_as_good": tn},
        "reference_bad_share": sum(r is not None for r in references) / len(references) if references else None,
    }


def evaluate_judge(judge, rows: list[dict]) -> dict:
    """Run ``judge`` on held-out canonical rows and compare with their judgments (see :func:`agreement`)."""
    instructions = [instruction_text(row["prompt"]) for row in rows]
    predictions = judge(instructions, [row["completion"] for row in rows])
    report = agreement(predictions, [row["judgment"] for row in rows])
    report["examples"] = [
        {"instruction": i, "response": row["completion"], "reference": row["judgment"],
         "judge": p.reason if isinstance(p, JudgeFailure) else p, "failed": isinstance(p, JudgeFailure)}
        for i, row, p in zip(instructions, rows, predictions)
    ]
    return report


def builtin_judgment_data(model, tokenizer, *, n_train: int, n_heldout: int, kinds, seed: int,
                          max_new_tokens: int = 48) -> tuple[list[dict], list[dict]]:
    """Judgment data from the built-in task: sampled responses of ``model``, judged by the rule judge.

    Training rows answer the task's training prompts, held-out rows its held-out prompts (no instruction shared).
    """
    from ..tasks import rule_judge, task_prompts

    out = []
    for split, n, offset in (("train", n_train, 0), ("heldout", n_heldout, 1)):
        prompts = task_prompts(split, n=n, kinds=tuple(kinds), seed=seed + offset)
        sampling = SamplingConfig(max_new_tokens=max_new_tokens, temperature=0.8, batch_size=16, seed=seed + offset)
        responses = generate(model, tokenizer, prompts, sampling, description=f"{split} responses")
        out.append([{"id": f"{split}-{i}", "prompt": p, "completion": r, "judgment": rule_judge(p, r)}
                    for i, (p, r) in enumerate(zip(prompts, responses)) if r.strip()])
    return out[0], out[1]


def split_rows(rows: list[dict], heldout_fraction: float, seed: int) -> tuple[list[dict], list[dict]]:
    """A seeded random split; the held-out part gets ``round(fraction * n)`` rows (at least one)."""
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    k = max(1, round(heldout_fraction * len(rows)))
    held = sorted(order[:k])
    train = sorted(order[k:])
    if not train:
        raise ValueError(f"{len(rows)} rows are too few to hold out {heldout_fraction:.0%} and train on the rest")
    return [rows[i] for i in train], [rows[i] for i in held]


def _format(value) -> str:
    return "-" if value is None else f"{value:.3f}"


def train_judge_command(model_config: ModelConfig, args: CUTConfig, *, data=None, heldout_data=None,
                        heldout_fraction=0.2, builtin_train=160, builtin_heldout=48, kinds=("no_commas",),
                        max_new_tokens=64, balance=False) -> int:
    """``cutalign train-judge``: build or load the data, train, evaluate, write ``metrics.json``, print a table."""
    from ..data import load_judgments
    from ..models import load_model, load_tokenizer

    output = Path(args.output_dir)
    if data is not None:  # validate the files before loading any model
        rows = load_judgments(data).to_list()
        if heldout_data is not None:
            train_rows, heldout_rows = rows, load_judgments(heldout_data).to_list()
        else:
            train_rows, heldout_rows = split_rows(rows, heldout_fraction, args.seed)
    elif heldout_data is not None:
        raise ValueError("heldout_data needs data")
    tokenizer = load_tokenizer(model_config.model)
    model = load_model(model_config.model, **model_config.model_init_kwargs())
    if data is None:
        train_rows, heldout_rows = builtin_judgment_data(model, tokenizer, n_train=builtin_train,
                                                         n_heldout=builtin_heldout, kinds=kinds, seed=args.seed)
    output.mkdir(parents=True, exist_ok=True)
    write_jsonl(output / "train_data.jsonl", train_rows)
    write_jsonl(output / "heldout_data.jsonl", heldout_rows)
    model, tokenizer = train_judge(train_rows, model_config=model_config, args=args, balance=balance, model=model,
                                   tokenizer=tokenizer)
    judge = ModelJudge(model, tokenizer, max_new_tokens=max_new_tokens,
                       template="chat" if tokenizer.chat_template else "alpaca")
    report = evaluate_judge(judge, heldout_rows)
    bad_share = report["reference_bad_share"]
    report["majority_baseline_accuracy"] = max(bad_share, 1 - bad_share)
    report["train_rows"] = {"total": len(train_rows), "bad": sum(r["judgment"] is not None for r in train_rows)}
    write_json(output / "metrics.json", report)
    print(f"judge trained on {len(train_rows)} rows ({report['train_rows']['bad']} bad); "
          f"held-out: {report['n']} rows, {report['failed']} unparseable judgments")
    for name in ("accuracy", "precision_bad", "recall_bad", "rouge_l", "majority_baseline_accuracy"):
        print(f"  {name:<28} {_format(report[name])}")
    print(f"adapter, data and metrics.json in {output}; use it with judge: {{kind: model, model: {output}}}")
    logger.debug("%s", json.dumps(report["confusion"]))
    return 0

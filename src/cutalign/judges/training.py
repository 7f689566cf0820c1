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

import json
import logging
import random
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..generation import SamplingConfig, generate, instruction_text
from ..io import write_json, write_jsonl
from .base import NO_ISSUES, JudgeFailure, judge_prompt
from .model import ModelJudge

logger = logging.getLogger("cutalign")


@dataclass
class JudgeTrainingConfig:
    """How to train a judge (LoRA on a causal LM)."""

    model: str = "default"
    output_dir: str = "runs/judge"
    epochs: float = 2.0
    learning_rate: float = 5e-4
    batch_size: int = 4
    lora_r: int = 16
    lora_alpha: int = 32
    lora_target_modules: tuple[str, ...] = ("q_proj", "v_proj", "gate_proj", "up_proj", "down_proj")
    max_length: int = 512
    max_new_tokens: int = 64
    seed: int = 0
    balance: bool = False  # repeat the rarer class (good or bad) until both are as many (see balance_classes)


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


def train_judge(config: JudgeTrainingConfig, rows: list[dict], *, model=None, tokenizer=None, callbacks=None):
    """Train a judge on canonical judgment ``rows``; save adapter and tokenizer to ``config.output_dir``.

    Returns the trained model (a ``PeftModel``) and its tokenizer.
    """
    from peft import LoraConfig

    from ..models import load_model, load_tokenizer
    from ..trainer import CUTConfig, CUTTrainer

    if not rows:
        raise ValueError("no judgment rows to train the judge on")
    tokenizer = tokenizer or load_tokenizer(config.model)
    model = model or load_model(config.model)
    output = Path(config.output_dir)
    args = CUTConfig(
        output_dir=str(output / "trainer"), seed=config.seed, learning_rate=config.learning_rate,
        num_train_epochs=config.epochs, per_device_train_batch_size=config.batch_size, positive_ratio=-1,
        max_length=config.max_length, template="chat" if tokenizer.chat_template else "alpaca",
        save_strategy="no", report_to="none", logging_steps=5,
    )
    lora = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=0.05,
                      target_modules=list(config.lora_target_modules), task_type="CAUSAL_LM")
    examples = judge_examples(balance_classes(rows, config.seed) if config.balance else rows)
    trainer = CUTTrainer(model, args, train_dataset=examples, processing_class=tokenizer,
                         peft_config=lora, callbacks=callbacks)
    result = trainer.train()
    tmp = output.with_name(output.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    trainer.model.save_pretrained(str(tmp), save_embedding_layers=False)
    tokenizer.save_pretrained(str(tmp))
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


def train_judge_command(config: JudgeTrainingConfig, *, data=None, heldout_data=None, heldout_fraction=0.2,
                        builtin_train=160, builtin_heldout=48, kinds=("no_commas",)) -> int:
    """``cutalign train-judge``: build or load the data, train, evaluate, write ``metrics.json``, print a table."""
    from ..data import load_judgments
    from ..models import load_model, load_tokenizer

    output = Path(config.output_dir)
    if data is not None:  # validate the files before loading any model
        rows = load_judgments(data).to_list()
        if heldout_data is not None:
            train_rows, heldout_rows = rows, load_judgments(heldout_data).to_list()
        else:
            train_rows, heldout_rows = split_rows(rows, heldout_fraction, config.seed)
    elif heldout_data is not None:
        raise ValueError("--heldout-data needs --data")
    tokenizer = load_tokenizer(config.model)
    model = load_model(config.model)
    if data is None:
        train_rows, heldout_rows = builtin_judgment_data(model, tokenizer, n_train=builtin_train,
                                                         n_heldout=builtin_heldout, kinds=kinds, seed=config.seed)
    output.mkdir(parents=True, exist_ok=True)
    write_jsonl(output / "train_data.jsonl", train_rows)
    write_jsonl(output / "heldout_data.jsonl", heldout_rows)
    model, tokenizer = train_judge(config, train_rows, model=model, tokenizer=tokenizer)
    judge = ModelJudge(model, tokenizer, max_new_tokens=config.max_new_tokens,
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

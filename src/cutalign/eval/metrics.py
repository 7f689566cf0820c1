"""Task accuracy on the built-in task, and the general-ability guard.

The guard exists so that a method cannot win the task by degenerating: a model that stops writing sentences passes
"no commas" trivially (the judge fails near-empty answers, but short, repetitive ones still pass). It reports

* ``heldout_logp``: mean log-probability per token of reference responses (written by another model or the base
  model) to held-out prompts: a method that wrecks the language model lowers it;
* ``mean_words``: mean length of the outputs in words;
* ``distinct_1`` / ``distinct_2``: distinct unigrams / bigrams over all outputs divided by their count (low values
  mean repetitive text).
"""

from __future__ import annotations

import torch
from peft import PeftModel

from ..data.tokenize import tokenize_example
from ..logprobs import add_token_logprobs_forward
from ..tasks import pass_rate, wilson_interval


def task_accuracy(instructions: list[str], outputs: list[str]) -> dict:
    """Pass rate of the rule judge overall and per constraint kind, each with a 95% Wilson interval."""
    report = pass_rate(instructions, outputs)
    passed = round(report["pass_rate"] * report["n"])
    report["ci"] = list(wilson_interval(passed, report["n"]))
    for kind in report["per_kind"].values():
        kind["ci"] = list(wilson_interval(round(kind["pass_rate"] * kind["n"]), kind["n"]))
    return report


def distinct_n(texts: list[str], n: int) -> float:
    """Distinct n-grams of whitespace tokens over all texts, divided by the number of n-grams (0 when none)."""
    grams = [tuple(tokens[i:i + n]) for tokens in (t.split() for t in texts) for i in range(len(tokens) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


@torch.no_grad()
def heldout_logp(model, tokenizer, prompts: list, references: list[str], *, template: str = "chat",
                 batch_size: int = 8, max_length: int = 1024) -> float:
    """Mean log-probability per token (EOS included) of ``references`` given ``prompts``, via the label-only path
    of :mod:`cutalign.logprobs` (works on a model or a PEFT-wrapped one)."""
    if len(prompts) != len(references) or not prompts:
        raise ValueError(f"need as many references as prompts (at least one), got {len(references)} and {len(prompts)}")
    base = model.get_base_model() if isinstance(model, PeftModel) else model
    add_token_logprobs_forward(base)
    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    try:
        for start in range(0, len(prompts), batch_size):
            rows = []
            for prompt, reference in zip(prompts[start:start + batch_size], references[start:start + batch_size]):
                example = {"prompt": prompt, "completion": reference, "judgment": None}
                features, _ = tokenize_example(example, tokenizer, template=template, max_length=max_length)
                if features is None:
                    raise ValueError(f"a reference response alone exceeds max_length={max_length}")
                rows.append((features["prompt_ids"], features["completion_ids"]))
            width = max(len(p) + len(c) for p, c in rows)
            input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
            attention = torch.zeros((len(rows), width), dtype=torch.long)
            positions, targets = [], []
            for r, (prompt, completion) in enumerate(rows):
                input_ids[r, :len(prompt) + len(completion)] = torch.tensor(prompt + completion)
                attention[r, :len(prompt) + len(completion)] = 1
                positions += [(r, len(prompt) - 1 + t) for t in range(len(completion))]
                targets += completion
            logps = model(input_ids=input_ids.to(device), attention_mask=attention.to(device),
                          score_positions=torch.tensor(positions, device=device),
                          score_targets=torch.tensor(targets, device=device)).token_logps
            total += logps.sum().item()
            count += len(targets)
    finally:
        model.train(was_training)
    return total / count


def guard_metrics(outputs: list[str], model=None, tokenizer=None, prompts=None, references=None,
                  template: str = "chat") -> dict:
    """Length and diversity of ``outputs``; with a model and references, also ``heldout_logp``."""
    report = {
        "mean_words": sum(len(o.split()) for o in outputs) / max(len(outputs), 1),
        "distinct_1": distinct_n(outputs, 1),
        "distinct_2": distinct_n(outputs, 2),
    }
    if references is not None:
        report["heldout_logp"] = heldout_logp(model, tokenizer, prompts, references, template=template)
    return report

"""DPO and KTO on the same judgment data, through TRL's ``DPOTrainer`` and ``KTOTrainer``.

Judgments become preference data by the only rule they support: a response judged good is preferred to a response
judged bad *for the same prompt*.

* DPO needs pairs: within each prompt, every good response is paired with every bad one; a bad response with a
  ``refinement`` is also paired with its refinement (chosen). Prompts with only good or only bad responses and no
  refinement give no pair; :func:`preference_pairs` counts them, because it means DPO trains on less of the data.
* KTO needs no pairs: each response is labelled desirable (no judgment) or undesirable (a judgment).

Prompts are rendered with CUT's templates (:func:`cutalign.data.templates.plain_prompt`) and passed to TRL as
text, so every method sees the same prompt text; TRL appends EOS to the completions and tokenizes.
"""

from __future__ import annotations

from collections import defaultdict

import datasets
from trl import DPOConfig, DPOTrainer, KTOConfig, KTOTrainer

from ..data import load_judgments
from ..data.pairs import prompt_key
from ..data.templates import plain_prompt
from .arguments import trl_config


def preference_pairs(dataset) -> tuple[list[dict], dict]:
    """``{"prompt", "chosen", "rejected"}`` pairs (raw prompts) and counts of pairs and of unpaired prompts."""
    dataset = load_judgments(dataset)
    has_refinement = "refinement" in dataset.column_names
    groups: dict[str, dict] = {}
    for example in dataset:
        group = groups.setdefault(prompt_key(example["prompt"]), {"prompt": example["prompt"], "good": [], "bad": []})
        group["good" if example["judgment"] is None else "bad"].append(example)
    pairs, counts = [], defaultdict(int)
    for group in groups.values():
        made = 0
        for bad in group["bad"]:
            chosen = [good["completion"] for good in group["good"]]
            if has_refinement and bad["refinement"] and bad["refinement"].strip():
                chosen.append(bad["refinement"])
            for text in chosen:
                if text != bad["completion"]:
                    pairs.append({"prompt": group["prompt"], "chosen": text, "rejected": bad["completion"]})
                    made += 1
        counts["prompts_with_pairs" if made else "prompts_without_pairs"] += 1
    counts["pairs"] = len(pairs)
    return pairs, dict(counts)


def kto_rows(dataset) -> list[dict]:
    """``{"prompt", "completion", "label"}`` rows: label True for responses without a judgment."""
    return [
        {"prompt": example["prompt"], "completion": example["completion"], "label": example["judgment"] is None}
        for example in load_judgments(dataset)
    ]


def _render(rows: list[dict], tokenizer, template: str) -> datasets.Dataset:
    rendered = [{**row, "prompt": plain_prompt(row["prompt"], template, tokenizer)} for row in rows]
    return datasets.Dataset.from_list(rendered)


def train_dpo(model, tokenizer, dataset, *, training_args, peft_config=None, template: str = "chat",
              beta: float = 0.1, max_length: int | None = 1024) -> DPOTrainer:
    """DPO (sigmoid loss, ``beta``) on :func:`preference_pairs`. With LoRA the reference model is the base model
    with the adapter disabled (TRL's behaviour), so no second copy is loaded. ``training_args`` as in
    :func:`cutalign.baselines.arguments.trl_config`; TRL cuts prompt + response to ``max_length`` tokens."""
    pairs, counts = preference_pairs(dataset)
    if not pairs:
        raise ValueError(f"DPO needs at least one prompt with a good and a bad response (or a refinement): {counts}")
    config = trl_config(DPOConfig, training_args, beta=beta, max_length=max_length)
    trainer = DPOTrainer(model=model, args=config, train_dataset=_render(pairs, tokenizer, template),
                         processing_class=tokenizer, peft_config=peft_config)
    trainer.pair_counts = counts
    trainer.train()
    return trainer


def train_kto(model, tokenizer, dataset, *, training_args, peft_config=None, template: str = "chat",
              beta: float = 0.1, max_length: int | None = 1024) -> KTOTrainer:
    """KTO on :func:`kto_rows`. The desirable weight is set so that desirable x positives and undesirable x
    negatives balance (the KTO paper's recommendation, within TRL's suggested range). ``training_args`` and
    ``max_length`` as in :func:`train_dpo`."""
    rows = kto_rows(dataset)
    good = sum(row["label"] for row in rows)
    bad = len(rows) - good
    if not good or not bad:
        raise ValueError(f"KTO needs both desirable and undesirable responses; got {good} and {bad}")
    # KTO's loss pairs each example with its neighbour in a fixed-order batch for its KL estimate: TRL requires the
    # sequential sampler (KTOConfig's default, which the copied TrainingArguments value would replace).
    config = trl_config(KTOConfig, training_args, beta=beta, max_length=max_length,
                        desirable_weight=max(1.0, bad / good), undesirable_weight=max(1.0, good / bad),
                        train_sampling_strategy="sequential")
    trainer = KTOTrainer(model=model, args=config, train_dataset=_render(rows, tokenizer, template),
                         processing_class=tokenizer, peft_config=peft_config)
    trainer.train()
    return trainer

"""Supervised fine-tuning baselines, and the shared machinery of every MLE-style baseline.

A baseline of this family turns judgment data into ``{"prompt", "completion"}`` rows (the prompt is a raw prompt, a
string or chat messages, rendered with the same templates CUT uses) and maximizes the likelihood of the completion
only. Tokenization is CUT's own (:func:`cutalign.data.tokenize.tokenize_example`): the same prompt text, the same
response tokens plus EOS and the same left truncation, so differences between methods come from the training
signal, not the preprocessing. Training is TRL's ``SFTTrainer`` on the pre-tokenized rows (``input_ids`` and
``labels`` with -100 on the prompt: completion-only loss).

* ``sft-positive``: MLE on the responses judged good ("train on good data").
* ``sft-all``: MLE on every response, judgments ignored.
"""

from __future__ import annotations

import datasets
from trl import SFTConfig, SFTTrainer

from ..data import load_judgments
from ..data.tokenize import tokenize_example
from .arguments import trl_config


def sft_rows(dataset, positives_only: bool) -> list[dict]:
    """``{"prompt", "completion"}`` rows: every example, or only those without a judgment."""
    dataset = load_judgments(dataset)
    return [
        {"prompt": example["prompt"], "completion": example["completion"]}
        for example in dataset
        if not (positives_only and example["judgment"] is not None)
    ]


def tokenize_rows(rows: list[dict], tokenizer, *, template: str, max_length: int) -> datasets.Dataset:
    """``input_ids`` (prompt + completion + EOS) and ``labels`` (the same ids, -100 on prompt tokens) for each row.

    Rows whose completion alone exceeds ``max_length`` are an error here: a baseline must train on the same rows
    as the method it is compared with.
    """
    if not rows:
        raise ValueError("no training rows: the data holds no example this method can train on")
    input_ids, labels = [], []
    for index, row in enumerate(rows):
        example = {"prompt": row["prompt"], "completion": row["completion"], "judgment": None}
        features, _ = tokenize_example(example, tokenizer, template=template, max_length=max_length)
        if features is None:
            raise ValueError(f"row {index + 1}: the completion alone exceeds max_length={max_length}")
        prompt, completion = features["prompt_ids"], features["completion_ids"]
        input_ids.append(prompt + completion)
        labels.append([-100] * len(prompt) + completion)
    return datasets.Dataset.from_dict({"input_ids": input_ids, "labels": labels})


def train_on_rows(model, tokenizer, rows: list[dict], *, training_args, peft_config=None,
                  template: str = "chat", max_length: int = 1024) -> SFTTrainer:
    """Train with completion-only MLE on ``rows`` and return the trainer (its ``model`` is the trained model).

    ``training_args``: a ``TrainingArguments`` (a ``CUTConfig``) or a dict of its keywords (see
    :func:`cutalign.baselines.arguments.trl_config`). Rows are tokenized here, each cut to ``max_length`` tokens as
    CUT cuts them; ``SFTConfig.max_length`` gets the same value.
    """
    train_dataset = tokenize_rows(rows, tokenizer, template=template, max_length=max_length)
    config = trl_config(SFTConfig, training_args, max_length=max_length, packing=False,
                        dataset_kwargs={"skip_prepare_dataset": True})
    trainer = SFTTrainer(model=model, args=config, train_dataset=train_dataset, processing_class=tokenizer,
                         peft_config=peft_config)
    trainer.train()
    return trainer

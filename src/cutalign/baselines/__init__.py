"""Baselines that learn from the same judgment data as CUT, each one call: :func:`train_baseline`.

=================  ===========================================================================================
``sft-positive``   MLE on the responses judged good (:mod:`.sft`)
``sft-all``        MLE on every response, judgments ignored (:mod:`.sft`)
``fp``             Forward Prediction: MLE on the judgment given instruction and response (:mod:`.forward_prediction`)
``ilf``            refinements from the judgment (data or model), then MLE on them (:mod:`.ilf`)
``coh``            Chain of Hindsight: MLE on the response under a good/bad phrase (:mod:`.hindsight`)
``dpo``            TRL's DPO on good-vs-bad pairs of the same prompt (:mod:`.preference`)
``kto``            TRL's KTO on responses labelled by their judgment (:mod:`.preference`)
=================  ===========================================================================================
"""

from __future__ import annotations

from .arguments import trl_config
from .forward_prediction import forward_prediction_rows
from .hindsight import hindsight_rows, inference_prompt
from .ilf import ilf_rows
from .preference import kto_rows, preference_pairs, train_dpo, train_kto
from .sft import sft_rows, tokenize_rows, train_on_rows

METHODS = ("sft-positive", "sft-all", "fp", "ilf", "coh", "dpo", "kto")


def train_baseline(method: str, model, dataset, tokenizer, *, training_args, peft_config=None,
                   template: str = "chat", max_length: int = 1024, refine=None, beta: float = 0.1):
    """Train ``model`` with a baseline ``method`` on judgment data; return the trainer (``trainer.model``).

    ``training_args`` holds the training settings every method shares, so methods train under the same budget: a
    ``TrainingArguments`` such as the :class:`cutalign.CUTConfig` of a CUT run (every field is copied into the TRL
    config, see :mod:`.arguments`), or a dict of ``TrainingArguments`` keywords (``output_dir``, ``learning_rate``,
    ``num_train_epochs``, ...; TRL's defaults for the rest). ``max_length`` bounds the tokens of a row for every
    method. ``refine`` (ILF only) maps refinement prompts to refinements when the data has none. ``beta`` is DPO's
    and KTO's. The trainer gets a ``baseline_counts`` dict saying what the data became.
    """
    if method not in METHODS:
        raise ValueError(f"unknown baseline {method!r}; expected one of {', '.join(METHODS)}")
    if method == "dpo":
        trainer = train_dpo(model, tokenizer, dataset, training_args=training_args, peft_config=peft_config,
                            template=template, beta=beta, max_length=max_length)
        trainer.baseline_counts = trainer.pair_counts
        return trainer
    if method == "kto":
        trainer = train_kto(model, tokenizer, dataset, training_args=training_args, peft_config=peft_config,
                            template=template, beta=beta, max_length=max_length)
        trainer.baseline_counts = {"rows": len(trainer.train_dataset)}
        return trainer
    counts = {}
    if method in ("sft-positive", "sft-all"):
        rows = sft_rows(dataset, positives_only=method == "sft-positive")
    elif method == "fp":
        rows = forward_prediction_rows(dataset)
    elif method == "coh":
        rows = hindsight_rows(dataset)
    else:
        rows, counts = ilf_rows(dataset, refine)
    trainer = train_on_rows(model, tokenizer, rows, training_args=training_args, peft_config=peft_config,
                            template=template, max_length=max_length)
    trainer.baseline_counts = {"rows": len(rows), **counts}
    return trainer


__all__ = [
    "METHODS",
    "forward_prediction_rows",
    "hindsight_rows",
    "ilf_rows",
    "inference_prompt",
    "kto_rows",
    "preference_pairs",
    "sft_rows",
    "tokenize_rows",
    "train_baseline",
    "train_dpo",
    "train_kto",
    "train_on_rows",
    "trl_config",
]

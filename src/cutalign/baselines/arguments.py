"""The TRL config of a baseline, built from the same training arguments a CUT run takes.

A baseline and CUT are comparable only when they train under the same settings (steps, learning rate, batch,
schedule, precision, logging, saving, ...). :func:`trl_config` copies every field ``transformers.TrainingArguments``
declares, by name, from the run's arguments (a :class:`cutalign.CUTConfig` in ``cutalign baseline``) into TRL's
``SFTConfig``, ``DPOConfig`` or ``KTOConfig``, then adds the method's own settings. So a TrainingArguments option
added in a later transformers release reaches the baselines with no change here, and TRL's own defaults that differ
from the Trainer's (``bf16=True``, ``logging_steps=10``, ``gradient_checkpointing=True``, its learning rates) never
apply: the run's values win, so bf16 is off on a CPU unless asked for. A setting a method cannot train without is
the method's own (KTO's sequential sampler, see :func:`cutalign.baselines.preference.train_kto`).
"""

from __future__ import annotations

import dataclasses

from transformers import TrainingArguments


def shared_fields(args: TrainingArguments) -> dict:
    """Every ``TrainingArguments`` field (those the constructor takes) of ``args``, by name."""
    return {field.name: getattr(args, field.name) for field in dataclasses.fields(TrainingArguments) if field.init}


def trl_config(config_class, args: TrainingArguments | dict, **own):
    """``config_class`` (a TRL config) with ``args``'s training settings and the method's ``own`` keywords.

    ``args`` is a ``TrainingArguments`` (any subclass: every TrainingArguments field is copied), or a dict of
    ``TrainingArguments`` keywords, where the fields it leaves out keep TRL's defaults.
    """
    shared = dict(args) if isinstance(args, dict) else shared_fields(args)
    return config_class(**{**shared, **own})

"""cutalign: align language models with judgments (free-text critiques) using CUT.

    from cutalign import CUTConfig, CUTTrainer, load_judgments
    trainer = CUTTrainer("default", CUTConfig(output_dir="out"), train_dataset=load_judgments("data.jsonl"))
    trainer.train()

The names below are imported on first use (PEP 562 ``__getattr__``), so that importing the package, and with it
the ``cutalign`` command's ``--help``, does not load torch and transformers.
"""

import importlib

__version__ = "0.1.0"

_SOURCES = {
    "CUTConfig": ".config",
    "CUTLossOutput": ".loss",
    "CUTTrainer": ".trainer",
    "DataError": ".data",
    "ModelConfig": ".config",
    "cut_loss": ".loss",
    "downsample_positives": ".data",
    "load_judgments": ".data",
    "load_model": ".models",
    "load_tokenizer": ".models",
}
"""Each public name -> the module that defines it."""

__all__ = sorted(_SOURCES)


def __getattr__(name: str):
    if name not in _SOURCES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_SOURCES[name], __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_SOURCES))

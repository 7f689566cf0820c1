"""cutalign: align language models with judgments (free-text critiques) using CUT.

    from cutalign import CUTConfig, CUTTrainer, load_judgments
    trainer = CUTTrainer("default", CUTConfig(output_dir="out"), train_dataset=load_judgments("data.jsonl"))
    trainer.train()
"""

from .data import DataError, downsample_positives, load_judgments
from .loss import CUTLossOutput, cut_loss
from .models import load_model, load_tokenizer
from .config import CUTConfig, ModelConfig
from .trainer import CUTTrainer

__version__ = "0.1.0"

__all__ = [
    "CUTConfig",
    "CUTLossOutput",
    "CUTTrainer",
    "DataError",
    "ModelConfig",
    "cut_loss",
    "downsample_positives",
    "load_judgments",
    "load_model",
    "load_tokenizer",
]

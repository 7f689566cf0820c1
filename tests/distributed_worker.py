"""One CUT optimizer step on a tiny model, run by tests/test_distributed.py under `accelerate launch` (or alone).

    python tests/distributed_worker.py OUT_DIR PER_DEVICE_BATCH ACCUMULATION

Writes ``OUT_DIR/rank{N}.pt``: the updated weights, the logged loss and the world size of process N.
"""

import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import make_model, make_tokenizer  # noqa: E402

from cutalign.trainer import CUTConfig, CUTTrainer  # noqa: E402


def uneven_examples() -> list[dict]:
    """Six examples of uneven lengths and mixes: per-process or per-micro-batch averaging would weigh them apart."""
    return [{"prompt": "Say a number.", "completion": "Seven" + " and more" * (3 * i),
             "judgment": None if i < 2 else "The number is wrong" + "." * i} for i in range(6)]


def one_step(out_dir: str, batch_size: int, accumulation: int) -> None:
    torch.set_num_threads(1)
    model = make_model("llama", seed=1)
    with tempfile.TemporaryDirectory() as output_dir:
        args = CUTConfig(
            output_dir=output_dir, per_device_train_batch_size=batch_size, gradient_accumulation_steps=accumulation,
            max_steps=1, optim="sgd", learning_rate=0.5, threshold=1.0, positive_ratio=-1, report_to=[],
            logging_steps=1, save_strategy="no", use_cpu=True, seed=0, lr_scheduler_type="constant",
            disable_tqdm=True, train_sampling_strategy="sequential", dataloader_drop_last=False,
        )
        trainer = CUTTrainer(model, args, train_dataset=uneven_examples(), processing_class=make_tokenizer())
        trainer.train()
    result = {
        "weights": {n: p.detach().clone() for n, p in trainer.model.named_parameters()},
        "loss": trainer.state.log_history[0]["loss"],
        "world_size": trainer.accelerator.num_processes,
    }
    torch.save(result, Path(out_dir) / f"rank{trainer.accelerator.process_index}.pt")


if __name__ == "__main__":
    one_step(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))

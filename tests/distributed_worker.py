"""CUT on a tiny model in several processes, run by tests/test_distributed.py (or alone, as one process).

    accelerate launch ... tests/distributed_worker.py step MODEL_DIR OUT_DIR PER_DEVICE_BATCH ACCUMULATION [PAIRWISE]
    torchrun --nproc-per-node 2 tests/distributed_worker.py fsdp2 MODEL_DIR OUT_DIR

Both load the starting model from MODEL_DIR (see :func:`save_start_model`) and write ``OUT_DIR/rank{N}.pt``.
"""

import sys
import tempfile
from pathlib import Path

import torch
from torch.distributed.fsdp import fully_shard
from torch.distributed.tensor import DTensor, init_device_mesh
from transformers import AutoModelForCausalLM

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import make_model, make_tokenizer  # noqa: E402

from cutalign import CUTConfig, CUTTrainer  # noqa: E402


def uneven_examples() -> list[dict]:
    """Six examples of uneven lengths and mixes: per-process or per-micro-batch averaging would weigh them apart."""
    return [{"prompt": "Say a number.", "completion": "Seven" + " and more" * (3 * i),
             "judgment": None if i < 2 else "The number is wrong" + "." * i} for i in range(6)]


def save_start_model(model_dir: Path) -> dict[str, torch.Tensor]:
    """Save the tiny Llama every run starts from; return its weights.

    Its vocabulary (4,096 x 32 = 131k entries in the embedding and in the head) is over DeepSpeed ZeRO-3's default
    persistence threshold (1e5 entries), so ZeRO-3 really partitions the LM head, which the label-only head reads
    outside its module.
    """
    model = make_model("llama", vocab_size=4096, seed=1)
    model.save_pretrained(model_dir)
    return {name: value.detach().clone() for name, value in model.state_dict().items()}


def training_args(output_dir: str, batch_size: int = 1, accumulation: int = 1, pairwise: float = 0.0) -> CUTConfig:
    return CUTConfig(
        pairwise_weight=pairwise,  # the examples' one prompt has good and bad responses: every negative is paired
        output_dir=output_dir, per_device_train_batch_size=batch_size, gradient_accumulation_steps=accumulation,
        max_steps=1, optim="sgd", learning_rate=0.5, threshold=1.0, positive_ratio=-1, report_to=[],
        logging_steps=1, save_strategy="no", use_cpu=True, seed=0, lr_scheduler_type="constant",
        disable_tqdm=True, train_sampling_strategy="sequential", dataloader_drop_last=False,
        # No clipping: it rescales the gradient to norm 1 here, which would hide a wrong overall scale of the
        # gradient (DeepSpeed's clipping coefficient also differs from torch's by 3e-5 relative).
        max_grad_norm=0.0,
    )


def one_step(model_dir: str, out_dir: str, batch_size: int, accumulation: int, pairwise: float = 0.0) -> None:
    """One optimizer step of CUTTrainer.train(); saves the updated weights (gathered from the shards under DeepSpeed
    ZeRO-3, on process 0 only), the logged loss and the world size."""
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as output_dir:
        # The arguments come first: under ZeRO-3 with zero3_init_flag, a model loaded after them is partitioned as
        # it loads (the path of a model too large for one process).
        args = training_args(output_dir, batch_size, accumulation, pairwise)
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
        trainer = CUTTrainer(model, args, train_dataset=uneven_examples(), processing_class=make_tokenizer())
        trainer.train()
    weights = trainer.accelerator.get_state_dict(trainer.model_wrapped) or {}  # ZeRO-3: {} but on process 0
    result = {
        "weights": {name: value.detach().clone() for name, value in weights.items()},
        "loss": trainer.state.log_history[0]["loss"],
        "world_size": trainer.accelerator.num_processes,
    }
    torch.save(result, Path(out_dir) / f"rank{trainer.accelerator.process_index}.pt")


def fsdp2_gradients(model_dir: str, out_dir: str) -> None:
    """The gradient of CUTTrainer.compute_loss on the six examples, split over the processes, under FSDP2.

    Under torchrun the model is sharded with torch's ``fully_shard`` as configs/accelerate/fsdp2.yaml wraps it (each
    decoder layer, then the root, which holds the LM head), and each process takes every world_size-th example.
    accelerate runs FSDP only on accelerators, so this calls the trainer's loss directly instead of ``train()``.
    Saves the full gradients (gathered from the shards) and the world size. Alone, it is the one-process reference.
    """
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as output_dir:
        args = training_args(output_dir)  # under torchrun, this starts the gloo process group
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
        trainer = CUTTrainer(model, args, train_dataset=uneven_examples(), processing_class=make_tokenizer())
    rank, world_size = trainer.accelerator.process_index, trainer.accelerator.num_processes
    if world_size > 1:
        mesh = init_device_mesh("cpu", (world_size,))
        for layer in model.model.layers:
            fully_shard(layer, mesh=mesh)
        fully_shard(model, mesh=mesh)
    features = list(trainer.train_dataset)
    tokens = torch.tensor(sum(len(f["completion_ids"]) for f in features))
    loss = trainer.compute_loss(model, trainer.data_collator(features[rank::world_size]), num_items_in_batch=tokens)
    loss.backward()
    gradients = {}
    for name, parameter in model.named_parameters():
        grad = parameter.grad
        gradients[name] = grad.full_tensor() if isinstance(grad, DTensor) else grad
    head_sharded = isinstance(model.get_output_embeddings().weight, DTensor)
    torch.save({"gradients": gradients, "world_size": world_size, "head_sharded": head_sharded},
               Path(out_dir) / f"rank{rank}.pt")


if __name__ == "__main__":
    if sys.argv[1] == "step":
        one_step(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6]) if sys.argv[6:] else 0)
    else:
        fsdp2_gradients(sys.argv[2], sys.argv[3])

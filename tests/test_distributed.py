"""`accelerate launch` with the shipped DDP config: 2 CPU processes (gloo) give the loss and the update of one process.

The global batch is the same 6 examples of uneven lengths in both runs; the distributed run splits it into 2
processes x micro-batch 1 x 3 accumulation steps, so the normalized reduction has to count completion tokens across
micro-batches *and* processes to reproduce the single-process gradient.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from distributed_worker import one_step  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_two_gloo_processes_match_one_process_for_the_same_global_batch(tmp_path):
    single, distributed = tmp_path / "single", tmp_path / "distributed"
    single.mkdir()
    distributed.mkdir()
    one_step(str(single), batch_size=6, accumulation=1)

    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    command = [sys.executable, "-m", "accelerate.commands.launch",
               "--config_file", str(ROOT / "configs" / "accelerate" / "ddp.yaml"),
               "--num_processes", "2", "--mixed_precision", "no", "--main_process_port", "29517",
               str(ROOT / "tests" / "distributed_worker.py"), str(distributed), "1", "3"]
    completed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]

    reference = torch.load(single / "rank0.pt")
    ranks = [torch.load(distributed / f"rank{rank}.pt") for rank in (0, 1)]
    start = dict(__import__("conftest").make_model("llama", seed=1).named_parameters())
    assert reference["world_size"] == 1
    for result in ranks:
        assert result["world_size"] == 2
        assert result["loss"] == pytest.approx(reference["loss"], rel=1e-5)
        for name, value in reference["weights"].items():
            assert not torch.equal(value, start[name].detach()), name  # the step did move every weight
            assert torch.allclose(result["weights"][name], value, atol=1e-6), name

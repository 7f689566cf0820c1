"""`accelerate launch` with the shipped DDP, ZeRO-2 and ZeRO-3 configs: 2 CPU processes (gloo) give the loss and the
update of one process.

The global batch is the same 6 examples of uneven lengths in both runs; the distributed run splits it into 2
processes x micro-batch 1 x 3 accumulation steps, so the normalized reduction has to count completion tokens across
micro-batches *and* processes to reproduce the single-process gradient. DeepSpeed runs on the CPU here (its CPU
accelerator, gloo); under ZeRO-3 the tiny model's LM head is really partitioned (see ``save_start_model``).
"""

import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import make_model, make_tokenizer  # noqa: E402
from distributed_worker import fsdp2_gradients, one_step, save_start_model, uneven_examples  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A TCP port nobody listens on now (a fixed port can still be held by the previous launch's processes)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def launch(command: list[str], cwd: Path | None = None, succeed: bool = True) -> str:
    """Run a multi-process launcher command on the CPU; return its stderr (the processes' logs)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    completed = subprocess.run([sys.executable, "-m", *command], env=env, capture_output=True, text=True, timeout=300,
                               cwd=cwd)
    assert (completed.returncode == 0) == succeed, completed.stderr[-3000:]
    return completed.stderr


@pytest.fixture(scope="module")
def single_process(tmp_path_factory):
    """The starting model and one single-process step on the whole global batch (6 examples, no accumulation)."""
    root = tmp_path_factory.mktemp("distributed")
    start = save_start_model(root / "start")
    one_step(str(root / "start"), str(root), batch_size=6, accumulation=1)
    return root / "start", start, torch.load(root / "rank0.pt")


@pytest.mark.slow
@pytest.mark.parametrize("config", ["ddp.yaml", "zero2.yaml", "zero3.yaml"])
def test_two_gloo_processes_match_one_process_for_the_same_global_batch(config, single_process, tmp_path):
    if config.startswith("zero"):
        pytest.importorskip("deepspeed", reason="DeepSpeed is not installed (make install installs it)")
    model_dir, start, reference = single_process
    logs = launch(["accelerate.commands.launch", "--config_file", str(ROOT / "configs" / "accelerate" / config),
                   "--num_processes", "2", "--mixed_precision", "no", "--main_process_port", str(free_port()),
                   str(ROOT / "tests" / "distributed_worker.py"), "step", str(model_dir), str(tmp_path), "1", "3"])
    # zero3.yaml partitions the weights as the model loads (zero3_init_flag): the trainer must say it skipped the
    # start-up checks that need the whole model; with the other configs they run.
    assert ("Start-up checks skipped" in logs) == (config == "zero3.yaml")

    ranks = [torch.load(tmp_path / f"rank{rank}.pt") for rank in (0, 1)]
    assert reference["world_size"] == 1
    for result in ranks:
        assert result["world_size"] == 2
        assert result["loss"] == pytest.approx(reference["loss"], rel=1e-5)
    # Under ZeRO-3 only process 0 gathers the full weights; the other process saves none.
    for result in ranks if config != "zero3.yaml" else ranks[:1]:
        assert set(result["weights"]) == set(reference["weights"])
        for name, value in reference["weights"].items():
            assert not torch.equal(value, start[name]), name  # the step did move every weight
            assert torch.allclose(result["weights"][name], value, atol=1e-6), name


@pytest.mark.slow
def test_the_pairwise_term_under_ddp_matches_one_process(tmp_path):
    """With the pairwise term (a frozen reference copy of the full model, run by every process), 2 DDP processes x
    micro-batch 1 x 3 accumulation steps make the update and the loss of one process on the 6 examples."""
    start = save_start_model(tmp_path / "start")
    one_step(str(tmp_path / "start"), str(tmp_path), batch_size=6, accumulation=1, pairwise=1.0)
    reference = torch.load(tmp_path / "rank0.pt")
    launch(["accelerate.commands.launch", "--config_file", str(ROOT / "configs" / "accelerate" / "ddp.yaml"),
            "--num_processes", "2", "--mixed_precision", "no", "--main_process_port", str(free_port()),
            str(ROOT / "tests" / "distributed_worker.py"), "step", str(tmp_path / "start"), str(tmp_path), "1", "3",
            "1.0"])
    result = torch.load(tmp_path / "rank1.pt")
    assert result["world_size"] == 2
    assert result["loss"] == pytest.approx(reference["loss"], rel=1e-5)
    first = torch.load(tmp_path / "rank0.pt")  # the launch's process 0 (it replaced the one-process file)
    assert first["world_size"] == 2 and first["loss"] == pytest.approx(reference["loss"], rel=1e-5)
    for name, value in reference["weights"].items():
        assert not torch.equal(value, start[name]), name
        assert torch.allclose(result["weights"][name], value, atol=1e-6), name


@pytest.mark.slow
def test_fsdp2_sharded_gradient_equals_the_one_process_gradient(single_process, tmp_path):
    """FSDP2 (torch's fully_shard, 2 CPU processes): the LM head is sharded, the label-only head reads it inside
    the root's forward, and the gradient of the split batch equals the one-process gradient."""
    model_dir = single_process[0]
    (tmp_path / "single").mkdir()
    fsdp2_gradients(str(model_dir), str(tmp_path / "single"))
    reference = torch.load(tmp_path / "single" / "rank0.pt")
    launch(["torch.distributed.run", "--nproc-per-node", "2", "--master-port", str(free_port()),
            str(ROOT / "tests" / "distributed_worker.py"), "fsdp2", str(model_dir), str(tmp_path)])

    assert reference["world_size"] == 1 and not reference["head_sharded"]
    for rank in (0, 1):
        result = torch.load(tmp_path / f"rank{rank}.pt")
        assert result["world_size"] == 2 and result["head_sharded"]
        assert set(result["gradients"]) == set(reference["gradients"])
        for name, gradient in reference["gradients"].items():
            assert gradient.abs().max() > 0, name
            torch.testing.assert_close(result["gradients"][name], gradient, rtol=1e-4, atol=1e-7, msg=name)


@pytest.mark.slow
def test_the_train_command_under_accelerate_launch(single_process, tmp_path):
    """`accelerate launch -m cutalign train --config run.yaml` (the README's command) on 2 gloo processes: the
    global batch of the one-process step, the same loss, one report written by the main process."""
    model_dir, _, reference = single_process
    shutil.copytree(model_dir, tmp_path / "model")
    make_tokenizer().save_pretrained(tmp_path / "model")  # the command loads the tokenizer from the model's folder
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in uneven_examples()))
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({  # the settings of distributed_worker.training_args, as a run.yaml
        "model": str(tmp_path / "model"), "lora": False, "train_data": str(data), "output_dir": str(tmp_path / "out"),
        "per_device_train_batch_size": 1, "gradient_accumulation_steps": 3, "max_steps": 1, "optim": "sgd",
        "learning_rate": 0.5, "threshold": 1.0, "positive_ratio": -1, "report_to": "none", "logging_steps": 1,
        "save_strategy": "no", "use_cpu": True, "seed": 0, "lr_scheduler_type": "constant", "disable_tqdm": True,
        "train_sampling_strategy": "sequential", "dataloader_drop_last": False, "max_grad_norm": 0.0}))
    launch(["accelerate.commands.launch", "--config_file", str(ROOT / "configs" / "accelerate" / "ddp.yaml"),
            "--num_processes", "2", "--mixed_precision", "no", "--main_process_port", str(free_port()),
            "-m", "cutalign", "train", "--config", str(config)])

    metrics = json.loads((tmp_path / "out" / "cutalign_metrics.json").read_text())
    assert metrics["train"]["train_loss"] == pytest.approx(reference["loss"], rel=1e-4)
    assert metrics["data"]["train"]["loaded"]["total"] == 6
    assert (tmp_path / "out" / "model.safetensors").is_file()


DOCUMENTED = [ROOT / "README.md", ROOT / "docs" / "cli.md", ROOT / "docs" / "scale-out.md",
              *sorted((ROOT / "configs" / "accelerate").glob("*.yaml"))]


def documented_launches() -> list[str]:
    """Every launch command the README, the docs and the shipped accelerate configs give: a line of a code block
    that starts with `accelerate launch`, or a config's `# Run: accelerate launch ...` comment."""
    found = set()
    for path in DOCUMENTED:
        found.update(re.findall(r"^(?:# Run: )?(accelerate launch .*\S)\s*$", path.read_text(), flags=re.M))
    return sorted(found)


def test_the_docs_give_a_launch_command_for_every_shipped_config():
    configs = {path.name for path in (ROOT / "configs" / "accelerate").glob("*.yaml")}
    assert {re.search(r"accelerate/(\S+\.yaml)", command).group(1) for command in documented_launches()} == configs


@pytest.mark.slow
@pytest.mark.parametrize("command", documented_launches())
def test_the_documented_launch_commands_run_as_written(command, tmp_path):
    """Each documented command line, run as written from a folder holding run.yaml and the configs (a clone's
    configs/ link), on 2 CPU processes (gloo): only --num_processes 2 and a free port are added. DDP and ZeRO-2/3
    train; FSDP2 is GPU-only in accelerate, so on a machine without a GPU the command stops with one error line."""
    words = shlex.split(command)
    config = re.search(r"accelerate/(\S+\.yaml)", command).group(1)
    if config.startswith("zero"):
        pytest.importorskip("deepspeed", reason="DeepSpeed is not installed (make install installs it)")
    (tmp_path / "configs").symlink_to((ROOT / "configs").resolve())
    model = tmp_path / "tiny"
    make_model("llama").save_pretrained(model)
    make_tokenizer().save_pretrained(model)
    (tmp_path / "data.jsonl").write_text("".join(json.dumps(row) + "\n" for row in uneven_examples()))
    (tmp_path / "run.yaml").write_text(yaml.safe_dump({
        "model": str(model), "train_data": "data.jsonl", "output_dir": "out", "max_steps": 1,
        "per_device_train_batch_size": 1, "positive_ratio": -1, "report_to": "none", "save_strategy": "no",
        "disable_tqdm": True}))
    assert words[:2] == ["accelerate", "launch"], command
    argv = ["accelerate.commands.accelerate_cli", "launch", "--num_processes", "2", "--main_process_port",
            str(free_port()), *words[2:]]
    gpu_only = config == "fsdp2.yaml" and not torch.cuda.is_available()
    logs = launch(argv, cwd=tmp_path, succeed=not gpu_only)
    if gpu_only:
        assert "error: FSDP runs only on GPUs" in logs
        assert not (tmp_path / "out").exists()
        return
    metrics = json.loads((tmp_path / "out" / "cutalign_metrics.json").read_text())
    # 6 examples, 1 per process and step: 2 processes make an epoch 3 steps long (one process: 6).
    assert metrics["train"]["epoch"] == pytest.approx(1 / 3, abs=1e-3)
    assert (tmp_path / "out" / "adapter_model.safetensors").is_file()

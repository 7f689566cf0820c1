"""A round trained under `accelerate launch` (the `launcher:` section): the command, the round's train.yaml, a failed
launch, and 2 CPU processes (gloo) giving the adapter of an in-process round with the same global batch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from conftest import make_model, make_tokenizer
from test_online_loop import CountingJudge

from cutalign.online import launcher as launcher_module
from cutalign.online.config import config_from_dict
from cutalign.online.loop import run_online

ROOT = Path(__file__).resolve().parents[1]
DDP = str(ROOT / "configs" / "accelerate" / "ddp.yaml")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny") / "tiny-llama"
    make_model("llama").save_pretrained(path)
    make_tokenizer().save_pretrained(path)
    return path


def config(run_dir, model_dir, batch_size: int, launcher=None, **overrides):
    raw = {
        "output_dir": str(run_dir), "rounds": 1, "prompts_per_round": 8, "seed": 5,
        "task": {"kinds": ["no_commas", "lowercase"]},
        "generation": {"max_new_tokens": 6, "temperature": 1.0, "batch_size": 8},
        "eval": [{"kind": "rule", "size": 2, "max_new_tokens": 3}],
        "judge": {"kind": "rule"},
        "model": {"model": str(model_dir), "lora_r": 2, "lora_alpha": 4, "lora_dropout": 0.0,
                  "lora_target_modules": ["q_proj", "v_proj"]},
        "training": {"num_train_epochs": 1, "per_device_train_batch_size": batch_size, "positive_ratio": -1.0,
                     "max_length": 128, "template": "chat", "learning_rate": 0.01, "lr_scheduler_type": "constant",
                     "train_sampling_strategy": "sequential", "use_cpu": True},
        "launcher": launcher,
        **overrides,
    }
    return config_from_dict(raw)


def test_the_command_and_the_rounds_training_config(tmp_path, model_dir):
    launcher = {"accelerate_config": DDP, "num_processes": 2, "main_process_port": 29555,
                "extra_args": ["--mixed_precision", "no"]}
    cfg = config(tmp_path / "run", model_dir, 2, launcher)
    command = launcher_module.launch_command(cfg.launcher, tmp_path / "train.yaml")
    assert command[1:] == ["-m", "accelerate.commands.launch", "--config_file", DDP, "--num_processes", "2",
                           "--main_process_port", "29555", "--mixed_precision", "no", "--module",
                           *launcher_module.TRAIN_MODULE, "--config", str(tmp_path / "train.yaml")]
    settings = launcher_module.train_settings(cfg, 3, tmp_path / "round-03", tmp_path / "round-02" / "adapter",
                                              progress=False)
    assert settings["model"] == str((tmp_path / "round-02" / "adapter").resolve()) and settings["lora"] is False
    assert settings["train_data"] == str((tmp_path / "round-03" / "dataset.jsonl").resolve())
    assert settings["seed"] == 8 and settings["positive_ratio"] == -1 and settings["save_strategy"] == "no"
    assert settings["learning_rate"] == 0.01 and settings["output_dir"].endswith("round-03/trainer")
    # The train command reads it as its own config: every key is one of its options.
    from cutalign.cli.train import parse

    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(settings))
    model, script, args = parse(["--config", str(path)])
    assert model.model == settings["model"] and not model.lora and args.seed == 8 and args.learning_rate == 0.01


def test_a_failed_launch_stops_the_round_with_its_log(tmp_path, model_dir, monkeypatch):
    monkeypatch.setattr(launcher_module, "TRAIN_MODULE", ("cutalign_no_such_module",))
    cfg = config(tmp_path / "run", model_dir, 2, {"num_processes": 1, "extra_args": ["--mixed_precision", "no"]})
    with pytest.raises(RuntimeError, match=r"round 1: the launched training exited with code \d+; the end of .*"
                                           r"train\.log:\n(.|\n)*cutalign_no_such_module"):
        run_online(cfg, judge=CountingJudge(), progress=False)
    assert not (tmp_path / "run" / "round-01" / "adapter").exists()
    assert (tmp_path / "run" / "round-01" / "train.yaml").is_file()


@pytest.mark.slow
def test_two_gloo_processes_train_the_adapter_of_one_process(tmp_path, model_dir, monkeypatch):
    """Same round, same data: in process with batch 4, launched as 2 CPU processes x batch 2 (DDP, gloo)."""
    from safetensors.torch import load_file

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    run_online(config(tmp_path / "inprocess", model_dir, 4), judge=CountingJudge(), progress=False)
    launched = config(tmp_path / "launched", model_dir, 2,
                      {"accelerate_config": DDP, "num_processes": 2, "extra_args": ["--mixed_precision", "no"]})
    summary = run_online(launched, judge=CountingJudge(), progress=False)
    counts = json.loads((tmp_path / "launched" / "round-01" / "counts.json").read_text())
    assert counts["trained_rows"] == 8  # an even split: no process gets a padded batch
    for name in ("generations.jsonl", "dataset.jsonl"):
        assert (tmp_path / "launched" / "round-01" / name).read_text() == \
            (tmp_path / "inprocess" / "round-01" / name).read_text()
    log = (tmp_path / "launched" / "round-01" / "train.log").read_text()
    assert "--num_processes 2" in log
    train = json.loads((tmp_path / "launched" / "round-01" / "train.json").read_text())
    assert train["launched"][-1].endswith("train.yaml") and summary["rounds"][1]["train_loss"] is not None
    start = load_file(str(tmp_path / "inprocess" / "round-00" / "adapter" / "adapter_model.safetensors"))
    ours = load_file(str(tmp_path / "launched" / "round-01" / "adapter" / "adapter_model.safetensors"))
    theirs = load_file(str(tmp_path / "inprocess" / "round-01" / "adapter" / "adapter_model.safetensors"))
    assert set(ours) == set(theirs)
    assert all(not (theirs[key] == start[key]).all() for key in theirs if "lora_B" in key)  # training moved them
    for key in theirs:
        assert ours[key].allclose(theirs[key], atol=1e-5), (key, (ours[key] - theirs[key]).abs().max())
    # The launched round's evaluation ran in this process, on the adapter the processes saved.
    assert json.loads((tmp_path / "launched" / "round-01" / "eval.json").read_text())["n"] == 2

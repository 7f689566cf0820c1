"""A round's training in other processes: ``accelerate launch`` running the ``cutalign train`` command.

With a ``launcher:`` section the loop does not train in its own process. It writes the round's training config,
``round-NN/train.yaml`` (``model``: the previous round's adapter directory, which ``cutalign.models.load_model``
loads as a trainable ``PeftModel``; ``train_data``: the round's ``dataset.jsonl``; ``output_dir``; and the
``training:`` map with the loop's own values, as in-process training would use them), and runs::

    python -m accelerate.commands.launch [--config_file ACCELERATE_CONFIG] --num_processes N
        --main_process_port PORT [EXTRA_ARGS...] --module cutalign train --config round-NN/train.yaml

Its output goes to ``round-NN/train.log``. The adapter it saves becomes ``round-NN/adapter`` (moved in atomically,
as in-process training does), and its metrics ``round-NN/train.json``. A launch that fails stops the run with the
end of the log; running the loop again retries the round's training.

``per_device_train_batch_size`` is per process, as everywhere in transformers: N processes train on N times the
batch of one, so a launched round equals an in-process one when the in-process batch is N times larger (the tests
check this on 2 CPU processes).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import yaml

from ..io import read_json, write_json, write_text

TRAIN_MODULE = ("cutalign", "train")
"""The module ``accelerate launch --module`` runs, and its leading arguments: ``python -m cutalign train``."""

NOT_ADAPTER_FILES = ("README.md", "training_args.bin", "cutalign_metrics.json")
"""Files the training command writes next to the adapter that are not part of it."""


def free_port() -> int:
    """A TCP port nobody listens on now (each round's launch gets its own: the last one's may still linger)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def train_settings(config, index: int, directory: Path, previous_adapter: Path, progress: bool,
                   learning_rate: float | None = None) -> dict:
    """The training config of round ``index`` for the ``cutalign train`` command (ModelConfig, data, CUTConfig);
    ``learning_rate``, when given, replaces the config's (the guard's retraining)."""
    from .config import LOOP_TRAINING_DEFAULTS

    return {
        "model": str(previous_adapter.resolve()),
        "lora": False,  # the model is already an adapter: train it, do not wrap it in a new one
        "load_in_4bit": config.model.load_in_4bit,
        "train_data": str((directory / "dataset.jsonl").resolve()),
        **LOOP_TRAINING_DEFAULTS,
        **config.training,
        # Positives were down-sampled when the round's dataset was written: train on all of it.
        "positive_ratio": -1,
        "disable_tqdm": not progress,
        "output_dir": str((directory / "trainer").resolve()),
        "seed": config.seed + index,
        **({"learning_rate": learning_rate} if learning_rate is not None else {}),
    }


def launch_command(launcher, train_yaml: Path) -> list[str]:
    """The ``accelerate launch`` command line of one round."""
    command = [sys.executable, "-m", "accelerate.commands.launch"]
    if launcher.accelerate_config is not None:
        command += ["--config_file", str(launcher.accelerate_config)]
    port = launcher.main_process_port or free_port()
    command += ["--num_processes", str(launcher.num_processes), "--main_process_port", str(port),
                *launcher.extra_args, "--module", *TRAIN_MODULE, "--config", str(train_yaml)]
    return command


def launch_round(config, index: int, directory: Path, previous_adapter: Path, *, progress: bool,
                 learning_rate: float | None = None) -> None:
    """Train round ``index`` with the launcher; leave ``adapter.tmp`` (the adapter) and ``train.json``."""
    train_yaml = directory / "train.yaml"
    settings = train_settings(config, index, directory, previous_adapter, progress, learning_rate)
    write_text(train_yaml, yaml.safe_dump(settings, sort_keys=False))
    output = directory / "trainer"
    shutil.rmtree(output, ignore_errors=True)
    command = launch_command(config.launcher, train_yaml)
    log = directory / "train.log"
    env = dict(os.environ, TOKENIZERS_PARALLELISM="false")
    with open(log, "w", encoding="utf-8") as stream:
        stream.write(" ".join(command) + "\n")
        stream.flush()
        completed = subprocess.run(command, stdout=stream, stderr=subprocess.STDOUT, env=env)
    if completed.returncode != 0:
        tail = log.read_text(encoding="utf-8", errors="replace")[-3000:]
        raise RuntimeError(f"round {index}: the launched training exited with code {completed.returncode}; the end "
                           f"of {log}:\n{tail}")
    adapter = directory / "adapter.tmp"
    shutil.rmtree(adapter, ignore_errors=True)
    adapter.mkdir()
    for path in output.iterdir():
        if path.is_file() and path.name not in NOT_ADAPTER_FILES:
            shutil.copy2(path, adapter / path.name)
    if not (adapter / "adapter_model.safetensors").is_file():
        raise RuntimeError(f"round {index}: the launched training saved no adapter in {output} (see {log})")
    metrics = read_json(output / "cutalign_metrics.json")
    write_json(directory / "train.json", {**metrics["train"], "launched": command})

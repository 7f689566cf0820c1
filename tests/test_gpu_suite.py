"""benchmarks/gpu_suite.sh: its dry run checks the script and prints the plan in seconds on any machine."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def suite(tmp_path, *args, out: bool = True):
    env = dict(os.environ, PYTHON=sys.executable, WORK=str(tmp_path / "work"))
    env.pop("OUT", None)
    if out:
        env["OUT"] = str(tmp_path / "out")
    started = time.monotonic()
    done = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_suite.sh"), *args], capture_output=True, text=True,
                          env=env, timeout=60)
    return done, time.monotonic() - started


def test_dry_run_prints_the_plan_quickly(tmp_path):
    done, seconds = suite(tmp_path, "--dry-run")
    assert done.returncode == 0, done.stderr
    assert seconds < 10
    out = done.stdout
    for step in ("prerequisites", "step_cost_smollm2", "step_cost_0.5b", "online_round", "total limit: 510 s"):
        assert step in out
    # step_cost.py parsed the suite's flags (its own dry run prints the cells).
    assert "L=512 ckpt=False methods=cut sft trl_sft device=cuda dtype=bf16 model=SmolLM2-135M" in out
    assert "L=1024 ckpt=False methods=cut sft trl_sft device=cuda dtype=bf16 model=llama-0.5b" in out
    assert "dry run: nothing was run" in out and not (tmp_path / "out").exists()
    # The online round's config is a valid online config.
    from cutalign.online.config import load_config

    config = load_config(tmp_path / "work" / "online-gpu.yaml")
    assert config.rounds == 1 and config.generation.backend == "hf" and config.training["bf16"] is True


def test_a_real_run_needs_out_and_known_arguments(tmp_path):
    done, _ = suite(tmp_path, out=False)
    assert done.returncode == 2 and "set OUT" in done.stderr
    done, _ = suite(tmp_path, "--fast")
    assert done.returncode == 2 and "usage" in done.stderr

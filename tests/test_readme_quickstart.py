"""The README's quick start runs as written: train, eval, export on the embedded model, then the merged model loads
and generates with plain transformers."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def quick_start() -> tuple[str, str]:
    """The quick start's shell block and Python block."""
    section = (ROOT / "README.md").read_text(encoding="utf-8").split("## Quick start\n")[1].split("\n## ")[0]
    shell = re.search(r"```bash\n(.*?)```", section, flags=re.S).group(1)
    python = re.search(r"```python\n(.*?)```", section, flags=re.S).group(1)
    return shell, python


@pytest.mark.slow
def test_the_quick_start_runs_as_written(tmp_path):
    shell, python = quick_start()
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
               PYTHONPATH=str(ROOT / "src"), HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    commands = subprocess.run(["bash", "-e", "-c", shell], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=1200)
    assert commands.returncode == 0, commands.stderr[-3000:]
    assert commands.stdout.count("{'loss': ") == 4  # 8 steps, a loss line every 2
    assert json.loads((tmp_path / "runs" / "cut-eval" / "metrics.json").read_text())["task"]["n"] == 16
    assert "merged the adapter into its base model" in commands.stdout
    loaded = subprocess.run([sys.executable, "-c", python], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=600)
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    assert loaded.stdout.strip()

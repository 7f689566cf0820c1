"""The README's Python example runs as written (on the embedded model) and saves a reloadable adapter."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.slow
def test_readme_python_example_runs(tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    example = next(b for b in blocks if "CUTTrainer(" in b)
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(example, "README.md", "exec"), namespace)
    assert namespace["trainer"].state.global_step == 2
    assert (tmp_path / "cut-out" / "adapter_config.json").is_file()

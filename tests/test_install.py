"""The built wheel works outside the checkout: every command starts, and the shipped configs are installed with it."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cutalign.cli import COMMANDS

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "src" / "cutalign" / "configs"


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The wheel built from a copy of the checkout (the build writes nothing into it), installed into a folder."""
    root = tmp_path_factory.mktemp("install")
    source, wheels, site = root / "source", root / "wheels", root / "site"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    pip = [sys.executable, "-m", "pip", "-q"]
    built = subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(source)],
                           capture_output=True, text=True)
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = wheels.glob("cutalign-*.whl")
    installed = subprocess.run([*pip, "install", "--no-deps", "--target", str(site), str(wheel)],
                               capture_output=True, text=True)
    assert installed.returncode == 0, installed.stderr[-3000:]
    return site


def installed_python(site: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    """Python run in ``cwd`` with only the installed copy of cutalign importable (its dependencies come from this
    environment), offline."""
    env = dict(os.environ, PYTHONPATH=str(site), HF_HUB_OFFLINE="1", CUTALIGN_JUDGE_API_KEY="a-key")
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=cwd, env=env)


def test_shipped_configs_are_in_the_wheel_and_load_by_name(site, tmp_path):
    for folder in ("", "accelerate"):
        assert sorted(p.name for p in (site / "cutalign" / "configs" / folder).glob("*.yaml")) == \
            sorted(p.name for p in (CONFIGS / folder).glob("*.yaml")), folder
    (tmp_path / "runs" / "judge").mkdir(parents=True)  # online-trained-judge's judge: the adapter train-judge saves
    probe = ("import cutalign\nfrom cutalign.config import SHIPPED_CONFIGS\nfrom cutalign.online.config import "
             "load_config\nprint(cutalign.__file__)\n"
             "from cutalign.errors import UsageError\n"
             "for path in sorted(SHIPPED_CONFIGS.glob('online-*.yaml')):\n"
             "    try:\n"
             "        print(path.stem, load_config(path.stem).judge.kind)\n"
             "    except UsageError as error:\n"
             "        print(path.stem, 'refused:', error)\n")
    result = installed_python(site, "-c", probe, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    first, *loaded = result.stdout.splitlines()
    assert Path(first).resolve().is_relative_to(site.resolve())
    assert [line.split()[0] for line in loaded] == sorted(p.stem for p in CONFIGS.glob("online-*.yaml"))
    # online-local-judge reads the example instructions of a repository clone (examples/data), which a wheel does
    # not carry: from an installed copy it is refused with the path it needs; every other config loads.
    refused = [line for line in loaded if " refused: " in line]
    assert len(refused) == 1 and refused[0].startswith("online-local-judge refused:"), refused
    assert "examples/data/instructions.jsonl does not exist" in refused[0]


@pytest.mark.parametrize("argv", [["--version"], ["--help"], *([name, "--help"] for name in COMMANDS)],
                         ids=lambda argv: " ".join(argv))
def test_installed_command_starts(site, tmp_path, argv):
    result = installed_python(site, "-m", "cutalign", *argv, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("cutalign " if argv == ["--version"] else "usage: cutalign")


def test_installed_copy_carries_the_help_pages(site, tmp_path):
    """The --help pages of train, baseline and train-judge are package data: without them the installed command
    would build its parser (10 s of imports) instead of printing the page."""
    probe = ("from cutalign.cli.shipped_help import COMMANDS, help_page\n"
             "missing = [c for c in COMMANDS if help_page(c) is None]\nassert not missing, missing\nprint('ok')")
    result = installed_python(site, "-c", probe, cwd=tmp_path)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]

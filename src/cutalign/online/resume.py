"""What a run directory records about its config (``config.json``), and which changes a resumed run accepts.

A run resumes only with the config it started with, except :data:`RESUMABLE_KEYS` (and the server keys of
:data:`RESUMABLE_SERVER_KEYS`), which change how the work is done, not its results. A ``config.json`` written by an
earlier version is read in today's shape first, so its run directory resumes as it is.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ..errors import UsageError
from ..io import read_json, write_json
from ..judges import JudgeConfig
from .config import OnlineConfig, eval_section

RESUMABLE_KEYS = ("rounds", "output_dir", "launcher")
"""Config keys that may change between a run and its resumption (how training is launched changes no result)."""
RESUMABLE_SERVER_KEYS = ("base_url", "api_key_env", "concurrency", "timeout_s", "max_retries", "backoff_s",
                         "max_response_bytes")
"""``generation.server`` keys that may change too: where the server is and how it is asked, not what it answers."""


def _fill(saved: dict, default: dict) -> dict:
    """``saved`` with the keys it lacks taken from ``default``, in nested mappings too."""
    out = dict(saved)
    for key, value in default.items():
        if key not in out:
            out[key] = value
        elif isinstance(value, dict) and isinstance(out[key], dict):
            out[key] = _fill(out[key], value)
    return out


def _comparable(raw: dict) -> dict:
    out = {k: v for k, v in raw.items() if k not in RESUMABLE_KEYS}
    generation = dict(out.get("generation", {}))
    if generation.get("server"):
        generation["server"] = {k: v for k, v in generation["server"].items() if k not in RESUMABLE_SERVER_KEYS}
    out["generation"] = generation
    return out


def check_run_config(config: OnlineConfig, run_dir: Path) -> None:
    """Record the config in a new run directory; refuse to resume a run that was started with another one.

    A ``config.json`` of an earlier version is read in today's shape first: sections and keys added since take their
    defaults (which behave as that version did), and its ``eval`` mapping is the one rule evaluation it meant.
    """
    current = config.to_dict()
    path = run_dir / "config.json"
    if not path.exists():
        write_json(path, current)
        return
    saved = read_json(path)
    saved["eval"] = [dataclasses.asdict(e) for e in eval_section(saved.get("eval"), str(path))]
    judge_kind = (saved.get("judge") or {}).get("kind", "rule")
    saved = _fill(saved, OnlineConfig(judge=JudgeConfig(kind=judge_kind)).to_dict())
    current, saved = _comparable(current), _comparable(saved)
    changed = sorted(k for k in current.keys() | saved.keys() if current.get(k) != saved.get(k))
    if changed:
        raise UsageError(f"{run_dir} holds a run started with a different config (changed: {', '.join(changed)}); "
                         "use another output_dir or restore those settings")

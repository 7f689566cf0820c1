"""The ``judge:`` section of a config: :class:`JudgeConfig`, its validation, and the judge it describes.

Each kind reads its own keys (:data:`JUDGE_KEYS`); a key of another kind given with a non-default value is an error,
so a typo or a leftover key cannot silently do nothing. :func:`validate_judge` checks everything that can be checked
before a model loads (files, functions, environment variables); :func:`build_judge` then builds the judge.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

from .base import JUDGE_PROMPT, Judge, read_prompt_template
from .endpoint import DEFAULT_MAX_JUDGMENT_CHARS, EndpointJudge
from .function import CallableJudge, import_function
from .http import DEFAULT_MAX_RESPONSE_BYTES
from .human import HumanJudge
from .model import ModelJudge
from .rule import RuleJudge

JUDGE_KINDS = ("rule", "callable", "model", "endpoint", "human")

# Which JudgeConfig keys each kind reads (besides `kind`); any other key given for that kind is an error.
JUDGE_KEYS = {
    "rule": (),
    "callable": ("function",),
    "model": ("model", "max_new_tokens", "batch_size", "prompt"),
    "endpoint": ("base_url", "model", "api_key_env", "max_new_tokens", "concurrency", "timeout_s", "max_retries",
                 "backoff_s", "max_response_bytes", "max_judgment_chars", "prompt"),
    "human": ("directory", "poll_seconds"),
}


@dataclass
class JudgeConfig:
    """Which judge criticises the responses (see :mod:`cutalign.judges`) and its settings, by kind (``JUDGE_KEYS``)."""

    kind: str
    function: str | None = None  # callable: "module:function", called as function(instruction, response)
    model: str | None = None  # model: a directory, a saved adapter or "default"; endpoint: the model name
    max_new_tokens: int = 96
    batch_size: int = 16
    base_url: str | None = None  # endpoint: e.g. http://127.0.0.1:8000/v1 (".../chat/completions" is appended)
    api_key_env: str | None = None  # endpoint: the environment variable holding the API key (never logged)
    concurrency: int = 4  # endpoint: requests in flight
    timeout_s: float = 60.0  # endpoint: the most seconds one request may take in all, connecting to last byte
    max_retries: int = 3  # endpoint: further attempts after a timeout, transport error, 429, 5xx or malformed body
    backoff_s: float = 1.0  # endpoint: the wait before the first retry, doubled for each next one
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES  # endpoint: a longer reply fails the row (1 MiB)
    max_judgment_chars: int = DEFAULT_MAX_JUDGMENT_CHARS  # endpoint: a longer judgment fails the row
    directory: str | None = None  # human: where the files to fill in go (default: <run_dir>/human)
    poll_seconds: float = 10.0
    prompt: str | None = None  # model, endpoint: a judgment prompt template file (default configs/prompts/judge.txt)


def reject_other_kinds_keys(section, keys: tuple[str, ...], key: str, what: str, fail) -> None:
    """Fail on a field of ``section`` (a judge dataclass with a ``kind``) that is set away from its default for that
    kind although the kind does not read it: ``keys`` are the ones it reads; ``what`` names the kind in the message
    (``judge.base_url does not apply to judge kind 'rule' (its keys: none)``)."""
    defaults = type(section)(kind=section.kind)
    for f in dataclasses.fields(section):
        if f.name != "kind" and f.name not in keys and getattr(section, f.name) != getattr(defaults, f.name):
            fail(f"{key}.{f.name} does not apply to {what} {section.kind!r} (its keys: {', '.join(keys) or 'none'})")


def validate_judge(judge: JudgeConfig, fail) -> None:
    """Check the judge section: a known kind, only its keys, its files, functions and environment present.

    ``fail(message)`` raises the caller's error (the online config's names the config file).
    """
    if judge.kind not in JUDGE_KINDS:
        fail(f"judge.kind must be one of {', '.join(JUDGE_KINDS)}, got {judge.kind!r}")
    reject_other_kinds_keys(judge, JUDGE_KEYS[judge.kind], "judge", "judge kind", fail)
    for name in ("max_new_tokens", "batch_size", "concurrency", "max_response_bytes", "max_judgment_chars"):
        if getattr(judge, name) < 1:
            fail(f"judge.{name} must be >= 1, got {getattr(judge, name)}")
    if judge.max_retries < 0:
        fail(f"judge.max_retries must be >= 0, got {judge.max_retries}")
    for name in ("timeout_s", "poll_seconds"):
        if not getattr(judge, name) > 0:
            fail(f"judge.{name} must be > 0, got {getattr(judge, name)}")
    if judge.backoff_s < 0:
        fail(f"judge.backoff_s must be >= 0, got {judge.backoff_s}")
    if judge.kind == "callable":
        if judge.function is None:
            fail("judge.function is required for judge kind 'callable' (\"module:function\")")
        try:
            import_function(judge.function)
        except ValueError as error:
            fail(f"judge.function: {error}")
    elif judge.kind == "model":
        if judge.model is None:
            fail("judge.model is required for judge kind 'model' (a model or adapter directory, or 'default')")
        check_model(judge.model, "judge.model", fail)
    if judge.prompt is not None:
        check_prompt_template(judge.prompt, "judge.prompt", ("instruction", "response"), fail)
    if judge.kind == "endpoint":
        for name in ("base_url", "model"):
            if getattr(judge, name) is None:
                fail(f"judge.{name} is required for judge kind 'endpoint'")
        if not judge.base_url.startswith(("http://", "https://")):
            fail(f"judge.base_url must start with http:// or https://, got {judge.base_url!r}")
        if judge.api_key_env is not None and not os.environ.get(judge.api_key_env):
            fail(f"judge.api_key_env: the environment variable {judge.api_key_env} is not set")


def check_prompt_template(path: str, key: str, fields: tuple[str, ...], fail) -> None:
    """A prompt template file: readable, and filling in exactly ``fields`` (Python format fields) works."""
    try:
        text = read_prompt_template(path)
    except (OSError, UnicodeDecodeError) as error:
        fail(f"{key}: cannot read the prompt template {path!r}: {error}")
    missing = [name for name in fields if "{" + name + "}" not in text]
    if missing:
        fail(f"{key}: the prompt template {path} has no {', '.join('{' + m + '}' for m in missing)}")
    try:
        text.format(**{name: "" for name in fields})
    except (KeyError, IndexError, ValueError) as error:
        fail(f"{key}: the prompt template {path} has a field other than {fields} or a lone brace ({error!r}); "
             "write a literal brace as {{ or }}")


def check_model(name: str, key: str, fail) -> None:
    """A model name of a config: ``"default"`` (the embedded model must be installed) or a directory."""
    if name == "default":
        from ..models import ModelNotFoundError, embedded_model_dir

        try:
            embedded_model_dir()
        except ModelNotFoundError as error:
            fail(f"{key}: {error}")
    elif not Path(name).is_dir():
        fail(f"{key}: {name!r} is not a directory (give a model or adapter directory, or 'default')")


def build_judge(config: JudgeConfig, run_dir) -> Judge:
    """The judge of a validated :class:`JudgeConfig`; a human judge's files default to ``<run_dir>/human``."""
    if config.kind == "rule":
        return RuleJudge()
    if config.kind == "callable":
        return CallableJudge(import_function(config.function))
    prompt = read_prompt_template(config.prompt) if config.prompt is not None else JUDGE_PROMPT
    if config.kind == "model":
        return ModelJudge.load(config.model, max_new_tokens=config.max_new_tokens, batch_size=config.batch_size,
                               prompt=prompt)
    if config.kind == "endpoint":
        return EndpointJudge(config.base_url, config.model, api_key_env=config.api_key_env,
                             max_new_tokens=config.max_new_tokens, concurrency=config.concurrency,
                             timeout_s=config.timeout_s, max_retries=config.max_retries, backoff_s=config.backoff_s,
                             max_response_bytes=config.max_response_bytes,
                             max_judgment_chars=config.max_judgment_chars, prompt=prompt)
    if config.kind == "human":
        return HumanJudge(config.directory or Path(run_dir) / "human", poll_seconds=config.poll_seconds)
    raise ValueError(f"unknown judge kind {config.kind!r}")

"""The online loop's YAML config: dataclasses, and validation that runs before any model is loaded.

    output_dir: runs/online-rule
    rounds: 3
    prompts_per_round: 64
    model: {model: default, lora_r: 16}     # a ModelConfig; `model: default` is shorthand
    task: {kinds: [no_commas]}
    judge: {kind: rule}
    training: {learning_rate: 3.0e-4, align_n_weight: 0.0, unflagged_weight: 0.0}

Every section is optional except ``judge``; the shipped configs (``cutalign/configs/online-*.yaml``) show the full
set of keys. ``model:`` is a :class:`cutalign.ModelConfig` and ``training:`` is a map of :class:`cutalign.CUTConfig`
fields (any CUT setting or ``TrainingArguments`` field): the loop declares no training setting of its own. An
unknown key, a value of the wrong type, a missing required key, an unreadable file or an unknown judge kind is a
:class:`cutalign.errors.UsageError` naming the config file and the key, raised by :func:`load_config` before any
model loads.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import os
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..config import CUTConfig, ModelConfig, config_file
from ..errors import UsageError

JUDGE_KINDS = ("rule", "callable", "model", "endpoint", "human")

# Which JudgeConfig keys each kind reads (besides `kind`); any other key given for that kind is an error.
JUDGE_KEYS = {
    "rule": (),
    "callable": ("function",),
    "model": ("model", "max_new_tokens", "batch_size"),
    "endpoint": ("base_url", "model", "api_key_env", "max_new_tokens", "concurrency", "timeout_s", "max_retries",
                 "backoff_s"),
    "human": ("directory", "poll_seconds"),
}


@dataclass
class TaskConfig:
    """The built-in verifiable-instruction task (:mod:`cutalign.tasks`): where the prompts come from."""

    kinds: list[str] | None = None  # constraint kinds (default: all)
    constraints_per_prompt: int = 1


@dataclass
class GenerationConfig:
    """Sampling of the responses that get judged (``temperature: 0`` = greedy)."""

    max_new_tokens: int = 64
    temperature: float = 0.8
    top_p: float = 1.0
    batch_size: int = 16


@dataclass
class EvalConfig:
    """The fixed held-out set: greedy answers to ``size`` held-out task prompts, scored by the rule judge."""

    size: int = 48
    max_new_tokens: int = 64
    batch_size: int = 16


@dataclass
class JudgeConfig:
    """Which judge criticises the responses; see :mod:`cutalign.online.judges` and ``JUDGE_KEYS``."""

    kind: str
    function: str | None = None  # callable: "module:function", called as function(instruction, response)
    model: str | None = None  # model: a directory, a saved adapter or "default"; endpoint: the model name
    max_new_tokens: int = 96
    batch_size: int = 16
    base_url: str | None = None  # endpoint: e.g. http://127.0.0.1:8000/v1 (".../chat/completions" is appended)
    api_key_env: str | None = None  # endpoint: the environment variable holding the API key (never logged)
    concurrency: int = 4
    timeout_s: float = 60.0
    max_retries: int = 3
    backoff_s: float = 1.0
    directory: str | None = None  # human: where the files to fill in go (default: <output_dir>/human)
    poll_seconds: float = 10.0


LOOP_TRAINING_KEYS = ("output_dir", "seed")
"""CUTConfig fields the loop sets itself each round (the round's directory; the run's seed + the round)."""

LOOP_TRAINING_DEFAULTS = {"save_strategy": "no", "report_to": "none", "logging_steps": 5}
"""How the loop runs the Trainer unless ``training:`` says otherwise: no checkpoints inside a round (a killed round
restarts from the previous round's adapter), no logging integrations, a loss line every 5 steps."""


@dataclass
class OnlineConfig:
    """The whole online run. ``output_dir`` (the run directory) holds every round's files; see
    :mod:`cutalign.online.loop`."""

    judge: JudgeConfig
    output_dir: str = "runs/online"
    model: ModelConfig = field(default_factory=ModelConfig)
    seed: int = 0
    rounds: int = 3
    prompts_per_round: int = 64
    task: TaskConfig = field(default_factory=TaskConfig)
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    training: dict[str, Any] = field(default_factory=dict)  # CUTConfig fields; see cut_config()

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def cut_config(self, output_dir: str, seed: int, **loop_values) -> CUTConfig:
        """The CUTConfig of one round: the loop's Trainer defaults, then ``training:``, then the loop's own keys."""
        return CUTConfig(**{**LOOP_TRAINING_DEFAULTS, **self.training, **loop_values,
                            "output_dir": output_dir, "seed": seed})


def load_config(path, *, rounds: int | None = None, output_dir: str | None = None) -> OnlineConfig:
    """Read and validate ``path`` (a file, or a shipped config's name); ``rounds`` and ``output_dir`` override the
    file's values."""
    path = config_file(str(path))
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{path}: config file not found") from None
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"{path}: cannot read the config: {error}") from None
    except yaml.YAMLError as error:
        raise UsageError(f"{path}: invalid YAML: {error}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise UsageError(f"{path}: the config must be a mapping of key: value")
    if rounds is not None:
        raw["rounds"] = rounds
    if output_dir is not None:
        raw["output_dir"] = output_dir
    return config_from_dict(raw, source=str(path))


def config_from_dict(raw: dict, source: str = "config") -> OnlineConfig:
    """Build and validate an :class:`OnlineConfig` from a mapping (as read from YAML)."""
    config = _build(OnlineConfig, raw, source, "")
    validate(config, source)
    return config


def _build(cls, raw, source: str, prefix: str):
    """An instance of dataclass ``cls`` from mapping ``raw``, checking keys and value types."""
    if not isinstance(raw, dict):
        raise UsageError(f"{source}: {prefix.rstrip('.') or 'the config'} must be a mapping, got {_type_name(raw)}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    for key in raw:
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise UsageError(f"{source}: unknown key {prefix}{key}{hint}")
    values = {}
    for name, f in fields.items():
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if name not in raw:
            if required:
                raise UsageError(f"{source}: missing required key {prefix}{name}")
            continue
        kind = hints[name]
        if kind is ModelConfig and isinstance(raw[name], str):  # `model: NAME` is short for `model: {model: NAME}`
            raw = {**raw, name: {"model": raw[name]}}
        if name == "training":
            values[name] = training_overrides(raw[name] if raw[name] is not None else {}, source)
        elif dataclasses.is_dataclass(kind):
            values[name] = _build(kind, raw[name] if raw[name] is not None else {}, source, f"{prefix}{name}.")
        else:
            values[name] = _coerce(raw[name], kind, source, f"{prefix}{name}")
    try:
        return cls(**values)
    except ValueError as error:  # a dataclass's own checks (ModelConfig's)
        raise UsageError(f"{source}: {prefix.rstrip('.') or 'the config'}: {error}") from None


def training_overrides(raw, source: str) -> dict:
    """The ``training:`` map checked against CUTConfig's fields: names (with suggestions), simple types, values.

    Values are converted where YAML is ambiguous (``3e-4`` is a string to YAML, a float to CUTConfig). Building a
    CUTConfig from them runs its own checks (and TrainingArguments'), so a bad value fails here, before any model
    loads, not at the first round's training.
    """
    if not isinstance(raw, dict):
        raise UsageError(f"{source}: training must be a mapping of CUTConfig fields, got {_type_name(raw)}")
    fields = {f.name: f for f in dataclasses.fields(CUTConfig) if f.init}
    hints = typing.get_type_hints(CUTConfig)
    values = {}
    for key, value in raw.items():
        if key in LOOP_TRAINING_KEYS:
            raise UsageError(f"{source}: training.{key} is set by the loop for each round "
                             f"({'the run directory' if key == 'output_dir' else 'the top-level seed + the round'})")
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise UsageError(f"{source}: unknown key training.{key}: not a CUTConfig field{hint}")
        values[key] = _coerce_setting(value, hints[key], source, f"training.{key}")
    try:
        CUTConfig(**{**LOOP_TRAINING_DEFAULTS, **values, "output_dir": "unused"})
    except (ValueError, TypeError) as error:
        raise UsageError(f"{source}: training: {error}") from None
    return values


def _coerce_setting(value, kind, source: str, key: str):
    """A CUTConfig value checked like :func:`_coerce` where its type is a plain one; numbers may be given as
    strings (``3e-4``); other types (enums, dicts, unions of several) are left to CUTConfig's own checks."""
    plain = (bool, int, float, str)
    args = [a for a in typing.get_args(kind) if a is not type(None)]
    target = args[0] if isinstance(kind, types.UnionType) and len(args) == 1 else kind
    if value is None or target not in plain:
        return value
    if target in (int, float) and isinstance(value, str):
        try:
            value = target(value)
        except ValueError:
            pass
    return _coerce(value, target, source, key)


def _type_name(value) -> str:
    return "null" if value is None else type(value).__name__


def _coerce(value, kind, source: str, key: str):
    """``value`` checked against the annotation ``kind`` (int, float, str, bool, list[str], or X | None)."""
    args = typing.get_args(kind)
    if isinstance(kind, types.UnionType):
        if value is None:
            return None
        (kind,) = [a for a in args if a is not type(None)]
        args = typing.get_args(kind)
    wrong = UsageError(f"{source}: {key} must be {_describe(kind)}, got {_type_name(value)} {value!r}")
    if typing.get_origin(kind) is list:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise wrong
        return list(value)
    if kind is bool:
        if not isinstance(value, bool):
            raise wrong
    elif kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise wrong
    elif kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise wrong
        value = float(value)
    elif kind is str:
        if not isinstance(value, str):
            raise wrong
    return value


def _describe(kind) -> str:
    if typing.get_origin(kind) is list:
        return "a list of strings"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}[kind]


def validate(config: OnlineConfig, source: str = "config") -> None:
    """Check values, files and the judge before any work: raise :class:`UsageError` naming the key."""

    def fail(message: str):
        raise UsageError(f"{source}: {message}")

    from ..tasks import KINDS

    if config.rounds < 1:
        fail(f"rounds must be >= 1, got {config.rounds}")
    if config.prompts_per_round < 1:
        fail(f"prompts_per_round must be >= 1, got {config.prompts_per_round}")
    if not config.output_dir.strip():
        fail("output_dir must not be empty")
    _check_model(config.model.model, "model.model", fail)
    kinds = config.task.kinds
    if kinds is not None:
        unknown = [k for k in kinds if k not in KINDS]
        if unknown or not kinds or len(set(kinds)) != len(kinds):
            fail(f"task.kinds must be distinct names from {', '.join(KINDS)}, got {kinds!r}")
    if not 1 <= config.task.constraints_per_prompt <= len(kinds or KINDS):
        fail(f"task.constraints_per_prompt must be between 1 and the number of kinds, "
             f"got {config.task.constraints_per_prompt}")
    for section in ("generation", "eval"):
        part = getattr(config, section)
        for name in ("max_new_tokens", "batch_size"):
            if getattr(part, name) < 1:
                fail(f"{section}.{name} must be >= 1, got {getattr(part, name)}")
    if config.generation.temperature < 0:
        fail(f"generation.temperature must be >= 0, got {config.generation.temperature}")
    if not 0 < config.generation.top_p <= 1:
        fail(f"generation.top_p must be in (0, 1], got {config.generation.top_p}")
    if config.eval.size < 1:
        fail(f"eval.size must be >= 1, got {config.eval.size}")
    validate_judge(config.judge, fail)


def _check_model(name: str, key: str, fail) -> None:
    if name == "default":
        from ..models import ModelNotFoundError, embedded_model_dir

        try:
            embedded_model_dir()
        except ModelNotFoundError as error:
            fail(f"{key}: {error}")
    elif not Path(name).is_dir():
        fail(f"{key}: {name!r} is not a directory (give a model or adapter directory, or 'default')")


def validate_judge(judge: JudgeConfig, fail) -> None:
    """Check the judge section: a known kind, only its keys, its files, functions and environment present."""
    if judge.kind not in JUDGE_KINDS:
        fail(f"judge.kind must be one of {', '.join(JUDGE_KINDS)}, got {judge.kind!r}")
    defaults = JudgeConfig(kind=judge.kind)
    for f in dataclasses.fields(JudgeConfig):
        if f.name != "kind" and f.name not in JUDGE_KEYS[judge.kind]:
            if getattr(judge, f.name) != getattr(defaults, f.name):
                fail(f"judge.{f.name} does not apply to judge kind {judge.kind!r} "
                     f"(its keys: {', '.join(JUDGE_KEYS[judge.kind]) or 'none'})")
    for name in ("max_new_tokens", "batch_size", "concurrency"):
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
        _check_model(judge.model, "judge.model", fail)
    elif judge.kind == "endpoint":
        for name in ("base_url", "model"):
            if getattr(judge, name) is None:
                fail(f"judge.{name} is required for judge kind 'endpoint'")
        if not judge.base_url.startswith(("http://", "https://")):
            fail(f"judge.base_url must start with http:// or https://, got {judge.base_url!r}")
        if judge.api_key_env is not None and not os.environ.get(judge.api_key_env):
            fail(f"judge.api_key_env: the environment variable {judge.api_key_env} is not set")


def import_function(spec: str):
    """The callable named by ``"package.module:function"``; the current directory is searched too."""
    module_name, _, name = spec.partition(":")
    if not module_name or not name:
        raise ValueError(f"must look like 'module:function', got {spec!r}")
    if os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ValueError(f"cannot import module {module_name!r}: {error}") from None
    function = getattr(module, name, None)
    if function is None:
        raise ValueError(f"module {module_name!r} has no attribute {name!r}")
    if not callable(function):
        raise ValueError(f"{spec} is not callable")
    return function

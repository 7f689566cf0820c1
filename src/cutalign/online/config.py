"""The online loop's YAML config: dataclasses, and validation that runs before any model is loaded.

    output_dir: runs/online-rule
    rounds: 3
    prompts_per_round: 64
    model: {model: default, lora_r: 16}     # a ModelConfig; `model: default` is shorthand
    task: {kinds: [no_commas]}              # or prompts: {file: instructions.jsonl, heldout_size: 100}
    generation: {temperature: 0.8}          # backend: openai + server: {...} for a vLLM server
    judge: {kind: rule}
    eval: [{kind: rule, size: 48}]          # and/or pairwise, callable evaluations
    training: {learning_rate: 3.0e-4, align_n_weight: 0.0, unflagged_weight: 0.0}
    launcher: {accelerate_config: accelerate/ddp.yaml, num_processes: 2}   # absent: training in process
    guard: {max_length_drop: 0.25}          # absent: every round is kept (cutalign.online.guard)

Every section is optional except ``judge``; the shipped configs (``cutalign/configs/online-*.yaml``) show the full
set of keys and docs/online.md describes each. ``model:`` is a :class:`cutalign.ModelConfig` and ``training:`` is a
map of :class:`cutalign.CUTConfig` fields (any CUT setting or ``TrainingArguments`` field): the loop declares no
training setting of its own. ``prompts:`` is :class:`cutalign.online.prompts.PromptsConfig`, ``eval:``
a list of :class:`cutalign.online.evals.EvalConfig`, ``generation:`` a :class:`cutalign.generation.SamplingConfig`
(with ``backend`` and ``server``), ``guard:`` a :class:`cutalign.online.guard.GuardConfig`.

Relative paths of input files (``prompts.file``, ``prompts.heldout_file``, ``judge.prompt``, ``eval[].reference``,
``eval[].judge.prompt``, ``launcher.accelerate_config``) are read relative to the directory of the config file, so a
config and its data move together (a shipped config names the repository's ``examples/data`` this way). Models and
``output_dir`` stay relative to the working directory, as before.

An unknown key, a value of the wrong type, a missing required key, an unreadable file or an unknown kind is a
:class:`cutalign.errors.UsageError` naming the config file and the key, raised by :func:`load_config` before any
model loads.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


from ..config import CUTConfig, ModelConfig, config_file
from ..errors import UsageError
from ..io import read_yaml
from ..generation import SamplingConfig
from ..judges.config import JudgeConfig, check_model, validate_judge
from .evals import ROUND_ZERO, EvalConfig, complete, eval_entries, needs_heldout, validate_evals
from .guard import GuardConfig, validate_guard
from .prompts import PromptsConfig, check_section

NOT_SETTINGS = {"generation.seed": "each generation batch's seed is derived from the top-level seed"}
"""Fields of a section's dataclass that the loop sets itself: giving one in the config is an error."""

RECORDED_WHEN_SET = {"generation.backend": "hf", "generation.server": None, "guard": None}
"""Keys left out of :meth:`OnlineConfig.to_dict` at these defaults, so a run that does not use them records the
config as earlier versions did."""


@dataclass
class TaskConfig:
    """The built-in verifiable-instruction task (:mod:`cutalign.tasks`): where the prompts come from."""

    kinds: list[str] | None = None  # constraint kinds (default: all)
    constraints_per_prompt: int = 1


@dataclass
class LauncherConfig:
    """Run each round's training as ``accelerate launch --config_file ACCELERATE_CONFIG --num_processes N ... -m
    cutalign train --config <the round's train.yaml>`` (see :mod:`cutalign.online.launcher`)."""

    accelerate_config: str | None = None  # e.g. configs/accelerate/ddp.yaml; None: accelerate's own default
    num_processes: int = 1
    main_process_port: int | None = None  # None: a free port, picked for each round
    extra_args: list[str] = field(default_factory=list)  # more `accelerate launch` arguments, e.g. [--mixed_precision, bf16]


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
    prompts: PromptsConfig = field(default_factory=PromptsConfig)
    # The responses that get judged are sampled (temperature 0 = greedy); each batch's seed comes from `seed`.
    generation: SamplingConfig = field(default_factory=lambda: SamplingConfig(temperature=0.8))
    eval: list[EvalConfig] = field(default_factory=lambda: [complete(EvalConfig())])
    training: dict[str, Any] = field(default_factory=dict)  # CUTConfig fields; see cut_config()
    launcher: LauncherConfig | None = None  # None: each round trains in this process
    guard: GuardConfig | None = None  # None: every round is kept; see cutalign.online.guard

    def to_dict(self) -> dict:
        """The config as plain data (``config.json``, the summary), without the fields the loop sets itself."""
        raw = dataclasses.asdict(self)
        for key in NOT_SETTINGS:
            section, name = key.split(".")
            del raw[section][name]
        for key, default in RECORDED_WHEN_SET.items():
            *section, name = key.split(".")
            holder = raw[section[0]] if section else raw
            if holder[name] == default:
                del holder[name]
        return raw

    def cut_config(self, output_dir: str, seed: int, **loop_values) -> CUTConfig:
        """The CUTConfig of one round: the loop's Trainer defaults, then ``training:``, then the loop's own keys."""
        return CUTConfig(**{**LOOP_TRAINING_DEFAULTS, **self.training, **loop_values,
                            "output_dir": output_dir, "seed": seed})


def load_config(path, *, rounds: int | None = None, output_dir: str | None = None) -> OnlineConfig:
    """Read and validate ``path`` (a file, or a shipped config's name); ``rounds`` and ``output_dir`` override the
    file's values."""
    path = config_file(str(path), online=True)
    raw = read_yaml(path)
    if rounds is not None:
        raw["rounds"] = rounds
    if output_dir is not None:
        raw["output_dir"] = output_dir
    return config_from_dict(raw, source=str(path), base_dir=Path(path).resolve().parent)


def config_from_dict(raw: dict, source: str = "config", base_dir: Path | None = None) -> OnlineConfig:
    """Build and validate an :class:`OnlineConfig` from a mapping (as read from YAML). Relative input paths are
    taken relative to ``base_dir`` (the config file's directory) when given, else to the working directory."""
    config = _build(OnlineConfig, raw, source, "")
    if config.guard is not None and config.guard.eval is None and config.eval:
        config.guard.eval = config.eval[0].name  # recorded in config.json by name
    if base_dir is not None:
        resolve_paths(config, Path(base_dir))
    validate(config, source)
    return config


def resolve_paths(config: OnlineConfig, base_dir: Path) -> None:
    """Make the relative input paths of ``config`` absolute, relative to ``base_dir`` (see the module docstring)."""

    def resolved(path: str | None) -> str | None:
        if path is None or Path(path).is_absolute():
            return path
        return str((base_dir / path).resolve())

    config.prompts.file = resolved(config.prompts.file)
    config.prompts.heldout_file = resolved(config.prompts.heldout_file)
    config.judge.prompt = resolved(config.judge.prompt)
    for spec in config.eval:
        if spec.reference != ROUND_ZERO:
            spec.reference = resolved(spec.reference)
        if spec.judge is not None:
            spec.judge.prompt = resolved(spec.judge.prompt)
    if config.launcher is not None:
        config.launcher.accelerate_config = resolved(config.launcher.accelerate_config)


def _build(cls, raw, source: str, prefix: str, base=None):
    """An instance of dataclass ``cls`` from mapping ``raw``, checking keys and value types.

    Keys missing from ``raw`` keep the values of ``base`` (a section's default instance) or the class defaults. A
    value the class itself rejects (its ``__post_init__`` raises ``ValueError`` starting with the field name) is
    reported with the key's full name.
    """
    if not isinstance(raw, dict):
        raise UsageError(f"{source}: {prefix.rstrip('.') or 'the config'} must be a mapping, got {_type_name(raw)}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    for key in raw:
        if f"{prefix}{key}" in NOT_SETTINGS:
            raise UsageError(f"{source}: {prefix}{key} is not a setting: {NOT_SETTINGS[prefix + str(key)]}")
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=3, cutoff=0.7)
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
        inner = _optional_dataclass(kind)
        if name == "training":
            values[name] = training_overrides(raw[name] if raw[name] is not None else {}, source)
        elif name == "eval" and cls is OnlineConfig:
            values[name] = eval_section(raw[name], source)
        elif inner is not None:  # an optional section: absent or null means None
            values[name] = None if raw[name] is None else _build(inner, raw[name], source, f"{prefix}{name}.")
        elif dataclasses.is_dataclass(kind):
            default = f.default_factory() if f.default_factory is not dataclasses.MISSING else None
            values[name] = _build(kind, raw[name] if raw[name] is not None else {}, source, f"{prefix}{name}.",
                                  default)
        else:
            values[name] = _coerce(raw[name], kind, source, f"{prefix}{name}")
    try:
        return dataclasses.replace(base, **values) if base is not None else cls(**values)
    except ValueError as error:  # a dataclass's own checks (SamplingConfig's, ModelConfig's)
        raise UsageError(f"{source}: {prefix}{error}") from None


def eval_section(raw, source: str = "config") -> list[EvalConfig]:
    """The ``eval:`` section in any of its forms (see :func:`cutalign.online.evals.eval_entries`), each evaluation
    with its kind's defaults."""
    return [complete(_build(EvalConfig, entry, source, f"eval[{i}].", None))
            for i, entry in enumerate(eval_entries(raw))]


def _optional_dataclass(kind):
    """The dataclass ``X`` of an annotation ``X | None``, else None."""
    if not isinstance(kind, types.UnionType):
        return None
    args = [a for a in typing.get_args(kind) if a is not type(None)]
    return args[0] if len(args) == 1 and dataclasses.is_dataclass(args[0]) else None


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
    check_model(config.model.model, "model.model", fail)
    if not config.model.lora:
        fail("model.lora must be true: the online loop trains LoRA adapters round after round")
    kinds = config.task.kinds
    if kinds is not None:
        unknown = [k for k in kinds if k not in KINDS]
        if unknown or not kinds or len(set(kinds)) != len(kinds):
            fail(f"task.kinds must be distinct names from {', '.join(KINDS)}, got {kinds!r}")
    if not 1 <= config.task.constraints_per_prompt <= len(kinds or KINDS):
        fail(f"task.constraints_per_prompt must be between 1 and the number of kinds, "
             f"got {config.task.constraints_per_prompt}")
    check_section(config.prompts, fail)
    if config.prompts.file is not None and config.task != TaskConfig():
        fail("task: configures the built-in task; it does not apply with prompts.file (the user's instructions)")
    validate_generation(config, fail)
    validate_evals(config.eval, fail)
    if config.prompts.file is not None and config.prompts.heldout_file is None and not config.prompts.heldout_size:
        for spec in config.eval:
            if needs_heldout(spec):
                fail(f"eval.{spec.name} answers the run's held-out instructions, and prompts.file has none: set "
                     "prompts.heldout_file or prompts.heldout_size")
    if config.launcher is not None:
        validate_launcher(config, fail)
    if config.guard is not None:
        validate_guard(config.guard, [spec.name for spec in config.eval], fail)
    validate_judge(config.judge, fail)


def validate_generation(config: OnlineConfig, fail) -> None:
    """The server's settings (the sampling values and the backend are checked by SamplingConfig itself)."""
    g = config.generation
    if g.backend == "openai":
        for problem in g.server.problems():
            fail(f"generation.server.{problem}")
        _refuse_adapter_start(config, "generation.backend: openai", fail)


def validate_launcher(config: OnlineConfig, fail) -> None:
    launcher = config.launcher
    if launcher.num_processes < 1:
        fail(f"launcher.num_processes must be >= 1, got {launcher.num_processes}")
    if launcher.accelerate_config is not None and not Path(launcher.accelerate_config).is_file():
        fail(f"launcher.accelerate_config: {launcher.accelerate_config} is not a file")
    if launcher.main_process_port is not None and not 0 < launcher.main_process_port < 65536:
        fail(f"launcher.main_process_port must be a TCP port, got {launcher.main_process_port}")
    _refuse_adapter_start(config, "launcher", fail)


def _refuse_adapter_start(config: OnlineConfig, what: str, fail) -> None:
    """A saved adapter as ``model.model`` is merged into the starting model in this process; a server or a
    launched process would load the base without it."""
    from ..models import adapter_base

    if config.model.model != "default" and adapter_base(config.model.model) is not None:
        fail(f"model.model: {config.model.model} is a saved adapter; with {what} the starting model must be a full "
             "model (merge the adapter into its base first: PeftModel.merge_and_unload, then save_pretrained)")

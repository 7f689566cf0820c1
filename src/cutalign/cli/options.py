"""Parsing a command's options: its dataclasses' fields as flags, plus ``--config FILE`` (YAML) under them.

Every command parses its options here, with transformers' ``HfArgumentParser`` over the command's dataclasses, so
the flags, their types, defaults and help all come from the dataclass fields. ``--config FILE`` holds any of the same
options as ``name: value``; its values become the parser's defaults, so the command line overrides them. An unknown
key or flag, or a value of the wrong type, is a :class:`UsageError` (``error: ...``, exit status 2).

Importing this module imports transformers' argument parser (not torch): command modules import it inside ``run``.
"""

from __future__ import annotations

import argparse
import difflib
import types
import typing

from transformers import HfArgumentParser

from ..errors import UsageError
from ..io import read_yaml


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Help with each optional option's default, and the command's description (its module docstring) as written."""

    def _get_help_string(self, action):  # the hook ArgumentDefaultsHelpFormatter itself overrides
        return action.help if action.required else super()._get_help_string(action)


class CommandParser(HfArgumentParser):
    """``HfArgumentParser`` with one spelling per flag, positional fields, and errors raised as :class:`UsageError`.

    * HfArgumentParser adds ``--output-dir`` next to ``--output_dir``; only the underscore spelling is kept, so
      every command spells every flag one way.
    * A field with ``metadata={"positional": True}`` is a positional argument (``cutalign annotate FILE``).
    * ``error`` raises instead of printing the usage and exiting, so ``cutalign`` prints one ``error: ...`` line.
    """

    def add_argument(self, *names, **kwargs):
        if kwargs.pop("positional", False):
            kwargs.pop("required", None)  # a positional is required by nature (argparse rejects the keyword)
            return super().add_argument(names[0].removeprefix("--"), metavar=names[0][2:].upper(), **kwargs)
        underscored = {name for name in names if "_" in name}
        kept = [name for name in names if not ("-" in name[2:] and "--" + name[2:].replace("-", "_") in underscored)]
        return super().add_argument(*kept, **kwargs)

    def error(self, message):
        raise UsageError(message)


def parse(argv: list[str], dataclass_types: tuple, *, prog: str, description: str, config: bool = True,
          defaults: dict | None = None) -> tuple:
    """Instances of ``dataclass_types`` from ``argv``, under the values of ``--config FILE`` when given.

    ``config=False`` leaves ``--config`` out (the online command's ``--config`` is a field of its own, an online-loop
    config for :func:`cutalign.online.config.load_config`). ``defaults`` replaces dataclass defaults for this command
    (``train-judge`` starts CUTConfig from the judge's recipe); ``--config`` and the command line override them.
    """
    parser = CommandParser(dataclass_types, prog=prog, description=description, allow_abbrev=False,
                           formatter_class=HelpFormatter)
    if defaults:
        parser.set_defaults(**defaults)
    if config:
        parser.add_argument("--config", metavar="FILE", default=None,
                            help="YAML file of any of these options (name: value), or a shipped one by name "
                            "(reference-mix: the paper's loss mix); the command line overrides it")
        path = _config_path(argv)
        if path is not None:
            from ..config import config_file

            apply_config(parser, dataclass_types, str(config_file(path, online=False)))
    _reject_unknown(parser, argv)
    instances = parser.parse_args_into_dataclasses(args=argv, look_for_args_file=False)
    return tuple(instances[:len(dataclass_types)])  # (after them: the namespace holding --config)


def _reject_unknown(parser: argparse.ArgumentParser, argv: list[str]) -> None:
    """Fail on an unknown option, before argparse would report a required one as missing: a misspelt required
    option (``--output-dir``) gets its "did you mean", not "--output_dir is required"."""
    required = [action for action in parser._actions if action.required]
    for action in required:
        action.required = False
    try:
        _, unknown = parser.parse_known_args(argv)
    finally:
        for action in required:
            action.required = True
    if unknown:
        flags = [arg.split("=")[0] for arg in unknown if arg.startswith("--")]
        hint = _suggest(flags[0][2:].replace("-", "_"), _known(parser), prefix="--") if flags else ""
        raise UsageError(f"unknown option(s) {' '.join(unknown)}{hint}")


def _config_path(argv: list[str]) -> str | None:
    """The value of ``--config`` in ``argv`` (read before the full parse, which needs the file's values)."""
    finder = CommandParser(add_help=False, allow_abbrev=False)
    finder.add_argument("--config", default=None)
    return finder.parse_known_args(argv)[0].config


def apply_config(parser: argparse.ArgumentParser, dataclass_types: tuple, path: str) -> None:
    """Make the values of YAML file ``path`` the parser's defaults, and the options it gives no longer required.

    Each value is converted as its flag's value would be (a YAML number for a float option, ``true`` for a bool);
    a list or mapping is passed to the dataclass as it is where the field's type admits one (``report_to: [a, b]``,
    ``model_init_kwargs: {dtype: bfloat16}``). A null value keeps the default.
    """
    hints = {}
    for cls in dataclass_types:
        hints.update(typing.get_type_hints(cls))
    actions = {}
    for action in parser._actions:  # argparse keeps its actions in this list; it has no public accessor
        if f"--{action.dest}" in action.option_strings or not action.option_strings:
            actions[action.dest] = action
    defaults = {}
    for key, value in read_yaml(path).items():
        key = str(key)
        if key not in actions or key in ("help", "config"):
            raise UsageError(f"{path}: unknown option {key!r}{_suggest(key, _known(parser))}")
        if value is not None:
            defaults[key] = _yaml_value(actions[key], hints.get(key), value, f"{path}: {key}")
    parser.set_defaults(**defaults)
    for key in defaults:
        action = actions[key]
        action.required = False
        if not action.option_strings:  # a positional given by the file may be left out of the command line
            action.nargs = "?"


def _yaml_value(action: argparse.Action, hint, value, where: str):
    """``value`` read from YAML for ``action``'s option, converted and checked as the command line's would be."""
    if isinstance(value, (list, dict)) and action.nargs not in ("+", "*"):
        if _admits(hint, type(value)):
            return value
        raise UsageError(f"{where}: expects a single value, got {type(value).__name__} {value!r}")
    if action.nargs in ("+", "*"):
        items = value if isinstance(value, list) else [value]
        return [_convert(action, item, where) for item in items]
    return _convert(action, value, where)


def _convert(action: argparse.Action, value, where: str):
    if isinstance(value, (list, dict)):
        raise UsageError(f"{where}: expects a list of single values, got {value!r}")
    text = str(value).lower() if isinstance(value, bool) else str(value)
    try:
        converted = action.type(text) if action.type is not None else text
    except (ValueError, TypeError, argparse.ArgumentTypeError) as error:
        raise UsageError(f"{where}: invalid value {value!r}: {error}") from None
    if action.choices is not None and converted not in action.choices:
        raise UsageError(f"{where}: {value!r} is not one of {', '.join(map(str, action.choices))}")
    return converted


def _admits(hint, kind: type) -> bool:
    """Whether the type annotation ``hint`` accepts values of ``kind`` (list or dict)."""
    members = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    return any(member is kind or typing.get_origin(member) is kind for member in members)


def _known(parser: argparse.ArgumentParser) -> list[str]:
    return sorted({action.dest for action in parser._actions if action.dest not in ("help", "config")})


def _suggest(name: str, known: list[str], prefix: str = "") -> str:
    """A "did you mean" hint: the name itself when only its spelling was off (``output-dir``), else the known
    names it begins (``out``) and the closest ones."""
    if name in known:
        close = [name]
    else:
        starting = [k for k in known if k.startswith(name)]
        close = list(dict.fromkeys(starting + difflib.get_close_matches(name, known, n=3)))[:3]
    return f" (did you mean {', '.join(prefix + c for c in close)}?)" if close else ""


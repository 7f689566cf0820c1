"""The callable judge: a user's Python function ``function(instruction, response) -> str | None``."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable

from .base import JudgeFailure, Judgment, check_lengths


class CallableJudge:
    """A user function ``function(instruction, response) -> str | None``, called once per row.

    An exception or a value other than a string or None fails that row only; an empty string means good.
    """

    def __init__(self, function: Callable[[str, str], str | None]):
        self.function = function

    def __call__(self, instructions, responses) -> list[Judgment]:
        check_lengths(instructions, responses)
        out: list[Judgment] = []
        for instruction, response in zip(instructions, responses):
            try:
                value = self.function(instruction, response)
            except Exception as error:  # a bug on one row must not lose the round's other rows
                out.append(JudgeFailure(f"{type(error).__name__}: {error}"))
                continue
            if value is not None and not isinstance(value, str):
                out.append(JudgeFailure(f"the function returned {type(value).__name__}, not a string or None"))
            else:
                out.append(value.strip() or None if value is not None else None)
        return out


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

"""The ``cutalign`` command: ``cutalign [--version] [--verbose] COMMAND [options]``.

One module per command, each with ``SUMMARY`` (its line in ``cutalign --help``), ``arguments()`` (the dataclasses
its options fill), ``parse(argv)`` (those dataclasses, filled by :func:`cutalign.cli.options.parse`) and
``run(argv) -> exit status``; its docstring is its ``--help`` description. Mistakes a user can make (an unknown option, a bad config key or value, an unreadable
or malformed data file, a missing model) end as one ``error: ...`` line on stderr and exit status 2, never a
traceback.

Nothing here imports torch or transformers: ``cutalign --help`` answers at once, and each command imports what it
needs when it runs. The commands whose options include TrainingArguments (which imports torch) answer ``--help``
from a page generated ahead (:mod:`cutalign.cli.shipped_help`).
"""

from __future__ import annotations

import argparse
import logging
import sys

from .. import __version__
from ..errors import UsageError
from . import annotate, baseline, demo, export, inspect, online, train, train_judge
from . import eval as eval_command
from .shipped_help import help_page

COMMANDS = {
    "train": train,
    "inspect": inspect,
    "online": online,
    "demo": demo,
    "annotate": annotate,
    "train-judge": train_judge,
    "baseline": baseline,
    "eval": eval_command,
    "export": export,
}
"""Command name -> its module."""


class _TopParser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    """The parser of what comes before the command: the global flags and the command's name."""
    commands = "\n".join(f"  {name:<12} {module.SUMMARY}" for name, module in COMMANDS.items())
    parser = _TopParser(
        prog="cutalign", allow_abbrev=False, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Align language models with judgments (free-text critiques) using CUT.",
        epilog=f"commands:\n{commands}\n\n`cutalign COMMAND --help` lists a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"cutalign {__version__}")
    parser.add_argument("--verbose", action="store_true", help="log debug messages")
    parser.add_argument("command", metavar="COMMAND", choices=COMMANDS, help="the command to run (see below)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``cutalign`` with ``argv`` (default: the process's arguments); return the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    # The global flags come before the command; everything after the command's name is the command's.
    position = next((i for i, arg in enumerate(argv) if not arg.startswith("-")), len(argv))
    try:
        args = build_parser().parse_args(argv[:position + 1])
        logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(name)s: %(message)s")
        if not args.verbose:  # httpx logs every request at INFO: one line per judged or generated answer
            logging.getLogger("httpx").setLevel(logging.WARNING)
        rest = argv[position + 1:]
        page = help_page(args.command) if rest in (["--help"], ["-h"]) else None
        if page is not None:  # the page as the parser would print it, without importing torch to build the parser
            print(page, end="")
            return 0
        return COMMANDS[args.command].run(rest)
    except Exception as error:
        if not is_user_error(error):
            raise
        message = " ".join(line.strip() for line in str(error).splitlines() if line.strip())
        print(f"error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def is_user_error(error: Exception) -> bool:
    """Whether ``error`` reports a user's mistake (printed as one line) rather than a bug (a traceback).

    ValueError covers the config dataclasses' checks and :class:`cutalign.data.DataError`.
    """
    if isinstance(error, (UsageError, ValueError, FileNotFoundError)):
        return True
    from ..models import ModelNotFoundError  # imported only now: it imports torch

    return isinstance(error, ModelNotFoundError)

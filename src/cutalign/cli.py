"""The `cutalign` command: one entry point, one subcommand per job.

Each subcommand lives in its own module with `add_parser(subparsers)` and `run(args) -> int`. Mistakes a user can
make (a bad config key or value, an unreadable or malformed data file) end as one `error: ...` line and exit
status 2, never as a traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys

from .data import DataError
from .errors import UsageError
from .models import ModelNotFoundError
from . import annotate_cli, demo, train_cli
from . import judge_cli, online_cli
from . import baseline_cli, eval_cli

# Each module: add_parser(subparsers) adds its subparser and sets `run` as its default; run(args) -> exit status.
SUBCOMMAND_MODULES = (train_cli, demo, annotate_cli, online_cli, judge_cli, baseline_cli, eval_cli)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cutalign",
        description="Align language models with judgments (free-text critiques) using CUT.",
    )
    parser.add_argument("--verbose", action="store_true", help="log debug messages")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in SUBCOMMAND_MODULES:
        module.add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "takes_options", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.options = extra
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(name)s: %(message)s")
    try:
        return args.run(args)
    except (UsageError, DataError, ModelNotFoundError, ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""Judge (instruction, response) rows in a local web page, or export the judgments written so far.

    cutalign annotate FILE [--annotator NAME]
    cutalign annotate FILE --export judged.jsonl

FILE is a generations file or any dataset in the canonical schema (JSONL/JSON/CSV/Parquet rows with prompt and
completion). Judgments are appended at once to FILE.judgments.jsonl; --export writes the latest judgment of each
decided row as a JSONL dataset instead of serving.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from ..errors import UsageError

SUMMARY = "judge model responses in a local web page"

TOKEN_ENV = "CUTALIGN_ANNOTATE_TOKEN"  # also in annotate/server.py, which this module does not import (Starlette)
MIN_TOKEN_CHARS = 16  # annotate/server.py checks it; a test checks the two agree


@dataclass
class AnnotateArguments:
    """The annotate command's flags."""

    file: str = field(metadata={"positional": True,
                                "help": "JSONL/JSON/CSV/Parquet file of rows with prompt and completion"})
    host: str = field(default="127.0.0.1", metadata={
        "help": f"address to bind; any address but the loopback one requires --token or ${TOKEN_ENV}"})
    port: int = field(default=8765, metadata={"help": "port to listen on"})
    token: str | None = field(default=None, metadata={
        "help": f"access token every request must carry (or ${TOKEN_ENV}): at least {MIN_TOKEN_CHARS} characters, "
                "without surrounding whitespace"})
    annotator: str | None = field(default=None, metadata={"help": "your name, recorded with every judgment"})
    export: str | None = field(default=None, metadata={
        "help": "instead of serving, write the latest judgment of each decided row to this JSONL file"})


def arguments() -> tuple:
    return (AnnotateArguments,)


def parse(argv: list[str]) -> tuple:
    """(AnnotateArguments,) from the command line and --config FILE."""
    from . import options

    return options.parse(argv, arguments(), prog="cutalign annotate", description=__doc__)


def run(argv: list[str]) -> int:
    (args,) = parse(argv)
    if not os.path.isfile(args.file):
        raise UsageError(f"{args.file}: file not found")

    from .. import annotate

    if args.export:
        counts = annotate.export(args.file, args.export)
        print(f"wrote {args.export}: {counts}")
        return 0
    # serve() refuses a non-loopback host without a token (ValueError, printed as `error: ...`).
    annotate.serve(args.file, host=args.host, port=args.port, token=args.token, annotator=args.annotator)
    return 0

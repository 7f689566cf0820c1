"""`cutalign annotate FILE`: judge (instruction, response) rows in the browser; `--export OUT` writes the dataset."""

from __future__ import annotations

import os

from .errors import UsageError

TOKEN_ENV = "CUTALIGN_ANNOTATE_TOKEN"


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "annotate",
        help="judge model responses in a local web page",
        description="Serve a local page to write judgments for the rows of FILE (a generations file or any dataset "
        "in the canonical schema). Judgments are appended at once to FILE.judgments.jsonl.",
    )
    parser.add_argument("file", help="JSONL/JSON/CSV/Parquet file of rows with prompt and completion")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1); any other "
                        f"address requires --token or ${TOKEN_ENV}")
    parser.add_argument("--port", type=int, default=8765, help="port to listen on (default 8765)")
    parser.add_argument("--token", default=None, help=f"access token every request must carry (or ${TOKEN_ENV}): "
                        "at least 16 characters, without surrounding whitespace")
    parser.add_argument("--annotator", default=None, help="your name, recorded with every judgment")
    parser.add_argument("--export", metavar="OUT", default=None,
                        help="instead of serving, write the latest judgment per decided row to OUT (JSONL)")
    parser.set_defaults(run=run)


def run(args) -> int:
    from . import annotate

    if not os.path.isfile(args.file):
        raise UsageError(f"{args.file}: file not found")
    if args.export:
        counts = annotate.export(args.file, args.export)
        print(f"wrote {args.export}: {counts}")
        return 0
    # serve() refuses a non-loopback host without a token (ValueError, printed as `error: ...`).
    annotate.serve(args.file, host=args.host, port=args.port, token=args.token, annotator=args.annotator)
    return 0

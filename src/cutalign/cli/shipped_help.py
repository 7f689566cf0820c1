"""The ``--help`` pages of the commands whose options include transformers' TrainingArguments, shipped as text.

``cutalign train``, ``baseline`` and ``train-judge`` take every ``TrainingArguments`` field, and importing that class
imports torch and peft: 10 s on a 2-core machine, for a page that only changes with cutalign's or transformers'
version. So these pages are generated once into ``cli/help/COMMAND.txt`` (first line: the versions they were made
with) and ``cutalign COMMAND --help`` prints the file when the installed versions match; otherwise, or for any other
argument list, the command builds its parser as usual. ``tests/test_cli_help.py`` fails when a page is out of date.

    make help-pages     # regenerate the pages after changing an option or upgrading transformers
"""

from __future__ import annotations

import contextlib
import io
import os
from importlib.metadata import version
from pathlib import Path

from .. import __version__

HELP_DIR = Path(__file__).parent / "help"
COMMANDS = ("train", "baseline", "train-judge")
"""The commands whose parser imports torch (through CUTConfig)."""
WIDTH = 100
"""The terminal width the pages are laid out for."""


def versions_line() -> str:
    """The first line of a page: what it was generated with (read from package metadata, without importing)."""
    return f"# cutalign {__version__}, transformers {version('transformers')}"


def help_page(command: str) -> str | None:
    """The shipped ``--help`` page of ``command``, or None when there is none or it was made with other versions."""
    path = HELP_DIR / f"{command}.txt"
    if command not in COMMANDS or not path.is_file():
        return None
    first, _, page = path.read_text(encoding="utf-8").partition("\n")
    return page if first == versions_line() else None


def live_help(command: str) -> str:
    """``command``'s ``--help`` page as its parser prints it, laid out for :data:`WIDTH` columns."""
    from . import COMMANDS as MODULES

    output = io.StringIO()
    previous = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(WIDTH)  # argparse reads the width from here
    try:
        with contextlib.redirect_stdout(output), contextlib.suppress(SystemExit):
            MODULES[command].parse(["--help"])
    finally:
        if previous is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = previous
    return output.getvalue()


def write_pages() -> None:
    """Regenerate every shipped page from the commands' parsers."""
    from ..io import write_text

    for command in COMMANDS:
        write_text(HELP_DIR / f"{command}.txt", f"{versions_line()}\n{live_help(command)}")
        print(f"wrote {HELP_DIR / f'{command}.txt'}")

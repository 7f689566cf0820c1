"""Run (or resume) the online loop an online-loop YAML config describes.

    cutalign online --config online-rule [--rounds N] [--output_dir DIR]

Each round samples fresh instructions, generates responses, judges them, trains CUT from the previous round's
adapter and scores a fixed held-out set. --config is a file or the name of a shipped config (online-rule,
online-trained-judge, online-endpoint). The config is read and checked (keys, judge, files, environment) before
any model loads; the same command again resumes a stopped run, and a larger --rounds continues a finished one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SUMMARY = "online alignment: generate, judge and train with CUT, round after round"


@dataclass
class OnlineArguments:
    """The online command's flags: the config, and the two values the command line may override."""

    config: str = field(metadata={"help": "online-loop YAML config: a file, or a shipped config's name "
                                  "(e.g. online-rule)"})
    rounds: int | None = field(default=None, metadata={
        "help": "number of rounds (overrides the config's rounds; raising it continues a finished run)"})
    output_dir: str | None = field(default=None, metadata={
        "help": "the run directory (overrides the config's output_dir)"})
    no_progress: bool = field(default=False, metadata={"help": "hide the progress bars"})


def arguments() -> tuple:
    return (OnlineArguments,)


def parse(argv: list[str]) -> tuple:
    """(OnlineArguments,) from the command line."""
    from . import options

    return options.parse(argv, arguments(), prog="cutalign online", description=__doc__, config=False)


def run(argv: list[str]) -> int:
    (args,) = parse(argv)

    from ..online.config import load_config

    config = load_config(args.config, rounds=args.rounds, output_dir=args.output_dir)

    from ..online.loop import run_online

    run_online(config, progress=not args.no_progress)
    return 0

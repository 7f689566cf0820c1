"""`cutalign online --config online.yaml [--rounds N] [--run-dir DIR]`: the online loop (generate, judge, train).

The config is read and checked (judge kind, keys, files, environment) before any model is loaded; running the same
command again resumes a stopped run. See :mod:`cutalign.online.loop` for the run directory.
"""

from __future__ import annotations


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "online",
        help="online alignment: generate, judge and train with CUT, round after round",
        description="Run (or resume) the online loop described by a YAML config: each round samples fresh "
        "instructions, generates, judges, trains with CUT from the previous round's adapter and scores a fixed "
        "held-out set. Examples: configs/online-rule.yaml, configs/online-trained-judge.yaml, "
        "configs/online-endpoint.yaml.",
    )
    parser.add_argument("--config", required=True, help="YAML config of the run (see configs/online-rule.yaml)")
    parser.add_argument("--rounds", type=int, default=None, help="number of rounds (overrides the config's rounds; "
                        "raising it continues a finished run)")
    parser.add_argument("--output_dir", default=None, help="run directory (overrides the config's output_dir)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    parser.set_defaults(run=run)


def run(args) -> int:
    from .online.config import load_config
    from .online.loop import run_online

    config = load_config(args.config, rounds=args.rounds, output_dir=args.output_dir)
    run_online(config, progress=not args.no_progress)
    return 0

"""Run an online config through the library entry points (what ``cutalign online --config`` calls), for the GPU suite.

    python benchmarks/online_round.py CONFIG OUTPUT_DIR

It calls :func:`cutalign.online.config.load_config` and :func:`cutalign.online.loop.run_online` directly, so it
does not depend on how the command line is laid out, and prints the seconds each phase of each round took.
"""

from __future__ import annotations

import sys
import time


def main(argv: list[str]) -> int:
    from cutalign.online.config import load_config
    from cutalign.online.loop import run_online

    config_path, output_dir = argv
    started = time.monotonic()
    summary = run_online(load_config(config_path, output_dir=output_dir), progress=True)
    for row in summary["rounds"][1:]:
        print(f"round {row['round']}: seconds per phase {row['seconds']}")
    print(f"online run: {time.monotonic() - started:.0f} s in all (model loading included)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""How the cost of a CUT step grows: step time and peak memory as the sequence length and the batch double.

Two curves, CUT (:class:`cutalign.CUTTrainer`) and a plain SFT step (transformers' default loss) on exactly the same
rows, each cell in a fresh process (see ``step_cost.py`` for the rows and the measurement):

* length: L = 256, 512, 1,024, 2,048 tokens with one (negative, positive) pair per step (3 rows);
* batch: 1, 2, 4, 8 pairs per step (3 to 24 rows) at L = ``--batch-length`` (256).

Next to each figure, the growth factor against the previous cell (x2 = linear in the doubled quantity, x4 =
quadratic). Gradient checkpointing is on by default, so that the 2,048-token cells fit in memory on a 24 GiB
machine and peak memory is set by one layer's recomputation plus the LM head.

    python benchmarks/scaling.py [--checkpointing off] [--lengths 256 512 1024 2048] [--pairs 1 2 4 8]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import common

STEP_COST = str(Path(__file__).with_name("step_cost.py"))
METHODS = ("cut", "sft")


def measure(length: int, pairs: int, options) -> dict[str, tuple[float, float]]:
    """(seconds, GiB) of one optimizer step per method: the minimum over the steps after a warm-up step."""
    results = {}
    for method in METHODS:
        steps = 2 if length * pairs >= 2048 else 3
        spec = {"method": method, "length": length, "pairs": pairs, "checkpointing": options.checkpointing == "on",
                "layers": options.layers, "steps": steps}
        r = common.run_isolated(STEP_COST, spec)
        print(f"L={length} pairs={pairs} {method}: {r}", file=sys.stderr, flush=True)
        results[method] = (min(r["seconds"][1:]), r["peak_gib"])
    return results


def curve(cells: list[tuple[int, int]], label, options) -> list[list]:
    rows, previous = [], None
    for length, pairs in cells:
        results = measure(length, pairs, options)
        row = [label(length, pairs), 3 * pairs * length]
        for method in METHODS:
            seconds, gib = results[method]
            grow = (f" (x{seconds / previous[method][0]:.1f})", f" (x{gib / previous[method][1]:.1f})") \
                if previous else ("", "")
            row += [f"{seconds:.2f}{grow[0]}", f"{gib:.2f}{grow[1]}"]
        row += [f"{results['cut'][0] / results['sft'][0]:.2f}", f"{results['cut'][1] / results['sft'][1]:.2f}"]
        rows.append(row)
        previous = results
    return rows


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lengths", type=int, nargs="+", default=[256, 512, 1024, 2048])
    parser.add_argument("--pairs", type=int, nargs="+", default=[1, 2, 4, 8], help="pairs per step, batch curve")
    parser.add_argument("--batch-length", type=int, default=256, help="L of the batch curve")
    parser.add_argument("--checkpointing", choices=["on", "off"], default="on")
    parser.add_argument("--layers", type=int, default=None, help="cut the model to this many decoder layers")
    options = parser.parse_args(argv)
    common.model_dir(options.layers)

    header = ["", "rows x L", "CUT s", "CUT GiB", "plain SFT s", "plain SFT GiB", "CUT/SFT time",
              "CUT/SFT memory"]
    length_rows = curve([(length, 1) for length in options.lengths], lambda length, _: f"L={length}", options)
    batch_rows = curve([(options.batch_length, pairs) for pairs in options.pairs],
                       lambda _, pairs: f"{pairs} pair(s), {3 * pairs} rows", options)
    body = (f"{common.model_label(options.layers)}, LoRA r=16 on gate/up/down, fp32, gradient checkpointing "
            f"{options.checkpointing}. One pair = one negative and one positive example (CUT: 3 rows; plain SFT: the "
            "same 3 rows). Time: best optimizer step after a warm-up step; memory: peak RSS above the start of "
            "training; each cell in a fresh process. In brackets: growth against the previous cell.\n\n"
            "Sequence length doubles (1 pair per step):\n\n" + common.markdown_table(header, length_rows)
            + f"\n\nBatch doubles (L={options.batch_length}):\n\n" + common.markdown_table(header, batch_rows))
    common.write_result("scaling" + (f"-{options.layers}layers" if options.layers else ""), "Scaling curve",
                        "python benchmarks/scaling.py " + " ".join(argv), body)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

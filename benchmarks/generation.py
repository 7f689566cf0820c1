"""Batched generation against one prompt at a time (how the reference's evaluation script generates).

64 prompts of the built-in verifiable-instruction task, the embedded SmolLM2-135M, greedy decoding, chat template.
``cutalign.generation`` batches prompts of similar length with left padding; one-at-a-time is the same
function with batch size 1 (no padding at all). With greedy decoding both should give the same answers up to
floating-point differences from padding; the table reports how many match exactly.

    python benchmarks/generation.py [--prompts 64] [--new-tokens 48] [--batch-sizes 16 64]
"""

from __future__ import annotations

import argparse
import sys
import time

import common


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=64, help="number of prompts")
    parser.add_argument("--new-tokens", type=int, default=48, help="max_new_tokens per answer")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[16, 64], help="batched runs to time")
    options = parser.parse_args(argv)

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from cutalign.generation import SamplingConfig, generate
    from cutalign.tasks import task_prompts

    directory = common.model_dir()
    tokenizer = AutoTokenizer.from_pretrained(directory)
    model = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32)
    prompts = task_prompts("heldout", n=options.prompts, seed=0)

    def timed(batch_size: int) -> tuple[float, list[str]]:
        sampling = SamplingConfig(max_new_tokens=options.new_tokens, temperature=0.0, batch_size=batch_size)
        start = time.perf_counter()
        answers = generate(model, tokenizer, prompts, sampling, template="chat", progress=False)
        return time.perf_counter() - start, answers

    timed(8)  # warm-up (first calls allocate and pick kernels)
    single_seconds, single_answers = timed(1)
    rows = [["1 (one prompt at a time)", f"{single_seconds:.1f}", f"{options.prompts / single_seconds:.2f}",
             "1.00", "-"]]
    for batch_size in options.batch_sizes:
        seconds, answers = timed(batch_size)
        same = sum(a == b for a, b in zip(answers, single_answers))
        rows.append([str(batch_size), f"{seconds:.1f}", f"{options.prompts / seconds:.2f}",
                     f"{single_seconds / seconds:.2f}", f"{same}/{options.prompts}"])
        print(f"batch {batch_size}: {seconds:.1f} s", file=sys.stderr, flush=True)

    body = (f"SmolLM2-135M (embedded), fp32, greedy, chat template, {options.prompts} held-out task prompts, "
            f"max_new_tokens={options.new_tokens}, one run each after a warm-up run. Speed-up = one-at-a-time time / "
            "batched time. 'Same answers': batched answers identical to the one-at-a-time answers.\n\n"
            + common.markdown_table(["batch size", "seconds", "prompts/s", "speed-up", "same answers"], rows))
    common.write_result("generation", "Generation: batched against one prompt at a time",
                        "python benchmarks/generation.py " + " ".join(argv), body)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

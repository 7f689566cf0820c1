"""Where the time of one CUT training step goes: torch profiler over one optimizer step, by operator.

The step is step_cost.py's ``cut`` configuration (one negative + one positive example, 3 rows, LoRA on the MLP) at
``--length`` tokens. One warm-up step runs first; the table lists the profiled step's operators by self CPU time
(forward, backward and optimizer together; the chunked LM head shows as its matmuls, ``logsumexp`` and the custom
backward ``ChunkedTokenLogProbsBackward``).

    python benchmarks/profile_step.py [--length 1024] [--layers N]
"""

from __future__ import annotations

import argparse
import sys
import tempfile

import common


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--length", type=int, default=1024, help="tokens per longest row (default 1024)")
    parser.add_argument("--layers", type=int, default=None, help="cut the model to this many decoder layers")
    parser.add_argument("--top", type=int, default=15, help="operators listed (default 15)")
    options = parser.parse_args(argv)

    from torch.profiler import ProfilerActivity, profile
    from transformers import TrainerCallback

    import step_cost

    class Profiler(TrainerCallback):
        """Profile the second optimizer step (the first warms up the allocator and kernels)."""

        def __init__(self):
            self.profiler = None

        def on_step_begin(self, args, state, control, **kwargs):
            if state.global_step == 1:
                self.profiler = profile(activities=[ProfilerActivity.CPU], record_shapes=True)
                self.profiler.__enter__()

        def on_step_end(self, args, state, control, **kwargs):
            if self.profiler is not None and state.global_step == 2:
                self.profiler.__exit__(None, None, None)

    profiler = Profiler()
    spec = {"method": "cut", "length": options.length, "checkpointing": False, "layers": options.layers, "steps": 2}
    with tempfile.TemporaryDirectory() as output_dir:
        trainer, _ = step_cost.build_trainer(spec, output_dir, profiler)
        trainer.train()
    vocab = trainer.model.config.vocab_size
    events = profiler.profiler.key_averages(group_by_input_shape=True)
    total = sum(e.self_cpu_time_total for e in events)

    def touches_vocabulary(event) -> bool:  # an operator on (tokens x vocabulary) or (hidden x vocabulary) tensors
        return any(vocab in shape for shape in event.input_shapes if isinstance(shape, (list, tuple)))

    head = sum(e.self_cpu_time_total for e in events if touches_vocabulary(e))
    top = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:options.top]
    rows = [[e.key, "LM head" if touches_vocabulary(e) else "", str(e.input_shapes)[:60],
             f"{e.self_cpu_time_total / 1e6:.2f}", f"{e.self_cpu_time_total / total:.1%}", e.count] for e in top]
    model = common.model_label(options.layers)
    body = (f"{model}, LoRA r=16 on gate/up/down, fp32, L={options.length}, one CUT step (3 rows), no "
            f"checkpointing. Self CPU time of the profiled step: {total / 1e6:.2f} s, of which {head / total:.1%} in "
            f"operators on vocabulary-sized tensors (the chunked LM head, forward and backward). Top operators by "
            f"input shapes:\n\n"
            + common.markdown_table(["operator", "part", "input shapes", "self s", "share", "calls"], rows))
    common.write_result("profile_step", "Profile of one CUT step",
                        "python benchmarks/profile_step.py " + " ".join(argv), body)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

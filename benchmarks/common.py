"""Shared pieces of the benchmarks: a fast-loading copy of the embedded model, isolated runs, memory and timing.

Every measured configuration runs in a fresh Python process (``run_isolated``), so that its peak memory is its own
and not what an earlier configuration left in the allocator. Inside that process, peak memory is read from Linux's
``/proc/self/status``: the high-water mark ``VmHWM`` is reset (``/proc/self/clear_refs``) when training starts, and
the figure reported is ``VmHWM - VmRSS`` at that moment, i.e. the peak resident memory *above* the loaded model,
LoRA adapters and data: activations, logits, gradients and optimizer state.

The embedded SmolLM2-135M loads from its GGUF file in about 17 s (de-quantization). The first benchmark that needs
it saves it once as safetensors under ``$CUTALIGN_BENCH_CACHE`` (default ``~/.cache/cutalign-bench``); every
isolated run then loads that copy in about a second. ``layers=2`` saves a copy cut to its first two decoder layers
(the "2-layer variant": same embeddings, LM head and vocabulary, a fraction of the backbone).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parent / "results"
CACHE_DIR = Path(os.environ.get("CUTALIGN_BENCH_CACHE", Path.home() / ".cache" / "cutalign-bench"))


def model_dir(layers: int | None = None) -> str:
    """A directory holding the embedded model (optionally cut to ``layers`` decoder layers) and its tokenizer."""
    target = CACHE_DIR / ("smollm2-135m" if layers is None else f"smollm2-135m-{layers}layers")
    if (target / "config.json").is_file():
        return str(target)
    from cutalign.models import load_model, load_tokenizer

    from transformers import AutoModelForCausalLM

    gguf_model, tokenizer = load_model("default"), load_tokenizer("default")
    # A model de-quantized from GGUF refuses save_pretrained: copy its weights into a plain model of the same config.
    config = gguf_model.config
    config.__dict__.pop("quantization_config", None)
    model = AutoModelForCausalLM.from_config(config)
    model.load_state_dict(gguf_model.state_dict())
    if layers is not None:
        model.model.layers = model.model.layers[:layers]
        model.config.num_hidden_layers = layers
        if getattr(model.config, "layer_types", None):
            model.config.layer_types = model.config.layer_types[:layers]
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    os.replace(tmp, target)
    return str(target)


def model_label(layers: int | None = None) -> str:
    """How results name the model of :func:`model_dir`."""
    return "SmolLM2-135M" + (f" cut to {layers} layers" if layers else "")


def memory_kib() -> dict[str, int]:
    """VmRSS and VmHWM of this process, in KiB."""
    values = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0])
    return values


def reset_peak() -> int:
    """Reset VmHWM to the current RSS; return that RSS (KiB)."""
    Path("/proc/self/clear_refs").write_text("5")
    return memory_kib()["VmRSS"]


def step_timer_callback():
    """A TrainerCallback that records each optimizer step's wall time and the peak RSS above the start of training."""
    import gc

    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        def __init__(self):
            self.step_seconds: list[float] = []
            self.baseline_kib = 0
            self._start = 0.0

        def on_train_begin(self, args, state, control, **kwargs):
            gc.collect()
            self.baseline_kib = reset_peak()

        def on_step_begin(self, args, state, control, **kwargs):
            self._start = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            self.step_seconds.append(time.perf_counter() - self._start)

        def peak_gib(self) -> float:
            return (memory_kib()["VmHWM"] - self.baseline_kib) / 2**20

    return StepTimer()


def run_isolated(script: str, spec: dict, timeout: float = 1800) -> dict:
    """Run ``python script --worker JSON`` in a fresh process; return the JSON dict it prints on its last line."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", TRANSFORMERS_VERBOSITY="error")
    completed = subprocess.run(
        [sys.executable, script, "--worker", json.dumps(spec)], capture_output=True, text=True, env=env,
        timeout=timeout,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"{Path(script).name} {spec} failed:\n{completed.stderr[-3000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def worker_spec(argv: list[str]) -> dict | None:
    """The spec when this process was started by :func:`run_isolated`, else None."""
    if len(argv) == 3 and argv[1] == "--worker":
        return json.loads(argv[2])
    return None


def emit(result: dict) -> None:
    """A worker's answer: one JSON line on stdout (the last line)."""
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()


def entry_point(worker, main) -> int:
    """A benchmark script's ``__main__``: run ``worker`` when started by :func:`run_isolated`, else ``main``."""
    spec = worker_spec(sys.argv)
    if spec is not None:
        emit(worker(spec))
        return 0
    return main(sys.argv[1:])


def machine() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return (f"{cpu}, {os.cpu_count()} cores visible, torch {torch.__version__} "
            f"({torch.get_num_threads()} threads), Python {platform.python_version()}")


def markdown_table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def write_result(name: str, title: str, command: str, body: str) -> Path:
    """Write ``benchmarks/results/<name>.md`` atomically and print it."""
    RESULTS_DIR.mkdir(exist_ok=True)
    text = (f"# {title}\n\nCommand: `{command}`  \nMachine: {machine()}  \n"
            f"Date: {time.strftime('%Y-%m-%d %H:%M')}\n\n{body}\n")
    path = RESULTS_DIR / f"{name}.md"
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    print(text)
    return path

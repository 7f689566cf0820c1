"""Cost of one CUT training step against a plain SFT step, TRL's SFT and DPO steps and the reference computation.

Every method trains the embedded SmolLM2-135M with LoRA (r=16 on gate/up/down projections, AdamW) through a
``transformers.Trainer`` (so data loading, optimizer step and callbacks are the same) on the same tokens:

* one negative example: plain prompt L/8 tokens, judgment prompt L/4 tokens, response 3L/4 tokens (rows of 7L/8
  and L tokens), and one positive example (plain prompt L/8, response 3L/4);
* ``cut``: :class:`cutalign.CUTTrainer` with its default mix, label-only chunked log-probabilities, normalized
  reduction: a forward with gradient over 2 rows (the plain views), and one without over the negative's judgment
  view, which the default mix only reads to select tokens;
* ``cut_reference_mix``: the same with the reference's loss-part weights (Align-N trains on the judgment view), so
  one forward with gradient over all 3 rows;
* ``sft``: transformers' ``Trainer`` with the model's own loss (full logits, cross-entropy on the response) on the
  same 3 rows, batch 3;
* ``trl_sft``: TRL's ``SFTTrainer`` on the same 3 rows (prompt-completion, completion-only loss), batch 3;
* ``trl_dpo``: TRL's ``DPOTrainer`` on one pair: prompt = the plain prompt, chosen = the positive's response,
  rejected = the negative's response (2 rows of 7L/8, plus the reference model's forward: LoRA disabled);
* ``reference``: a re-implementation of the reference computation (wwxu21/CUT): micro-batch 1 (2 accumulation
  steps), every example as two padded rows [judgment or plain view, plain view or a row of padding], full logits,
  fp32 log-softmax over the vocabulary on both halves, reference reduction.

Step time is the minimum over the timed optimizer steps; memory is the peak RSS above the start of training (see
``common.py``), each method in a fresh process. On a GPU (``--device cuda``) memory is the peak of
``torch.cuda.max_memory_allocated`` above the start of training, and steps are timed after a
``torch.cuda.synchronize``. ``--dtype bf16`` trains with bf16 autocast (the Trainer's ``bf16=True``; fp32 master
weights). ``--model-config llama-0.5b`` replaces the embedded model by a 0.5B-parameter Llama-style model built from
a config with random weights (the embedded tokenizer's vocabulary): a size the embedded model cannot show, with
nothing to download. Every result also reports tokens per second (the tokens of the rows a step trains on).

    python benchmarks/step_cost.py                       # the grid in the README (slow: ~40 min on 2 cores)
    python benchmarks/step_cost.py --lengths 512 --checkpointing on --steps 2
    python benchmarks/step_cost.py --layers 2 --lengths 2048 --checkpointing on
    python benchmarks/step_cost.py --device cuda --dtype bf16 --methods cut sft trl_sft --model-config llama-0.5b
    python benchmarks/step_cost.py ... --dry-run         # print the cells and exit (no torch import)
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

import common

METHODS = ("cut", "cut_reference_mix", "sft", "trl_sft", "trl_dpo", "reference")
LORA = dict(r=16, lora_alpha=32, lora_dropout=0.0, target_modules=["gate_proj", "up_proj", "down_proj"],
            task_type="CAUSAL_LM")
MODEL_CONFIGS = {
    # 26 layers x (attention 4.1M + MLP 13.3M) + tied embeddings 49,152 x 1,280: about 515M parameters.
    "llama-0.5b": dict(hidden_size=1280, intermediate_size=3456, num_hidden_layers=26, num_attention_heads=20,
                       num_key_value_heads=5, max_position_embeddings=4096, tie_word_embeddings=True),
}
"""Models built from a config with random weights (``--model-config``): Llama architecture, embedded vocabulary."""


def synthetic_examples(length: int, tokenizer, seed: int = 0, pairs: int = 1) -> list[dict]:
    """``pairs`` x (one negative, one positive example) of token ids (random ids from the ordinary vocabulary)."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    low, high = 1000, len(tokenizer) - 1000

    def ids(n):
        return torch.randint(low, high, (n,), generator=generator).tolist()

    response = 3 * length // 4 - 1
    examples = []
    for _ in range(pairs):
        negative = {"prompt_ids": ids(length // 8), "completion_ids": ids(response) + [tokenizer.eos_token_id],
                    "negative": True}
        negative["judgment_prompt_ids"] = negative["prompt_ids"] + ids(length // 4 - length // 8)
        positive = {"prompt_ids": ids(length // 8), "completion_ids": ids(response) + [tokenizer.eos_token_id],
                    "judgment_prompt_ids": [], "negative": False}
        examples += [negative, positive]
    return examples


def training_args(cls, spec: dict, output_dir: str, **overrides):
    values = dict(
        output_dir=output_dir, max_steps=spec["steps"], learning_rate=1e-5, report_to=[], save_strategy="no",
        use_cpu=spec.get("device", "cpu") == "cpu", logging_steps=10_000, disable_tqdm=True,
        train_sampling_strategy="sequential", seed=0,
        # Every method in the same precision: TRL's configs default to bf16 autocast, even on a CPU.
        bf16=spec.get("dtype", "fp32") == "bf16",
        activation_checkpointing=spec["checkpointing"], activation_checkpointing_kwargs={"use_reentrant": False},
        dataloader_num_workers=0,
    )
    values.update(overrides)
    return cls(**values)


def reference_trainer_class():
    """A Trainer whose loss is the reference computation (full fp32 log-softmax over the vocabulary)."""
    import torch
    from transformers import Trainer

    from cutalign.loss import cut_loss

    class ReferenceTrainer(Trainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            logits = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]).logits
            logps = torch.log_softmax(logits.float(), dim=-1)
            start, width = inputs["starts"], inputs["targets"].shape[1]
            positions = start[:, None] + torch.arange(width)[None, :]  # (2, T) positions before each target
            rows = torch.arange(2)[:, None]
            token_logps = logps[rows, positions.clamp(max=logps.shape[1] - 1), inputs["targets"]]
            mask = inputs["target_mask"]
            mle, plain = token_logps[0:1], token_logps[1:2]
            return cut_loss(mle, plain, mask[0:1], inputs["negative"], threshold=1.1, alpha=1.0, reduction="reference").loss

    return ReferenceTrainer


def reference_collate(pad_token_id: int):
    """Micro-batch 1: [judgment view, plain view] for a negative, [plain view, padding row] for a positive."""
    import torch

    def collate(features):
        (f,) = features
        completion = f["completion_ids"]
        if f["negative"]:
            views = [f["judgment_prompt_ids"] + completion, f["prompt_ids"] + completion]
            starts = [len(f["judgment_prompt_ids"]) - 1, len(f["prompt_ids"]) - 1]
        else:
            views = [f["prompt_ids"] + completion, [pad_token_id] * (len(f["prompt_ids"]) + len(completion))]
            starts = [len(f["prompt_ids"]) - 1, len(f["prompt_ids"]) - 1]
        length = max(map(len, views))
        input_ids = torch.full((2, length), pad_token_id)
        attention_mask = torch.zeros((2, length), dtype=torch.long)
        for r, view in enumerate(views):
            input_ids[r, : len(view)] = torch.tensor(view)
            attention_mask[r, : len(view)] = 1
        targets = torch.tensor([completion, completion])
        return {"input_ids": input_ids, "attention_mask": attention_mask, "starts": torch.tensor(starts),
                "targets": targets, "target_mask": torch.ones_like(targets, dtype=torch.bool),
                "negative": torch.tensor([bool(f["negative"])])}

    return collate


def sft_rows(examples: list[dict]) -> list[dict]:
    """The rows a CUT step runs: plain view of every example, then the judgment view of the negatives."""
    rows = [(e["prompt_ids"], e["completion_ids"]) for e in examples]
    rows += [(e["judgment_prompt_ids"], e["completion_ids"]) for e in examples if e["negative"]]
    return [{"input_ids": p + c, "completion_mask": [0] * len(p) + [1] * len(c),
             "labels": [-100] * len(p) + c} for p, c in rows]


def build_trainer(spec: dict, output_dir: str, callback):
    import torch
    from datasets import Dataset
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer, DataCollatorForSeq2Seq, Trainer, TrainingArguments

    torch.manual_seed(0)
    directory = common.model_dir(spec["layers"])
    tokenizer = AutoTokenizer.from_pretrained(directory)
    if spec.get("model_config"):
        from transformers import LlamaConfig

        config = LlamaConfig(vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id,
                             eos_token_id=tokenizer.eos_token_id, **MODEL_CONFIGS[spec["model_config"]])
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    else:
        model = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32)
    pairs = spec.get("pairs", 1)  # (negative, positive) pairs per optimizer step
    examples = synthetic_examples(spec["length"], tokenizer, pairs=pairs)
    repeat = spec["steps"]
    method = spec["method"]
    if pairs != 1 and method not in ("cut", "cut_reference_mix", "sft"):
        raise ValueError(f"pairs={pairs}: only 'cut' and 'sft' take more than one pair per step")

    if method in ("cut", "cut_reference_mix"):
        from cutalign import CUTConfig, CUTTrainer
        from cutalign.config import REFERENCE_MIX

        # The default mix trains nothing on the judgment view, which then runs in a forward without gradient; the
        # reference mix trains on it (Align-N), so every view runs in one forward with gradient.
        mix = {**REFERENCE_MIX, "reduction": "normalized"} if method == "cut_reference_mix" else {}
        args = training_args(CUTConfig, spec, output_dir, per_device_train_batch_size=2 * pairs,
                             **{**mix, "positive_ratio": -1})
        text = [{"prompt": "Hi.", "completion": "Hello.", "judgment": None}]
        trainer = CUTTrainer(model, args, train_dataset=text, processing_class=tokenizer,
                             peft_config=LoraConfig(**LORA), callbacks=[callback])
        trainer.train_dataset = Dataset.from_list(examples * repeat)
        return trainer, 3 * pairs
    if method == "sft":
        rows = [{k: r[k] for k in ("input_ids", "labels")} for r in sft_rows(examples)]
        args = training_args(TrainingArguments, spec, output_dir, per_device_train_batch_size=3 * pairs)
        return Trainer(get_peft_model(model, LoraConfig(**LORA)), args, train_dataset=Dataset.from_list(rows * repeat),
                       data_collator=DataCollatorForSeq2Seq(tokenizer, padding=True),
                       callbacks=[callback]), 3 * pairs
    if method == "trl_sft":
        from trl import SFTConfig, SFTTrainer

        rows = [{k: r[k] for k in ("input_ids", "completion_mask")} for r in sft_rows(examples)]
        args = training_args(SFTConfig, spec, output_dir, per_device_train_batch_size=3, max_length=None,
                             completion_only_loss=True)
        return SFTTrainer(get_peft_model(model, LoraConfig(**LORA)), args,
                          train_dataset=Dataset.from_list(rows * repeat), processing_class=tokenizer,
                          callbacks=[callback]), 3
    if method == "trl_dpo":
        from trl import DPOConfig, DPOTrainer

        negative, positive = examples
        pair = {"prompt_ids": negative["prompt_ids"], "chosen_ids": positive["completion_ids"],
                "rejected_ids": negative["completion_ids"]}
        args = training_args(DPOConfig, spec, output_dir, per_device_train_batch_size=1, max_length=None)
        text = Dataset.from_list([{"prompt": "Hi.", "chosen": "Hello.", "rejected": "Go."}])
        trainer = DPOTrainer(get_peft_model(model, LoraConfig(**LORA)), args=args, train_dataset=text,
                             processing_class=tokenizer, callbacks=[callback])
        trainer.train_dataset = Dataset.from_list([pair] * repeat)
        return trainer, 2
    if method == "reference":
        args = training_args(TrainingArguments, spec, output_dir, per_device_train_batch_size=1,
                             gradient_accumulation_steps=2, remove_unused_columns=False)
        trainer = reference_trainer_class()(
            get_peft_model(model, LoraConfig(**LORA)), args, train_dataset=Dataset.from_list(examples * repeat),
            data_collator=reference_collate(tokenizer.pad_token_id), callbacks=[callback])
        return trainer, 4
    raise ValueError(f"unknown method {method!r}; choose from {METHODS}")


def gpu_step_timer_callback():
    """A TrainerCallback that times each optimizer step (synchronizing the GPU at both ends) and records the peak GPU
    memory allocated above the start of training."""
    import time

    import torch
    from transformers import TrainerCallback

    class GpuStepTimer(TrainerCallback):
        def __init__(self):
            self.step_seconds: list[float] = []
            self.baseline = 0
            self._start = 0.0

        def on_train_begin(self, args, state, control, **kwargs):
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.baseline = torch.cuda.memory_allocated()

        def on_step_begin(self, args, state, control, **kwargs):
            torch.cuda.synchronize()
            self._start = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            torch.cuda.synchronize()
            self.step_seconds.append(time.perf_counter() - self._start)

        def peak_gib(self) -> float:
            return (torch.cuda.max_memory_allocated() - self.baseline) / 2**30

    return GpuStepTimer()


def step_tokens(spec: dict, tokenizer) -> int:
    """Tokens of the rows one step trains on (the same rows for CUT, plain SFT and TRL SFT)."""
    examples = synthetic_examples(spec["length"], tokenizer, pairs=spec.get("pairs", 1))
    return sum(len(row["input_ids"]) for row in sft_rows(examples))


def worker(spec: dict) -> dict:
    import torch
    from transformers import AutoTokenizer

    torch.set_num_threads(spec.get("threads", torch.get_num_threads()))
    callback = gpu_step_timer_callback() if spec.get("device") == "cuda" else common.step_timer_callback()
    with tempfile.TemporaryDirectory() as output_dir:
        trainer, rows = build_trainer(spec, output_dir, callback)
        trainer.train()
    tokens = None  # DPO and the reference computation train on other rows
    if spec["method"] in ("cut", "cut_reference_mix", "sft", "trl_sft"):
        tokens = step_tokens(spec, AutoTokenizer.from_pretrained(common.model_dir(spec["layers"])))
    return {"seconds": callback.step_seconds, "peak_gib": callback.peak_gib(), "rows": rows, "tokens": tokens}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lengths", type=int, nargs="+", default=[512, 1024, 2048], help="tokens per longest row")
    parser.add_argument("--checkpointing", choices=["on", "off", "both"], default="both",
                        help="gradient checkpointing; 'both' skips 2,048 without it (the README grid)")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--layers", type=int, default=None, help="cut the model to this many decoder layers")
    parser.add_argument("--steps", type=int, default=3, help="optimizer steps per method (time = the minimum)")
    parser.add_argument("--name", default=None, help="results file name (default: step_cost[-Nlayers])")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="where to train (default cpu)")
    parser.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32",
                        help="fp32, or bf16 autocast (the Trainer's bf16=True); default fp32")
    parser.add_argument("--model-config", choices=sorted(MODEL_CONFIGS), default=None,
                        help="train a model built from this config with random weights instead of the embedded one")
    parser.add_argument("--dry-run", action="store_true", help="print the cells that would run, and exit")
    options = parser.parse_args(argv)
    if options.model_config and options.layers:
        parser.error("--model-config and --layers exclude each other")

    configs = []
    for checkpointing in ([True, False] if options.checkpointing == "both" else [options.checkpointing == "on"]):
        for length in options.lengths:
            if options.checkpointing == "both" and not checkpointing and length > 1024:
                continue
            configs.append((length, checkpointing))
    if options.dry_run:
        for length, checkpointing in configs:
            print(f"L={length} ckpt={checkpointing} methods={' '.join(options.methods)} device={options.device} "
                  f"dtype={options.dtype} model={options.model_config or common.model_label(options.layers)} "
                  f"steps={options.steps}")
        return 0
    common.model_dir(options.layers)  # build the fast-loading copy once, outside the timed runs

    header = ["L", "ckpt", *[f"{m} s" for m in options.methods], *[f"{m} GiB" for m in options.methods],
              *[f"{m} tokens/s" for m in options.methods]]
    ratio_header = ["L", "ckpt"] + [f"cut/{m} time" for m in options.methods if m != "cut"] + \
        [f"cut/{m} mem" for m in options.methods if m != "cut"]
    rows, ratio_rows, loads = [], [], []
    for length, checkpointing in configs:
        results = {}
        for method in options.methods:
            loads.append(os.getloadavg()[0])
            spec = {"method": method, "length": length, "checkpointing": checkpointing, "layers": options.layers,
                    "steps": options.steps, "device": options.device, "dtype": options.dtype,
                    "model_config": options.model_config}
            results[method] = common.run_isolated(__file__, spec)
            print(f"L={length} ckpt={checkpointing} {method}: {results[method]}", file=sys.stderr, flush=True)
        time = {m: min(r["seconds"][1:] or r["seconds"]) for m, r in results.items()}  # first step = warm-up
        memory = {m: r["peak_gib"] for m, r in results.items()}
        throughput = {m: f"{r['tokens'] / time[m]:,.0f}" if r["tokens"] else "-" for m, r in results.items()}
        ckpt = "yes" if checkpointing else "no"
        rows.append([length, ckpt, *[f"{time[m]:.3f}" for m in options.methods],
                     *[f"{memory[m]:.2f}" for m in options.methods], *[throughput[m] for m in options.methods]])
        if "cut" in results:
            ratio_rows.append([length, ckpt] + [f"{time['cut'] / time[m]:.2f}" for m in options.methods if m != "cut"]
                              + [f"{memory['cut'] / memory[m]:.2f}" for m in options.methods if m != "cut"])

    model = (f"{options.model_config} (built from a config, random weights)" if options.model_config
             else common.model_label(options.layers))
    memory_kind = "peak GPU memory allocated" if options.device == "cuda" else "peak RSS"
    precision = "bf16 autocast" if options.dtype == "bf16" else "fp32"
    body = (f"{model}, LoRA r=16 on gate/up/down, {precision} on {options.device}, one negative + one positive "
            f"example per step (rows: CUT/SFT 3, DPO 2 + reference forward, reference 2 x 2). Time: min over the "
            f"optimizer steps after one warm-up step ({options.steps - 1} timed). Memory: {memory_kind} above the "
            f"start of training, fresh process per cell. Tokens/s: the tokens of the rows a step trains on over its "
            f"time (CUT, plain SFT and TRL SFT train on the same rows; '-' for the others). 1-minute load average when the cells started: {min(loads):.1f} to {max(loads):.1f}"
            f"{' (2 cores shared with other jobs: read the ratios, not the absolute figures)' if options.device == 'cpu' else ''}."
            "\n\n" + common.markdown_table(header, rows) + "\n\nRatios (CUT / other; < 1 means CUT is cheaper):\n\n"
            + common.markdown_table(ratio_header, ratio_rows))
    name = options.name or ("step_cost" + (f"-{options.layers}layers" if options.layers else ""))
    common.write_result(name, "Step cost", "python benchmarks/step_cost.py " + " ".join(argv), body)
    return 0


if __name__ == "__main__":
    sys.exit(common.entry_point(worker, main))

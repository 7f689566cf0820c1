"""One training epoch over real judgment data: CUTTrainer against a reference-style loop on the same examples.

Data (``--data``): a judgment file in the reference implementation's format, such as its released online-round data
``iter1.json`` (wwxu21/CUT on GitHub: 1,000 rows, 287 with a judgment); the first ``--rows`` of it, positives
down-sampled to 0.25 x negatives under seed 0 as the reference does, Alpaca templates, max_length 1,024. All runs
train the same examples with LoRA (r=16 on gate/up/down, AdamW) and the same global batch (``--batch`` examples per
optimizer step), each in a fresh process:

* ``cut``: :class:`cutalign.CUTTrainer` with padded batches (``padding_free=False``), random order, one forward per
  micro-batch of ``--micro-batch`` examples (default: the whole batch; the rest by gradient accumulation);
* ``cut+grouped``: the same, with transformers' length-grouped sampler (``train_sampling_strategy="group_by_length"``,
  on the ``length`` column CUTTrainer adds) so that batches hold examples of similar length (less padding);
* ``cut+packed``: the same random batches as ``cut``, padding-free (``padding_free=True``): the views of a batch
  packed into rows no wider than its longest view;
* ``cut+grouped+packed``: both;
* ``reference``: micro-batch 1 with ``--batch`` accumulation steps, two padded rows per example (judgment view and
  plain view; plain view and a row of padding for positives), full fp32 log-softmax over the vocabulary.

The table gives the epoch's training time (``train_runtime``), tokens run through the model (padding included) and
the share of padding.

    python benchmarks/epoch.py --data FILE [--rows 1000] [--batch 8] [--micro-batch 1] [--layers N] [--checkpointing]
    python benchmarks/epoch.py --data iter1.json --rows 1000 --checkpointing --micro-batch 1 --methods cut reference
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import common

METHODS = ("cut", "cut+grouped", "cut+packed", "cut+grouped+packed", "reference")


def worker(spec: dict) -> dict:
    import torch
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainingArguments

    import step_cost
    from cutalign.data import load_judgments
    from cutalign import CUTConfig, CUTTrainer

    torch.manual_seed(0)
    directory = common.model_dir(spec["layers"])
    tokenizer = AutoTokenizer.from_pretrained(directory)
    model = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32)
    rows = load_judgments(spec["data"]).select(range(spec["rows"]))
    callback = common.step_timer_callback()
    common_args = dict(num_train_epochs=1, learning_rate=1e-4, report_to=[], save_strategy="no", use_cpu=True,
                       logging_steps=10_000, disable_tqdm=True, seed=0, dataloader_num_workers=0,
                       activation_checkpointing=spec["checkpointing"],
                       activation_checkpointing_kwargs={"use_reentrant": False})
    with tempfile.TemporaryDirectory() as output_dir:
        grouped, packed = "grouped" in spec["method"], "packed" in spec["method"]
        micro = spec.get("micro_batch") or spec["batch"]
        args = CUTConfig(output_dir=output_dir, per_device_train_batch_size=micro,
                         gradient_accumulation_steps=spec["batch"] // micro, positive_ratio=0.25,
                         template="alpaca", max_length=1024, padding_free=packed,
                         train_sampling_strategy="group_by_length" if grouped else "random", **common_args)
        trainer = CUTTrainer(model, args, train_dataset=rows, processing_class=tokenizer,
                             peft_config=LoraConfig(**step_cost.LORA), callbacks=[callback])
        examples = trainer.train_dataset
        if spec["method"] == "reference":
            args = TrainingArguments(output_dir=output_dir, per_device_train_batch_size=1,
                                     gradient_accumulation_steps=spec["batch"], remove_unused_columns=False,
                                     **common_args)
            peft_model = trainer.model
            del peft_model.get_base_model().forward  # drop the label-only patch: the class forward, full logits
            trainer = step_cost.reference_trainer_class()(
                peft_model, args, train_dataset=examples, callbacks=[callback],
                data_collator=step_cost.reference_collate(tokenizer.pad_token_id))
        tokens = sum(batch["input_ids"].numel() for batch in trainer.get_train_dataloader())
        metrics = trainer.train().metrics
    real = sum(examples["length"])  # the plain view of every example and the judgment view of the negatives
    return {"seconds": metrics["train_runtime"], "steps": len(callback.step_seconds), "peak_gib": callback.peak_gib(),
            "examples": len(examples), "negatives": int(sum(examples["negative"])), "tokens": tokens,
            "real_tokens": real}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="judgment file in the reference implementation's format")
    parser.add_argument("--rows", type=int, default=1000, help="use the first N rows of the file")
    parser.add_argument("--batch", type=int, default=8, help="examples per optimizer step (global batch)")
    parser.add_argument("--micro-batch", type=int, default=None,
                        help="CUT examples per forward (default: the whole batch); the rest by accumulation")
    parser.add_argument("--layers", type=int, default=None, help="cut the model to this many decoder layers")
    parser.add_argument("--checkpointing", action="store_true", help="gradient checkpointing")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    options = parser.parse_args(argv)
    if not Path(options.data).is_file():
        print(f"error: {options.data} not found", file=sys.stderr)
        return 2
    common.model_dir(options.layers)

    results = {}
    for method in options.methods:
        spec = {"method": method, "data": options.data, "rows": options.rows, "batch": options.batch,
                "layers": options.layers, "checkpointing": options.checkpointing, "micro_batch": options.micro_batch}
        results[method] = common.run_isolated(__file__, spec, timeout=7200)
        print(f"{method}: {results[method]}", file=sys.stderr, flush=True)

    reference = results.get("reference")
    table = []
    for method, r in results.items():
        speedup = f"{reference['seconds'] / r['seconds']:.2f}" if reference else "-"
        table.append([method, f"{r['seconds']:.0f}", r["steps"], f"{r['tokens']:,}",
                      f"{1 - r['real_tokens'] / r['tokens']:.1%}", f"{r['peak_gib']:.2f}", speedup])
    first = next(iter(results.values()))
    model = common.model_label(options.layers)
    body = (f"{model}, LoRA r=16 on gate/up/down, fp32, gradient checkpointing "
            f"{'on' if options.checkpointing else 'off'}. Data: first {options.rows} rows of "
            f"`{Path(options.data).name}` -> {first['examples']} examples after down-sampling "
            f"({first['negatives']} negative), global batch "
            f"{options.batch} (CUT: micro-batch {options.micro_batch or options.batch}), one epoch, each run in a "
            "fresh process. Tokens: rows x padded width summed over the "
            "epoch (what the model computes on). Memory: peak RSS above the start of training.\n\n"
            + common.markdown_table(["method", "epoch s", "optimizer steps", "tokens run", "padding", "peak GiB",
                                     "speed-up vs reference"], table))
    name = "epoch" + (f"-mb{options.micro_batch}" if options.micro_batch else "") + \
        (f"-{options.layers}layers" if options.layers else "")
    common.write_result(name, "One epoch",
                        "python benchmarks/epoch.py " + " ".join(argv), body)
    return 0


if __name__ == "__main__":
    sys.exit(common.entry_point(worker, main))

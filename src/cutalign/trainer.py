"""CUTTrainer: CUT as a ``transformers.Trainer`` (its settings are :class:`cutalign.config.CUTConfig`).

One forward per step runs the plain view of every example and the judgment view of the negative examples
(:mod:`cutalign.data.collator`); the patched model forward (:mod:`cutalign.logprobs`) returns only the
log-probabilities of the response tokens, never the full-vocabulary logits; :func:`cutalign.loss.cut_loss` turns
them into the loss. Everything else (optimizer, schedule, checkpointing, resuming, accelerate/DeepSpeed/FSDP,
logging) is the Trainer's.
"""

from __future__ import annotations

import logging
from collections import defaultdict

import torch
from peft import PeftConfig, PeftModel, get_peft_model, prepare_model_for_kbit_training
from transformers import PreTrainedModel, Trainer
from transformers.integrations import is_deepspeed_zero3_enabled

from .config import CUTConfig
from .data import count_examples, downsample_positives, load_judgments
from .data.collator import CUTCollator
from .data.tokenize import tokenize_dataset
from .logprobs import add_token_logprobs_forward, check_packed_views_stay_apart, check_token_logprobs
from .loss import cut_loss
from .models import load_model, load_tokenizer

logger = logging.getLogger("cutalign")


def _partitioned_at_load(model: PreTrainedModel) -> bool:
    """Whether DeepSpeed ZeRO-3 partitioned the model's weights when it was built (``zero3_init_flag``)."""
    if not is_deepspeed_zero3_enabled():
        return False
    from deepspeed.runtime.zero.partition_parameters import is_zero_param

    return any(is_zero_param(parameter) for parameter in model.parameters())


class CUTTrainer(Trainer):
    """Train a causal LM with CUT on judgment data.

    Args:
        model: a hub name or directory, ``"default"`` (the embedded SmolLM2-135M-Instruct), a ``PreTrainedModel``
            or a ``PeftModel``.
        args: a :class:`CUTConfig`.
        train_dataset: judgment data in the canonical schema (``prompt``, ``completion``, ``judgment``, optional
            ``score`` and ``id``): a ``datasets.Dataset``, a list of dicts or a file path (see
            :func:`cutalign.data.load_judgments`). Positives are down-sampled and every example tokenized here.
        eval_dataset: same form; evaluated with the same loss (no down-sampling).
        processing_class: the tokenizer; loaded from the model's name when omitted.
        peft_config: a PEFT config (LoRA) to wrap the model with.
    """

    _tag_names = ["cutalign", "cut"]

    def __init__(
        self,
        model: str | PreTrainedModel | PeftModel,
        args: CUTConfig | None = None,
        train_dataset=None,
        eval_dataset=None,
        processing_class=None,
        peft_config: PeftConfig | None = None,
        callbacks=None,
        optimizers=(None, None),
    ):
        args = args or CUTConfig(output_dir="cut-output")
        if isinstance(model, str):
            if processing_class is None:
                processing_class = load_tokenizer(model)
            model = load_model(model, **(args.model_init_kwargs or {}))
        elif args.model_init_kwargs:
            raise ValueError("model_init_kwargs only applies when the model is given by name")
        if processing_class is None:
            processing_class = load_tokenizer(model.config._name_or_path)
        if processing_class.pad_token is None:
            processing_class.pad_token = processing_class.eos_token
        if processing_class.eos_token_id is None:
            raise ValueError("the tokenizer needs an EOS token: completions end with it")

        base_model = model.get_base_model() if isinstance(model, PeftModel) else model
        add_token_logprobs_forward(base_model, chunk_size=args.logprob_chunk_size)
        if is_deepspeed_zero3_enabled():
            # The label-only head reads the LM head's weight in the model's own forward, outside the head module
            # that owns it: ZeRO-3 must gather it for that forward (and its backward) too.
            import deepspeed

            deepspeed.zero.register_external_parameter(base_model, base_model.get_output_embeddings().weight)
        if _partitioned_at_load(base_model):
            logger.warning(
                "Start-up checks skipped: DeepSpeed ZeRO-3 partitioned the weights as the model loaded "
                "(zero3_init_flag), so no process can run the model before training starts. They check that the "
                "label-only log-probabilities equal the model's own%s; run the same model once without "
                "zero3_init_flag to have them checked.", " and that packed views stay apart" * args.padding_free,
            )
        else:
            check_token_logprobs(base_model)
            if args.padding_free:
                check_packed_views_stay_apart(base_model)
        if peft_config is not None:
            if isinstance(model, PeftModel):
                raise ValueError("the model is already a PeftModel; pass peft_config=None")
            # QLoRA: norms in fp32, inputs that carry gradients. `from_pretrained` sets `hf_quantizer` (None unless
            # quantized); a model built from a config has no such attribute.
            if getattr(model, "hf_quantizer", None) is not None:
                model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=args.gradient_checkpointing)
            model = get_peft_model(model, peft_config)

        self.data_reports = {}
        train_dataset = self._prepare(train_dataset, processing_class, args, "train") if train_dataset else None
        eval_dataset = self._prepare(eval_dataset, processing_class, args, "eval") if eval_dataset else None
        self._metrics = {"train": defaultdict(list), "eval": defaultdict(list)}

        super().__init__(
            model=model,
            args=args,
            data_collator=CUTCollator(
                pad_token_id=processing_class.pad_token_id,
                padding_free=args.padding_free,
                # FlashAttention reads packed sequences from position_ids only in a single row (varlen kernels).
                single_row="flash" in (base_model.config._attn_implementation or ""),
            ),
            train_dataset=train_dataset,
            eval_dataset=eval_dataset,
            processing_class=processing_class,
            callbacks=callbacks,
            optimizers=optimizers,
        )
        # The normalized reduction divides by the completion tokens of the whole optimizer batch: let the Trainer
        # count them (from `shift_labels`) and skip its division by the accumulation steps.
        self.model_accepts_loss_kwargs = args.reduction == "normalized"
        self.loss_is_scaled_for_ga = args.reduction == "normalized"

    def _prepare(self, dataset, tokenizer, args: CUTConfig, split: str):
        """Load, down-sample (train only) and tokenize one split; keep a report of what happened to its rows."""
        dataset = load_judgments(dataset, positive_score=args.positive_score)
        loaded = count_examples(dataset)
        if split == "train":
            dataset = downsample_positives(dataset, args.positive_ratio, seed=args.seed)
        tokenized, tokenization = tokenize_dataset(
            dataset,
            tokenizer,
            template=args.template,
            max_length=args.max_length,
            chat_judgment_template=args.chat_judgment_template,
        )
        if args.length_column_name != "length":  # where train_sampling_strategy="group_by_length" looks
            tokenized = tokenized.rename_column("length", args.length_column_name)
        self.data_reports[split] = {"loaded": loaded, "after_downsampling": count_examples(dataset),
                                    "tokenization": tokenization}
        logger.info("%s data: loaded %s, trained on %s; %s", split, loaded, count_examples(dataset),
                    tokenization.summary())
        return tokenized

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        args: CUTConfig = self.args
        token_logps = model(
            input_ids=inputs["input_ids"],
            attention_mask=inputs.get("attention_mask"),  # padded batches
            position_ids=inputs.get("position_ids"),  # padding-free batches
            score_positions=inputs["score_positions"],
            score_targets=inputs["score_targets"],
        ).token_logps
        mask, negative = inputs["completion_mask"], inputs["negative"]
        mle_logps = token_logps[inputs["mle_index"]]
        plain_logps = token_logps[inputs["plain_index"]]
        output = cut_loss(
            mle_logps,
            plain_logps,
            mask,
            negative,
            num_items_in_batch=num_items_in_batch,
            **args.loss_kwargs(),
        )
        loss = output.loss
        if args.reduction == "normalized" and num_items_in_batch is not None and args.average_tokens_across_devices:
            # num_items_in_batch counts every process's tokens, and DDP averages gradients over processes.
            loss = loss * self.accelerator.num_processes
        self._record_metrics(output, mle_logps, plain_logps, mask, negative)
        return (loss, output) if return_outputs else loss

    @torch.no_grad()
    def _record_metrics(self, output, mle_logps, plain_logps, mask, negative):
        metrics = self._metrics["train" if self.model.training else "eval"]
        negative_tokens = mask & negative[:, None]
        metrics["mle_loss"].append(output.mle_loss.item())
        metrics["unlikelihood_loss"].append(output.unlikelihood_loss.item())
        metrics["flagged_fraction"].append(output.flagged_fraction.item())
        metrics["logps/plain"].append((plain_logps * mask).sum().item() / max(mask.sum().item(), 1))
        if negative_tokens.any():
            count = negative_tokens.sum().item()
            metrics["logps/judgment"].append((mle_logps * negative_tokens).sum().item() / count)
            metrics["logps/plain_negative"].append((plain_logps * negative_tokens).sum().item() / count)
        metrics["tokens"].append(output.num_tokens.item())
        metrics["tokens_negative"].append(output.num_negative_tokens.item())

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad(), self.compute_loss_context_manager():
            loss = self.compute_loss(model, inputs)
        return loss.detach(), None, None

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """Add the averaged CUT metrics since the last log (token counts are summed)."""
        split = "train" if "loss" in logs else "eval"
        prefix = "" if split == "train" else "eval_"
        for key, values in self._metrics[split].items():
            if values:
                logs[prefix + key] = sum(values) if key.startswith("tokens") else sum(values) / len(values)
        self._metrics[split].clear()
        super().log(logs, start_time)

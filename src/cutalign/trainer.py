"""CUTTrainer: CUT as a ``transformers.Trainer`` (its settings are :class:`cutalign.config.CUTConfig`).

A step runs the plain view of every example and the judgment view of the negative examples
(:mod:`cutalign.data.collator`): in one forward, or, when the judgment views carry no gradient (``align_n_weight=0``,
the default), in a second forward without gradient, which saves their backward pass and activations. The patched
model forward (:mod:`cutalign.logprobs`) returns only the log-probabilities of the response tokens, never the
full-vocabulary logits; :func:`cutalign.loss.cut_loss` turns them into the loss. With ``pairwise_weight > 0`` a
negative example with a good sibling response (:mod:`cutalign.data.pairs`) also adds a DPO term
(:func:`cutalign.loss.pairwise_loss`), scored against the model before training in a third forward without gradient.
Everything else (optimizer, schedule, checkpointing, resuming, accelerate/DeepSpeed/FSDP, logging) is the Trainer's.
"""

from __future__ import annotations

import copy
import logging
import os
import types

import torch
from peft import PeftConfig, PeftModel, get_peft_model, prepare_model_for_kbit_training
from transformers import PreTrainedModel, Trainer
from transformers.integrations import is_deepspeed_zero3_enabled

from .config import CUTConfig
from .data import count_examples, downsample_positives, load_judgments
from .data.collator import CUTCollator
from .data.pairs import preferred_responses
from .data.templates import resolve_template
from .data.tokenize import tokenize_dataset
from .logprobs import (
    add_token_logprobs_forward,
    batch_token_logps,
    check_packed_views_stay_apart,
    check_token_logprobs,
)
from .loss import CUTLossOutput, cut_loss, pairwise_loss
from .model_card import model_card
from .models import load_model, load_tokenizer

logger = logging.getLogger("cutalign")

LOSS_PARTS = (*CUTLossOutput.PARTS, "pairwise")
"""The logged loss parts, which add up to the logged loss (``pairwise`` only with ``pairwise_weight > 0``)."""


def _save_adapter_without_embeddings(self: PeftModel, *args, **kwargs):
    """``PeftModel.save_pretrained`` with ``save_embedding_layers=False`` unless the caller says otherwise."""
    kwargs.setdefault("save_embedding_layers", False)
    return type(self).save_pretrained(self, *args, **kwargs)


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
        if not isinstance(model, str) and args.model_init_kwargs:
            raise ValueError("model_init_kwargs only applies when the model is given by name")
        if processing_class is None:
            processing_class = load_tokenizer(model if isinstance(model, str) else model.config._name_or_path)
        if processing_class.pad_token is None:
            processing_class.pad_token = processing_class.eos_token
        if processing_class.eos_token_id is None:
            raise ValueError("the tokenizer needs an EOS token: completions end with it")

        # The data first: every check that needs no model (formats, templates, lengths, what is left to train on)
        # fails here, before a model of any size is loaded.
        self.template = resolve_template(args.template, processing_class)  # "auto" -> "chat" or "alpaca"
        self.data_reports = {}
        train_dataset = self._prepare(train_dataset, processing_class, args, "train") if train_dataset else None
        eval_dataset = self._prepare(eval_dataset, processing_class, args, "eval") if eval_dataset else None

        if isinstance(model, str):
            model = load_model(model, **(args.model_init_kwargs or {}))
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
                model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=args.activation_checkpointing)
            model = get_peft_model(model, peft_config)
        if isinstance(model, PeftModel):
            # cutalign never resizes the vocabulary, so the embedding layers never need saving with the adapter;
            # saying so spares PEFT's "auto" check, which asks the hub for the base model's config on every save.
            # Bound with MethodType (not a closure), so a deepcopy of the model rebinds it to the copy.
            model.save_pretrained = types.MethodType(_save_adapter_without_embeddings, model)
        # The pairwise term's reference is the model before training: a LoRA model with its adapter disabled, else a
        # frozen copy of the full model (placed on the device after the Trainer is set up, below).
        self.reference_model = None
        if args.pairwise_weight > 0 and not isinstance(model, PeftModel):
            if is_deepspeed_zero3_enabled() or args.fsdp:
                raise ValueError("pairwise_weight > 0 needs a reference model; with full weights under DeepSpeed "
                                 "ZeRO-3 or FSDP a frozen copy is not supported: train a LoRA adapter (the reference "
                                 "is then the model with its adapter disabled)")
            self.reference_model = copy.deepcopy(model).eval().requires_grad_(False)

        # Running sums (numerator, denominator) of the logged metrics, per split; see _record_metrics and log.
        self._metrics: dict[str, dict[str, torch.Tensor]] = {"train": {}, "eval": {}}
        self._steps_at_last_log = None  # the optimizer step of the last train log (or of the start / resume)

        super().__init__(
            model=model,
            args=args,
            data_collator=CUTCollator(
                pad_token_id=processing_class.pad_token_id,
                padding_free=args.padding_free,
                # FlashAttention reads packed sequences from position_ids only in a single row (varlen kernels).
                single_row="flash" in (base_model.config._attn_implementation or ""),
                contrast=args.contrast_judgment is not None,
                # With align_n_weight = 0 (the default) the judgment views only select tokens.
                detach_judgment=args.align_n_weight == 0,
                pairwise=args.pairwise_weight > 0,
            ),
            train_dataset=train_dataset,
            eval_dataset=eval_dataset,
            processing_class=processing_class,
            callbacks=callbacks,
            optimizers=optimizers,
        )
        launched = int(os.environ.get("WORLD_SIZE", "1"))
        if launched != self.accelerator.num_processes:
            raise RuntimeError(
                f"launched as {launched} processes (WORLD_SIZE) but training runs in {self.accelerator.num_processes}: "
                "the processes did not join one process group, so each would train alone on all the data. Launch "
                "with `accelerate launch --config_file ...` using a shipped config (see docs/scale-out.md); on a "
                "machine without a GPU the processes join a CPU (gloo) group.")
        # The normalized reduction divides by the completion tokens of the whole optimizer batch: let the Trainer
        # count them (from `shift_labels`) and skip its division by the accumulation steps.
        self.model_accepts_loss_kwargs = args.reduction == "normalized"
        self.loss_is_scaled_for_ga = args.reduction == "normalized"
        # The training loop sets this per accumulation cycle (fewer at an epoch's end); a compute_loss outside it
        # (a test, a user's own loop) sees the configured value.
        self.current_gradient_accumulation_steps = args.gradient_accumulation_steps
        if self.reference_model is not None:
            self.reference_model = self.accelerator.prepare_model(self.reference_model, evaluation_mode=True)

    def _save(self, output_dir: str | None = None, state_dict=None) -> None:
        """Save as the Trainer does, then replace PEFT's blank model card with one that describes this run."""
        super()._save(output_dir, state_dict)
        if self.args.should_save:
            model = self.accelerator.unwrap_model(self.model)
            adapter = isinstance(model, PeftModel)
            base = (model.get_base_model() if adapter else model).config._name_or_path
            card = model_card(base_model=base, adapter=adapter, args=self.args, data_reports=self.data_reports,
                              log_history=self.state.log_history, tags=[*self._tag_names, "trl"])
            with open(os.path.join(output_dir or self.args.output_dir, "README.md"), "w", encoding="utf-8") as file:
                file.write(card)

    def _prepare(self, dataset, tokenizer, args: CUTConfig, split: str):
        """Load, down-sample (train only) and tokenize one split; keep a report of what happened to its rows."""
        dataset = load_judgments(dataset, positive_score=args.positive_score)
        loaded = count_examples(dataset)
        if args.pairwise_weight > 0:
            # Pairs are found before down-sampling, so a negative keeps its good sibling even if that row is dropped.
            dataset = dataset.add_column("preferred", preferred_responses(dataset))
        if split == "train":
            dataset = downsample_positives(dataset, args.positive_ratio, seed=args.seed)
        tokenized, tokenization = tokenize_dataset(
            dataset,
            tokenizer,
            template=self.template,
            max_length=args.max_length,
            chat_judgment_template=args.chat_judgment_template,
            contrast_judgment=args.contrast_judgment,
        )
        if args.length_column_name != "length":  # where train_sampling_strategy="group_by_length" looks
            tokenized = tokenized.rename_column("length", args.length_column_name)
        kept = count_examples(dataset)
        self.data_reports[split] = {"loaded": loaded, "after_downsampling": kept, "tokenization": tokenization}
        logger.info("%s data: loaded %s, trained on %s; %s", split, loaded, kept, tokenization.summary())
        if kept["positives"] < loaded["positives"]:  # a warning: shown on the console even when logging is not set up
            logger.warning("%s data: kept %d of %d positives (positive_ratio=%s x %d negatives); set "
                           "positive_ratio=-1 to keep them all", split, kept["positives"], loaded["positives"],
                           args.positive_ratio, kept["negatives"])
        if tokenization.removed_too_long or tokenization.pairs_too_long:
            logger.warning("%s data: %s", split, tokenization.summary())
        if split == "train" and tokenization.pairs == 0:
            raise ValueError("pairwise_weight > 0 but the training data has no pair for it: no prompt has both a "
                             "response judged good and one judged bad, and no negative example has a refinement")
        return tokenized

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        args: CUTConfig = self.args
        reference_logps = None
        if args.pairwise_weight > 0:  # without gradient, before the forward with gradient (as the detached views)
            reference_logps = self._reference_token_logps(model, inputs)
        detached_logps = None
        if "detached_input_ids" in inputs:  # views that only select tokens: no gradient, no stored activations
            with torch.no_grad():  # first, so that the last forward before backward is the one with gradient
                detached_logps = batch_token_logps(model, inputs, prefix="detached_")
        token_logps = batch_token_logps(model, inputs)
        if detached_logps is not None:
            token_logps = torch.cat([token_logps, detached_logps])  # the indices count these K' scores after the K
        mask, negative = inputs["completion_mask"], inputs["negative"]
        mle_logps = token_logps[inputs["mle_index"]]
        plain_logps = token_logps[inputs["plain_index"]]
        # The neutral-judgment views only select tokens: they come from the forward without gradient.
        contrast_logps = token_logps[inputs["contrast_index"]] if args.contrast_judgment is not None else None
        output = cut_loss(
            mle_logps,
            plain_logps,
            mask,
            negative,
            num_items_in_batch=num_items_in_batch,
            contrast_logps=contrast_logps,
            **args.loss_kwargs(),
        )
        loss = output.loss
        scale = 1
        if args.reduction == "normalized" and num_items_in_batch is not None and args.average_tokens_across_devices:
            # num_items_in_batch counts every process's tokens, and DDP averages gradients over processes.
            scale = self.accelerator.num_processes
        pairs = None
        if reference_logps is not None:
            pairs = self._pairwise(token_logps, plain_logps, reference_logps, inputs)
        ratio_denominator = plain_logps if contrast_logps is None else contrast_logps
        self._record_metrics(output, mle_logps, plain_logps, ratio_denominator, mask, negative, scale, pairs)
        loss = loss * scale
        if pairs is not None:
            # A mean over the examples of the batch, so the Trainer's division by the accumulation steps applies; the
            # normalized reduction skips that division (see __init__), so it is done here.
            divisor = self.current_gradient_accumulation_steps if self.model.training and self.loss_is_scaled_for_ga \
                else 1
            loss = loss + pairs["part"] / divisor
        return (loss, output) if return_outputs else loss

    @torch.no_grad()
    def _reference_token_logps(self, model, inputs) -> torch.Tensor:
        """The reference model's scores of the batch's ``reference_`` views: both responses of every pair."""
        if self.reference_model is not None:
            return batch_token_logps(self.reference_model, inputs, prefix="reference_")
        unwrapped = self.accelerator.unwrap_model(model)
        with unwrapped.disable_adapter():
            return batch_token_logps(unwrapped, inputs, prefix="reference_")

    def _pairwise(self, token_logps, plain_logps, reference_logps, inputs) -> dict:
        """The pairwise (DPO) term of a micro-batch: ``pairwise_weight x`` the sum of its pairs' losses over the
        micro-batch's examples (an unpaired example adds 0); also the pairs' margins, for logging."""
        args: CUTConfig = self.args
        mask, preferred_mask, paired = inputs["completion_mask"], inputs["preferred_mask"], inputs["paired"]

        def response_logps(token_scores, keep):  # (B, T) scores -> (P,) summed over each pair's response tokens
            return torch.where(keep, token_scores, 0.0).sum(dim=1)[paired]

        losses, margins = pairwise_loss(
            response_logps(token_logps[inputs["preferred_index"]], preferred_mask),
            response_logps(plain_logps, mask),
            response_logps(reference_logps[inputs["reference_preferred_index"]], preferred_mask),
            response_logps(reference_logps[inputs["reference_rejected_index"]], mask),
            args.pairwise_beta,
        )
        return {"part": args.pairwise_weight * losses.sum() / paired.shape[0], "margins": margins}

    @torch.no_grad()
    def _record_metrics(self, output, mle_logps, plain_logps, reference_logps, mask, negative, scale,
                        pairs=None) -> None:
        """Accumulate the logged metrics of one micro-batch as running sums (no device sync; gathered at log time).

        Training: each loss part is scaled exactly as the Trainer scales the loss it logs (the process factor here,
        the division by the accumulation steps that it applies when the loss is not normalized over the whole
        optimizer batch), so the logged parts add up to the logged ``loss``. Evaluation: parts are weighted by the
        batch's rows, as the Trainer weights ``eval_loss``. Ratios (flagged fraction, mean log-probabilities, mean
        r_t) are sums of numerators and denominators over micro-batches and processes. ``reference_logps`` is the
        denominator of r_t: the plain view, or the neutral-judgment view with ``contrast_judgment``. ``pairs`` (from
        :meth:`_pairwise`) adds the ``pairwise`` part, the pairs' mean margin and accuracy (margin > 0), and their
        count.
        """
        training = self.model.training
        sums = self._metrics["train" if training else "eval"]

        def add(name, numerator, denominator):
            pair = torch.stack([torch.as_tensor(numerator, dtype=torch.float64, device=mask.device),
                                torch.as_tensor(denominator, dtype=torch.float64, device=mask.device)])
            sums[name] = sums[name] + pair if name in sums else pair

        rows = negative.shape[0]
        if training:
            if self._steps_at_last_log is None:
                self._steps_at_last_log = self.state.global_step
            part_weight = scale / (1 if self.loss_is_scaled_for_ga else self.current_gradient_accumulation_steps)
        for part in output.PARTS:
            value = getattr(output, part).detach()
            if training:
                add(part, value * part_weight, 0)
            else:
                add(part, value * rows, rows)
        if pairs is not None:
            # Added to the loss after the process scale: in training it ends up divided by the accumulation steps.
            value = pairs["part"].detach()
            if training:
                add("pairwise", value / self.current_gradient_accumulation_steps, 0)
            else:
                add("pairwise", value * rows, rows)
            margins = pairs["margins"]
            add("pairwise/margin", margins.sum(), margins.numel())
            add("pairwise/accuracy", (margins > 0).sum(), margins.numel())
            add("pairs", margins.numel(), 0)
        negative_tokens = mask & negative[:, None]
        flagged = output.flagged
        ratio = torch.exp((mle_logps - reference_logps).double())
        for name, numerator, denominator in (
            ("flagged_fraction", flagged.sum(), negative_tokens.sum()),
            ("ratio/flagged", (ratio * flagged).sum(), flagged.sum()),
            ("ratio/unflagged", (ratio * (negative_tokens & ~flagged)).sum(), (negative_tokens & ~flagged).sum()),
            ("logps/plain", (plain_logps * mask).sum(), mask.sum()),
            ("logps/judgment", (mle_logps * negative_tokens).sum(), negative_tokens.sum()),
            ("logps/plain_negative", (plain_logps * negative_tokens).sum(), negative_tokens.sum()),
            ("tokens", output.num_tokens, 0),
            ("tokens_negative", output.num_negative_tokens, 0),
        ):
            add(name, numerator, denominator)

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad(), self.compute_loss_context_manager():
            loss = self.compute_loss(model, inputs)
        return loss.detach(), None, None

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """Add the CUT metrics since the last log, over every process: the loss parts (training: they add up to
        ``loss``), the flagged fraction, the mean ratio r_t on flagged and unflagged tokens, mean log-probabilities,
        and token counts (summed)."""
        split = "train" if "loss" in logs else "eval"
        sums = self._metrics[split]
        if sums:
            names = sorted(sums)
            # Every process logs at the same step (the Trainer's own loss is gathered here too), so gather is safe.
            gathered = self.accelerator.gather(torch.stack([sums[name] for name in names])[None])
            totals = gathered.sum(0)
            steps = max(self.state.global_step - (self._steps_at_last_log or 0), 1)
            prefix = "" if split == "train" else "eval_"
            for name, (numerator, denominator) in zip(names, totals.tolist()):
                if name in LOSS_PARTS:
                    value = numerator / gathered.shape[0] / steps if split == "train" else numerator / denominator
                elif name.startswith("tokens") or name == "pairs":
                    value = numerator
                elif denominator > 0:
                    value = numerator / denominator
                else:
                    continue  # e.g. no flagged token since the last log: no mean ratio to show
                logs[prefix + name] = value
            sums.clear()
        if split == "train":
            self._steps_at_last_log = self.state.global_step
        super().log(logs, start_time)

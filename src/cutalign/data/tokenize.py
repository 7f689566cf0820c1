"""Token ids of the views of each example, with the reference truncation rule.

Every example gets ``prompt_ids`` (plain view), ``completion_ids`` (the response followed by EOS) and, for negative
examples only, ``judgment_prompt_ids`` and, when a neutral judgment j0 is given (``contrast_judgment``),
``contrast_prompt_ids`` (the judgment view with j0 in place of the example's judgment). The completion is tokenized
once and shared by every view, so the views score exactly the same response tokens, position by position. Examples
of a dataset with a ``preferred`` column (:mod:`cutalign.data.pairs`, for the pairwise term) also get
``preferred_ids``: the preferred response and EOS, scored after the same plain prompt (empty when there is none).

Rows longer than ``max_length`` lose prompt tokens from the left, so the response stays whole (the reference
behaviour). A response that alone leaves no room for a single prompt token cannot be trained on: it is removed and
counted, never cut.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from .templates import DEFAULT_CHAT_JUDGMENT_TEMPLATE, judgment_prompt, plain_prompt

logger = logging.getLogger("cutalign.data")


@dataclass
class TokenizationReport:
    """What tokenization did to a dataset: rows kept, prompts cut from the left, rows removed as too long."""

    kept: int = 0
    truncated_prompts: int = 0
    removed_too_long: list[str] = field(default_factory=list)  # ids of removed rows
    pairs: int | None = None  # negatives with a preferred response (None: the data has no ``preferred`` column)
    pairs_too_long: list[str] = field(default_factory=list)  # ids of negatives whose preferred response did not fit

    def summary(self) -> str:
        text = f"{self.kept} examples tokenized, {self.truncated_prompts} prompt(s) cut from the left"
        if self.removed_too_long:
            text += f", {len(self.removed_too_long)} removed: response alone exceeds max_length (ids: " \
                    f"{_shown(self.removed_too_long)})"
        if self.pairs is not None:
            text += f", {self.pairs} pair(s) for the pairwise term"
        if self.pairs_too_long:
            text += f", {len(self.pairs_too_long)} pair(s) left out: prompt + preferred response exceed max_length " \
                    f"(ids: {_shown(self.pairs_too_long)})"
        return text


def _shown(ids: list[str]) -> str:
    return ", ".join(ids[:5]) + (" ..." if len(ids) > 5 else "")


def _response_ids(text: str, tokenizer) -> list[int]:
    """A response's token ids, ending with EOS (added unless the text already ends with it)."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return ids if ids and ids[-1] == tokenizer.eos_token_id else ids + [tokenizer.eos_token_id]


def tokenize_example(
    example: dict,
    tokenizer,
    *,
    template: str,
    max_length: int,
    chat_judgment_template: str = DEFAULT_CHAT_JUDGMENT_TEMPLATE,
    contrast_judgment: str | None = None,
) -> tuple[dict | None, bool]:
    """Token ids of one canonical example. Returns ``(features, prompt_was_truncated)``; features is None when the
    response alone does not fit in ``max_length`` (with at least one prompt token)."""
    special = template == "alpaca"  # chat templates already carry their own special tokens
    completion_ids = _response_ids(example["completion"], tokenizer)
    room = max_length - len(completion_ids)
    if room < 1:
        return None, False

    views = {"prompt_ids": plain_prompt(example["prompt"], template, tokenizer)}
    if example["judgment"] is not None:
        views["judgment_prompt_ids"] = judgment_prompt(
            example["prompt"], example["judgment"], template, tokenizer, chat_judgment_template
        )
        if contrast_judgment is not None:
            views["contrast_prompt_ids"] = judgment_prompt(
                example["prompt"], contrast_judgment, template, tokenizer, chat_judgment_template
            )
    features = {"completion_ids": completion_ids, "judgment_prompt_ids": []}
    if contrast_judgment is not None:
        features["contrast_prompt_ids"] = []
    truncated = False
    for key, text in views.items():
        ids = tokenizer(text, add_special_tokens=special)["input_ids"]
        if len(ids) > room:
            ids = ids[-room:]
            truncated = True
        features[key] = ids
    if "preferred" in example:
        # The preferred response follows the negative's own (possibly cut) plain prompt, so both responses of the
        # pair are scored after the same tokens; one that does not fit behind it leaves the pair out (empty).
        preferred = example["preferred"]
        features["preferred_ids"] = []
        if preferred is not None:
            preferred_ids = _response_ids(preferred, tokenizer)
            if len(features["prompt_ids"]) + len(preferred_ids) <= max_length:
                features["preferred_ids"] = preferred_ids
    return features, truncated


def tokenize_dataset(
    dataset,
    tokenizer,
    *,
    template: str,
    max_length: int,
    chat_judgment_template: str = DEFAULT_CHAT_JUDGMENT_TEMPLATE,
    contrast_judgment: str | None = None,
):
    """Tokenize a canonical ``datasets.Dataset``. Returns ``(tokenized Dataset, TokenizationReport)``.

    The tokenized dataset has ``id``, ``negative``, ``prompt_ids``, ``judgment_prompt_ids`` (empty for positives),
    ``contrast_prompt_ids`` (only with ``contrast_judgment``; empty for positives), ``completion_ids`` and
    ``length``: the tokens the example puts through the model (its plain view, plus its judgment and contrast views
    if negative), which transformers' length-grouped sampler reads. With a ``preferred`` column it also has
    ``preferred_ids`` (see :func:`tokenize_example`).
    """
    from datasets import Dataset

    report = TokenizationReport()
    if "preferred" in dataset.column_names:
        report.pairs = 0
    rows = []
    for example in dataset:
        features, truncated = tokenize_example(
            example, tokenizer, template=template, max_length=max_length,
            chat_judgment_template=chat_judgment_template, contrast_judgment=contrast_judgment,
        )
        if features is None:
            report.removed_too_long.append(str(example["id"]))
            continue
        report.kept += 1
        report.truncated_prompts += truncated
        negative = example["judgment"] is not None
        length = len(features["prompt_ids"]) + len(features["completion_ids"])
        if negative:
            for key in ("judgment_prompt_ids", "contrast_prompt_ids"):
                if key in features:
                    length += len(features[key]) + len(features["completion_ids"])
        if features.get("preferred_ids"):
            length += len(features["prompt_ids"]) + len(features["preferred_ids"])
            report.pairs += 1
        elif "preferred" in example and example["preferred"] is not None:
            report.pairs_too_long.append(str(example["id"]))
        rows.append({"id": str(example["id"]), "negative": negative, **features, "length": length})
    if report.removed_too_long or report.truncated_prompts or report.pairs_too_long:
        logger.warning(report.summary())
    else:
        logger.info(report.summary())
    if not rows:
        raise ValueError(f"no example left to train on: {report.summary()}")
    return Dataset.from_list(rows), report

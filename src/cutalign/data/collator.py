"""Batches for a CUT step: the plain view of every example plus the judgment view of the negatives only.

Views: the plain views of the B examples, then the judgment views of the negative examples in batch order, then
(with ``contrast=True``) their neutral-judgment views. Positives get no second, padded view (the reference pads one
for every positive and runs it through the model for nothing).

Layout of the views in ``input_ids``:

* padded (default): one view per row, right padded to the longest view, with an ``attention_mask``;
* padding-free (``padding_free=True``): views are packed one after another into rows, each view numbered from 0 in
  ``position_ids`` and no ``attention_mask``. transformers reads the restarts of ``position_ids`` as sequence
  boundaries, so a view attends only to itself: a block-diagonal mask for SDPA/eager attention, varlen kernels for
  FlashAttention. Views go into rows no wider than the longest view (first-fit decreasing), so attention never
  costs more than in the padded layout; ``single_row=True`` packs everything into one row instead, which is what
  FlashAttention's varlen path requires and where attention cost does not grow with the row.

Scoring is completion-aligned and layout-independent: the K scored tokens are listed in ``score_positions`` (row,
position of the token *before* the scored one) and ``score_targets``; ``plain_index`` and ``mle_index`` (B, T)
pick, for the t-th response token of example b, its entry among the K scores in the plain view and in the view
trained by MLE (judgment view for negatives, plain view for positives); with ``contrast=True``, ``contrast_index``
picks it in the neutral-judgment view (plain view for positives, whose entries the loss never reads).
With ``contrast=True`` or ``detach_judgment=True`` the views that only select tokens (the neutral-judgment views;
the judgment views too when no loss part trains on them, i.e. ``align_n_weight=0``) go to a second, ``detached_``
batch (``detached_input_ids``, ``detached_score_positions``, ...) laid out the same way: the trainer runs it without
gradient, so no backward pass and no stored activations are spent on them. Its K' scores follow the first batch's K
in the indices. Such a collator gives every batch a detached batch, even one without negatives.

With ``pairwise=True`` (the optional pairwise term, ``CUTConfig.pairwise_weight``) a negative example that has a
preferred response (``preferred_ids``, :mod:`cutalign.data.pairs`) adds that response after its plain prompt to the
batch with gradient (``preferred_index``, ``preferred_mask`` (B, T'), ``paired`` (B,)), and a third, ``reference_``
batch holds both responses of every pair for the reference model (``reference_rejected_index``,
``reference_preferred_index`` index its own scores).

``shift_labels`` (B, T) holds the completion ids with -100 as padding: the Trainer counts it for
``num_items_in_batch`` (it only counts when a ``labels`` key is present too, so ``labels`` is the same tensor).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


def pack_views(lengths: list[int], capacity: int) -> tuple[list[tuple[int, int]], int, int]:
    """Place views of the given lengths into rows of at most ``capacity`` tokens (first-fit decreasing).

    Returns ``(places, rows, width)``: ``places[i] = (row, offset)`` of view i, the number of rows and the fullest
    row's length. Deterministic: ties keep the input order.
    """
    if max(lengths) > capacity:
        raise ValueError(f"a view of {max(lengths)} tokens does not fit in rows of {capacity}")
    places: list[tuple[int, int]] = [(0, 0)] * len(lengths)
    filled: list[int] = []
    for i in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        row = next((r for r, used in enumerate(filled) if used + lengths[i] <= capacity), len(filled))
        if row == len(filled):
            filled.append(0)
        places[i] = (row, filled[row])
        filled[row] += lengths[i]
    return places, len(filled), max(filled)


@dataclass
class CUTCollator:
    """Collate tokenized examples (``prompt_ids``, ``judgment_prompt_ids``, ``completion_ids``, ``negative``)."""

    pad_token_id: int
    padding_free: bool = False
    single_row: bool = False  # with padding_free: one packed row (FlashAttention varlen)
    contrast: bool = False  # add each negative's neutral-judgment view (``contrast_prompt_ids``)
    detach_judgment: bool = False  # the judgment views carry no gradient: put them in the detached batch
    pairwise: bool = False  # score each paired example's preferred response (``preferred_ids``), plus the reference

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        # Views 0..B-1 are the plain views, in batch order; with ``pairwise`` the preferred responses of the paired
        # examples follow, then the judgment views of the negatives, then the contrast views. preferred_view,
        # judgment_view and contrast_view map an example to the index of its view.
        views = [(f["prompt_ids"], f["completion_ids"]) for f in features]

        def add_views(prompt_key: str, completion_key: str, wanted: str) -> dict[int, int]:
            """Append a (``prompt_key``, ``completion_key``) view for every example whose ``wanted`` field is truthy;
            return example -> view index."""
            added = {}
            for b, f in enumerate(features):
                if f[wanted]:
                    added[b] = len(views)
                    views.append((f[prompt_key], f[completion_key]))
            return added

        preferred_view = add_views("prompt_ids", "preferred_ids", "preferred_ids") if self.pairwise else {}
        judgment_view = add_views("judgment_prompt_ids", "completion_ids", "negative")
        contrast_view = add_views("contrast_prompt_ids", "completion_ids", "negative") if self.contrast else {}

        # Views that only select tokens (contrast views; judgment views when detach_judgment) go to a second batch
        # that the trainer runs without gradient; their scores follow the first batch's in the K scores.
        detached_from = len(features) + len(preferred_view) + (0 if self.detach_judgment else len(judgment_view))
        batch, first_score = self._layout(views[:detached_from])
        if self.detach_judgment or self.contrast:
            # A batch without negatives still gets a detached batch (the first view again, its scores unread): every
            # step then runs both forwards on every process, as DDP's buffer syncs and the gathers of ZeRO-3 and
            # FSDP need when processes train together.
            detached, detached_first = self._layout(views[detached_from:] or views[:1])
            offset = len(batch["score_targets"])
            first_score += [offset + k for k in detached_first]
            batch.update({"detached_" + key: value for key, value in detached.items()})

        # Completion-aligned (B, T) views of the K scores: the loss compares token t of an example's two views
        # position by position, whatever their prompt lengths and wherever the packing put them.
        width = max(len(f["completion_ids"]) for f in features)
        shift_labels = torch.full((len(features), width), -100, dtype=torch.long)
        plain_index = torch.zeros((len(features), width), dtype=torch.long)
        mle_index = torch.zeros((len(features), width), dtype=torch.long)
        contrast_index = torch.zeros((len(features), width), dtype=torch.long)
        for b, f in enumerate(features):
            n = len(f["completion_ids"])
            shift_labels[b, :n] = torch.tensor(f["completion_ids"])
            plain_index[b, :n] = torch.arange(first_score[b], first_score[b] + n)
            mle_view = judgment_view.get(b, b)
            mle_index[b, :n] = torch.arange(first_score[mle_view], first_score[mle_view] + n)
            contrast = contrast_view.get(b, b)
            contrast_index[b, :n] = torch.arange(first_score[contrast], first_score[contrast] + n)

        batch.update({
            "plain_index": plain_index,
            "mle_index": mle_index,
            "completion_mask": shift_labels != -100,
            "negative": torch.tensor([bool(f["negative"]) for f in features]),
            "shift_labels": shift_labels,
            "labels": shift_labels,
        })
        if self.contrast:
            batch["contrast_index"] = contrast_index
        if self.pairwise:
            batch.update(self._pairs(features, preferred_view, first_score))
        return batch

    def _pairs(self, features: list[dict], preferred_view: dict[int, int], first_score: list[int]) -> dict:
        """The pairwise term's inputs: where each paired example's preferred response is scored by the policy
        (``preferred_index``, ``preferred_mask``, ``paired``), and a ``reference_`` batch that scores both responses
        of every pair (the rejected one after its plain prompt, then the preferred one) for the reference model.

        Every batch gets a reference batch, even one without pairs (the first plain view, scores unread), so that
        every process runs the reference model on every step, as the plain and detached forwards do.
        """
        paired = sorted(preferred_view)
        reference_views = [(features[b]["prompt_ids"], features[b]["completion_ids"]) for b in paired]
        reference_views += [(features[b]["prompt_ids"], features[b]["preferred_ids"]) for b in paired]
        reference, reference_first = self._layout(reference_views or [(features[0]["prompt_ids"],
                                                                        features[0]["completion_ids"])])
        rows = len(features)
        width = max([len(f["completion_ids"]) for f in features])
        preferred_width = max([len(features[b]["preferred_ids"]) for b in paired] or [1])
        preferred_index = torch.zeros((rows, preferred_width), dtype=torch.long)
        preferred_mask = torch.zeros((rows, preferred_width), dtype=torch.bool)
        reference_rejected_index = torch.zeros((rows, width), dtype=torch.long)
        reference_preferred_index = torch.zeros((rows, preferred_width), dtype=torch.long)
        for i, b in enumerate(paired):
            n, m = len(features[b]["completion_ids"]), len(features[b]["preferred_ids"])
            start = first_score[preferred_view[b]]
            preferred_index[b, :m] = torch.arange(start, start + m)
            preferred_mask[b, :m] = True
            reference_rejected_index[b, :n] = torch.arange(reference_first[i], reference_first[i] + n)
            start = reference_first[len(paired) + i]
            reference_preferred_index[b, :m] = torch.arange(start, start + m)
        return {
            "paired": torch.tensor([b in preferred_view for b in range(rows)]),
            "preferred_index": preferred_index,
            "preferred_mask": preferred_mask,
            "reference_rejected_index": reference_rejected_index,
            "reference_preferred_index": reference_preferred_index,
            **{"reference_" + key: value for key, value in reference.items()},
        }

    def _layout(self, views: list[tuple[list[int], list[int]]]) -> tuple[dict[str, torch.Tensor], list[int]]:
        """Lay out ``(prompt, completion)`` views as one model input; also return where each view's scores start."""
        lengths = [len(p) + len(c) for p, c in views]
        if self.padding_free:
            # Rows as wide as the longest view: packing never makes attention (quadratic in the row) costlier than
            # padding would, and usually needs far fewer rows. FlashAttention wants everything in a single row.
            places, rows, width = pack_views(lengths, sum(lengths) if self.single_row else max(lengths))
        else:
            places, rows, width = [(v, 0) for v in range(len(views))], len(views), max(lengths)
        input_ids = torch.full((rows, width), self.pad_token_id, dtype=torch.long)
        layout = torch.zeros((rows, width), dtype=torch.long)  # position_ids (packed) or attention_mask (padded)
        positions, targets, first_score = [], [], []
        for (prompt, completion), n, (row, offset) in zip(views, lengths, places):
            input_ids[row, offset : offset + n] = torch.tensor(prompt + completion)
            layout[row, offset : offset + n] = torch.arange(n) if self.padding_free else 1
            first_score.append(len(targets))
            # The hidden state at position i predicts token i + 1: response token t (at offset + len(prompt) + t)
            # is scored from the position just before it. Only these K positions ever reach the LM head.
            positions.extend((row, offset + len(prompt) - 1 + t) for t in range(len(completion)))
            targets.extend(completion)
        return {
            "input_ids": input_ids,
            ("position_ids" if self.padding_free else "attention_mask"): layout,
            "score_positions": torch.tensor(positions, dtype=torch.long),
            "score_targets": torch.tensor(targets, dtype=torch.long),
        }, first_score

"""Batches for one CUT forward: the plain view of every example plus the judgment view of the negatives only.

Row layout of ``input_ids`` (right padded): rows ``0..B-1`` are the plain views of the B examples, rows ``B..`` the
judgment views of the negative examples in batch order. Positives get no second, padded view (the reference pads
one for every positive and runs it through the model for nothing).

Scoring is completion-aligned: the K scored tokens are listed in ``score_positions`` (row, position of the token
*before* the scored one) and ``score_targets``; ``plain_index`` and ``mle_index`` (B, T) pick, for the t-th response
token of example b, its entry among the K scores in the plain view and in the view trained by MLE (judgment view for
negatives, plain view for positives). ``shift_labels`` (B, T) holds the completion ids with -100 as padding: the
Trainer counts it for ``num_items_in_batch`` (it only counts when a ``labels`` key is present too, so ``labels`` is
the same tensor).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class CUTCollator:
    """Collate tokenized examples (``prompt_ids``, ``judgment_prompt_ids``, ``completion_ids``, ``negative``)."""

    pad_token_id: int

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        rows = [(f["prompt_ids"], f["completion_ids"]) for f in features]
        judgment_row = {}
        for b, f in enumerate(features):
            if f["negative"]:
                judgment_row[b] = len(rows)
                rows.append((f["judgment_prompt_ids"], f["completion_ids"]))

        length = max(len(p) + len(c) for p, c in rows)
        input_ids = torch.full((len(rows), length), self.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((len(rows), length), dtype=torch.long)
        positions, targets, first_score = [], [], []
        for r, (prompt, completion) in enumerate(rows):
            n = len(prompt) + len(completion)
            input_ids[r, :n] = torch.tensor(prompt + completion)
            attention_mask[r, :n] = 1
            first_score.append(len(targets))
            positions.extend((r, len(prompt) - 1 + t) for t in range(len(completion)))
            targets.extend(completion)

        width = max(len(f["completion_ids"]) for f in features)
        shift_labels = torch.full((len(features), width), -100, dtype=torch.long)
        plain_index = torch.zeros((len(features), width), dtype=torch.long)
        mle_index = torch.zeros((len(features), width), dtype=torch.long)
        for b, f in enumerate(features):
            n = len(f["completion_ids"])
            shift_labels[b, :n] = torch.tensor(f["completion_ids"])
            plain_index[b, :n] = torch.arange(first_score[b], first_score[b] + n)
            mle_row = judgment_row.get(b, b)
            mle_index[b, :n] = torch.arange(first_score[mle_row], first_score[mle_row] + n)

        return {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "score_positions": torch.tensor(positions, dtype=torch.long),
            "score_targets": torch.tensor(targets, dtype=torch.long),
            "plain_index": plain_index,
            "mle_index": mle_index,
            "completion_mask": shift_labels != -100,
            "negative": torch.tensor([bool(f["negative"]) for f in features]),
            "shift_labels": shift_labels,
            "labels": shift_labels,
        }

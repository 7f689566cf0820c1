"""The CUT loss as pure functions on per-token log-probabilities: no model, no I/O.

CUT (Contrastive Unlikelihood Training) trains on triplets (instruction x, response y, judgment j):

* **Align-P** (positive rows): maximum likelihood on y given x.
* **Align-N** (negative rows): y *matches* its judgment, so maximum likelihood on y given [x, j].
* **Misalign** (negative rows, judgment hidden): per response token, ``r_t = p(y_t|x,j) / p(y_t|x)`` (detached).
  Tokens with ``r_t > threshold`` are the ones the judgment objects to: they get the unlikelihood term
  ``-alpha * log(1 - p(y_t|x))``; the other tokens keep ``-log p(y_t|x)``.

Two variants of the token selection, both off by default (the paper's rule): ``max_flagged_fraction`` caps the
flags of a row at its highest-ratio tokens (a threshold relative to the row's own ratios), and ``contrast_logps``
replaces ``p(y_t|x)`` in the ratio by ``p(y_t|x,j0)`` for a neutral judgment ``j0``, so that what any criticism
does to a token's probability cancels and only what *this* judgment adds is left.

All tensors are completion-aligned: position ``t`` of a row is the ``t``-th response token, whatever the prompt
length of the view it was scored in, so the two views of a negative example line up position by position.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

REDUCTIONS = ("reference", "normalized")
_LOG_HALF = -math.log(2.0)


@dataclass
class CUTLossOutput:
    """What :func:`cut_loss` returns. Scalars are 0-dim tensors; counts are plain tensors for logging.

    ``loss`` is what to back-propagate. It is the sum of its four parts, each reduced the same way as the loss (so
    they add up exactly, whatever the reduction):

    * ``align_p``: MLE on the response tokens of positive rows (plain view);
    * ``align_n``: MLE on the response tokens of negative rows under their judgment (judgment view);
    * ``misalign_mle``: MLE on the tokens of negative rows that are *not* flagged (plain view);
    * ``unlikelihood``: ``-alpha * log(1 - p)`` on the flagged tokens of negative rows (plain view).
    """

    loss: torch.Tensor
    flagged: torch.Tensor  # (B, T) bool: the tokens that got unlikelihood
    align_p: torch.Tensor
    align_n: torch.Tensor
    misalign_mle: torch.Tensor
    unlikelihood: torch.Tensor
    flagged_fraction: torch.Tensor
    num_tokens: torch.Tensor
    num_positive_tokens: torch.Tensor
    num_negative_tokens: torch.Tensor
    num_flagged_tokens: torch.Tensor

    PARTS = ("align_p", "align_n", "misalign_mle", "unlikelihood")


def log1m_exp(logp: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """``log(1 - exp(logp))`` for log-probabilities, finite in value and gradient for every input.

    ``logp`` is clamped to ``log(1 - eps)`` first, so ``1 - p >= eps``: a token the model is certain of gets a large
    but finite unlikelihood penalty instead of ``inf``. Both branches of the ``where`` only ever see clamped inputs,
    so neither produces an infinite gradient that would turn into NaN (the unused branch of ``torch.where`` still
    takes part in the backward pass). The branch choice is the usual one for accuracy: ``log(-expm1(x))`` near 0,
    ``log1p(-exp(x))`` below ``-log 2``.
    """
    x = logp.clamp(max=math.log1p(-eps))
    return torch.where(x > _LOG_HALF, torch.log(-torch.expm1(x)), torch.log1p(-torch.exp(x)))


def flag_tokens(
    mle_logps: torch.Tensor,
    reference_logps: torch.Tensor,
    mask: torch.Tensor,
    negative: torch.Tensor,
    threshold: float,
    max_flagged_fraction: float = 1.0,
) -> torch.Tensor:
    """Boolean (B, T): completion tokens of negative rows whose ratio ``p(y_t|x,j) / reference`` exceeds threshold.

    ``reference_logps`` is ``log p(y_t|x)`` (the paper's rule) or ``log p(y_t|x,j0)`` (the neutral-judgment
    contrast). With ``max_flagged_fraction < 1``, a row keeps at most ``ceil(max_flagged_fraction x its response
    tokens)`` flags, those of the highest ratios (ties broken by position). The ratio is computed from detached
    log-probabilities: token selection carries no gradient.
    """
    log_ratio = (mle_logps - reference_logps).detach()
    flagged = mask & negative[:, None] & (torch.exp(log_ratio) > threshold)
    if max_flagged_fraction < 1.0:
        allowed = torch.ceil(max_flagged_fraction * mask.sum(dim=1)).clamp(min=1)
        scores = log_ratio.float().masked_fill(~flagged, -math.inf)
        rank = scores.argsort(dim=1, descending=True, stable=True).argsort(dim=1)  # 0 = the row's highest ratio
        flagged = flagged & (rank < allowed[:, None])
    return flagged


def cut_loss(
    mle_logps: torch.Tensor,
    plain_logps: torch.Tensor,
    mask: torch.Tensor,
    negative: torch.Tensor,
    *,
    threshold: float,
    alpha: float,
    reduction: str,
    num_items_in_batch: int | torch.Tensor | None = None,
    align_p_weight: float = 1.0,
    align_n_weight: float = 1.0,
    unflagged_weight: float = 1.0,
    max_flagged_fraction: float = 1.0,
    contrast_logps: torch.Tensor | None = None,
) -> CUTLossOutput:
    """The CUT loss of one (micro-)batch.

    Args:
        mle_logps: (B, T) log p(y_t | judgment prompt) for negative rows, log p(y_t | plain prompt) for positive rows.
        plain_logps: (B, T) log p(y_t | plain prompt) for every row. For positive rows it is not used.
        mask: (B, T) bool, True on completion tokens (the same tokens in both views).
        negative: (B,) bool, True for rows that carry a judgment.
        threshold: λ; a token of a negative row is flagged when ``r_t > threshold``.
        alpha: α, the weight of the unlikelihood term on flagged tokens.
        reduction: how token terms become one number.

            * ``"reference"`` reproduces the reference implementation (wwxu21/CUT): ``nll`` is the mean of
              ``-mle_logps`` over all completion tokens of all rows; ``ul`` is the mean over the completion tokens
              of negative rows of ``-alpha*log(1-p)`` (flagged) or ``-log p`` (not flagged), ``p`` from the plain
              view. The loss is ``(nll + ul) / 2`` when the batch holds a negative row, else ``nll``. The weight of a
              token therefore depends on what else is in its micro-batch.
            * ``"normalized"`` sums every token term (the MLE term of every completion token plus the Misalign term
              of every completion token of a negative row) and divides by ``num_items_in_batch``, the number of
              completion tokens in the whole optimizer batch (all micro-batches, accumulation steps and processes;
              transformers' Trainer passes it). The gradient of a batch then does not depend on how it is split.
              Without ``num_items_in_batch`` it divides by the completion tokens of this call.
        num_items_in_batch: see ``"normalized"``; ignored by ``"reference"``.
        align_p_weight: weight of the MLE term of positive rows (Align-P).
        align_n_weight: weight of the MLE term of negative rows under the judgment prompt (Align-N).
        unflagged_weight: weight of ``-log p(y_t|x)`` on the unflagged tokens of negative rows (Misalign MLE).
        max_flagged_fraction: flag at most this share of a negative row's response tokens, those with the highest
            ratios (see :func:`flag_tokens`); 1 keeps every token above ``threshold``.
        contrast_logps: (B, T) log p(y_t | x, j0) for negative rows, j0 a neutral judgment: when given, the ratio is
            ``p(y_t|x,j) / p(y_t|x,j0)`` instead of ``p(y_t|x,j) / p(y_t|x)``. Only the selection changes; the
            unlikelihood and MLE terms still use ``plain_logps``.

    ``threshold``, ``alpha`` and ``reduction`` have no defaults here: :class:`cutalign.CUTConfig` declares them (and
    the reference values), so the function and the trainer cannot drift apart. The default weights (all 1) are the
    reference mix.
    """
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    if mle_logps.shape != plain_logps.shape or mle_logps.shape != mask.shape:
        raise ValueError(
            f"mle_logps {tuple(mle_logps.shape)}, plain_logps {tuple(plain_logps.shape)} and mask "
            f"{tuple(mask.shape)} must have the same (B, T) shape"
        )
    if contrast_logps is not None and contrast_logps.shape != mask.shape:
        raise ValueError(f"contrast_logps {tuple(contrast_logps.shape)} must have the mask's shape {tuple(mask.shape)}")
    if not 0 < max_flagged_fraction <= 1:
        raise ValueError(f"max_flagged_fraction must be in (0, 1], got {max_flagged_fraction}")
    if negative.shape != mask.shape[:1]:
        raise ValueError(f"negative must have shape ({mask.shape[0]},), got {tuple(negative.shape)}")

    mask = mask.bool()
    negative = negative.bool().to(mask.device)
    # Values outside the mask may be anything (padding); zero them before any exp/log so no NaN can leak through.
    mle_logps = mle_logps.masked_fill(~mask, 0.0)
    plain_logps = plain_logps.masked_fill(~mask, 0.0)
    reference_logps = plain_logps if contrast_logps is None else contrast_logps.masked_fill(~mask, 0.0)

    negative_tokens = mask & negative[:, None]
    positive_tokens = mask & ~negative[:, None]
    flagged = flag_tokens(mle_logps, reference_logps, mask, negative, threshold, max_flagged_fraction)
    unflagged = negative_tokens & ~flagged

    mle_weight = torch.where(negative, align_n_weight, align_p_weight).to(mle_logps.dtype)[:, None]
    mle_terms = -mle_logps * mle_weight * mask
    unlikelihood_terms = -alpha * log1m_exp(plain_logps) * flagged
    misalign_mle_terms = -unflagged_weight * plain_logps * unflagged

    num_tokens = mask.sum()
    num_negative_tokens = negative_tokens.sum()
    if reduction == "reference":
        # (mean MLE over all completion tokens + mean Misalign over the negative rows' tokens) / 2; plain mean MLE
        # when the micro-batch holds no negative row.
        mle_denominator = num_tokens.clamp(min=1)
        misalign_denominator = num_negative_tokens.clamp(min=1)
        if num_negative_tokens > 0:
            mle_denominator, misalign_denominator = 2 * mle_denominator, 2 * misalign_denominator
    else:
        mle_denominator = num_tokens.clamp(min=1) if num_items_in_batch is None else num_items_in_batch
        misalign_denominator = mle_denominator
    parts = {
        "align_p": (mle_terms * positive_tokens).sum() / mle_denominator,
        "align_n": (mle_terms * negative_tokens).sum() / mle_denominator,
        "misalign_mle": misalign_mle_terms.sum() / misalign_denominator,
        "unlikelihood": unlikelihood_terms.sum() / misalign_denominator,
    }

    return CUTLossOutput(
        loss=parts["align_p"] + parts["align_n"] + parts["misalign_mle"] + parts["unlikelihood"],
        flagged=flagged,
        **parts,
        flagged_fraction=flagged.sum() / num_negative_tokens.clamp(min=1),
        num_tokens=num_tokens,
        num_positive_tokens=positive_tokens.sum(),
        num_negative_tokens=num_negative_tokens,
        num_flagged_tokens=flagged.sum(),
    )


def pairwise_loss(
    chosen_logps: torch.Tensor,
    rejected_logps: torch.Tensor,
    reference_chosen_logps: torch.Tensor,
    reference_rejected_logps: torch.Tensor,
    beta: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The DPO (sigmoid) loss of response pairs: per pair, ``-log sigmoid(beta * margin)`` with
    ``margin = (chosen - reference_chosen) - (rejected - reference_rejected)``.

    Every argument is (P,): the summed log-probability of each pair's preferred (``chosen``) and judged-bad
    (``rejected``) response given the same plain prompt, under the trained model and under the reference model (the
    model before training). Returns ``(losses, margins)``, both (P,); the margins are detached, for logging.
    CUT's optional pairwise term (``CUTConfig.pairwise_weight``) adds this loss where a prompt has both a good and a
    bad response, next to the unlikelihood on the bad response's flagged tokens.
    """
    margins = (chosen_logps - reference_chosen_logps) - (rejected_logps - reference_rejected_logps)
    return -torch.nn.functional.logsigmoid(beta * margins), margins.detach()

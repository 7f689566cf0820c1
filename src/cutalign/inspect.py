"""`cutalign inspect`: see which response tokens a judgment blames, before training on it.

CUT gives a negative response's token the unlikelihood term when the judgment makes it more likely:
``r_t = p(y_t|x,j) / p(y_t|x) > λ``. Whether a judgment singles out the right tokens, and how many tokens a given λ
flags, depends on the model and on how the judgments are worded. This module computes ``r_t`` for judged rows with
exactly the trainer's machinery (``tokenize_dataset`` for the views, ``CUTCollator`` for the batch, the patched
forward of ``add_token_logprobs_forward`` for the log-probabilities, ``flag_tokens`` for the flags), so what it
shows is what training would do at step 0, and renders it:

* ``render_terminal``: each row with its flagged tokens highlighted (ANSI colors, or «marks» without color);
* ``render_html``: the same as one self-contained HTML page (inline CSS, no scripts, all text escaped);
* ``flagged_fraction_by_threshold`` / ``render_threshold_table``: the share of response tokens flagged at each of
  several λ, to pick λ.

    rows = inspect_judgments("judgments.jsonl", "default", limit=20)
    print(render_terminal(rows, threshold=1.1))
    print(render_threshold_table(flagged_fraction_by_threshold(rows), threshold=1.1))
"""

from __future__ import annotations

import dataclasses
import html
import logging
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from peft import PeftModel

from .config import CUTConfig
from .data import load_judgments
from .data.collator import CUTCollator
from .data.templates import DEFAULT_CHAT_JUDGMENT_TEMPLATE, resolve_template
from .data.tokenize import tokenize_dataset
from .logprobs import add_token_logprobs_forward, batch_token_logps
from .loss import flag_tokens
from .models import load_model, load_tokenizer

logger = logging.getLogger("cutalign.inspect")

_DEFAULTS = {f.name: f.default for f in dataclasses.fields(CUTConfig)}
DEFAULT_THRESHOLD: float = _DEFAULTS["threshold"]
"""λ when none is given: the trainer's default (:class:`cutalign.CUTConfig`)."""
DEFAULT_TEMPLATE: str = _DEFAULTS["template"]
DEFAULT_MAX_LENGTH: int = _DEFAULTS["max_length"]

DEFAULT_THRESHOLDS = (1.0, 1.05, 1.1, 1.2, 1.5, 2.0, 3.0)
"""The λ values of the flagged-fraction table."""


@dataclass
class RowRatios:
    """The response tokens of one judged row, each with its two log-probabilities.

    ``pieces[t]`` is the text of the t-th scored token (the last one is the EOS token the trainer appends), and
    ``plain_logps[t]`` / ``judgment_logps[t]`` are ``log p(y_t|x)`` and ``log p(y_t|x,j)`` as the trainer computes
    them (fp32). With a neutral judgment j0 (``contrast_judgment``), ``contrast_logps[t]`` is ``log p(y_t|x,j0)``
    and the ratio's denominator, as in training. ``id`` is the row's id in the dataset.
    """

    id: str
    prompt: str | list[dict]
    completion: str
    judgment: str
    pieces: list[str]
    plain_logps: list[float]
    judgment_logps: list[float]
    contrast_logps: list[float] | None = None

    def _tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(judgment, reference) log-probabilities as (1, T) tensors: the ratio's numerator and denominator."""
        reference = self.plain_logps if self.contrast_logps is None else self.contrast_logps
        return (torch.tensor([self.judgment_logps], dtype=torch.float32),
                torch.tensor([reference], dtype=torch.float32))

    @property
    def ratios(self) -> list[float]:
        """``r_t = p(y_t|x,j) / p(y_t|x)`` per token (``p(y_t|x,j0)`` below the line with a contrast judgment),
        computed as ``flag_tokens`` computes it."""
        judged, reference = self._tensors()
        return torch.exp(judged - reference)[0].tolist()

    def flags(self, threshold: float, max_flagged_fraction: float = 1.0) -> list[bool]:
        """Which tokens CUT flags at λ = ``threshold``, at most ``max_flagged_fraction`` of the row's tokens
        (``cutalign.loss.flag_tokens`` on this row alone)."""
        judged, reference = self._tensors()
        mask = torch.ones_like(judged, dtype=torch.bool)
        return flag_tokens(judged, reference, mask, torch.tensor([True]), threshold,
                           max_flagged_fraction=max_flagged_fraction)[0].tolist()


def token_ratios(
    model,
    tokenizer,
    rows,
    *,
    template: str = DEFAULT_TEMPLATE,
    max_length: int = DEFAULT_MAX_LENGTH,
    chat_judgment_template: str = DEFAULT_CHAT_JUDGMENT_TEMPLATE,
    limit: int | None = None,
    batch_size: int = 8,
    padding_free: bool = False,
    contrast_judgment: str | None = None,
) -> list[RowRatios]:
    """``r_t`` for every response token of the judged rows of ``rows``, scored as the trainer scores them.

    Args:
        model: a causal LM or ``PeftModel``; its forward is patched with ``add_token_logprobs_forward`` (as the
            trainer does) and it runs in eval mode (restored afterwards).
        tokenizer: its tokenizer.
        rows: anything ``cutalign.data.load_judgments`` reads (a path, a ``datasets.Dataset``, a list of dicts).
            Rows without a judgment (positives) have no ratio and are skipped.
        template, max_length, chat_judgment_template: as in :class:`cutalign.CUTConfig`; use the training run's
            (``"auto"`` resolves as the trainer resolves it: ``"chat"`` when the tokenizer has a chat template).
        limit: inspect only the first ``limit`` judged rows.
        batch_size: rows per forward.
        padding_free: the trainer's packed layout (needs attention that keeps packed views apart); the default
            padded layout works with any model and gives the same numbers up to float rounding.
        contrast_judgment: as in :class:`cutalign.CUTConfig`: also score each row under this neutral judgment j0,
            and take the ratio against it.

    Rows whose response alone exceeds ``max_length`` are skipped, as training skips them (logged).
    """
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be a positive integer or None, got {limit!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    dataset = load_judgments(rows)
    judged = [i for i, judgment in enumerate(dataset["judgment"]) if judgment is not None]
    if not judged:
        raise ValueError("no row to inspect: no row has a judgment (ratios exist only for judged rows)")
    subset = dataset.select(judged[:limit] if limit is not None else judged)
    originals = subset.to_list()
    # Positions as ids: rows are matched back to their originals even when the data repeats an id.
    subset = subset.remove_columns("id").add_column("id", [str(k) for k in range(len(subset))])
    template = resolve_template(template, tokenizer)
    tokenized, report = tokenize_dataset(subset, tokenizer, template=template, max_length=max_length,
                                         chat_judgment_template=chat_judgment_template,
                                         contrast_judgment=contrast_judgment)
    if report.removed_too_long:
        skipped = [originals[int(k)]["id"] for k in report.removed_too_long]
        logger.warning("skipped %d row(s) whose response alone exceeds max_length=%d: %s", len(skipped), max_length,
                       ", ".join(skipped[:5]) + (" ..." if len(skipped) > 5 else ""))

    add_token_logprobs_forward(model.get_base_model() if isinstance(model, PeftModel) else model)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    contrast = contrast_judgment is not None
    collator = CUTCollator(pad_token_id=pad, padding_free=padding_free, contrast=contrast)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = []
    try:
        with torch.no_grad():
            for start in range(0, len(tokenized), batch_size):
                features = [tokenized[i] for i in range(start, min(start + batch_size, len(tokenized)))]
                batch = {key: value.to(device) for key, value in collator(features).items()}
                token_logps = torch.cat([batch_token_logps(model, batch, prefix) for prefix in ("", "detached_")
                                         if prefix + "input_ids" in batch])  # contrast views come detached
                judged_logps = token_logps[batch["mle_index"]].cpu()  # judgment view: every row here is negative
                plain_logps = token_logps[batch["plain_index"]].cpu()
                contrast_logps = token_logps[batch["contrast_index"]].cpu() if contrast else None
                for b, feature in enumerate(features):
                    n = len(feature["completion_ids"])
                    original = originals[int(feature["id"])]
                    out.append(RowRatios(
                        id=str(original["id"]), prompt=original["prompt"], completion=original["completion"],
                        judgment=original["judgment"], pieces=token_pieces(tokenizer, feature["completion_ids"]),
                        plain_logps=plain_logps[b, :n].tolist(), judgment_logps=judged_logps[b, :n].tolist(),
                        contrast_logps=contrast_logps[b, :n].tolist() if contrast else None,
                    ))
    finally:
        model.train(was_training)
    return out


def inspect_judgments(data, model: str | None = None, *, device: str | None = None, **kwargs) -> list[RowRatios]:
    """``token_ratios`` for a data file (or dataset) and a model given by name (hub name, directory, saved adapter
    or ``"default"``, as ``cutalign.models.load_model`` reads it), in fp32 on ``device`` (default: the GPU when
    there is one, else the CPU). ``kwargs`` go to ``token_ratios``."""
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    return token_ratios(load_model(model).to(device), load_tokenizer(model), data, **kwargs)


def token_pieces(tokenizer, ids: Sequence[int]) -> list[str]:
    """The text each token adds to the decoded sequence, so the pieces join to the decoded text.

    Each piece is the growth of the decoded prefix; a token that ends inside a multi-byte character adds nothing,
    and the token that completes the character carries it.
    """
    pieces, shown = [], ""
    for t in range(len(ids)):
        text = tokenizer.decode(list(ids[: t + 1]), skip_special_tokens=False, clean_up_tokenization_spaces=False)
        if text.endswith("\ufffd") and t + 1 < len(ids):
            pieces.append("")
            continue
        if text.startswith(shown):
            pieces.append(text[len(shown):])
        else:  # the decoder rewrote earlier text (rare); fall back to the token alone
            pieces.append(tokenizer.decode([ids[t]], skip_special_tokens=False))
        shown = text
    return pieces


def flagged_fraction_by_threshold(rows: Sequence[RowRatios], thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
                                  max_flagged_fraction: float = 1.0) -> dict[float, float]:
    """For each λ, flagged response tokens / all response tokens of the judged rows (the trainer's
    ``flagged_fraction`` over this data at step 0, under the same per-row cap)."""
    total = sum(len(row.plain_logps) for row in rows)
    if not total:
        raise ValueError("no response token to count")
    return {float(t): sum(sum(row.flags(t, max_flagged_fraction)) for row in rows) / total for t in thresholds}


def render_threshold_table(fractions: dict[float, float], threshold: float | None = None) -> str:
    """The flagged-fraction table as text, the chosen λ marked."""
    lines = ["     λ   flagged tokens"]
    for value, fraction in fractions.items():
        mark = "  <- threshold" if threshold is not None and value == threshold else ""
        lines.append(f"{value:6.2f}   {100 * fraction:6.2f} %{mark}")
    return "\n".join(lines)


# --- terminal ----------------------------------------------------------------------------------------------------

_FLAGGED = "\x1b[1;97;41m"  # bold white on red
_RAISED = "\x1b[33m"  # yellow: more likely under the judgment, but not past λ
_DIM = "\x1b[2m"
_RESET = "\x1b[0m"


def _printable(text: str) -> str:
    """``text`` with control and format characters (escape sequences in the data, say) shown as ``\\xNN`` codes;
    line breaks and tabs are kept."""
    return "".join(
        ch if ch in "\n\t" or unicodedata.category(ch) not in ("Cc", "Cf") else f"\\x{ord(ch):02x}"
        if ord(ch) < 0x100 else f"\\u{ord(ch):04x}"
        for ch in text
    )


def _prompt_text(prompt: str | list[dict]) -> str:
    if isinstance(prompt, str):
        return prompt
    return "\n".join(f"[{message['role']}] {message['content']}" for message in prompt)


def _visible(piece: str) -> str:
    """A flagged piece made visible when it has no visible text: a line break shows as ⏎, a space as ·, and a
    token that ends inside a multi-byte character (its piece is empty, see `token_pieces`) as �."""
    if piece.strip():
        return piece
    return piece.replace("\n", "⏎\n") if "\n" in piece else (piece.replace(" ", "·") or "\ufffd")


def _label(piece: str) -> str:
    """A token for the list of flagged tokens: its text in quotes, or its repr when it is only whitespace."""
    return f"'{_printable(piece.strip())}'" if piece.strip() else repr(piece)


def render_terminal(rows: Sequence[RowRatios], threshold: float = DEFAULT_THRESHOLD, *, color: bool = True,
                    max_listed: int = 12, max_flagged_fraction: float = 1.0) -> str:
    """Each row's prompt, judgment and response, flagged tokens highlighted, and the flagged tokens with their r_t.

    With ``color=False`` flagged tokens are wrapped in «» instead (for logs and pipes).
    """
    blocks = []
    for row in rows:
        flags, ratios = row.flags(threshold, max_flagged_fraction), row.ratios
        response = []
        for piece, flagged, ratio in zip(row.pieces, flags, ratios):
            text = _printable(piece)
            if flagged:
                text = f"{_FLAGGED}{_visible(text)}{_RESET}" if color else f"«{_visible(text)}»"
            elif color and ratio > 1:
                text = f"{_RAISED}{text}{_RESET}"
            response.append(text)
        listed = [f"{_label(piece)} ×{ratio:.2f}"
                  for piece, flagged, ratio in zip(row.pieces, flags, ratios) if flagged]
        more = f" (+{len(listed) - max_listed} more)" if len(listed) > max_listed else ""
        header = (f"── row {_printable(row.id)}: {sum(flags)} of {len(flags)} response tokens flagged "
                  f"at λ = {threshold:g}")
        blocks.append("\n".join([
            f"{_DIM}{header}{_RESET}" if color else header,
            f"prompt:   {_printable(_prompt_text(row.prompt))}",
            f"judgment: {_printable(row.judgment)}",
            f"response: {''.join(response)}",
            f"flagged:  {', '.join(listed[:max_listed]) or 'none'}{more}",
        ]))
    return "\n\n".join(blocks)


# --- HTML --------------------------------------------------------------------------------------------------------

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 60rem; color: #222; }
pre { white-space: pre-wrap; word-wrap: break-word; background: #f6f6f6; padding: .6rem; margin: .2rem 0 .8rem; }
section { border-top: 1px solid #ccc; padding-top: .5rem; }
.label { font-weight: 600; font-size: .85rem; color: #555; }
.flagged { background: #d62828; color: #fff; border-radius: 2px; }
.raised { background: #fde68a; }
table { border-collapse: collapse; } td, th { padding: .15rem .8rem; text-align: right; }
tr.current { font-weight: 700; }
"""


def render_html(rows: Sequence[RowRatios], threshold: float = DEFAULT_THRESHOLD, *,
                thresholds: Sequence[float] = DEFAULT_THRESHOLDS, title: str = "cutalign inspect",
                max_flagged_fraction: float = 1.0) -> str:
    """One self-contained HTML page: the flagged-fraction table, then every row with its flagged tokens
    highlighted (red: flagged; yellow: more likely under the judgment, but not past λ) and each token's r_t and
    log-probabilities in its tooltip. All text from the data is escaped; the page has no scripts."""
    e = html.escape
    fractions = flagged_fraction_by_threshold(rows, sorted({*thresholds, float(threshold)}), max_flagged_fraction)
    contrast = any(row.contrast_logps is not None for row in rows)
    current = ' class="current"'
    table = "".join(
        f"<tr{current if value == threshold else ''}><td>{value:g}</td><td>{100 * fraction:.2f} %</td></tr>"
        for value, fraction in fractions.items()
    )
    sections = []
    for row in rows:
        flags = row.flags(threshold, max_flagged_fraction)
        spans = []
        neutral = row.contrast_logps or [None] * len(flags)
        for piece, flagged, ratio, plain, judged, j0 in zip(row.pieces, flags, row.ratios, row.plain_logps,
                                                            row.judgment_logps, neutral):
            tip = f"r = {ratio:.4g} | log p(y|x) = {plain:.3f} | log p(y|x,j) = {judged:.3f}"
            tip += f" | log p(y|x,j0) = {j0:.3f}" if j0 is not None else ""
            css = "flagged" if flagged else "raised" if ratio > 1 else ""
            text = e(_visible(piece) if flagged else piece)
            spans.append(f'<span class="{css}" title="{e(tip)}">{text}</span>' if css else
                         f'<span title="{e(tip)}">{text}</span>')
        sections.append(
            f"<section><h2>Row {e(row.id)}</h2>"
            f"<p>{sum(flags)} of {len(flags)} response tokens flagged at λ = {threshold:g}</p>"
            f'<div class="label">Prompt</div><pre>{e(_prompt_text(row.prompt))}</pre>'
            f'<div class="label">Judgment</div><pre>{e(row.judgment)}</pre>'
            f'<div class="label">Response</div><pre>{"".join(spans)}</pre></section>'
        )
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title>'
        f"<style>{_CSS}</style></head><body><h1>{e(title)}</h1>"
        f"<p>A response token is flagged (gets unlikelihood in CUT) when r<sub>t</sub> = p(y<sub>t</sub>|x,j) / "
        f"p(y<sub>t</sub>|x{',j0' if contrast else ''}) &gt; λ"
        + (f", at most {max_flagged_fraction:g} of a row's tokens" if max_flagged_fraction < 1 else "")
        + f". Hover a token for its ratio. {len(rows)} judged rows.</p>"
        f"<table><tr><th>λ</th><th>flagged tokens</th></tr>{table}</table>"
        + "".join(sections) + "</body></html>\n"
    )

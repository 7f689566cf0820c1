"""Which response tokens CUT flags at step 0 under each judgment variant, and whether they are the ones at fault.

For the judgment-content ablation: the "p+ul" mix reads the judgment only through the flags ``r_t > λ``. If the
specific judgments flag the tokens they quote (a comma, a forbidden word) more often than a generic or a shuffled
judgment does, the content steers the unlikelihood term; if all variants flag about the same tokens, it does not.

The ratios come from :func:`cutalign.inspect.token_ratios` (the trainer's own tokenization, views and flags) on the
untrained model. "Evidence" tokens are the response tokens whose text (stripped, non-empty) occurs inside a quoted
span (``'...'``) of the row's *specific* (rule-judge) judgment: the words the judge blames, e.g. ``'light, bent'``.
"""

from __future__ import annotations

import re

from cutalign.inspect import token_ratios

_QUOTED = re.compile(r"'([^']+)'")


def evidence_spans(judgment: str) -> list[str]:
    """The quoted spans of a judgment, e.g. ``["light, bent", "drops, splits"]``."""
    return _QUOTED.findall(judgment or "")


def is_evidence(piece: str, spans: list[str]) -> bool:
    """Whether a token's text (stripped) is non-empty and occurs inside one of the quoted spans."""
    text = piece.strip()
    return bool(text) and any(text in span for span in spans)


def flag_report(model, tokenizer, variants: dict[str, list[dict]], threshold: float) -> dict[str, dict]:
    """Per variant: flagged fraction, mean r_t, share of flags on evidence tokens, share of evidence tokens flagged,
    and the overlap (Jaccard) of its flagged tokens with those of the ``"rule"`` variant.

    ``variants`` maps a name to rows (the same rows, same order, in every variant: only the judgments differ); it
    must include ``"rule"``, whose judgments define the evidence.
    """
    specific = {row["id"]: row["judgment"] for row in variants["rule"] if row["judgment"] is not None}
    flags: dict[str, dict[str, list[bool]]] = {}
    report = {}
    for name, rows in variants.items():
        ratios = token_ratios(model, tokenizer, [r for r in rows if r["judgment"] is not None], template="chat")
        tokens = flagged = on_evidence = evidence = 0
        ratio_sum = 0.0
        flags[name] = {}
        for row in ratios:
            spans = evidence_spans(specific.get(row.id, ""))
            row_flags = row.flags(threshold)
            flags[name][row.id] = row_flags
            for piece, flag, ratio in zip(row.pieces, row_flags, row.ratios):
                hit = is_evidence(piece, spans)
                tokens += 1
                ratio_sum += ratio
                flagged += flag
                evidence += hit
                on_evidence += flag and hit
        report[name] = {
            "rows": len(ratios), "tokens": tokens, "flagged_fraction": flagged / max(tokens, 1),
            "mean_ratio": ratio_sum / max(tokens, 1), "evidence_fraction": evidence / max(tokens, 1),
            "flags_on_evidence": on_evidence / max(flagged, 1), "evidence_flagged": on_evidence / max(evidence, 1),
        }
    for name in variants:
        both = either = 0
        for row_id, row_flags in flags[name].items():
            reference = flags["rule"].get(row_id, [])
            for a, b in zip(row_flags, reference):
                both += a and b
                either += a or b
        report[name]["jaccard_with_rule"] = both / max(either, 1)
    return report

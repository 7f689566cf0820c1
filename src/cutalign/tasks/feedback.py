"""Wording a judgment from the violations a response commits, in a few natural styles.

A judgment always names every violated constraint and quotes the evidence (both come from the `Violation`s); only
the wording around them varies: the subject ("the response", "your reply", ...), the sentence pattern, and how
several problems are strung together. The variation keeps CUT from learning one fixed sentence frame, and the
choice is seeded by the instruction and the response, so the same pair always gets the same judgment (also across
processes: the seed is a SHA-256 digest, not Python's salted `hash`).
"""

from __future__ import annotations

import hashlib
import random

from .base import Violation

_SUBJECTS = ("the response", "the answer", "your reply", "this response")

_SENTENCES = (
    "{Subject} {found}; the instruction asks for {asked}.",
    "The instruction asks for {asked}, but {subject} {found}.",
    "{Subject} {found}, while the instruction calls for {asked}.",
    "Expected {asked}, yet {subject} {found}.",
)

_NUMBERS = ("One", "Two", "Three", "Four", "Five", "Six", "Seven", "Eight", "Nine", "Ten")


def judgment_rng(instruction: str, response: str) -> random.Random:
    """The random generator that picks the wording for this (instruction, response) pair."""
    digest = hashlib.sha256(f"{instruction}\x00{response}".encode("utf-8", "surrogatepass")).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _sentence(violation: Violation, rng: random.Random) -> str:
    subject = rng.choice(_SUBJECTS)
    template = rng.choice(_SENTENCES)
    return template.format(Subject=subject[0].upper() + subject[1:], subject=subject,
                           found=violation.found, asked=violation.asked)


def write_judgment(violations: list[Violation], rng: random.Random) -> str:
    """One judgment naming every violation, in a style drawn from `rng`: the sentences alone, after a short
    opener, or counted and numbered."""
    if not violations:
        raise ValueError("a judgment needs at least one violation")
    sentences = [_sentence(violation, rng) for violation in violations]
    style = rng.randrange(3)
    if style == 0:
        return " ".join(sentences)
    if style == 1:
        opener = rng.choice(("Not quite.", "This does not follow the instruction.", "Close, but not there yet."))
        return " ".join([opener, *sentences])
    count = len(sentences)
    label = f"{_NUMBERS[count - 1] if count <= len(_NUMBERS) else count} problem{'s' * (count > 1)}"
    if count == 1:
        return f"{label}: {sentences[0]}"
    return f"{label}: " + " ".join(f"({i}) {s}" for i, s in enumerate(sentences, start=1))

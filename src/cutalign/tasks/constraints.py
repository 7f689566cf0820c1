"""Verifiable constraints: every kind, which kinds may share a prompt, and the parser that reads them back.

Each constraint kind is a small frozen dataclass (see `tasks.base`). `sentence()` gives the exact sentence
appended to a base instruction, in one of the kind's phrasings; `parse_constraints` recovers the constraints, with
their phrasings, from a prompt string by matching those sentences (so a prompt that went through a JSON file judges
exactly like the original); `check(response)` returns a judgment that names what is wrong and quotes the offending
words, or None when satisfied.

The judgments are meant to be learned from (CUT conditions the model on them), so they quote the words to change
rather than giving a bare pass/fail.

This module defines the six original kinds (their first phrasing is the sentence they always had, so prompts saved
before the other phrasings existed parse and judge as before); `tasks.wording` and `tasks.layout` define the rest.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

from .base import (
    MIN_WORDS,
    SEEN_PHRASINGS,
    Constraint,
    Violation,
    clip,
    quote,
    sentence_patterns,
    too_short,
    word_pattern,
    words,
)
from .layout import JsonOnly, Paragraphs, Placeholders, Postscript, Quoted, Sections, Title, TwoAnswers
from .wording import AllCaps, EndsWith, LetterFrequency, MinWords, StartsWith, WordFrequency

__all__ = [
    "CONSTRAINT_TYPES", "INCOMPATIBLE", "KINDS", "MIN_WORDS", "SEEN_PHRASINGS", "AllCaps", "AvoidWord",
    "BulletPoints", "Constraint", "EndsWith", "IncludeKeyword", "JsonOnly", "LetterFrequency", "Lowercase",
    "MaxWords", "MinWords", "NoCommas", "Paragraphs", "Placeholders", "Postscript", "Quoted", "Sections",
    "StartsWith", "Title", "TwoAnswers", "Violation", "WordFrequency", "compatible", "parse_constraints",
    "phrasing_split", "too_short", "words",
]


@dataclass(frozen=True)
class Lowercase(Constraint):
    """No capital letter anywhere."""

    kind: ClassVar[str] = "lowercase"
    PHRASINGS: ClassVar[tuple[str, ...]] = (
        "Answer in all lowercase letters.",
        "Write your whole reply without a single capital letter.",
        "Keep every letter of your response in lowercase.",
        "Use no uppercase letters at all in what you write.",
        "Your answer must be written entirely in small letters, with no capitals.",
    )

    def violation(self, response: str) -> Violation | None:
        capitalized = [token.strip(".,;:!?\"'()[]*") for token in response.split() if any(ch.isupper() for ch in token)]
        if not capitalized:
            return None
        return Violation(f"uses capital letters, e.g. in {quote(capitalized)}", "all lowercase letters")


@dataclass(frozen=True)
class NoCommas(Constraint):
    """No comma anywhere."""

    kind: ClassVar[str] = "no_commas"
    PHRASINGS: ClassVar[tuple[str, ...]] = (
        "Do not use any commas in your answer.",
        "Write your reply without a single comma.",
        "Leave commas out of your response entirely.",
        "Your answer must contain zero commas.",
        "Avoid the comma character completely in what you write.",
    )

    def violation(self, response: str) -> Violation | None:
        count = response.count(",")
        if not count:
            return None
        what = "a comma" if count == 1 else f"{count} commas"
        places = [_comma_in_context(response, m.start()) for m in re.finditer(",", response)]
        return Violation(f"uses {what}: {quote(places)}", "no commas")


def _comma_in_context(text: str, index: int) -> str:
    """The comma at `index` with the word before and after it, as written: 'light, bent'."""
    before = (text[:index].split() or [""])[-1].rsplit(",", 1)[-1]
    after = (text[index + 1:].split() or [""])[0].split(",", 1)[0]
    space_before = " " if text[:index][-1:].isspace() else ""
    space_after = " " if text[index + 1:index + 2].isspace() else ""
    return f"{before}{space_before},{space_after}{after}".strip()


@dataclass(frozen=True)
class IncludeKeyword(Constraint):
    """The response must contain `word` (any case, also as a plural or possessive)."""

    word: str
    kind: ClassVar[str] = "include_keyword"
    PHRASINGS: ClassVar[tuple[str, ...]] = (
        'Include the word "{word}" in your answer.',
        'Make sure your reply mentions the word "{word}".',
        'Work the word "{word}" into your response.',
        'Your answer has to contain the word "{word}" somewhere.',
        'Somewhere in what you write, use the word "{word}".',
    )

    def violation(self, response: str) -> Violation | None:
        if word_pattern(self.word).search(response):
            return None
        return Violation(f"never uses the word '{self.word}'", f"the word '{self.word}'")


@dataclass(frozen=True)
class AvoidWord(Constraint):
    """The response must not contain `word` (any case, nor its plural or possessive)."""

    word: str
    kind: ClassVar[str] = "avoid_word"
    PHRASINGS: ClassVar[tuple[str, ...]] = (
        'Do not use the word "{word}" anywhere in your answer.',
        'Never write the word "{word}" in your reply.',
        'Keep the word "{word}" out of your response.',
        'The word "{word}" must not appear in what you write.',
        'Steer clear of the word "{word}" entirely.',
    )

    def violation(self, response: str) -> Violation | None:
        found = [m.group(0) for m in word_pattern(self.word).finditer(response)]
        if not found:
            return None
        how_often = "once, as" if len(found) == 1 else f"{len(found)} times, e.g. as"
        return Violation(f"uses the word '{self.word}' {how_often} {quote(found)}",
                         f"an answer without the word '{self.word}'")


@dataclass(frozen=True)
class MaxWords(Constraint):
    """At most `n` words (see `words` for what counts as a word)."""

    n: int
    kind: ClassVar[str] = "max_words"
    PHRASINGS: ClassVar[tuple[str, ...]] = (
        "Answer in at most {n} words.",
        "Keep your reply to {n} words or fewer.",
        "Your response must not exceed {n} words.",
        "Use no more than {n} words in total.",
        "Stay within a limit of {n} words.",
    )

    def violation(self, response: str) -> Violation | None:
        found = words(response)
        if len(found) <= self.n:
            return None
        return Violation(
            f"has {len(found)} words, and the words past the limit start with '{clip(' '.join(found[self.n:]))}'",
            f"at most {self.n} words",
        )


_BULLET = re.compile(r"^\s*[-*] ")


@dataclass(frozen=True)
class BulletPoints(Constraint):
    """Exactly `n` bullet points: lines starting with "- " or "* " (leading spaces allowed)."""

    n: int
    kind: ClassVar[str] = "bullet_points"
    PHRASINGS: ClassVar[tuple[str, ...]] = (
        'Answer with exactly {n} bullet points, each on its own line starting with "- ".',
        'Format your reply as exactly {n} bullet points, one per line, each beginning with "- ".',
        'Give exactly {n} list items, each on a separate line that starts with "- ".',
        'Structure your response as {n} bullet points, no more and no fewer, every one on its own line opening '
        'with "- ".',
        'Present precisely {n} points as a dash list, each line starting with "- ".',
    )

    def violation(self, response: str) -> Violation | None:
        bullets = [line.strip() for line in response.splitlines() if _BULLET.match(line)]
        if len(bullets) == self.n:
            return None
        asked = f"exactly {self.n} bullet points (lines starting with '- ')"
        if not bullets:
            return Violation(f"has no bullet points and starts with '{clip(response.strip())}'", asked)
        have = "1 bullet point" if len(bullets) == 1 else f"{len(bullets)} bullet points"
        if len(bullets) > self.n:
            return Violation(f"has {have}, and the extra ones are {quote([clip(b) for b in bullets[self.n:]])}", asked)
        return Violation(f"has only {have}: {quote([clip(b) for b in bullets])}", asked)


CONSTRAINT_TYPES: tuple[type[Constraint], ...] = (
    Lowercase, NoCommas, IncludeKeyword, AvoidWord, MaxWords, BulletPoints,
    MinWords, AllCaps, WordFrequency, LetterFrequency, StartsWith, EndsWith,
    Quoted, JsonOnly, Title, Placeholders, Postscript, Paragraphs, Sections, TwoAnswers,
)
"""Every constraint kind's class, in the order of `KINDS`."""

KINDS: tuple[str, ...] = tuple(cls.kind for cls in CONSTRAINT_TYPES)
"""Every constraint kind, in a fixed order: the six original kinds first, as they always were."""

INCOMPATIBLE: frozenset[frozenset[str]] = frozenset(frozenset(pair) for pair in (
    # contradictory
    ("lowercase", "all_caps"),
    ("max_words", "min_words"),
    # the same word twice over
    ("include_keyword", "word_frequency"),
    # JSON leaves no room for prose layout
    *(("json_only", kind) for kind in ("bullet_points", "starts_with", "ends_with", "quoted", "title",
                                       "placeholders", "postscript", "paragraphs", "sections", "two_answers")),
    # opening and closing quotes take the first and last characters
    *(("quoted", kind) for kind in ("bullet_points", "starts_with", "ends_with", "title", "postscript",
                                    "paragraphs", "sections", "two_answers")),
    # two answers: unclear which of them the layout applies to
    *(("two_answers", kind) for kind in ("bullet_points", "starts_with", "ends_with", "title", "postscript",
                                         "paragraphs", "sections")),
    # both claim the first line, the last line, or the whole layout
    ("starts_with", "title"),
    ("starts_with", "sections"),
    ("ends_with", "postscript"),
    ("paragraphs", "sections"),
))
"""Pairs of kinds that never share a prompt: they contradict each other, repeat each other, or compete for the
same part of the answer. Every other pair can be satisfied together."""


def compatible(kinds) -> bool:
    """Whether the given kinds may share one prompt: distinct, and no two of them in `INCOMPATIBLE`."""
    kinds = list(kinds)
    if len(set(kinds)) != len(kinds):
        return False
    return not any(frozenset((a, b)) in INCOMPATIBLE for i, a in enumerate(kinds) for b in kinds[i + 1:])


def parse_constraints(instruction: str) -> list[Constraint]:
    """The constraints whose sentences appear in `instruction`, in order of appearance, each with its phrasing.

    Only the exact sentences written by `Constraint.sentence()` are recognised, so that
    `parse_constraints(base + " " + c.sentence()) == [c]` for every constraint `c`.
    """
    if not isinstance(instruction, str):
        raise TypeError(f"instruction must be a string, got {type(instruction).__name__}")
    found: list[tuple[int, Constraint]] = []
    for cls in CONSTRAINT_TYPES:
        for phrasing, pattern in enumerate(sentence_patterns(cls)):
            found.extend((match.start(), cls.from_sentence(match, phrasing)) for match in pattern.finditer(instruction))
    return [constraint for _, constraint in sorted(found, key=lambda pair: pair[0])]


def phrasing_split(constraints: list[Constraint]) -> str | None:
    """"unseen" when any constraint uses a held-out phrasing, "seen" when all use training phrasings, None if none."""
    if not constraints:
        return None
    return "seen" if all(c.seen for c in constraints) else "unseen"

"""Verifiable constraints: the sentence appended to an instruction, its parser, and its checker.

Each constraint kind is a small frozen dataclass. `sentence()` gives the exact sentence appended to a base
instruction, `parse_constraints` recovers the constraints from a prompt string by matching those sentences (so a
prompt that went through a JSON file judges exactly like the original), and `check(response)` returns a judgment:
a natural-language sentence that names what is wrong and quotes the offending words, or None when satisfied.

The judgments are meant to be learned from (CUT conditions the model on them), so they quote the words to change
rather than giving a bare pass/fail.

Words: a word is a whitespace-separated token containing at least one letter or digit, so a bullet marker "-" or a
lone "..." is not a word. A response with fewer than `MIN_WORDS` words fails every constraint: otherwise a model
that says nothing would satisfy "lowercase" or "no commas" for free.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

MIN_WORDS = 3
"""A response needs at least this many words to satisfy any constraint."""

_WORD = re.compile(r"[^\W_]+(?:['’-][^\W_]+)*")
"""One keyword: letters or digits, with inner apostrophes or hyphens ("don't", "well-known")."""


def words(text: str) -> list[str]:
    """The words of `text`: whitespace-separated tokens that contain at least one letter or digit."""
    return [token for token in text.split() if any(ch.isalnum() for ch in token)]


def _quote(items: list[str], limit: int = 3) -> str:
    """`'a', 'b', 'c'`: the first `limit` distinct items, quoted, in order of appearance."""
    distinct = list(dict.fromkeys(items))[:limit]
    return ", ".join(f"'{item}'" for item in distinct)


def _clip(text: str, n_words: int = 6) -> str:
    """The first `n_words` words of `text`, with "..." when it goes on."""
    tokens = text.split()
    return " ".join(tokens[:n_words]) + (" ..." if len(tokens) > n_words else "")


def too_short(response: str) -> str | None:
    """The judgment for an empty or near-empty response (fewer than `MIN_WORDS` words), else None."""
    found = words(response)
    if not found:
        return "The response is empty, so it does not answer or follow the instruction."
    if len(found) < MIN_WORDS:
        return (
            f"The response is too short to follow the instruction: it only says '{' '.join(found)}'. "
            "Answer the instruction in full sentences."
        )
    return None


def _word_pattern(word: str) -> re.Pattern[str]:
    """Matches `word` as a whole word, any case, with an optional plural or possessive ending ("s", "es", "'s").

    A hyphen counts as a word boundary: "rainbow-colored" uses the word "rainbow", "rainbowlike" does not.
    """
    return re.compile(rf"(?<![\w'’]){re.escape(word)}(?:s|es|['’]s)?(?![\w'’])", re.IGNORECASE)


def _check_word(word: str, field: str) -> None:
    if not isinstance(word, str) or not _WORD.fullmatch(word):
        raise ValueError(f"{field} must be a single word (letters or digits, no spaces or quotes), got {word!r}")


def _check_count(n: int, field: str) -> None:
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"{field} must be a positive integer, got {n!r}")


class Constraint:
    """Base of the constraint kinds: `check` applies the emptiness rule, then the kind's own rule."""

    kind: ClassVar[str]

    def sentence(self) -> str:
        raise NotImplementedError

    def _violation(self, response: str) -> str | None:
        raise NotImplementedError

    def check(self, response: str) -> str | None:
        """A judgment naming what is wrong with `response` (quoting offending words), or None when satisfied."""
        return too_short(response) or self._violation(response)


@dataclass(frozen=True)
class Lowercase(Constraint):
    kind: ClassVar[str] = "lowercase"

    def sentence(self) -> str:
        return "Answer in all lowercase letters."

    def _violation(self, response: str) -> str | None:
        capitalized = [token.strip(".,;:!?\"'()[]*") for token in response.split() if any(ch.isupper() for ch in token)]
        if not capitalized:
            return None
        return (
            f"The response uses capital letters, e.g. in {_quote(capitalized)}; "
            "the instruction asks for all lowercase letters."
        )


@dataclass(frozen=True)
class NoCommas(Constraint):
    kind: ClassVar[str] = "no_commas"

    def sentence(self) -> str:
        return "Do not use any commas in your answer."

    def _violation(self, response: str) -> str | None:
        count = response.count(",")
        if not count:
            return None
        what = "a comma" if count == 1 else f"{count} commas"
        before = [m.group(1) for m in re.finditer(r"([^\s,]+)\s*,", response)]
        where = f", e.g. after {_quote(before)}" if before else ""
        return f"The response uses {what}{where}; the instruction asks for no commas."


@dataclass(frozen=True)
class IncludeKeyword(Constraint):
    """The response must contain `word` (any case, also as a plural or possessive)."""

    word: str
    kind: ClassVar[str] = "include_keyword"

    def __post_init__(self) -> None:
        _check_word(self.word, "include_keyword.word")

    def sentence(self) -> str:
        return f'Include the word "{self.word}" in your answer.'

    def _violation(self, response: str) -> str | None:
        if _word_pattern(self.word).search(response):
            return None
        return f"The response never uses the word '{self.word}'; the instruction asks to include it."


@dataclass(frozen=True)
class AvoidWord(Constraint):
    """The response must not contain `word` (any case, nor its plural or possessive)."""

    word: str
    kind: ClassVar[str] = "avoid_word"

    def __post_init__(self) -> None:
        _check_word(self.word, "avoid_word.word")

    def sentence(self) -> str:
        return f'Do not use the word "{self.word}" anywhere in your answer.'

    def _violation(self, response: str) -> str | None:
        found = [m.group(0) for m in _word_pattern(self.word).finditer(response)]
        if not found:
            return None
        times = "once, as" if len(found) == 1 else f"{len(found)} times, e.g. as"
        return (
            f"The response uses the word '{self.word}' {times} {_quote(found)}; "
            "the instruction asks to avoid it."
        )


@dataclass(frozen=True)
class MaxWords(Constraint):
    """At most `n` words (see `words` for what counts as a word)."""

    n: int
    kind: ClassVar[str] = "max_words"

    def __post_init__(self) -> None:
        _check_count(self.n, "max_words.n")

    def sentence(self) -> str:
        return f"Answer in at most {self.n} words."

    def _violation(self, response: str) -> str | None:
        found = words(response)
        if len(found) <= self.n:
            return None
        return (
            f"The response has {len(found)} words; the instruction allows at most {self.n}. "
            f"The words past the limit start with '{_clip(' '.join(found[self.n:]))}'."
        )


_BULLET = re.compile(r"^\s*[-*] ")


@dataclass(frozen=True)
class BulletPoints(Constraint):
    """Exactly `n` bullet points: lines starting with "- " or "* " (leading spaces allowed)."""

    n: int
    kind: ClassVar[str] = "bullet_points"

    def __post_init__(self) -> None:
        _check_count(self.n, "bullet_points.n")

    def sentence(self) -> str:
        return f'Answer with exactly {self.n} bullet points, each on its own line starting with "- ".'

    def _violation(self, response: str) -> str | None:
        bullets = [line.strip() for line in response.splitlines() if _BULLET.match(line)]
        if len(bullets) == self.n:
            return None
        wanted = f"the instruction asks for exactly {self.n}"
        if not bullets:
            return (
                f"The response has no bullet points (lines starting with '- '); {wanted}. "
                f"It starts with '{_clip(response.strip())}' instead."
            )
        have = "1 bullet point" if len(bullets) == 1 else f"{len(bullets)} bullet points"
        if len(bullets) > self.n:
            extra = [_clip(b) for b in bullets[self.n:]]
            return f"The response has {have}; {wanted}. The extra ones are {_quote(extra)}."
        return f"The response has {have}; {wanted}. It only lists {_quote([_clip(b) for b in bullets])}."


KINDS: tuple[str, ...] = ("lowercase", "no_commas", "include_keyword", "avoid_word", "max_words", "bullet_points")
"""Every constraint kind, in a fixed order."""

_PARSERS: tuple[tuple[re.Pattern[str], type[Constraint]], ...] = (
    (re.compile(r"Answer in all lowercase letters\."), Lowercase),
    (re.compile(r"Do not use any commas in your answer\."), NoCommas),
    (re.compile(r'Include the word "([^"\s]+)" in your answer\.'), IncludeKeyword),
    (re.compile(r'Do not use the word "([^"\s]+)" anywhere in your answer\.'), AvoidWord),
    (re.compile(r"Answer in at most (\d+) words\."), MaxWords),
    (re.compile(r'Answer with exactly (\d+) bullet points, each on its own line starting with "- "\.'), BulletPoints),
)


def parse_constraints(instruction: str) -> list[Constraint]:
    """The constraints whose sentences appear in `instruction`, in order of appearance.

    Only the exact sentences written by `Constraint.sentence()` are recognised, so that
    `parse_constraints(base + " " + c.sentence()) == [c]` for every constraint `c`.
    """
    if not isinstance(instruction, str):
        raise TypeError(f"instruction must be a string, got {type(instruction).__name__}")
    found: list[tuple[int, Constraint]] = []
    for pattern, cls in _PARSERS:
        for match in pattern.finditer(instruction):
            args = match.groups()
            if cls in (MaxWords, BulletPoints):
                constraint = cls(int(args[0]))
            else:
                constraint = cls(*args)
            found.append((match.start(), constraint))
    return [constraint for _, constraint in sorted(found, key=lambda pair: pair[0])]

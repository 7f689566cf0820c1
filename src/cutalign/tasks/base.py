"""What every constraint kind shares: the word rules, the quoting helpers, phrasings, and the `Constraint` base.

A constraint kind is a frozen dataclass with a few named fields (`word`, `n`, `phrase`, `letter`, `header`) and a
tuple of `PHRASINGS`: sentence templates such as `'Include the word "{word}" in your answer.'`. A constraint also
records which phrasing it is written in (`phrasing`, an index into `PHRASINGS`), so the sentence it writes and the
sentence it is parsed back from are the same string. The first `SEEN_PHRASINGS` phrasings of every kind are the
ones training prompts use; the others are kept for held-out prompts, to measure whether what a model learned
carries over to instructions worded in a way it never saw.

Field names mean the same thing in every kind, so one table (`_FIELDS`) says how each is written in a sentence
(the regular expression the parser uses) and what values it accepts.

Words: a word is a whitespace-separated token containing at least one letter or digit, so a bullet marker "-" or a
lone "..." is not a word. A response with fewer than `MIN_WORDS` words fails every constraint: otherwise a model
that says nothing would satisfy "lowercase" or "no commas" for free.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from dataclasses import dataclass
from typing import ClassVar

MIN_WORDS = 3
"""A response needs at least this many words to satisfy any constraint."""

SEEN_PHRASINGS = 3
"""Phrasings 0 .. SEEN_PHRASINGS - 1 of every kind are used by training prompts; the rest only by held-out ones."""

_WORD = r"[^\W_]+(?:['’-][^\W_]+)*"
"""One keyword: letters or digits, with inner apostrophes or hyphens ("don't", "well-known")."""

# field name -> (pattern of its value in a sentence, what a valid value is, for error messages)
_FIELDS: dict[str, tuple[str, str]] = {
    "word": (_WORD, "a single word (letters or digits, no spaces or quotes)"),
    "n": (r"\d+", "a positive integer"),
    "phrase": (r"[^\W_][^\"\n]*?", "a phrase of words without double quotes or line breaks"),
    "letter": (r"[a-z]", "a single lowercase letter a-z"),
    "header": (r"[A-Z][a-z]+", "a capitalized word such as 'Part'"),
}


def words(text: str) -> list[str]:
    """The words of `text`: whitespace-separated tokens that contain at least one letter or digit."""
    return [token for token in text.split() if any(ch.isalnum() for ch in token)]


def quote(items: list[str], limit: int = 3) -> str:
    """`'a', 'b', 'c'`: the first `limit` distinct items, quoted, in order of appearance."""
    distinct = list(dict.fromkeys(items))[:limit]
    return ", ".join(f"'{item}'" for item in distinct)


def clip(text: str, n_words: int = 6) -> str:
    """The first `n_words` whitespace tokens of `text`, with "..." when it goes on."""
    tokens = text.split()
    return " ".join(tokens[:n_words]) + (" ..." if len(tokens) > n_words else "")


def clip_end(text: str, n_words: int = 6) -> str:
    """The last `n_words` whitespace tokens of `text`, with "..." in front when there is more before them."""
    tokens = text.split()
    return ("... " if len(tokens) > n_words else "") + " ".join(tokens[-n_words:])


def times(count: int) -> str:
    """'once', 'twice', '3 times'."""
    return {1: "once", 2: "twice"}.get(count, f"{count} times")


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


def word_pattern(word: str) -> re.Pattern[str]:
    """Matches `word` as a whole word, any case, with an optional plural or possessive ending ("s", "es", "'s").

    A hyphen counts as a word boundary: "rainbow-colored" uses the word "rainbow", "rainbowlike" does not.
    """
    return re.compile(rf"(?<![\w'’]){re.escape(word)}(?:s|es|['’]s)?(?![\w'’])", re.IGNORECASE)


@dataclass(frozen=True)
class Violation:
    """One broken constraint, in two parts that the judge words in several styles (see `tasks.feedback`).

    `found` says what the response does instead, quoting it; it reads after a subject such as "the response"
    ("uses 2 commas: 'light, bent', 'drops, splits'"). `asked` names what the instruction asks for, as a noun
    phrase that reads after "the instruction asks for" ("no commas").
    """

    found: str
    asked: str

    def plain(self) -> str:
        """The one-sentence judgment of this violation in the plain style."""
        return f"The response {self.found}; the instruction asks for {self.asked}."


@dataclass(frozen=True)
class Constraint:
    """Base of the constraint kinds.

    Subclasses set `kind` and `PHRASINGS`, declare their fields (names from `_FIELDS`) and implement `violation`.
    `check` applies the emptiness rule, then the kind's own rule. Equality includes the phrasing: a constraint is
    what a prompt says, worded as it says it.
    """

    phrasing: int = dataclasses.field(default=0, kw_only=True)
    kind: ClassVar[str]
    PHRASINGS: ClassVar[tuple[str, ...]]

    def __post_init__(self) -> None:
        if type(self.phrasing) is not int or not 0 <= self.phrasing < len(self.PHRASINGS):
            raise ValueError(
                f"{self.kind}.phrasing must be an integer from 0 to {len(self.PHRASINGS) - 1}, got {self.phrasing!r}"
            )
        for name, value in self.values().items():
            pattern, description = _FIELDS[name]
            ok = (type(value) is int and value >= 1) if name == "n" else (
                isinstance(value, str) and re.fullmatch(pattern, value) is not None and value == value.strip()
            )
            if not ok:
                raise ValueError(f"{self.kind}.{name} must be {description}, got {value!r}")

    def values(self) -> dict:
        """The constraint's own fields (everything but `phrasing`), by name."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "phrasing"}

    @property
    def seen(self) -> bool:
        """Whether the sentence uses a phrasing of the training prompts (see `SEEN_PHRASINGS`)."""
        return self.phrasing < SEEN_PHRASINGS

    def sentence(self) -> str:
        """The sentence appended to a base instruction, in this constraint's phrasing."""
        values = self.values()
        return re.sub(r"\{(\w+)\}", lambda m: str(values[m.group(1)]), self.PHRASINGS[self.phrasing])

    def violation(self, response: str) -> Violation | None:
        """What is wrong with `response` under this kind's own rule (the emptiness rule aside), or None."""
        raise NotImplementedError

    def check(self, response: str) -> str | None:
        """A judgment naming what is wrong with `response` (quoting offending words), or None when satisfied."""
        short = too_short(response)
        if short is not None:
            return short
        found = self.violation(response)
        return None if found is None else found.plain()

    @classmethod
    def from_sentence(cls, match: re.Match[str], phrasing: int) -> Constraint:
        """The constraint written by the sentence that `match` (of `sentence_patterns()[phrasing]`) found."""
        values = {name: int(text) if name == "n" else text for name, text in match.groupdict().items()}
        return cls(**values, phrasing=phrasing)


@functools.cache
def sentence_patterns(cls: type[Constraint]) -> tuple[re.Pattern[str], ...]:
    """One regular expression per phrasing of `cls`, matching exactly the sentences `sentence()` writes.

    The template's text is matched literally; its first `{field}` becomes a named group with the field's pattern,
    a repeated `{field}` must repeat the same value.
    """
    patterns = []
    for template in cls.PHRASINGS:
        parts = re.split(r"\{(\w+)\}", template)
        regex, named = "", set()
        for i, part in enumerate(parts):
            if i % 2 == 0:
                regex += re.escape(part)
            elif part in named:
                regex += f"(?P={part})"
            else:
                named.add(part)
                regex += f"(?P<{part}>{_FIELDS[part][0]})"
        patterns.append(re.compile(regex))
    return tuple(patterns)

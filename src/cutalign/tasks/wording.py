"""Constraint kinds about the words of the answer: length, case, how often a word or letter appears, and its first
and last words.

Comparisons with a given word, letter or phrase ignore case, so these kinds combine with `lowercase` and
`all_caps` (an answer in capitals that starts with "GOOD QUESTION" starts with "Good question").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

from .base import Constraint, Violation, clip, clip_end, quote, times, word_pattern, words


@dataclass(frozen=True)
class MinWords(Constraint):
    """At least `n` words (see `words` for what counts as a word)."""

    n: int
    kind: ClassVar[str] = "min_words"
    PHRASINGS: ClassVar[tuple[str, ...]] = (
        "Write no fewer than {n} words.",
        "Your reply should be {n} words long or longer.",
        "Make your response no shorter than {n} words.",
        "Use a minimum of {n} words in your answer.",
        "Give an answer of {n} words or more.",
    )

    def violation(self, response: str) -> Violation | None:
        count = len(words(response))
        if count >= self.n:
            return None
        return Violation(f"has only {count} words and stops at '{clip_end(response.strip())}'",
                         f"at least {self.n} words")


@dataclass(frozen=True)
class AllCaps(Constraint):
    """No lowercase letter anywhere."""

    kind: ClassVar[str] = "all_caps"
    PHRASINGS: ClassVar[tuple[str, ...]] = (
        "Write the answer using nothing but capital letters.",
        "Use only uppercase letters in your reply.",
        "Every letter of your response must be a capital.",
        "Put all of what you write in upper case, with no small letters.",
        "Answer in all capitals.",
    )

    def violation(self, response: str) -> Violation | None:
        lower = [token.strip(".,;:!?\"'()[]*") for token in response.split() if any(ch.islower() for ch in token)]
        if not lower:
            return None
        return Violation(f"uses lowercase letters, e.g. in {quote(lower)}", "all capital letters")


@dataclass(frozen=True)
class WordFrequency(Constraint):
    """`word` at least `n` times (any case, also as a plural or possessive)."""

    word: str
    n: int
    kind: ClassVar[str] = "word_frequency"
    PHRASINGS: ClassVar[tuple[str, ...]] = (
        'Use the word "{word}" at least {n} times.',
        'Mention "{word}" {n} or more times in your reply.',
        'Bring up the word "{word}" on at least {n} separate occasions.',
        'Repeat the word "{word}" no fewer than {n} times.',
        'Say "{word}" at least {n} times in what you write.',
    )

    def violation(self, response: str) -> Violation | None:
        found = [m.group(0) for m in word_pattern(self.word).finditer(response)]
        if len(found) >= self.n:
            return None
        asked = f"the word '{self.word}' at least {self.n} times"
        if not found:
            return Violation(f"never uses the word '{self.word}'", asked)
        return Violation(f"uses the word '{self.word}' only {times(len(found))}, as {quote(found)}", asked)


@dataclass(frozen=True)
class LetterFrequency(Constraint):
    """The letter `letter` at least `n` times (either case)."""

    letter: str
    n: int
    kind: ClassVar[str] = "letter_frequency"
    PHRASINGS: ClassVar[tuple[str, ...]] = (
        'Use the letter "{letter}" at least {n} times.',
        'Have the letter "{letter}" turn up {n} or more times in your reply.',
        'Make sure the letter "{letter}" shows up at least {n} times in your response.',
        'Include no fewer than {n} occurrences of the letter "{letter}".',
        'Write the letter "{letter}" at least {n} times in your answer.',
    )

    def violation(self, response: str) -> Violation | None:
        count = response.lower().count(self.letter)
        if count >= self.n:
            return None
        asked = f"the letter '{self.letter}' at least {self.n} times"
        if not count:
            return Violation(f"never uses the letter '{self.letter}'", asked)
        holders = [token.strip(".,;:!?\"'()[]*") for token in response.split() if self.letter in token.lower()]
        return Violation(f"uses the letter '{self.letter}' only {times(count)}, in {quote(holders)}", asked)


def _letters(text: str) -> str:
    """`text` lowercased with every run of non-alphanumeric characters made one space, for phrase comparisons."""
    return " ".join(re.sub(r"[^\w]+|_", " ", text.lower()).split())


@dataclass(frozen=True)
class StartsWith(Constraint):
    """The answer's first words are `phrase` (any case; punctuation and spacing between words ignored)."""

    phrase: str
    kind: ClassVar[str] = "starts_with"
    PHRASINGS: ClassVar[tuple[str, ...]] = (
        'Begin your answer with the words "{phrase}".',
        'The very first words of your reply must be "{phrase}".',
        'Open your response with the phrase "{phrase}".',
        'Start what you write with exactly "{phrase}".',
        'Let your answer start with "{phrase}".',
    )

    def violation(self, response: str) -> Violation | None:
        wanted = _letters(self.phrase)
        if (_letters(response) + " ").startswith(wanted + " "):
            return None
        return Violation(f"starts with '{clip(response.strip(), len(wanted.split()) + 2)}' instead",
                         f"an answer that begins with '{self.phrase}'")


@dataclass(frozen=True)
class EndsWith(Constraint):
    """The answer's last words are `phrase` (any case; punctuation after it and between words ignored)."""

    phrase: str
    kind: ClassVar[str] = "ends_with"
    PHRASINGS: ClassVar[tuple[str, ...]] = (
        'End your answer with the words "{phrase}".',
        'The last words of your reply must be "{phrase}".',
        'Close your response with the phrase "{phrase}".',
        'Make "{phrase}" the final words of what you write.',
        'Let your answer end with "{phrase}".',
    )

    def violation(self, response: str) -> Violation | None:
        wanted = _letters(self.phrase)
        if (" " + _letters(response)).endswith(" " + wanted):
            return None
        return Violation(f"ends with '{clip_end(response.strip(), len(wanted.split()) + 2)}' instead",
                         f"an answer that ends with '{self.phrase}'")

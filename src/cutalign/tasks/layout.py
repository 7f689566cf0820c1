"""Constraint kinds about the shape of the answer: quotes around it, JSON, a title, placeholders, a postscript,
paragraphs, sections, two alternative answers.

Markers are matched leniently where case or spacing carries no meaning ("p.s." counts as "P.S.", "## PART 2" as a
"Part 2" header), so these kinds combine with `lowercase` and `all_caps`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import ClassVar

from .base import Constraint, Violation, clip, clip_end, quote

PARAGRAPH_BREAK = "***"
"""The line that separates paragraphs for `Paragraphs`."""

ANSWER_BREAK = "******"
"""The line that separates the two answers for `TwoAnswers`."""


def _blocks(text: str, marker: str) -> tuple[list[str], int]:
    """The non-empty blocks of `text` between lines that hold only `marker`, and how many such lines there are."""
    parts = re.split(rf"(?m)^[ \t]*{re.escape(marker)}[ \t]*$", text)
    return [part.strip() for part in parts if part.strip()], len(parts) - 1


@dataclass(frozen=True)
class Quoted(Constraint):
    """The whole answer between double quotes: it starts with one and ends with one (straight or curly)."""

    kind: ClassVar[str] = "quoted"
    PHRASINGS: ClassVar[tuple[str, ...]] = (
        "Place one double quotation mark before your first word and another after your last.",
        "Put your whole reply inside a pair of double quotes.",
        "Enclose the full response in double quotation marks, from the first word to the last.",
        "Surround everything you write with double quotes.",
        "Your complete answer should sit between an opening and a closing double quote.",
    )

    def violation(self, response: str) -> Violation | None:
        text = response.strip()
        opens, closes = text[:1] in '"“', len(text) > 1 and text[-1:] in '"”'
        if opens and closes:
            return None
        asked = "the whole answer wrapped in double quotes"
        start, end = clip(text, 3), clip_end(text, 3)
        if not opens and not closes:
            return Violation(f"starts with '{start}' and ends with '{end}', with no double quotes around it", asked)
        if not opens:
            return Violation(f"has no opening double quote: it starts with '{start}'", asked)
        return Violation(f"has no closing double quote: it ends with '{end}'", asked)


_FENCE = re.compile(r"```(?:json)?[ \t]*\n(.*?)\n[ \t]*```", re.DOTALL | re.IGNORECASE)


@dataclass(frozen=True)
class JsonOnly(Constraint):
    """The whole answer is one valid JSON value; a Markdown code fence around it is allowed (it is not prose)."""

    kind: ClassVar[str] = "json_only"
    PHRASINGS: ClassVar[tuple[str, ...]] = (
        "Reply in JSON: the answer must parse as JSON, with no prose around it.",
        "Reply with JSON only, with no text before or after it.",
        "Your whole response must be parseable JSON.",
        "Give your answer purely as JSON, without any extra prose.",
        "Output nothing but well-formed JSON.",
    )

    def violation(self, response: str) -> Violation | None:
        text = response.strip()
        fenced = _FENCE.fullmatch(text)
        body = fenced.group(1).strip() if fenced else text
        try:
            json.loads(body)
        except json.JSONDecodeError as error:
            rest = clip(body[error.pos:], 5)
            where = f"at '{rest}'" if rest else "at the end"
            return Violation(f"is not valid JSON: {error.msg[0].lower() + error.msg[1:]} {where}",
                             "valid JSON and nothing else")
        return None


@dataclass(frozen=True)
class Title(Constraint):
    """A title in double angle brackets, <<like this>>, somewhere on one line of the answer."""

    kind: ClassVar[str] = "title"
    PHRASINGS: ClassVar[tuple[str, ...]] = (
        "Give the answer a short title set between double angle brackets, for instance <<Rain at Dusk>>.",
        "Put a title at the top of your reply inside double angle brackets, like <<A Quiet Morning>>.",
        "Start your response with a title enclosed in << and >>.",
        "Head what you write with a title between double angle brackets, for example <<Notes on Tea>>.",
        "Add a title in the form <<Your Title>> as the first line of your answer.",
    )

    def violation(self, response: str) -> Violation | None:
        if re.search(r"<<[^<>\n]*[^\W_][^<>\n]*>>", response):
            return None
        return Violation(f"has no title in double angle brackets and starts with '{clip(response.strip())}'",
                         "a title in double angle brackets, like <<title>>")


@dataclass(frozen=True)
class Placeholders(Constraint):
    """At least `n` placeholders: square brackets around some text with a letter or digit, like [name]."""

    n: int
    kind: ClassVar[str] = "placeholders"
    PHRASINGS: ClassVar[tuple[str, ...]] = (
        "Leave at least {n} fill-in spots marked with square brackets, for instance [your name].",
        "Include {n} or more bracketed blanks the reader can fill in later, like [street].",
        "Your reply needs {n} or more placeholders shown in square brackets, for example [date].",
        "Put at least {n} bracketed placeholders such as [city] in your response.",
        "Mark at least {n} spots to fill in later with square-bracket placeholders like [item].",
    )

    def violation(self, response: str) -> Violation | None:
        found = re.findall(r"\[[^\[\]\n]*[^\W_][^\[\]\n]*\]", response)
        if len(found) >= self.n:
            return None
        asked = f"at least {self.n} placeholders in square brackets, like [name]"
        if not found:
            return Violation("has no placeholder in square brackets", asked)
        have = "1 placeholder" if len(found) == 1 else f"{len(found)} placeholders"
        return Violation(f"has only {have}: {quote(found)}", asked)


_PS = re.compile(r"(?<![\w.])p\.\s?s\.", re.IGNORECASE)


@dataclass(frozen=True)
class Postscript(Constraint):
    """A postscript: a "P.S." (any case) after the main answer, followed by a note."""

    kind: ClassVar[str] = "postscript"
    PHRASINGS: ClassVar[tuple[str, ...]] = (
        'After the main answer, add a short note that begins with "P.S.".',
        'Follow your reply with an afterthought introduced by "P.S.".',
        'Tack a brief note starting with "P.S." onto the end of your response.',
        'Below your answer, include an extra line starting with "P.S.".',
        'Close with a postscript, marked by "P.S." at its start.',
    )

    def violation(self, response: str) -> Violation | None:
        asked = "a postscript starting with 'P.S.' after the answer"
        markers = list(_PS.finditer(response))
        if not markers:
            return Violation(f"has no postscript and ends with '{clip_end(response.strip())}'", asked)
        last = markers[-1]
        if not re.search(r"[^\W_]", response[last.end():]):
            return Violation(f"ends with a bare '{last.group(0)}' and no note after it", asked)
        if not re.search(r"[^\W_]", response[:markers[0].start()]):
            return Violation(f"starts with the postscript '{clip(response.strip())}', with no answer before it",
                             asked)
        return None


@dataclass(frozen=True)
class Paragraphs(Constraint):
    """Exactly `n` paragraphs, separated by lines that hold only `PARAGRAPH_BREAK`."""

    n: int
    kind: ClassVar[str] = "paragraphs"
    PHRASINGS: ClassVar[tuple[str, ...]] = (
        'Break your answer into exactly {n} paragraphs, with a line holding only "***" between one paragraph and '
        'the next.',
        'Split your reply into {n} paragraphs and put a line with just "***" between them.',
        'Your response should have {n} paragraphs, divided by lines that read "***".',
        'Organize what you write as {n} paragraphs with "***" alone on the line between consecutive ones.',
        'Give {n} paragraphs in total, and mark each break between them with a "***" line.',
    )

    def violation(self, response: str) -> Violation | None:
        paragraphs, breaks = _blocks(response, PARAGRAPH_BREAK)
        if len(paragraphs) == self.n:
            return None
        asked = f"exactly {self.n} paragraphs separated by lines of '{PARAGRAPH_BREAK}'"
        if not breaks:
            return Violation(f"has no line of only '{PARAGRAPH_BREAK}', so it is one block starting with "
                             f"'{clip(response.strip())}'", asked)
        starts = quote([clip(p, 4) for p in paragraphs], limit=5)
        return Violation(f"has {len(paragraphs)} paragraphs, starting with {starts}", asked)


@dataclass(frozen=True)
class Sections(Constraint):
    """Exactly `n` section headers: lines starting with `header` and a number ("Part 1"), any case, Markdown
    heading or bold markers allowed in front."""

    n: int
    header: str
    kind: ClassVar[str] = "sections"
    PHRASINGS: ClassVar[tuple[str, ...]] = (
        'Organize your answer into {n} sections, each beginning with a header line such as "{header} 1".',
        'Split your reply into {n} parts, headed "{header} 1", "{header} 2", and so on.',
        'Arrange the response in {n} sections, each opened by a line like "{header} 1".',
        'Break what you write into {n} numbered sections whose headers read "{header} 1", "{header} 2", etc.',
        'Lay out {n} sections, starting each one with its own "{header}" header followed by its number.',
    )

    def violation(self, response: str) -> Violation | None:
        found = re.findall(rf"(?im)^[ \t#*_]*({re.escape(self.header)}[ \t]+\d+)\b", response)
        if len(found) == self.n:
            return None
        asked = f"exactly {self.n} sections headed '{self.header} 1', '{self.header} 2' and so on"
        if not found:
            return Violation(f"has no section header like '{self.header} 1' and starts with "
                             f"'{clip(response.strip())}'", asked)
        have = "1 section header" if len(found) == 1 else f"{len(found)} section headers"
        return Violation(f"has {have}: {quote(found, limit=6)}", asked)


@dataclass(frozen=True)
class TwoAnswers(Constraint):
    """Two different answers, separated by a line that holds only `ANSWER_BREAK`."""

    kind: ClassVar[str] = "two_answers"
    PHRASINGS: ClassVar[tuple[str, ...]] = (
        'Write two separate versions of your answer, with a line of only "******" between them.',
        'Draft two distinct replies and put a line of "******" between them.',
        'Offer two alternative responses divided by a "******" line.',
        'Provide a pair of different answers with "******" on its own line between the two.',
        'Answer twice in two different ways, splitting the versions with a line that reads "******".',
    )

    def violation(self, response: str) -> Violation | None:
        answers, breaks = _blocks(response, ANSWER_BREAK)
        asked = f"two different answers separated by a line of '{ANSWER_BREAK}'"
        if not breaks:
            return Violation(f"has no line of only '{ANSWER_BREAK}', so it gives one answer starting with "
                             f"'{clip(response.strip())}'", asked)
        if len(answers) != 2:
            what = "1 answer" if len(answers) == 1 else f"{len(answers)} answers"
            return Violation(f"has {what} around its '{ANSWER_BREAK}' lines: {quote([clip(a, 4) for a in answers])}",
                             asked)
        if " ".join(answers[0].lower().split()) == " ".join(answers[1].lower().split()):
            return Violation(f"gives the same answer twice: '{clip(answers[0])}'", asked)
        return None

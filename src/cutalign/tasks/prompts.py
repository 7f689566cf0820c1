"""`task_prompts`: the built-in task's prompts, a base instruction followed by one or more constraint sentences.

Two things are held out from training, so that an evaluation can tell learning the task from memorizing prompts:

- base instructions: training and held-out prompts never share one (see `tasks.instructions`);
- phrasings: every constraint kind has several wordings; training prompts use only the first `SEEN_PHRASINGS` of
  each kind, and held-out prompts may ask for the others (`phrasings="unseen"` or `"all"`), to measure whether
  what a model learned follows the constraint or its usual sentence. `parse_constraints` recovers each sentence's
  phrasing, so `pass_rate` reports seen and unseen phrasings apart from the prompt text alone.

Kinds that contradict or compete with each other (`INCOMPATIBLE`) never share a prompt.
"""

from __future__ import annotations

import random

from .base import SEEN_PHRASINGS
from .constraints import (
    CONSTRAINT_TYPES,
    KINDS,
    AllCaps,
    AvoidWord,
    BulletPoints,
    Constraint,
    EndsWith,
    IncludeKeyword,
    JsonOnly,
    LetterFrequency,
    Lowercase,
    MaxWords,
    MinWords,
    NoCommas,
    Paragraphs,
    Placeholders,
    Postscript,
    Quoted,
    Sections,
    StartsWith,
    Title,
    TwoAnswers,
    WordFrequency,
    compatible,
)
from .instructions import (  # noqa: F401  (re-exported: they lived here before tasks.instructions existed)
    BASE_INSTRUCTIONS,
    HELDOUT_INSTRUCTIONS,
    HELDOUT_SEED,
    TRAIN_INSTRUCTIONS,
    BaseInstruction,
    base_instructions,
)

_TYPES: dict[str, type[Constraint]] = dict(zip(KINDS, CONSTRAINT_TYPES))

PHRASINGS = ("seen", "unseen", "all")
"""What `task_prompts(phrasings=...)` accepts: the training phrasings, the held-out ones, or both."""

MAX_WORDS_CHOICES = (20, 30, 40)
"""Word limits drawn for `max_words`: below a typical 2-4 sentence answer, so the limit has to be heeded."""

MIN_WORDS_CHOICES = (60, 80, 100)
"""Word minimums drawn for `min_words`: above a typical 2-4 sentence answer, so the answer has to grow."""

BULLET_CHOICES = (2, 3, 4)
"""Bullet counts drawn for `bullet_points`."""

PARAGRAPH_CHOICES = (2, 3, 4)
"""Paragraph counts drawn for `paragraphs`."""

SECTION_CHOICES = (2, 3, 4)
"""Section counts drawn for `sections`."""

SECTION_HEADERS = ("Part", "Section", "Step")
"""Header words drawn for `sections`."""

PLACEHOLDER_CHOICES = (2, 3)
"""Minimum placeholder counts drawn for `placeholders`."""

WORD_FREQUENCY_CHOICES = (2, 3)
"""How often the instruction's keyword must appear, for `word_frequency`."""

LETTERS = ("b", "k", "p", "v", "w", "y")
"""Letters drawn for `letter_frequency`: not so common that any answer has enough of them."""

LETTER_FREQUENCY_CHOICES = (3, 5)
"""Minimum letter counts drawn for `letter_frequency`."""

START_PHRASES = ("Here is my answer", "Good question", "In short", "Let me explain", "Simply put", "Happy to help")
"""Opening phrases drawn for `starts_with`."""

END_PHRASES = ("Hope this helps", "That is all", "Thanks for asking", "Enjoy your day", "Ask me anything else")
"""Closing phrases drawn for `ends_with`."""


def _constraint(kind: str, base: BaseInstruction, rng: random.Random, phrasing: int) -> Constraint:
    """A constraint of `kind` for `base`, in `phrasing`, with its numbers or phrase drawn from `rng`."""
    match kind:
        case "lowercase":
            return Lowercase(phrasing=phrasing)
        case "no_commas":
            return NoCommas(phrasing=phrasing)
        case "include_keyword":
            return IncludeKeyword(base.keyword, phrasing=phrasing)
        case "avoid_word":
            return AvoidWord(base.avoid, phrasing=phrasing)
        case "max_words":
            return MaxWords(rng.choice(MAX_WORDS_CHOICES), phrasing=phrasing)
        case "bullet_points":
            return BulletPoints(rng.choice(BULLET_CHOICES), phrasing=phrasing)
        case "min_words":
            return MinWords(rng.choice(MIN_WORDS_CHOICES), phrasing=phrasing)
        case "all_caps":
            return AllCaps(phrasing=phrasing)
        case "word_frequency":
            return WordFrequency(base.keyword, rng.choice(WORD_FREQUENCY_CHOICES), phrasing=phrasing)
        case "letter_frequency":
            return LetterFrequency(rng.choice(LETTERS), rng.choice(LETTER_FREQUENCY_CHOICES), phrasing=phrasing)
        case "starts_with":
            return StartsWith(rng.choice(START_PHRASES), phrasing=phrasing)
        case "ends_with":
            return EndsWith(rng.choice(END_PHRASES), phrasing=phrasing)
        case "quoted":
            return Quoted(phrasing=phrasing)
        case "json_only":
            return JsonOnly(phrasing=phrasing)
        case "title":
            return Title(phrasing=phrasing)
        case "placeholders":
            return Placeholders(rng.choice(PLACEHOLDER_CHOICES), phrasing=phrasing)
        case "postscript":
            return Postscript(phrasing=phrasing)
        case "paragraphs":
            return Paragraphs(rng.choice(PARAGRAPH_CHOICES), phrasing=phrasing)
        case "sections":
            return Sections(rng.choice(SECTION_CHOICES), rng.choice(SECTION_HEADERS), phrasing=phrasing)
        case "two_answers":
            return TwoAnswers(phrasing=phrasing)
    raise ValueError(f"unknown constraint kind {kind!r}; expected one of {', '.join(KINDS)}")


def _first_compatible(ranked: list[str], size: int, chosen: tuple[str, ...] = ()) -> list[str] | None:
    """The first `size` kinds of `ranked` that may share a prompt, preferring earlier ones (depth-first, in rank
    order: the least used kinds win, and a kind is skipped only when no compatible set includes it); None if none."""
    if len(chosen) == size:
        return list(chosen)
    for i, kind in enumerate(ranked):
        if len(chosen) + len(ranked) - i < size:
            break
        if compatible((*chosen, kind)):
            found = _first_compatible(ranked[i + 1:], size, (*chosen, kind))
            if found is not None:
                return found
    return None


def _phrasing_indices(cls: type[Constraint], seen: bool) -> range:
    """The phrasings of `cls` that seen (training) or unseen (held-out only) sentences use."""
    return range(0, SEEN_PHRASINGS) if seen else range(SEEN_PHRASINGS, len(cls.PHRASINGS))


def task_prompts(
    split: str,
    n: int | None = None,
    kinds: tuple[str, ...] | None = None,
    seed: int = 0,
    constraints_per_prompt: int = 1,
    phrasings: str = "seen",
) -> list[str]:
    """Prompts of the form `base instruction + " " + constraint sentence(s)`, deterministic under `seed`.

    Args:
        split: "train" or "heldout".
        n: how many prompts; None gives one per base instruction of the split. Base instructions are visited in a
            seeded shuffled order, reshuffled on every pass when `n` exceeds their number (a base instruction then
            comes back with other constraints drawn).
        kinds: the constraint kinds to use (default: all of `KINDS`). Each prompt takes the kinds used least so
            far (ties broken at random) that may share a prompt (see `INCOMPATIBLE`), so every kind gets about the
            same number of prompts.
        seed: seed for the order of instructions, the dealing of kinds, the phrasings and the drawn values.
        constraints_per_prompt: how many constraints of distinct, compatible kinds each prompt carries.
        phrasings: which wordings the constraint sentences use: "seen" (the training phrasings, the default for
            both splits), "unseen" (phrasings training prompts never use; held-out split only) or "all" (each
            held-out prompt is wholly seen or wholly unseen, by a fair coin, so `pass_rate` can report both).
    """
    bases = base_instructions(split)
    kinds = KINDS if kinds is None else tuple(kinds)
    unknown = [kind for kind in kinds if kind not in KINDS]
    if unknown or not kinds or len(set(kinds)) != len(kinds):
        raise ValueError(f"kinds must be distinct names from {', '.join(KINDS)}, got {kinds!r}")
    if not 1 <= constraints_per_prompt <= len(kinds):
        raise ValueError(
            f"constraints_per_prompt must be between 1 and the number of kinds ({len(kinds)}), "
            f"got {constraints_per_prompt!r}"
        )
    if _first_compatible(list(kinds), constraints_per_prompt) is None:
        raise ValueError(
            f"no {constraints_per_prompt} of the kinds {', '.join(kinds)} can share a prompt (see INCOMPATIBLE)"
        )
    if phrasings not in PHRASINGS:
        raise ValueError(f"phrasings must be one of {', '.join(PHRASINGS)}, got {phrasings!r}")
    if split == "train" and phrasings != "seen":
        raise ValueError(f"training prompts use the seen phrasings only; got phrasings={phrasings!r}")
    if n is not None and n < 0:
        raise ValueError(f"n must be a non-negative integer or None, got {n!r}")
    n = len(bases) if n is None else n
    rng = random.Random(seed)
    order: list[BaseInstruction] = []
    while len(order) < n:
        one_pass = list(bases)
        rng.shuffle(one_pass)
        order.extend(one_pass)
    used = dict.fromkeys(kinds, 0)
    prompts = []
    for base in order[:n]:
        # The least used kinds so far, ties broken at random: balanced counts, varied combinations.
        ranked = sorted(kinds, key=lambda kind: (used[kind], rng.random()))
        chosen = _first_compatible(ranked, constraints_per_prompt)
        seen = phrasings == "seen" or (phrasings == "all" and rng.random() < 0.5)
        sentences = []
        for kind in chosen:
            used[kind] += 1
            phrasing = rng.choice(_phrasing_indices(_TYPES[kind], seen))
            sentences.append(_constraint(kind, base, rng, phrasing).sentence())
        prompts.append(" ".join([base.text, *sentences]))
    return prompts

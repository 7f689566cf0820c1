"""The built-in verifiable-instruction task: everyday instructions with checkable constraints, and a rule judge.

    prompts = task_prompts("train", n=64, kinds=("no_commas",))
    judgments = [rule_judge(p, r) for p, r in zip(prompts, responses)]   # None where the response follows it
    report = pass_rate(heldout_prompts, heldout_responses)               # overall, per kind, seen/unseen phrasing

Held-out prompts can word their constraints in phrasings that training prompts never use:
`task_prompts("heldout", phrasings="all")` mixes both, and `pass_rate` reports them apart.
"""

from .base import MIN_WORDS, SEEN_PHRASINGS, Constraint, Violation, words
from .constraints import (
    CONSTRAINT_TYPES,
    INCOMPATIBLE,
    KINDS,
    AllCaps,
    AvoidWord,
    BulletPoints,
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
    parse_constraints,
    phrasing_split,
)
from .judge import pass_rate, rule_judge, wilson_interval
from .instructions import (
    BASE_INSTRUCTIONS,
    HELDOUT_INSTRUCTIONS,
    HELDOUT_SEED,
    TRAIN_INSTRUCTIONS,
    BaseInstruction,
    base_instructions,
)
from .prompts import PHRASINGS, task_prompts

__all__ = [
    "BASE_INSTRUCTIONS",
    "CONSTRAINT_TYPES",
    "HELDOUT_INSTRUCTIONS",
    "HELDOUT_SEED",
    "INCOMPATIBLE",
    "KINDS",
    "MIN_WORDS",
    "PHRASINGS",
    "SEEN_PHRASINGS",
    "TRAIN_INSTRUCTIONS",
    "AllCaps",
    "AvoidWord",
    "BaseInstruction",
    "BulletPoints",
    "Constraint",
    "EndsWith",
    "IncludeKeyword",
    "JsonOnly",
    "LetterFrequency",
    "Lowercase",
    "MaxWords",
    "MinWords",
    "NoCommas",
    "Paragraphs",
    "Placeholders",
    "Postscript",
    "Quoted",
    "Sections",
    "StartsWith",
    "Title",
    "TwoAnswers",
    "Violation",
    "WordFrequency",
    "base_instructions",
    "compatible",
    "parse_constraints",
    "pass_rate",
    "phrasing_split",
    "rule_judge",
    "task_prompts",
    "wilson_interval",
    "words",
]

"""The built-in verifiable-instruction task: everyday instructions with checkable constraints, and a rule judge.

    prompts = task_prompts("train", n=64, kinds=("no_commas",))
    judgments = [rule_judge(p, r) for p, r in zip(prompts, responses)]   # None where the response follows it
    report = pass_rate(heldout_prompts, heldout_responses)
"""

from .constraints import (
    KINDS,
    MIN_WORDS,
    AvoidWord,
    BulletPoints,
    Constraint,
    IncludeKeyword,
    Lowercase,
    MaxWords,
    NoCommas,
    parse_constraints,
    words,
)
from .judge import pass_rate, rule_judge, wilson_interval
from .prompts import (
    BASE_INSTRUCTIONS,
    HELDOUT_INSTRUCTIONS,
    HELDOUT_SEED,
    TRAIN_INSTRUCTIONS,
    BaseInstruction,
    base_instructions,
    task_prompts,
)

__all__ = [
    "BASE_INSTRUCTIONS",
    "HELDOUT_INSTRUCTIONS",
    "HELDOUT_SEED",
    "KINDS",
    "MIN_WORDS",
    "TRAIN_INSTRUCTIONS",
    "AvoidWord",
    "BaseInstruction",
    "BulletPoints",
    "Constraint",
    "IncludeKeyword",
    "Lowercase",
    "MaxWords",
    "NoCommas",
    "base_instructions",
    "parse_constraints",
    "pass_rate",
    "rule_judge",
    "task_prompts",
    "wilson_interval",
    "words",
]

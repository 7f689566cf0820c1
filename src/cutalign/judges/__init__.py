"""Judges: one interface, five ways to get a judgment for each (instruction, response) pair.

    judge = build_judge(JudgeConfig(kind="rule"), run_dir)
    judgments = judge(instructions, responses)   # per row: None (good), a critique, or a JudgeFailure

Kinds: :class:`RuleJudge` (the built-in task's rules), :class:`CallableJudge` (a ``module:function`` of the user),
:class:`ModelJudge` (a local causal LM, e.g. one trained with ``cutalign train-judge``, see :mod:`.training`),
:class:`EndpointJudge` (an OpenAI-compatible chat-completions server, through the bounded :class:`ChatClient`) and
:class:`HumanJudge` (a JSONL file a person fills in). :mod:`.base` defines the protocol and the judgment prompt;
:mod:`.config` the ``judge:`` config section. Judges import neither the online loop nor evaluation.
"""

from .base import JUDGE_PROMPT, NO_ISSUES, Judge, JudgeFailure, Judgment, judge_prompt, parse_judgment
from .config import JUDGE_KEYS, JUDGE_KINDS, JudgeConfig, build_judge, validate_judge
from .endpoint import EndpointJudge
from .function import CallableJudge, import_function
from .http import ChatClient, EndpointError
from .human import HumanJudge, read_human_judgments
from .model import ModelJudge
from .rule import RuleJudge

__all__ = [
    "JUDGE_KEYS",
    "JUDGE_KINDS",
    "JUDGE_PROMPT",
    "NO_ISSUES",
    "CallableJudge",
    "ChatClient",
    "EndpointError",
    "EndpointJudge",
    "HumanJudge",
    "Judge",
    "JudgeConfig",
    "JudgeFailure",
    "Judgment",
    "ModelJudge",
    "RuleJudge",
    "build_judge",
    "import_function",
    "judge_prompt",
    "parse_judgment",
    "read_human_judgments",
    "validate_judge",
]

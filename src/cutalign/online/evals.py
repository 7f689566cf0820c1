"""The online loop's evaluations, run on the starting model (round 0) and after every round: the ``eval:`` section.

Three kinds (:class:`EvalConfig`); every answer is greedy (temperature 0), ``max_new_tokens`` long at most:

* ``rule``: answers to ``size`` held-out prompts of the built-in task, scored by the rule judge: the pass rate with
  its 95% Wilson interval, and per constraint kind.
* ``pairwise``: the win rate of the round's answers against ``reference`` answers, judged by ``judge`` (a local
  ``model`` or an OpenAI-compatible ``endpoint``, :class:`cutalign.judges.pairwise.PairwiseJudgeConfig`) with
  position swapping: the mean per-instruction score (win 1, tie 0.5, loss 0), a 95% interval, wins, losses and
  ties. ``reference`` is an AlpacaEval-format file (``[{"instruction", "output"}, ...]``: its instructions are the
  ones answered, and none of them is ever trained on) or ``round-0``: the starting model's answers to the run's
  held-out prompts (``prompts:``). Round 0 against itself is 0.5 by definition and is not sent to the judge.
* ``callable``: ``function`` (``"module:function"``) called as ``function(instruction, response)`` for each answer
  to the run's held-out prompts, returning a number: the mean, with a 95% normal interval.

Every kind also reports ``mean_words``, the answers' mean length in words (what the guard's length rule watches).

The section is a list of evaluations, or a mapping of name to evaluation; each has a ``name`` (default: ``heldout``
for rule, ``pairwise``, ``callable``; names must differ). The form of earlier versions, one mapping of
``size``/``max_new_tokens``/``batch_size``, still means one rule evaluation named ``heldout``, as it did.

An evaluation's results for round ``k`` go to ``round-kk/eval-<name>.json``; the one named ``heldout`` writes
``round-kk/eval.json``, the file of earlier versions, so their run directories resume as they are.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from ..errors import UsageError
from ..judges.pairwise import PairwiseJudgeConfig, build_pairwise_judge, validate_pairwise_judge, win_rate
from ..generation import instruction_text
from ..tasks import pass_rate, wilson_interval

EVAL_KINDS = ("rule", "pairwise", "callable")
EVAL_KEYS = {"rule": ("size",), "pairwise": ("reference", "judge", "size"), "callable": ("function", "size")}
"""Which keys each kind reads besides ``kind``, ``name``, ``max_new_tokens`` and ``batch_size``."""
DEFAULT_NAMES = {"rule": "heldout", "pairwise": "pairwise", "callable": "callable"}
HEADLINE = {"rule": "pass_rate", "pairwise": "win_rate", "callable": "mean"}
"""The number each kind reports (with ``ci95``)."""
DEFAULT_RULE_SIZE = 48
ROUND_ZERO = "round-0"
DETAIL_KEYS = ("responses", "verdicts", "scores")
"""Per-answer details an evaluation file keeps and the round report leaves out."""


@dataclass
class EvalConfig:
    """One evaluation of the ``eval:`` section (see the module docstring); keys by kind in :data:`EVAL_KEYS`."""

    kind: str = "rule"
    name: str | None = None
    size: int | None = None  # rule: held-out task prompts (48); pairwise, callable: at most this many (default all)
    max_new_tokens: int = 64
    batch_size: int = 16
    reference: str | None = None  # pairwise: an AlpacaEval-format file, or "round-0"
    judge: PairwiseJudgeConfig | None = None  # pairwise
    function: str | None = None  # callable: "module:function"


def eval_file(name: str) -> str:
    """The file, inside a round's directory, of the evaluation named ``name``."""
    return "eval.json" if name == "heldout" else f"eval-{name}.json"


def eval_entries(raw) -> list:
    """The ``eval:`` section as a list of mappings: a list as it is, a mapping of names to evaluations with each
    name put in, and a single evaluation (the earlier form) as a list of one; absent means one rule evaluation."""
    if raw is None:
        return [{}]
    if isinstance(raw, list):
        return raw
    if isinstance(raw, dict) and raw and all(isinstance(v, dict) for v in raw.values()) and "judge" not in raw:
        return [{"name": name, **value} for name, value in raw.items()]
    return [raw]


def complete(spec: EvalConfig) -> EvalConfig:
    """``spec`` with the kind's defaults filled in: its name, and a rule evaluation's size."""
    if spec.name is None and spec.kind in DEFAULT_NAMES:
        spec.name = DEFAULT_NAMES[spec.kind]
    if spec.kind == "rule" and spec.size is None:
        spec.size = DEFAULT_RULE_SIZE
    return spec


def validate_evals(specs: list[EvalConfig], fail) -> None:
    """Check every evaluation before any model loads (files, judges, functions); ``fail`` raises."""
    from ..judges import import_function

    if not specs:
        fail("eval must hold at least one evaluation")
    names = [s.name for s in specs]
    for i, spec in enumerate(specs):
        key = f"eval[{i}]" if spec.name is None else f"eval.{spec.name}"
        if spec.kind not in EVAL_KINDS:
            fail(f"{key}.kind must be one of {', '.join(EVAL_KINDS)}, got {spec.kind!r}")
        if not re.fullmatch(r"[A-Za-z0-9_-]+", spec.name or ""):
            fail(f"{key}.name must be letters, digits, _ and - only, got {spec.name!r}")
        if names.count(spec.name) > 1:
            fail(f"eval: two evaluations are named {spec.name!r}; give each a distinct name")
        defaults = EvalConfig(kind=spec.kind)
        for name in ("size", "reference", "judge", "function"):
            if name not in EVAL_KEYS[spec.kind] and getattr(spec, name) != getattr(defaults, name):
                fail(f"{key}.{name} does not apply to an evaluation of kind {spec.kind!r} "
                     f"(its keys: {', '.join(EVAL_KEYS[spec.kind])})")
        for name in ("max_new_tokens", "batch_size"):
            if getattr(spec, name) < 1:
                fail(f"{key}.{name} must be >= 1, got {getattr(spec, name)}")
        if spec.size is not None and spec.size < 1:
            fail(f"{key}.size must be >= 1, got {spec.size}")
        if spec.kind == "pairwise":
            if spec.reference is None:
                fail(f"{key}.reference is required: an AlpacaEval-format file of reference outputs, or {ROUND_ZERO}")
            if spec.reference != ROUND_ZERO:
                from pathlib import Path

                if not Path(spec.reference).is_file():
                    fail(f"{key}.reference: {spec.reference} is not a file (or write {ROUND_ZERO})")
            if spec.judge is None:
                fail(f"{key}.judge is required: {{kind: model, model: ...}} or {{kind: endpoint, base_url: ..., "
                     "model: ...}}")
            validate_pairwise_judge(spec.judge, f"{key}.judge", fail)
        if spec.kind == "callable":
            if spec.function is None:
                fail(f"{key}.function is required (\"module:function\", called as function(instruction, response))")
            try:
                import_function(spec.function)
            except ValueError as error:
                fail(f"{key}.function: {error}")


def needs_heldout(spec: EvalConfig) -> bool:
    """Whether the evaluation answers the run's held-out prompts (``prompts:``)."""
    return spec.kind == "callable" or (spec.kind == "pairwise" and spec.reference == ROUND_ZERO)


def read_reference(spec: EvalConfig) -> list[dict]:
    """The reference records of a pairwise evaluation against a file, checked (:class:`UsageError` naming it)."""
    from ..data import DataError
    from ..records import read_records

    try:
        records = read_records(spec.reference)
    except DataError as error:
        raise UsageError(f"eval.{spec.name}.reference: {error}") from None
    seen = set()
    for row, record in enumerate(records, start=1):
        if record["instruction"] in seen:
            raise UsageError(f"eval.{spec.name}.reference: {spec.reference}, row {row}: the instruction "
                             f"{record['instruction'][:60]!r} appears twice")
        seen.add(record["instruction"])
    return records[:spec.size] if spec.size else records


def headline(result: dict) -> dict:
    """An evaluation's result without its per-answer details: what round reports and the summary hold."""
    return {k: v for k, v in result.items() if k not in DETAIL_KEYS}


def score_of(kind: str, metrics: dict) -> tuple[float, list[float]]:
    """The evaluation's number and its 95% interval."""
    return metrics[HEADLINE[kind]], metrics["ci95"]


def mean_interval(values: list[float]) -> tuple[float, list[float]]:
    """The mean and its 95% normal interval (1.96 standard errors; zero width for one value)."""
    n = len(values)
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    half = 1.96 * sd / math.sqrt(n)
    return mean, [mean - half, mean + half]


def mean_words(answers: list[str]) -> float:
    """The answers' mean length in whitespace-separated words: shorter answers can pass a rule by saying less, so
    every evaluation reports it (and the guard watches it)."""
    return sum(len(a.split()) for a in answers) / len(answers) if answers else 0.0


class Evaluator:
    """Runs a run's evaluations for one round. ``answer(index, prompts, spec, description)`` returns the greedy
    answers of round ``index``'s model (the loop's backend); ``heldout`` are the run's held-out prompts;
    ``task_heldout(size)`` the built-in task's; ``round_zero(spec)`` reads round 0's result of an evaluation."""

    def __init__(self, specs: list[EvalConfig], *, answer, heldout: list, task_heldout, round_zero,
                 references: dict[str, list[dict]]):
        self.specs, self.answer, self.heldout = specs, answer, heldout
        self.task_heldout, self.round_zero, self.references = task_heldout, round_zero, references
        self._judges: dict[str, object] = {}

    def prompts(self, spec: EvalConfig) -> list:
        if spec.kind == "rule":
            return self.task_heldout(spec.size)
        if spec.kind == "pairwise" and spec.reference != ROUND_ZERO:
            return [r.get("prompt") or r["instruction"] for r in self.references[spec.name]]
        return self.heldout[:spec.size] if spec.size else list(self.heldout)

    def run(self, spec: EvalConfig, index: int) -> dict:
        """The evaluation's result for round ``index``: its numbers, and the answers (``responses``)."""
        prompts = self.prompts(spec)
        answers = self.answer(index, prompts, spec, f"round {index}: eval {spec.name}")
        responses = [{"prompt": p, "completion": a} for p, a in zip(prompts, answers)]
        instructions = [instruction_text(p) for p in prompts]
        if spec.kind == "rule":
            score = pass_rate(instructions, answers)
            passed = round(score["pass_rate"] * score["n"])
            low, high = wilson_interval(passed, score["n"])
            result = {**score, "passed": passed, "ci95": [low, high], "responses": responses}
        elif spec.kind == "callable":
            result = self._callable(spec, instructions, answers, responses)
        else:
            result = self._pairwise(spec, index, instructions, answers, responses)
        return {**result, "mean_words": mean_words(answers)}

    def _callable(self, spec, instructions, answers, responses) -> dict:
        from ..judges import import_function

        function = import_function(spec.function)
        scores = []
        for row, (instruction, answer) in enumerate(zip(instructions, answers), start=1):
            try:
                value = function(instruction, answer)
            except Exception as error:  # the user's code: name the row it failed on
                raise RuntimeError(f"eval.{spec.name}: {spec.function} raised on answer {row}: "
                                   f"{type(error).__name__}: {error}") from error
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise RuntimeError(f"eval.{spec.name}: {spec.function} returned {value!r} for answer {row}; "
                                   "it must return a finite number")
            scores.append(float(value))
        mean, ci = mean_interval(scores)
        return {"mean": mean, "ci95": ci, "n": len(scores), "scores": scores, "responses": responses}

    def _pairwise(self, spec, index, instructions, answers, responses) -> dict:
        if spec.reference == ROUND_ZERO:
            if index == 0:  # the starting model against itself
                n = len(answers)
                return {"win_rate": 0.5, "ci95": [0.5, 0.5], "n": n, "wins": 0, "losses": 0, "ties": n,
                        "reference": ROUND_ZERO, "judged": False, "responses": responses}
            others = [r["completion"] for r in self.round_zero(spec)["responses"]]
        else:
            others = [r["output"] for r in self.references[spec.name]]
        if spec.name not in self._judges:
            self._judges[spec.name] = build_pairwise_judge(spec.judge)
        judge = self._judges[spec.name]
        verdicts: dict[str, list[str]] = {}

        def recording(instructions_, firsts, seconds):
            out = judge(instructions_, firsts, seconds)
            verdicts["a_first" if "a_first" not in verdicts else "b_first"] = list(out)
            return out

        result = win_rate(instructions, answers, others, recording)
        ci = result.pop("ci")
        return {**result, "ci95": ci, "reference": spec.reference, "judged": True, "responses": responses,
                "verdicts": [{"a_first": x, "b_first": y} for x, y in zip(verdicts["a_first"], verdicts["b_first"])]}

"""The mini-paper's data: its prompt sets, the sampled and judged training rows, and their altered judgments.

* :func:`prompt_set`: half the prompts carry one constraint, half two (distinct, compatible kinds).
* :func:`sample_and_judge`: the model's sampled answers to the training prompts, judged.
* :func:`content_variant`: the same rows with their judgments replaced, for the judgment-content ablation:
  ``"generic"`` gives every negative row one fixed sentence (:data:`GENERIC_JUDGMENT`), ``"shuffled"`` gives each
  negative row the judgment of another negative row with a different prompt. Which rows are negative never
  changes, so the ablation isolates what the judgment *says*: CUT's token selection ``r_t = p(y_t|x,j) / p(y_t|x)``
  is the only part of the "p+ul" mix that reads it.
* :class:`NoisyRuleJudge`: the rule judge with seeded mistakes, for the noisy-judge comparison.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence

from cutalign.generation import SamplingConfig, generate
from cutalign.judges import RuleJudge
from cutalign.tasks import parse_constraints, task_prompts
from cutalign.tasks.base import Violation, too_short
from cutalign.tasks.feedback import judgment_rng, write_judgment

GENERIC_JUDGMENT = "The response does not follow the instruction."
"""The one judgment every negative row gets in the "generic" variant: says *that* the answer is wrong, not *why*."""

VARIANTS = ("rule", "generic", "shuffled", "noisy")
"""The training data variants: the rule judge's judgments, the two content ablations, the noisy judge's."""


def prompt_set(split: str, n: int, kinds: Sequence[str], seed: int, phrasings: str = "seen") -> list[str]:
    """``n`` prompts of ``split``: the first half with one constraint, the rest with two (each half balanced over
    ``kinds`` by :func:`cutalign.tasks.task_prompts`; the halves use different seeds so they differ)."""
    one = task_prompts(split, n=n - n // 2, kinds=tuple(kinds), seed=seed, phrasings=phrasings)
    two = task_prompts(split, n=n // 2, kinds=tuple(kinds), seed=seed + 1000, constraints_per_prompt=2,
                       phrasings=phrasings)
    return one + two


def sample_and_judge(model, tokenizer, prompts: list[str], samples: int, new_tokens: int, seed: int) -> list[dict]:
    """``samples`` answers (temperature 0.8) per prompt, judged by the rule judge; empty answers dropped.

    Rows are ``{"prompt", "completion", "judgment", "id"}``; ``judgment`` is None for a good answer.
    """
    asked = [p for p in prompts for _ in range(samples)]
    sampling = SamplingConfig(max_new_tokens=new_tokens, temperature=0.8, top_p=1.0, batch_size=16, seed=seed)
    responses = generate(model, tokenizer, asked, sampling, description=f"sampling seed {seed}")
    judgments = RuleJudge()(asked, responses)
    return [{"prompt": p, "completion": r, "judgment": j, "id": f"s{seed}-{i}"}
            for i, (p, r, j) in enumerate(zip(asked, responses, judgments)) if r.strip()]


def content_variant(rows: list[dict], variant: str, seed: int) -> list[dict]:
    """``rows`` with the judgments of their negative rows replaced ("generic" or "shuffled"); positives unchanged.

    "shuffled" deals the negative rows' judgments out again under ``seed`` so that no row keeps its own and, where
    the data allow it (up to 100 seeded tries), none gets one written for the same prompt (a sibling sample's
    judgment often names the same problem, which would make the shuffle only half a shuffle).
    """
    if variant not in ("generic", "shuffled"):
        raise ValueError(f"content variant must be 'generic' or 'shuffled', got {variant!r}")
    negatives = [i for i, row in enumerate(rows) if row["judgment"] is not None]
    out = [dict(row) for row in rows]
    if variant == "generic":
        for i in negatives:
            out[i]["judgment"] = GENERIC_JUDGMENT
        return out
    if len(negatives) < 2:
        raise ValueError("shuffling judgments needs at least two negative rows")
    rng = random.Random(seed)
    best, best_clashes = None, None
    for _ in range(100):
        order = list(negatives)
        rng.shuffle(order)
        # Each row takes the judgment of the next one in the shuffled cycle: nobody keeps their own.
        source = {order[k]: order[(k + 1) % len(order)] for k in range(len(order))}
        clashes = sum(rows[i]["prompt"] == rows[j]["prompt"] for i, j in source.items())
        if best is None or clashes < best_clashes:
            best, best_clashes = source, clashes
        if clashes == 0:
            break
    for i, j in best.items():
        out[i]["judgment"] = rows[j]["judgment"]
    return out


class NoisyRuleJudge:
    """The rule judge, wrong on purpose: it misses each violation with probability ``miss`` and flags a good answer
    with probability ``false_flag``.

    * A missed violation is left out of the judgment; when every violation of an answer is missed, the answer is
      judged good. (An empty or near-empty answer counts as one violation.)
    * A falsely flagged good answer gets a judgment that blames one of its instruction's constraints (drawn at
      random) without evidence, worded like the rule judge's judgments ("... does not do what this sentence of
      the instruction says; the instruction asks for ...").
    * Every draw is seeded by ``seed`` and the (instruction, response) pair, so the same row always gets the same
      mistake, in any process and any order.
    """

    def __init__(self, miss: float = 0.2, false_flag: float = 0.1, seed: int = 0):
        if not (0 <= miss <= 1 and 0 <= false_flag <= 1):
            raise ValueError(f"miss and false_flag must be probabilities, got {miss!r} and {false_flag!r}")
        self.miss, self.false_flag, self.seed = miss, false_flag, seed

    def _rng(self, instruction: str, response: str) -> random.Random:
        digest = hashlib.sha256(f"{self.seed}\x00{instruction}\x00{response}".encode("utf-8", "surrogatepass"))
        return random.Random(int.from_bytes(digest.digest()[:8], "big"))

    def judge(self, instruction: str, response: str) -> str | None:
        """One noisy judgment, or None."""
        rng = self._rng(instruction, response)
        constraints = parse_constraints(instruction)
        short = too_short(response)
        if short is not None:
            return None if rng.random() < self.miss else short
        violations = [v for v in (c.violation(response) for c in constraints) if v is not None]
        if violations:
            kept = [v for v in violations if rng.random() >= self.miss]
            return write_judgment(kept, judgment_rng(instruction, response)) if kept else None
        if constraints and rng.random() < self.false_flag:
            blamed = rng.choice(constraints)
            wrong = Violation("does not do what this sentence of the instruction says",
                              f'"{blamed.sentence()}"')
            return write_judgment([wrong], judgment_rng(instruction, response))
        return None

    def __call__(self, instructions, responses) -> list[str | None]:
        if len(instructions) != len(responses):
            raise ValueError(f"got {len(instructions)} instructions and {len(responses)} responses")
        return [self.judge(i, r) for i, r in zip(instructions, responses)]


def rejudged(rows: list[dict], judge) -> list[dict]:
    """The same rows judged again by ``judge`` (same prompts and answers, new judgments)."""
    judgments = judge([row["prompt"] for row in rows], [row["completion"] for row in rows])
    return [{**row, "judgment": j} for row, j in zip(rows, judgments)]

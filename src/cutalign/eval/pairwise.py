"""Pairwise win rate of model A against model B, judged by a judge model or an OpenAI-compatible endpoint.

Every instruction is judged twice, once with A's output shown first and once with B's first, so a judge that
prefers a position cancels out. Each verdict is "1", "2" or "tie"; an instruction's score for A is the mean of its
two verdicts (win 1, tie 0.5, loss 0). The win rate is the mean score over instructions, with a 95% normal interval
from the per-instruction scores (instructions are the independent units, not verdicts).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ..data.templates import plain_prompt
from ..judges.http import DEFAULT_MAX_RESPONSE_BYTES, ChatClient

COMPARE_PROMPT = (
    "Which response follows the instruction better? Answer with 1 or 2 only.\n\n"
    "Instruction:\n{instruction}\n\nResponse 1:\n{first}\n\nResponse 2:\n{second}"
)
VERDICTS = ("1", "2", "tie")


def win_rate(instructions: list[str], outputs_a: list[str], outputs_b: list[str],
             judge: Callable[[list[str], list[str], list[str]], list[str]]) -> dict:
    """A's win rate over B with position swapping. ``judge(instructions, firsts, seconds)`` returns one verdict
    per row, each in :data:`VERDICTS`."""
    n = len(instructions)
    if not n or len(outputs_a) != n or len(outputs_b) != n:
        raise ValueError(f"need one output of each model per instruction, got {n}, {len(outputs_a)}, {len(outputs_b)}")
    a_first = judge(instructions, outputs_a, outputs_b)
    b_first = judge(instructions, outputs_b, outputs_a)
    for verdict in (*a_first, *b_first):
        if verdict not in VERDICTS:
            raise ValueError(f"the judge returned {verdict!r}; expected one of {VERDICTS}")
    value = {"1": 1.0, "2": 0.0, "tie": 0.5}
    scores = [(value[x] + 1.0 - value[y]) / 2 for x, y in zip(a_first, b_first)]
    mean = sum(scores) / n
    sd = math.sqrt(sum((s - mean) ** 2 for s in scores) / (n - 1)) if n > 1 else 0.0
    half = 1.96 * sd / math.sqrt(n)
    consistent = sum((x == "1") == (y == "2") and x != "tie" for x, y in zip(a_first, b_first))
    return {
        "win_rate": mean,
        "ci": [max(0.0, mean - half), min(1.0, mean + half)],
        "n": n,
        "wins": sum(s > 0.5 for s in scores),
        "losses": sum(s < 0.5 for s in scores),
        "ties": sum(s == 0.5 for s in scores),
        "first_position_rate": (sum(v == "1" for v in a_first + b_first)) / (2 * n),
        "consistent": consistent / n,
    }


class ModelJudge:
    """A local causal LM as pairwise judge: it is asked :data:`COMPARE_PROMPT` and its next-token probabilities of
    "1" and "2" decide (equal within ``tie_margin`` in log-probability = tie). Reading two probabilities instead of
    sampling an answer makes small judges usable and the verdicts deterministic."""

    def __init__(self, model, tokenizer, *, template: str = "chat", batch_size: int = 8, tie_margin: float = 0.0):
        self.model, self.tokenizer, self.template = model, tokenizer, template
        self.batch_size, self.tie_margin = batch_size, tie_margin
        self.choice_ids = [tokenizer(c, add_special_tokens=False)["input_ids"][0] for c in ("1", "2")]

    @torch.no_grad()
    def __call__(self, instructions, firsts, seconds) -> list[str]:
        texts = [plain_prompt(COMPARE_PROMPT.format(instruction=i, first=a, second=b), self.template, self.tokenizer)
                 for i, a, b in zip(instructions, firsts, seconds)]
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        device = next(self.model.parameters()).device
        verdicts = []
        was_training = self.model.training
        self.model.eval()
        try:
            for start in range(0, len(texts), self.batch_size):
                encoded = [self.tokenizer(t, add_special_tokens=self.template == "alpaca")["input_ids"]
                           for t in texts[start:start + self.batch_size]]
                width = max(map(len, encoded))
                ids = torch.full((len(encoded), width), pad, dtype=torch.long)
                mask = torch.zeros_like(ids)
                for r, row in enumerate(encoded):  # left padding: the last position is the answer's
                    ids[r, width - len(row):] = torch.tensor(row)
                    mask[r, width - len(row):] = 1
                logits = self.model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits[:, -1].float()
                logps = torch.log_softmax(logits, dim=-1)[:, self.choice_ids]
                for one, two in logps.tolist():
                    verdicts.append("tie" if abs(one - two) <= self.tie_margin else ("1" if one > two else "2"))
        finally:
            self.model.train(was_training)
        return verdicts


def parse_verdict(text: str) -> str:
    """"1" or "2" from a judge's reply (the first of the two digits it contains), else "tie"."""
    for character in text:
        if character in "12":
            return character
    return "tie"


class EndpointPairwiseJudge:
    """An OpenAI-compatible ``POST {base_url}/chat/completions`` server as pairwise judge, one request per comparison.

    Requests go through the judges' :class:`cutalign.judges.ChatClient` (temperature 0, ``max_tokens`` tokens): a
    total deadline of ``timeout_s`` per request, at most ``max_response_bytes`` read, no redirect followed (the API
    key goes to ``base_url`` only), timeouts, transport errors, 429 and 5xx retried ``max_retries`` times with
    exponential ``backoff_s``. A reply without "1" or "2" counts as a tie; a request that still fails is a
    :class:`cutalign.judges.EndpointError` naming the URL (a win rate with silently missing verdicts would mislead).
    """

    def __init__(self, base_url: str, model: str, *, api_key: str | None = None, timeout_s: float = 60.0,
                 max_tokens: int = 4, max_retries: int = 3, backoff_s: float = 1.0,
                 max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES):
        self.client = ChatClient(base_url, model, api_key=api_key, max_tokens=max_tokens, timeout_s=timeout_s,
                                 max_retries=max_retries, backoff_s=backoff_s, max_response_bytes=max_response_bytes)

    def __call__(self, instructions, firsts, seconds) -> list[str]:
        return [parse_verdict(self.client.complete(COMPARE_PROMPT.format(instruction=i, first=a, second=b)))
                for i, a, b in zip(instructions, firsts, seconds)]

"""Pairwise win rate of model A against model B, judged by a judge model or an OpenAI-compatible endpoint.

Every instruction is judged twice, once with A's output shown first and once with B's first, so a judge that
prefers a position cancels out. Each verdict is "1", "2" or "tie"; an instruction's score for A is the mean of its
two verdicts (win 1, tie 0.5, loss 0). The win rate is the mean score over instructions, with a 95% normal interval
from the per-instruction scores (instructions are the independent units, not verdicts).

The judge is asked :data:`COMPARE_PROMPT`, read from ``configs/prompts/pairwise.txt`` (fields ``{instruction}``,
``{first}``, ``{second}``); :class:`PairwiseJudgeConfig` (the online loop's ``eval: - kind: pairwise`` ``judge:``)
may name another template file. A template must ask for "1" or "2": that is what both judges read.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import torch

from ..data.templates import plain_prompt
from .base import read_prompt_template
from .config import check_model, check_prompt_template, reject_other_kinds_keys
from .http import DEFAULT_MAX_RESPONSE_BYTES, ChatClient

COMPARE_PROMPT_FILE = Path(__file__).resolve().parents[1] / "configs" / "prompts" / "pairwise.txt"
COMPARE_PROMPT = read_prompt_template(COMPARE_PROMPT_FILE)
COMPARE_FIELDS = ("instruction", "first", "second")
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

    def __init__(self, model, tokenizer, *, template: str = "chat", batch_size: int = 8, tie_margin: float = 0.0,
                 prompt: str = COMPARE_PROMPT):
        self.model, self.tokenizer, self.template, self.prompt = model, tokenizer, template, prompt
        self.batch_size, self.tie_margin = batch_size, tie_margin
        self.choice_ids = [tokenizer(c, add_special_tokens=False)["input_ids"][0] for c in ("1", "2")]

    @torch.no_grad()
    def __call__(self, instructions, firsts, seconds) -> list[str]:
        texts = [plain_prompt(self.prompt.format(instruction=i, first=a, second=b), self.template, self.tokenizer)
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
    ``concurrency`` requests are in flight at once; the verdicts come back in order.
    """

    def __init__(self, base_url: str, model: str, *, api_key: str | None = None, timeout_s: float = 60.0,
                 max_tokens: int = 4, max_retries: int = 3, backoff_s: float = 1.0,
                 max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES, concurrency: int = 1,
                 prompt: str = COMPARE_PROMPT):
        self.client = ChatClient(base_url, model, api_key=api_key, max_tokens=max_tokens, timeout_s=timeout_s,
                                 max_retries=max_retries, backoff_s=backoff_s, max_response_bytes=max_response_bytes)
        self.concurrency, self.prompt = concurrency, prompt

    def _one(self, instruction: str, first: str, second: str) -> str:
        return parse_verdict(self.client.complete(self.prompt.format(instruction=instruction, first=first,
                                                                     second=second)))

    def __call__(self, instructions, firsts, seconds) -> list[str]:
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(self._one, instructions, firsts, seconds))


PAIRWISE_JUDGE_KINDS = ("model", "endpoint")
PAIRWISE_JUDGE_KEYS = {
    "model": ("model", "batch_size", "tie_margin", "prompt"),
    "endpoint": ("model", "base_url", "api_key_env", "concurrency", "timeout_s", "max_retries", "backoff_s",
                 "max_response_bytes", "prompt"),
}


@dataclass
class PairwiseJudgeConfig:
    """Who compares two answers (``kind``: a local ``model`` or an OpenAI-compatible ``endpoint``) and its settings,
    by kind (:data:`PAIRWISE_JUDGE_KEYS`); ``prompt`` is a template file (default ``configs/prompts/pairwise.txt``)."""

    kind: str = "model"
    model: str = "default"  # model: a directory, a saved adapter or "default"; endpoint: the model name
    base_url: str | None = None  # endpoint: e.g. http://127.0.0.1:8000/v1
    api_key_env: str | None = None  # endpoint: the environment variable holding the API key (never logged)
    concurrency: int = 4  # endpoint: requests in flight
    timeout_s: float = 60.0
    max_retries: int = 3
    backoff_s: float = 1.0
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    batch_size: int = 8  # model: comparisons per forward pass
    tie_margin: float = 0.0  # model: |log p("1") - log p("2")| at or below this is a tie
    prompt: str | None = None


def validate_pairwise_judge(judge: PairwiseJudgeConfig, key: str, fail) -> None:
    """Check a pairwise judge section before any model loads; ``fail(message)`` raises the caller's error."""
    if judge.kind not in PAIRWISE_JUDGE_KINDS:
        fail(f"{key}.kind must be one of {', '.join(PAIRWISE_JUDGE_KINDS)}, got {judge.kind!r}")
    reject_other_kinds_keys(judge, PAIRWISE_JUDGE_KEYS[judge.kind], key, "a pairwise judge of kind", fail)
    for name in ("concurrency", "max_response_bytes", "batch_size"):
        if getattr(judge, name) < 1:
            fail(f"{key}.{name} must be >= 1, got {getattr(judge, name)}")
    if judge.max_retries < 0 or judge.backoff_s < 0 or not judge.timeout_s > 0 or judge.tie_margin < 0:
        fail(f"{key}: max_retries, backoff_s and tie_margin must be >= 0 and timeout_s > 0")
    if judge.prompt is not None:
        check_prompt_template(judge.prompt, f"{key}.prompt", COMPARE_FIELDS, fail)
    if judge.kind == "model":
        check_model(judge.model, f"{key}.model", fail)
    else:
        if not judge.base_url or not judge.base_url.startswith(("http://", "https://")):
            fail(f"{key}.base_url is required for an endpoint judge and must start with http:// or https://, "
                 f"got {judge.base_url!r}")
        if judge.api_key_env is not None and not os.environ.get(judge.api_key_env):
            fail(f"{key}.api_key_env: the environment variable {judge.api_key_env} is not set")


def build_pairwise_judge(judge: PairwiseJudgeConfig):
    """The judge a validated :class:`PairwiseJudgeConfig` describes (a model judge loads its model here)."""
    prompt = read_prompt_template(judge.prompt) if judge.prompt is not None else COMPARE_PROMPT
    if judge.kind == "endpoint":
        return EndpointPairwiseJudge(judge.base_url, judge.model,
                                     api_key=os.environ.get(judge.api_key_env) if judge.api_key_env else None,
                                     timeout_s=judge.timeout_s, max_retries=judge.max_retries,
                                     backoff_s=judge.backoff_s, max_response_bytes=judge.max_response_bytes,
                                     concurrency=judge.concurrency, prompt=prompt)
    from ..models import load_model, load_tokenizer

    tokenizer = load_tokenizer(judge.model)
    model = load_model(judge.model)
    if torch.cuda.is_available():
        model.to("cuda")
    return ModelJudge(model, tokenizer, template="chat" if tokenizer.chat_template else "alpaca",
                      batch_size=judge.batch_size, tie_margin=judge.tie_margin, prompt=prompt)

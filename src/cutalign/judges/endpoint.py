"""The endpoint judge: an OpenAI-compatible chat-completions server, asked :data:`JUDGE_PROMPT` for each row."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

from tqdm.auto import tqdm

from .base import JUDGE_PROMPT, JudgeFailure, Judgment, check_lengths, judge_prompt, parse_judgment
from .http import DEFAULT_MAX_RESPONSE_BYTES, ChatClient, EndpointError

DEFAULT_MAX_JUDGMENT_CHARS = 4000
"""A judgment is one or two sentences; an answer far longer than that is not one (and would bloat the data)."""


class EndpointJudge:
    """``POST {base_url}/chat/completions``, one request per row, ``concurrency`` requests at a time.

    Requests go through :class:`cutalign.judges.http.ChatClient` (temperature 0): each must finish within
    ``timeout_s`` seconds in all, its reply must fit in ``max_response_bytes``, redirects are refused, and timeouts,
    transport errors, HTTP 429 and 5xx and bodies that are not a chat completion are retried up to ``max_retries``
    times with exponential ``backoff_s``. A row whose request fails, or whose answer is longer than
    ``max_judgment_chars`` characters, is a :class:`JudgeFailure` saying why; the other rows of the batch are judged
    as usual. The API key is read from the environment variable ``api_key_env`` when the judge is built and sent as a
    bearer token to ``base_url`` only; it never appears in messages or files.
    """

    def __init__(self, base_url: str, model: str, *, api_key_env: str | None = None, max_new_tokens: int = 96,
                 concurrency: int = 4, timeout_s: float = 60.0, max_retries: int = 3, backoff_s: float = 1.0,
                 max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
                 max_judgment_chars: int = DEFAULT_MAX_JUDGMENT_CHARS, prompt: str = JUDGE_PROMPT):
        api_key = os.environ.get(api_key_env) if api_key_env else None
        if api_key_env and not api_key:
            raise ValueError(f"the environment variable {api_key_env} (judge.api_key_env) is not set")
        self.client = ChatClient(base_url, model, api_key=api_key, max_tokens=max_new_tokens, timeout_s=timeout_s,
                                 max_retries=max_retries, backoff_s=backoff_s, max_response_bytes=max_response_bytes)
        self.concurrency, self.max_judgment_chars = concurrency, max_judgment_chars
        self.prompt = prompt  # the judgment prompt template ({instruction}, {response})

    def __call__(self, instructions, responses) -> list[Judgment]:
        check_lengths(instructions, responses)
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            jobs = pool.map(self._judge_one, instructions, responses)
            return list(tqdm(jobs, total=len(instructions), desc="judging", unit="row"))

    def _judge_one(self, instruction: str, response: str) -> Judgment:
        try:
            answer = self.client.complete(judge_prompt(instruction, response, self.prompt))
        except EndpointError as error:
            return JudgeFailure(str(error))
        if len(answer) > self.max_judgment_chars:
            return JudgeFailure(f"the judgment from {self.client.url} has {len(answer)} characters, more than "
                                f"max_judgment_chars ({self.max_judgment_chars})")
        return parse_judgment(answer)

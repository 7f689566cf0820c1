"""The server backend of the online loop's generation (``generation.backend: openai``).

:class:`ServerGenerator` asks an OpenAI-compatible server for answers instead of running ``model.generate`` here:
``vllm serve BASE --enable-lora`` on a GPU machine, or ``examples/openai_generation_server.py`` for a try on a CPU.
It sends one request per prompt, ``concurrency`` at a time, through the judges' bounded HTTP client, and tells the
server to load each round's LoRA adapter (vLLM's ``POST /v1/load_lora_adapter``). With ``api: completions`` (the
default) the prompt is rendered here exactly as :func:`cutalign.generation.generate` renders it, so the server sees
the training format whatever its own chat template; ``api: chat`` sends the messages and lets the server apply its
template (for servers with no completions route).

It lives here rather than in :mod:`cutalign.generation` because it uses the judges' HTTP client, and generation
sits below the judges (it must not import them).
"""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
from tqdm.auto import tqdm

from ..data.templates import plain_prompt
from ..generation import SamplingConfig, ServerConfig
from ..judges.http import ChatClient, EndpointError, _Deadline, _Retryable


@dataclass(frozen=True)
class GenerationFailure:
    """A prompt the server gave no answer for (after retries), and why."""

    reason: str


class ServerClient(ChatClient):
    """Requests to one route of an OpenAI-compatible server (``{base_url}{path}``) under :class:`ChatClient`'s
    limits: the same deadline, size cap, refused redirects and retries; only the route and the payload differ.

    ``request(payload, parse)`` POSTs ``payload`` (GETs when it is None) and returns ``parse(body)``; a ``parse``
    that raises ``ValueError``, ``KeyError``, ``IndexError`` or ``TypeError`` makes the reply malformed (retried).
    Failure after the retries is an :class:`cutalign.judges.EndpointError` naming the URL, never the key.
    """

    def __init__(self, base_url: str, path: str, *, api_key: str | None, timeout_s: float, max_retries: int,
                 backoff_s: float, max_response_bytes: int):
        super().__init__(base_url, "", api_key=api_key, timeout_s=timeout_s, max_retries=max_retries,
                         backoff_s=backoff_s, max_response_bytes=max_response_bytes)
        self.url = base_url.rstrip("/") + path

    def request(self, payload: dict | None, parse):
        problem = ""
        for attempt in range(self.max_retries + 1):
            if attempt:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
            try:
                body = self._send(payload)
                try:
                    return parse(body)
                except (ValueError, RecursionError, KeyError, IndexError, TypeError):
                    raise _Retryable(f"malformed reply from {self.url}: {body[:80]!r}") from None
            except _Retryable as error:
                problem = str(error)
        attempts = self.max_retries + 1
        raise EndpointError(f"{problem} (after {attempts} attempt{'s' if attempts > 1 else ''})")

    def _send(self, payload: dict | None) -> bytes:
        deadline = _Deadline(self.timeout_s)
        try:
            with self._client.stream("GET" if payload is None else "POST", self.url, json=payload,
                                     headers=self._headers, extensions={"trace": deadline.trace}) as reply:
                self._check_status(reply)
                return self._read_body(reply, deadline)
        except (httpx.HTTPError, OSError) as error:
            if deadline.expired:
                raise _Retryable(f"request to {self.url} took longer than timeout_s ({self.timeout_s:g} s)") from None
            raise _Retryable(f"request to {self.url} failed: {type(error).__name__}: {error}") from None
        finally:
            deadline.stop()


def _text_of(body: bytes, api: str) -> str:
    choice = json.loads(body)["choices"][0]
    text = choice["text"] if api == "completions" else choice["message"]["content"]
    if not isinstance(text, str):
        raise TypeError("the answer is not a string")
    return text


class ServerGenerator:
    """Answers from an OpenAI-compatible server (see :class:`ServerConfig` and the module docstring).

    ``generate(prompts, sampling, model=NAME, seeds=[...])`` sends one request per prompt with its own ``seed``
    (so an answer does not depend on which other prompts were asked with it, and a prompt asked again after a
    failure gets the answer an uninterrupted run got, where the server honours seeds); a prompt whose request
    fails for good comes back as a :class:`GenerationFailure`, the others as text. ``load_adapter(name, path)``
    asks the server to load a saved LoRA adapter under ``name`` (``path`` must be readable by the server).
    """

    def __init__(self, config: ServerConfig, tokenizer, template: str):
        self.config, self.tokenizer, self.template = config, tokenizer, template
        api_key = os.environ.get(config.api_key_env) if config.api_key_env else None

        def client(path: str) -> ServerClient:
            return ServerClient(config.base_url, path, api_key=api_key, timeout_s=config.timeout_s,
                                max_retries=config.max_retries, backoff_s=config.backoff_s,
                                max_response_bytes=config.max_response_bytes)

        self.answers = client("/completions" if config.api == "completions" else "/chat/completions")
        self.models = client("/models")
        self.loader = client("/load_lora_adapter")

    def served_models(self) -> set[str]:
        """The names the server answers to now: the base model and the adapters it has loaded."""
        return self.models.request(None, lambda body: {str(m["id"]) for m in json.loads(body)["data"]})

    def load_adapter(self, name: str, path: str) -> None:
        """``POST /load_lora_adapter {"lora_name", "lora_path"}``; any 2xx reply means loaded."""
        self.loader.request({"lora_name": name, "lora_path": str(path)}, lambda body: None)

    def _payload(self, prompt, sampling: SamplingConfig, model: str, seed: int) -> dict:
        payload = {"model": model, "max_tokens": sampling.max_new_tokens, "temperature": sampling.temperature,
                   "top_p": sampling.top_p, "seed": seed}
        if self.config.api == "chat":
            messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
            return {**payload, "messages": messages}
        payload["prompt"] = plain_prompt(prompt, self.template, self.tokenizer)
        if self.template != "alpaca":  # the rendered chat template holds its special tokens (as in generate())
            payload["add_special_tokens"] = False
        return payload

    def _one(self, prompt, sampling: SamplingConfig, model: str, seed: int):
        try:
            text = self.answers.request(self._payload(prompt, sampling, model, seed),
                                        lambda body: _text_of(body, self.config.api))
        except EndpointError as error:
            return GenerationFailure(str(error))
        return text.strip()

    def generate(self, prompts: list, sampling: SamplingConfig, *, model: str, seeds: list[int],
                 progress: bool = True, description: str = "generating") -> list:
        """One answer (a string) or :class:`GenerationFailure` per prompt, in input order."""
        if len(seeds) != len(prompts):
            raise ValueError(f"got {len(seeds)} seeds for {len(prompts)} prompts")
        with ThreadPoolExecutor(max_workers=self.config.concurrency) as pool:
            jobs = pool.map(lambda p, s: self._one(p, sampling, model, s), prompts, seeds)
            return list(tqdm(jobs, total=len(prompts), desc=description, unit="prompt", disable=not progress))

    def close(self) -> None:
        for client in (self.answers, self.models, self.loader):
            client.close()

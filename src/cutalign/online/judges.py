"""Judges: one interface, five ways to get a judgment for each (instruction, response) pair.

A judge is any callable ``judge(instructions, responses) -> list`` that returns, for each row in order,

* ``None``: the response is good;
* a string: the judgment, a critique of what is wrong;
* a :class:`JudgeFailure`: this row could not be judged (an empty or unparseable judgment, an HTTP error that
  outlived its retries, an exception inside a user function). The online loop reports such rows, leaves them out
  of the round's training data and judges them again when the run is resumed before the round is trained.

An exception raised by the judge itself (not for one row) stops the run; rows judged before it are kept.

Kinds: :class:`RuleJudge` (the built-in task's rules), :class:`CallableJudge` (a ``module:function`` of the user),
:class:`ModelJudge` (a local causal LM, e.g. one trained with ``cutalign train-judge``), :class:`EndpointJudge`
(an OpenAI-compatible chat-completions server) and :class:`HumanJudge` (a JSONL file a person fills in).

Model and endpoint judges are asked with :data:`JUDGE_PROMPT` and answer either with :data:`NO_ISSUES` or with a
critique; :func:`parse_judgment` turns the answer into ``None``, a critique or a failure.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from tqdm.auto import tqdm

from ..data import DataError
from ..tasks import rule_judge
from ..io import write_jsonl

logger = logging.getLogger("cutalign.online")

NO_ISSUES = "No issues."
"""The fixed answer of a model judge for a good response (what ``cutalign train-judge`` teaches for positives)."""

JUDGE_PROMPT = (
    "You are reviewing a response to an instruction.\n\n"
    "Instruction:\n{instruction}\n\n"
    "Response:\n{response}\n\n"
    "If the response fully follows the instruction, answer exactly \"" + NO_ISSUES + "\". Otherwise, in one or two "
    "sentences, say what is wrong with the response, quoting the words that break the instruction."
)


@dataclass(frozen=True)
class JudgeFailure:
    """A row the judge could not judge, and why."""

    reason: str


Judgment = str | None | JudgeFailure


class Judge(Protocol):
    def __call__(self, instructions: Sequence[str], responses: Sequence[str]) -> list[Judgment]: ...


def judge_prompt(instruction: str, response: str) -> str:
    """The request a model or endpoint judge answers."""
    return JUDGE_PROMPT.format(instruction=instruction, response=response)


def parse_judgment(text) -> Judgment:
    """A judge model's answer as ``None`` (good), a critique, or a failure.

    The answer is stripped (and a leading ``Judgment:`` label dropped). It is *good* when it starts with "no issues"
    (any case). It *fails* when it is empty or holds fewer than two words with letters (e.g. "...", "0 0", "ok").
    Anything else is the critique, as written.
    """
    if not isinstance(text, str):
        return JudgeFailure(f"the judge returned {type(text).__name__}, not text")
    text = re.sub(r"^\s*judgment\s*:\s*", "", text.strip(), flags=re.IGNORECASE).strip()
    if not text:
        return JudgeFailure("empty judgment")
    if re.match(r"no issues\b", text, flags=re.IGNORECASE):
        return None
    if sum(any(ch.isalpha() for ch in token) for token in text.split()) < 2:
        return JudgeFailure(f"unparseable judgment {text[:80]!r}")
    return text


def _check_lengths(instructions, responses) -> None:
    if len(instructions) != len(responses):
        raise ValueError(f"got {len(instructions)} instructions and {len(responses)} responses")


class RuleJudge:
    """The built-in task's rule judge (:func:`cutalign.tasks.rule_judge`); it never fails a row."""

    def __call__(self, instructions, responses) -> list[Judgment]:
        _check_lengths(instructions, responses)
        return [rule_judge(i, r) for i, r in zip(instructions, responses)]


class CallableJudge:
    """A user function ``function(instruction, response) -> str | None``, called once per row.

    An exception or a value other than a string or None fails that row only; an empty string means good.
    """

    def __init__(self, function: Callable[[str, str], str | None]):
        self.function = function

    def __call__(self, instructions, responses) -> list[Judgment]:
        _check_lengths(instructions, responses)
        out: list[Judgment] = []
        for instruction, response in zip(instructions, responses):
            try:
                value = self.function(instruction, response)
            except Exception as error:  # a bug on one row must not lose the round's other rows
                out.append(JudgeFailure(f"{type(error).__name__}: {error}"))
                continue
            if value is not None and not isinstance(value, str):
                out.append(JudgeFailure(f"the function returned {type(value).__name__}, not a string or None"))
            else:
                out.append(value.strip() or None if value is not None else None)
        return out


class ModelJudge:
    """A local causal LM prompted with :data:`JUDGE_PROMPT`; greedy answers parsed by :func:`parse_judgment`."""

    def __init__(self, model, tokenizer, *, max_new_tokens: int = 96, batch_size: int = 16, template: str = "chat"):
        self.model, self.tokenizer = model, tokenizer
        self.max_new_tokens, self.batch_size, self.template = max_new_tokens, batch_size, template

    @classmethod
    def load(cls, name: str, **kwargs) -> "ModelJudge":
        """Load a model directory, a saved adapter (e.g. from ``cutalign train-judge``) or ``"default"``."""
        from ..models import load_model, load_tokenizer

        tokenizer = load_tokenizer(name)
        return cls(load_model(name), tokenizer, template="chat" if tokenizer.chat_template else "alpaca", **kwargs)

    def __call__(self, instructions, responses) -> list[Judgment]:
        from .generate import SamplingConfig, generate

        _check_lengths(instructions, responses)
        prompts = [judge_prompt(i, r) for i, r in zip(instructions, responses)]
        sampling = SamplingConfig(max_new_tokens=self.max_new_tokens, temperature=0.0, batch_size=self.batch_size)
        texts = generate(self.model, self.tokenizer, prompts, sampling, template=self.template, description="judging")
        return [parse_judgment(text) for text in texts]


class EndpointJudge:
    """An OpenAI-compatible ``POST {base_url}/chat/completions`` server, ``concurrency`` requests at a time.

    Each row is one request (``temperature`` 0). Timeouts, connection errors, HTTP 429 and 5xx and bodies that are
    not a chat completion are retried up to ``max_retries`` times, waiting ``backoff_s``, then twice that, and so on;
    other HTTP errors fail the row at once. The API key is read from the environment variable ``api_key_env`` when
    the judge is built and sent as a bearer token; it never appears in messages or files.
    """

    def __init__(self, base_url: str, model: str, *, api_key_env: str | None = None, max_new_tokens: int = 96,
                 concurrency: int = 4, timeout_s: float = 60.0, max_retries: int = 3, backoff_s: float = 1.0):
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model, self.max_new_tokens = model, max_new_tokens
        self.concurrency, self.timeout_s, self.max_retries, self.backoff_s = concurrency, timeout_s, max_retries, backoff_s
        self._api_key = os.environ.get(api_key_env) if api_key_env else None
        if api_key_env and not self._api_key:
            raise ValueError(f"the environment variable {api_key_env} (judge.api_key_env) is not set")

    def __call__(self, instructions, responses) -> list[Judgment]:
        _check_lengths(instructions, responses)
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            jobs = pool.map(self._judge_one, instructions, responses)
            return list(tqdm(jobs, total=len(instructions), desc="judging", unit="row"))

    def _judge_one(self, instruction: str, response: str) -> Judgment:
        body = json.dumps({
            "model": self.model,
            "messages": [{"role": "user", "content": judge_prompt(instruction, response)}],
            "temperature": 0,
            "max_tokens": self.max_new_tokens,
        }).encode()
        headers = {"Content-Type": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        problem = ""
        for attempt in range(self.max_retries + 1):
            if attempt:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
            request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s) as reply:
                    payload = reply.read()
            except urllib.error.HTTPError as error:
                problem = f"HTTP {error.code} from {self.url}"
                if error.code != 429 and error.code < 500:
                    return JudgeFailure(problem)
                continue
            except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as error:
                reason = getattr(error, "reason", error)
                problem = f"request to {self.url} failed: {type(reason).__name__}: {reason}"
                continue
            try:
                content = json.loads(payload)["choices"][0]["message"]["content"]
            except (ValueError, KeyError, IndexError, TypeError):
                problem = f"malformed reply from {self.url}: {payload[:80]!r}"
                continue
            return parse_judgment(content)
        return JudgeFailure(f"{problem} (after {self.max_retries + 1} attempts)")


class HumanJudge:
    """A person judges the rows in a JSONL file; the judge waits until the file comes back complete.

    For each batch it writes ``<directory>/todo-<key>.jsonl`` with rows ``{"id", "prompt", "completion",
    "judgment": null}`` (``key`` is a hash of the rows, so the same rows give the same file after a restart) and
    waits, checking every ``poll_seconds``, for ``<directory>/done-<key>.jsonl``: the same rows with ``judgment``
    filled in (null or "" = good). ``cutalign annotate todo-<key>.jsonl`` and its export to ``done-<key>.jsonl``
    produce it; so does editing a copy by hand. The file is read only when every row is there; a row with an unknown
    id, a changed prompt or completion, or a judgment that is not a string or null is a :class:`DataError`.
    """

    def __init__(self, directory, *, poll_seconds: float = 10.0, timeout_s: float | None = None):
        self.directory = Path(directory)
        self.poll_seconds, self.timeout_s = poll_seconds, timeout_s

    def files(self, instructions, responses) -> tuple[Path, Path]:
        key = hashlib.sha256(json.dumps([list(instructions), list(responses)]).encode()).hexdigest()[:12]
        return self.directory / f"todo-{key}.jsonl", self.directory / f"done-{key}.jsonl"

    def __call__(self, instructions, responses) -> list[Judgment]:
        _check_lengths(instructions, responses)
        todo, done = self.files(instructions, responses)
        rows = [{"id": str(i), "prompt": p, "completion": c, "judgment": None}
                for i, (p, c) in enumerate(zip(instructions, responses), start=1)]
        if not todo.exists():
            self.directory.mkdir(parents=True, exist_ok=True)
            write_jsonl(todo, rows)
        print(f"waiting for human judgments: judge the {len(rows)} rows of {todo} (e.g. `cutalign annotate {todo}`) "
              f"and write them to {done}", flush=True)
        started = time.monotonic()
        while True:
            judgments = read_human_judgments(done, rows)
            if judgments is not None:
                return judgments
            if self.timeout_s is not None and time.monotonic() - started > self.timeout_s:
                raise TimeoutError(f"{done} was not completed within {self.timeout_s} s")
            time.sleep(self.poll_seconds)


def read_human_judgments(path: Path, rows: list[dict]) -> list[Judgment] | None:
    """The judgments of ``rows`` from the filled-in file, in row order; None while the file lacks some rows."""
    if not path.exists():
        return None
    expected = {row["id"]: row for row in rows}
    found: dict[str, str | None] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataError(f"invalid JSON: {error.msg}", file=path, row=number) from None
        if not isinstance(record, dict):
            raise DataError("must be an object", file=path, row=number)
        row_id = str(record.get("id"))
        if row_id not in expected:
            raise DataError(f"unknown id {record.get('id')!r}", file=path, row=number, field="id")
        for key in ("prompt", "completion"):
            if key in record and record[key] != expected[row_id][key]:
                raise DataError(f"differs from the row given to judge (id {row_id})", file=path, row=number, field=key)
        judgment = record.get("judgment")
        if judgment is not None and not isinstance(judgment, str):
            raise DataError(f"must be a string or null, got {type(judgment).__name__}", file=path, row=number,
                            field="judgment")
        found[row_id] = judgment.strip() or None if isinstance(judgment, str) else None
    if len(found) < len(expected):
        return None
    return [found[row["id"]] for row in rows]


def build_judge(config, run_dir) -> Judge:
    """The judge of a validated :class:`cutalign.online.config.JudgeConfig`."""
    from .config import import_function

    if config.kind == "rule":
        return RuleJudge()
    if config.kind == "callable":
        return CallableJudge(import_function(config.function))
    if config.kind == "model":
        return ModelJudge.load(config.model, max_new_tokens=config.max_new_tokens, batch_size=config.batch_size)
    if config.kind == "endpoint":
        return EndpointJudge(config.base_url, config.model, api_key_env=config.api_key_env,
                             max_new_tokens=config.max_new_tokens, concurrency=config.concurrency,
                             timeout_s=config.timeout_s, max_retries=config.max_retries, backoff_s=config.backoff_s)
    if config.kind == "human":
        return HumanJudge(config.directory or Path(run_dir) / "human", poll_seconds=config.poll_seconds)
    raise ValueError(f"unknown judge kind {config.kind!r}")

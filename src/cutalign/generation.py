"""Sampling answers from a model: :class:`SamplingConfig` (with :class:`ServerConfig`) and the batched :func:`generate`.

``generate`` calls ``model.generate`` on batches of prompts of similar length (fewer pad tokens), left-padded, with
a progress bar; the answers come back in the input order. Prompts are rendered with the same views the trainer uses
(:mod:`cutalign.data.templates`), so a model is asked in the format it is trained on. Used by the online loop, the
model judge, judge training, evaluation, the ILF baseline and the benchmarks.

``generate`` is the ``hf`` backend: the model in this process. The online loop can ask an OpenAI-compatible server
instead (``backend: openai``, settings in :class:`ServerConfig`); that client is
:class:`cutalign.online.backend.ServerGenerator`, which sits above the judges because it uses their HTTP client.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from .data.templates import plain_prompt


GENERATION_APIS = ("completions", "chat")


@dataclass
class ServerConfig:
    """The OpenAI-compatible server of ``generation.backend: openai`` and how to talk to it.

    ``model`` is the name the server gives the base model (round 0 is answered by it; later rounds by the adapter the
    loop loads after each round). The request limits are the judges' (:mod:`cutalign.judges.http`): a total
    deadline of ``timeout_s`` per request, ``max_retries`` further attempts with exponential ``backoff_s`` after a
    timeout, transport error, 429, 5xx or malformed reply, at most ``max_response_bytes`` read, no redirect.
    """

    base_url: str | None = None  # e.g. http://127.0.0.1:8000/v1
    model: str | None = None
    api: str = "completions"  # or "chat" (see the module docstring)
    api_key_env: str | None = None  # the environment variable holding the API key (never logged)
    concurrency: int = 8  # requests in flight
    timeout_s: float = 300.0
    max_retries: int = 3
    backoff_s: float = 1.0
    max_response_bytes: int = 1 << 20  # 1 MiB, as the judges' client

    def problems(self) -> list[str]:
        """What is wrong with these settings, as ``"key: message"`` lines (empty when nothing is)."""
        out = []
        for name in ("base_url", "model"):
            if not getattr(self, name):
                out.append(f"{name}: required with backend openai")
        if self.base_url and not self.base_url.startswith(("http://", "https://")):
            out.append(f"base_url: must start with http:// or https://, got {self.base_url!r}")
        if self.api not in GENERATION_APIS:
            out.append(f"api: must be one of {', '.join(GENERATION_APIS)}, got {self.api!r}")
        if self.api_key_env is not None and not os.environ.get(self.api_key_env):
            out.append(f"api_key_env: the environment variable {self.api_key_env} is not set")
        for name in ("concurrency", "max_response_bytes"):
            if getattr(self, name) < 1:
                out.append(f"{name}: must be >= 1, got {getattr(self, name)}")
        if self.max_retries < 0 or self.backoff_s < 0 or not self.timeout_s > 0:
            out.append("max_retries and backoff_s must be >= 0 and timeout_s > 0, got "
                       f"{self.max_retries}, {self.backoff_s}, {self.timeout_s}")
        return out


GENERATION_BACKENDS = ("hf", "openai")


@dataclass
class SamplingConfig:
    """Generation settings. ``temperature == 0`` means greedy decoding; ``seed`` seeds sampling for one call.

    The online loop's ``generation:`` section is this class (its seed is set by the loop, one per batch), so an
    invalid value raises ``ValueError`` naming the field first: the config loader reports it with the key.
    ``backend`` and ``server`` say what generates in the online loop: ``hf`` (:func:`generate`, this process) or
    ``openai`` (the server ``server`` describes); :func:`generate` itself is the ``hf`` backend and ignores them.
    """

    max_new_tokens: int = 64
    temperature: float = 0.0
    top_p: float = 1.0
    batch_size: int = 16
    seed: int = 0
    backend: str = "hf"
    server: ServerConfig | None = None  # backend openai: the server and how to ask it

    def __post_init__(self):
        if self.backend not in GENERATION_BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(GENERATION_BACKENDS)}, got {self.backend!r}")
        if self.backend == "hf" and self.server is not None:
            raise ValueError("server applies to backend openai only (backend hf generates in this process)")
        if self.backend == "openai" and self.server is None:
            raise ValueError("server is required with backend openai ({base_url: ..., model: ...})")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")


def instruction_text(prompt) -> str:
    """The instruction a prompt asks: the string itself, or the last user turn of a chat conversation.

    What a judge reads as the instruction and what AlpacaEval records hold, whichever form the prompt was given in.
    """
    if isinstance(prompt, str):
        return prompt
    return [message["content"] for message in prompt if message["role"] == "user"][-1]


@torch.no_grad()
def generate(
    model,
    tokenizer,
    prompts: list,
    sampling: SamplingConfig | None = None,
    *,
    template: str = "chat",
    progress: bool = True,
    description: str = "generating",
) -> list[str]:
    """One response per prompt (a string or a list of chat messages), in input order, special tokens removed."""
    sampling = sampling or SamplingConfig()
    texts = [plain_prompt(p, template, tokenizer) for p in prompts]
    encoded = [tokenizer(t, add_special_tokens=template == "alpaca")["input_ids"] for t in texts]
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    torch.manual_seed(sampling.seed)
    outputs: list[str | None] = [None] * len(prompts)
    bar = tqdm(total=len(prompts), desc=description, disable=not progress, unit="prompt")
    try:
        for start in range(0, len(order), sampling.batch_size):
            batch = order[start : start + sampling.batch_size]
            width = max(len(encoded[i]) for i in batch)
            input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
            attention_mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, i in enumerate(batch):  # left padding: every prompt ends where generation starts
                input_ids[row, width - len(encoded[i]) :] = torch.tensor(encoded[i])
                attention_mask[row, width - len(encoded[i]) :] = 1
            kwargs = {"do_sample": False}
            if sampling.temperature > 0:
                kwargs = {"do_sample": True, "temperature": sampling.temperature, "top_p": sampling.top_p}
            generated = model.generate(
                input_ids=input_ids.to(device),
                attention_mask=attention_mask.to(device),
                max_new_tokens=sampling.max_new_tokens,
                pad_token_id=pad_id,
                eos_token_id=tokenizer.eos_token_id,
                top_k=None,
                **kwargs,
            )
            for row, i in enumerate(batch):
                outputs[i] = tokenizer.decode(generated[row, width:], skip_special_tokens=True).strip()
            bar.update(len(batch))
    finally:
        bar.close()
        model.train(was_training)
    return outputs

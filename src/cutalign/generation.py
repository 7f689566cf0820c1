"""Sampling answers from a model: :class:`SamplingConfig` and the batched :func:`generate`.

``generate`` calls ``model.generate`` on batches of prompts of similar length (fewer pad tokens), left-padded, with
a progress bar; the answers come back in the input order. Prompts are rendered with the same views the trainer uses
(:mod:`cutalign.data.templates`), so a model is asked in the format it is trained on. Used by the online loop, the
model judge, judge training, evaluation, the ILF baseline and the benchmarks.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from .data.templates import plain_prompt


@dataclass
class SamplingConfig:
    """Generation settings. ``temperature == 0`` means greedy decoding; ``seed`` seeds sampling for one call.

    The online loop's ``generation:`` section is this class (its seed is set by the loop, one per batch), so an
    invalid value raises ``ValueError`` naming the field first: the config loader reports it with the key.
    """

    max_new_tokens: int = 64
    temperature: float = 0.0
    top_p: float = 1.0
    batch_size: int = 16
    seed: int = 0

    def __post_init__(self):
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

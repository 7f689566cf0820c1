"""The model judge: a local causal LM asked :data:`JUDGE_PROMPT`, its greedy answer parsed."""

from __future__ import annotations

from .base import JUDGE_PROMPT, Judgment, check_lengths, judge_prompt, parse_judgment


class ModelJudge:
    """A local causal LM prompted with :data:`JUDGE_PROMPT`; greedy answers parsed by :func:`parse_judgment`."""

    def __init__(self, model, tokenizer, *, max_new_tokens: int = 96, batch_size: int = 16, template: str = "chat",
                 prompt: str = JUDGE_PROMPT):
        self.model, self.tokenizer, self.prompt = model, tokenizer, prompt  # prompt: {instruction}, {response}
        self.max_new_tokens, self.batch_size, self.template = max_new_tokens, batch_size, template

    @classmethod
    def load(cls, name: str, **kwargs) -> "ModelJudge":
        """Load a model directory, a saved adapter (e.g. from ``cutalign train-judge``) or ``"default"``."""
        from ..models import load_model, load_tokenizer

        tokenizer = load_tokenizer(name)
        return cls(load_model(name), tokenizer, template="chat" if tokenizer.chat_template else "alpaca", **kwargs)

    def __call__(self, instructions, responses) -> list[Judgment]:
        from ..generation import SamplingConfig, generate  # torch: imported when a model judges, not before

        check_lengths(instructions, responses)
        prompts = [judge_prompt(i, r, self.prompt) for i, r in zip(instructions, responses)]
        sampling = SamplingConfig(max_new_tokens=self.max_new_tokens, temperature=0.0, batch_size=self.batch_size)
        texts = generate(self.model, self.tokenizer, prompts, sampling, template=self.template, description="judging")
        return [parse_judgment(text) for text in texts]

"""The two views of an example as prompt text: the plain prompt x and the judgment prompt [x, j].

Two modes, and ``"auto"`` (the default everywhere) to pick one from the tokenizer (:func:`resolve_template`):

* ``"alpaca"``: the reference implementation's Alpaca templates, character for character. For base models and for
  reproducing the paper.
* ``"chat"``: the tokenizer's own chat template, for instruct models. The plain view is the conversation with a
  generation prompt. The judgment view is the same conversation whose last user turn is rewritten with
  ``chat_judgment_template`` (placeholders ``{content}``: the user turn, ``{judgment}``: the judgment), so the model
  reads the judgment where it reads instructions. The default wording asks for a response that matches the
  judgment, as the Alpaca judgment template does.
"""

from __future__ import annotations

ALPACA_PLAIN = (
    "Below is an instruction that describes a task. Write a response that appropriately completes the request."
    "\n\n### Instruction:\n{instruction}\n\n### Response:\n"
)
ALPACA_JUDGMENT = (
    "Below is an instruction that describes a task. Write a response to the instruction and the response should "
    "match the corresponding judgment.\n\n### Instruction:\n{instruction}\n\n### Judgment:\n{judgment}"
    "\n\n### Response:\n"
)
DEFAULT_CHAT_JUDGMENT_TEMPLATE = "{content}\n\nWrite a response that matches this judgment of it: {judgment}"
TEMPLATES = ("auto", "alpaca", "chat")


def resolve_template(template: str, tokenizer) -> str:
    """``"auto"`` becomes ``"chat"`` when the tokenizer has a chat template (an instruct model) and ``"alpaca"``
    otherwise (a base model); the other modes are returned as they are. Training, generation and evaluation resolve
    the same setting with the same tokenizer, so a model is always evaluated in the format it was trained in."""
    if template not in TEMPLATES:
        raise ValueError(f"template must be one of {TEMPLATES}, got {template!r}")
    if template == "auto":
        return "chat" if tokenizer is not None and tokenizer.chat_template else "alpaca"
    return template


def plain_prompt(prompt: str | list[dict], template: str, tokenizer=None) -> str:
    """The plain view's prompt text (x)."""
    return _render(prompt, None, template, tokenizer, DEFAULT_CHAT_JUDGMENT_TEMPLATE)


def judgment_prompt(
    prompt: str | list[dict],
    judgment: str,
    template: str,
    tokenizer=None,
    chat_judgment_template: str = DEFAULT_CHAT_JUDGMENT_TEMPLATE,
) -> str:
    """The judgment view's prompt text ([x, j])."""
    return _render(prompt, judgment, template, tokenizer, chat_judgment_template)


def _render(prompt, judgment, template, tokenizer, chat_judgment_template) -> str:
    if template == "alpaca":
        if not isinstance(prompt, str):
            raise ValueError(
                "the 'alpaca' template needs plain-text prompts; this dataset has chat-message prompts: "
                "use template='chat'"
            )
        if judgment is None:
            return ALPACA_PLAIN.format(instruction=prompt)
        return ALPACA_JUDGMENT.format(instruction=prompt, judgment=judgment)
    if template == "chat":
        if tokenizer is None or tokenizer.chat_template is None:
            raise ValueError("the 'chat' template needs a tokenizer with a chat template")
        messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else [dict(m) for m in prompt]
        if messages[-1]["role"] != "user":
            raise ValueError(f"a chat prompt must end with a user turn, got role {messages[-1]['role']!r}")
        if judgment is not None:
            messages[-1]["content"] = chat_judgment_template.format(content=messages[-1]["content"], judgment=judgment)
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    raise ValueError(f"template must be one of {TEMPLATES}, got {template!r}")

"""Chain of Hindsight (Liu et al., 2023): condition the response on a verbal statement of its quality.

Each training prompt carries a hindsight phrase: a good response is introduced as good, a bad one as bad *with its
judgment*, and the response is learned by MLE under that phrase. At inference the model is asked for a good
response (:func:`inference_prompt`), hoping it has learned to separate the two. The phrase joins the last user turn
(chat prompts) or the instruction (string prompts), where the model reads instructions.
"""

from __future__ import annotations

from ..data import load_judgments

GOOD_PHRASE = "A good response to this follows every instruction."
BAD_PHRASE = "A bad response to this has this problem: {judgment}"


def hindsight_prompt(prompt, judgment: str | None):
    """``prompt`` with the hindsight phrase for a response judged good (``judgment=None``) or bad."""
    phrase = GOOD_PHRASE if judgment is None else BAD_PHRASE.format(judgment=judgment)
    if isinstance(prompt, str):
        return f"{prompt}\n\n{phrase}"
    messages = [dict(message) for message in prompt]
    messages[-1]["content"] = f"{messages[-1]['content']}\n\n{phrase}"
    return messages


def inference_prompt(prompt):
    """The prompt a Chain-of-Hindsight model is asked at test time: the good-response phrase appended."""
    return hindsight_prompt(prompt, None)


def hindsight_rows(dataset) -> list[dict]:
    """One row per example: the prompt with its hindsight phrase, and the response."""
    return [
        {"prompt": hindsight_prompt(example["prompt"], example["judgment"]), "completion": example["completion"]}
        for example in load_judgments(dataset)
    ]

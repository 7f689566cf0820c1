"""Forward Prediction: learn to *predict* the judgment of a response, not to respond better.

The model reads the instruction and the response and is trained (MLE) to generate the judgment; the loss covers
the judgment tokens only. A response judged good gets :data:`POSITIVE_JUDGMENT` as its target, so the model also
learns what a good response looks like to the judge. The hope of this baseline is that learning to critique
transfers to responding; the CUT paper uses it as a baseline that learns from judgments without a refinement.
"""

from __future__ import annotations

from ..data import load_judgments

FP_REQUEST = "Judge whether the response above follows the instruction, and say what is wrong with it if anything."
POSITIVE_JUDGMENT = "The response follows the instruction."


def forward_prediction_prompt(prompt, completion: str):
    """The prompt that asks for a judgment: the conversation so far, the response, then :data:`FP_REQUEST`.

    A string prompt becomes one user turn quoting the instruction and the response (it works with every
    template); a chat prompt gets the response as an assistant turn followed by a user turn with the request.
    """
    if isinstance(prompt, str):
        return f"Instruction:\n{prompt}\n\nResponse:\n{completion}\n\n{FP_REQUEST}"
    return [*prompt, {"role": "assistant", "content": completion}, {"role": "user", "content": FP_REQUEST}]


def forward_prediction_rows(dataset) -> list[dict]:
    """One row per example: the judging prompt, and the judgment (or :data:`POSITIVE_JUDGMENT`) as completion."""
    return [
        {
            "prompt": forward_prediction_prompt(example["prompt"], example["completion"]),
            "completion": example["judgment"] if example["judgment"] is not None else POSITIVE_JUDGMENT,
        }
        for example in load_judgments(dataset)
    ]

"""Imitation learning from Language Feedback (Scheurer et al., 2023): refine with the judgment, then imitate.

A negative example's response is replaced by a refinement that addresses its judgment, and the model is fine-tuned
(MLE) on the refinements together with the responses judged good. A refinement comes from the data (the optional
``refinement`` field, e.g. Shepherd's corrected answers) or, when the data has none, from a ``refine`` function,
usually the model itself asked with :func:`refinement_prompt`.
"""

from __future__ import annotations

from collections.abc import Callable

from ..data import load_judgments

REFINE_REQUEST = (
    "Here is a response to the instruction above:\n{completion}\n\nA reviewer judged it: {judgment}\n\n"
    "Rewrite the response so that it fixes what the reviewer points out. Reply with the new response only."
)


def refinement_prompt(prompt, completion: str, judgment: str):
    """The prompt that asks a model to refine ``completion`` given ``judgment``: the request joins the last user
    turn (chat prompts) or follows the instruction (string prompts)."""
    request = REFINE_REQUEST.format(completion=completion, judgment=judgment)
    if isinstance(prompt, str):
        return f"{prompt}\n\n{request}"
    messages = [dict(message) for message in prompt]
    messages[-1]["content"] = f"{messages[-1]['content']}\n\n{request}"
    return messages


def ilf_rows(dataset, refine: Callable[[list], list[str]] | None = None) -> tuple[list[dict], dict]:
    """Rows for ILF and a count of where the refinements came from.

    ``refine`` maps a list of refinement prompts to refinements; it is called once, for the negatives without a
    ``refinement`` of their own, and is required when there are such negatives. Empty refinements are dropped and
    counted (a model asked to refine can return nothing).
    """
    dataset = load_judgments(dataset)
    has_field = "refinement" in dataset.column_names
    counts = {"positive": 0, "refinement_from_data": 0, "refinement_generated": 0, "dropped_empty_refinement": 0}
    rows, pending = [], []
    for example in dataset:
        refinement = example["refinement"] if has_field else None
        if example["judgment"] is None:
            rows.append({"prompt": example["prompt"], "completion": example["completion"]})
            counts["positive"] += 1
        elif refinement and refinement.strip():
            rows.append({"prompt": example["prompt"], "completion": refinement})
            counts["refinement_from_data"] += 1
        else:
            pending.append(example)
    if pending:
        if refine is None:
            raise ValueError(f"{len(pending)} negative example(s) have no refinement; pass refine= to generate them")
        prompts = [refinement_prompt(e["prompt"], e["completion"], e["judgment"]) for e in pending]
        refinements = refine(prompts)
        if len(refinements) != len(pending):
            raise ValueError(f"refine returned {len(refinements)} refinements for {len(pending)} prompts")
        for example, refinement in zip(pending, refinements):
            if refinement and refinement.strip():
                rows.append({"prompt": example["prompt"], "completion": refinement.strip()})
                counts["refinement_generated"] += 1
            else:
                counts["dropped_empty_refinement"] += 1
    return rows, counts

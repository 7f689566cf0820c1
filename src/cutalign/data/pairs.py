"""Preferred responses for CUT's optional pairwise term: a good response to the same prompt as a judged-bad one.

Judgments give pairs only where one prompt has both a response judged good and one judged bad (or the bad one has a
``refinement``). :func:`preferred_responses` finds, for every negative example, the response that its pairwise term
prefers to it; the trainer then adds a DPO term on those pairs (``CUTConfig.pairwise_weight``).
"""

from __future__ import annotations


def prompt_key(prompt) -> str:
    """A hashable key that is equal for equal prompts (a string, or a list of chat messages)."""
    return prompt if isinstance(prompt, str) else repr([(m["role"], m["content"]) for m in prompt])


def preferred_responses(dataset) -> list[str | None]:
    """For each example of a canonical dataset, the response preferred to it, or None.

    A negative example gets a response judged good for the same prompt: the prompt's good responses are handed out
    in turn (the k-th negative of a prompt gets good response k modulo their number), so every good response is used
    when there are several. A negative without a good sibling gets its own ``refinement`` when it has a non-empty one.
    Positives, and negatives left without either, get None: they take no part in the pairwise term. A preferred
    response equal to the rejected one is no preference, so it is None too.
    """
    good: dict[str, list[str]] = {}
    for example in dataset:
        if example["judgment"] is None:
            good.setdefault(prompt_key(example["prompt"]), []).append(example["completion"])
    has_refinement = "refinement" in dataset.column_names
    handed_out: dict[str, int] = {}
    preferred = []
    for example in dataset:
        choice = None
        if example["judgment"] is not None:
            key = prompt_key(example["prompt"])
            candidates = good.get(key, [])
            if candidates:
                k = handed_out.get(key, 0)
                handed_out[key] = k + 1
                choice = candidates[k % len(candidates)]
            elif has_refinement and example["refinement"] and example["refinement"].strip():
                choice = example["refinement"]
            if choice == example["completion"]:
                choice = None
        preferred.append(choice)
    return preferred

"""AlpacaEval records: a model's answers to a prompt set, as written to and read from JSON.

AlpacaEval reads a JSON array of ``{"instruction", "output", "generator"}``; the records written here carry those
three keys (plus ``prompt`` when the prompt was a chat conversation), so a file can be given to AlpacaEval as is.
"""

from __future__ import annotations

import json
from pathlib import Path

from .generation import SamplingConfig, generate, instruction_text


def generate_records(model, tokenizer, prompts: list, *, generator: str, sampling: SamplingConfig | None = None,
                     template: str = "chat", prompt_transform=None, progress: bool = True) -> list[dict]:
    """One AlpacaEval record per prompt. ``prompt_transform`` rewrites each prompt before generation only (e.g.
    Chain of Hindsight's good-response phrase); the record keeps the original instruction."""
    asked = [prompt_transform(p) for p in prompts] if prompt_transform else list(prompts)
    outputs = generate(model, tokenizer, asked, sampling or SamplingConfig(), template=template, progress=progress)
    records = []
    for prompt, output in zip(prompts, outputs):
        record = {"instruction": instruction_text(prompt), "output": output, "generator": generator}
        if not isinstance(prompt, str):
            record["prompt"] = prompt
        records.append(record)
    return records


def read_records(path) -> list[dict]:
    """Read an AlpacaEval-format outputs file, checking every record has ``instruction`` and ``output``."""
    from .data import DataError

    path = Path(path)
    if not path.is_file():
        raise DataError("file not found", file=path)
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise DataError(f"invalid JSON at line {error.lineno}: {error.msg}", file=path) from None
    if not isinstance(records, list) or not records:
        raise DataError("must hold a non-empty JSON array of records", file=path)
    for row, record in enumerate(records, start=1):
        for key in ("instruction", "output"):
            if not isinstance(record, dict) or not isinstance(record.get(key), str):
                raise DataError("is missing or not a string", file=path, row=row, field=key)
    return records

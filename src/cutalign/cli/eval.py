"""Answer a prompt set with a model or saved adapter and score it, or compare two output files with a judge.

    cutalign eval --model out/adapter --output_dir eval/            # built-in held-out prompts: pass rate + guard
    cutalign eval --model default --prompts prompts.jsonl --output_dir eval/
    cutalign eval --compare a/outputs.json b/outputs.json --judge_model default --output_dir eval/
    cutalign eval --compare a/outputs.json b/outputs.json --judge_url http://localhost:8000/v1 --judge_name m \\
        --output_dir eval/

Writes outputs.json (AlpacaEval format: instruction, output, generator) and metrics.json; --compare reports the
position-swapped win rate of A over B with a 95% interval.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UsageError
from ..tasks import KINDS
from .data_options import DATA_FORMATS, FORMAT_HELP, SPLIT_HELP

SUMMARY = "evaluate a model (pass rate, guard metrics) or compare two output files (win rate)"


@dataclass
class EvalArguments:
    """The eval command's flags."""

    output_dir: str = field(metadata={"help": "where outputs.json and metrics.json go"})
    model: str | None = field(default=None, metadata={
        "help": "model to evaluate: 'default' (the embedded SmolLM2), a directory, a saved adapter, or a hub name "
        "in the local cache"})
    prompts: str | None = field(default=None, metadata={
        "help": "prompt file (JSON/JSONL rows with 'prompt' or 'instruction', or a JSON list of strings); "
        "default: the built-in task's held-out prompts"})
    kinds: list[str] = field(default_factory=lambda: ["no_commas"], metadata={
        "help": f"built-in task: constraint kinds of the prompts: {', '.join(KINDS)}, or all",
        "choices": (*KINDS, "all"), "metavar": "KIND"})
    n: int | None = field(default=None, metadata={"help": "built-in task: number of held-out prompts (default all)"})
    template: str = field(default="chat", metadata={
        "help": "prompt template: chat (the tokenizer's chat template) or alpaca", "choices": ("chat", "alpaca")})
    max_new_tokens: int = field(default=64, metadata={"help": "new tokens per answer"})
    batch_size: int = field(default=16, metadata={"help": "generation batch size"})
    generator: str | None = field(default=None, metadata={
        "help": "name recorded in outputs.json (default: the model name)"})
    references: str | None = field(default=None, metadata={
        "help": "reference answers (rows with prompt and completion) for the held-out log-likelihood guard metric: "
        "a data file, a save_to_disk directory or a hub dataset name, read as judgment data"})
    format: str = field(default="auto", metadata={"help": f"--references: {FORMAT_HELP}", "choices": DATA_FORMATS})
    split: str | None = field(default=None, metadata={"help": f"--references: {SPLIT_HELP}"})
    compare: list[str] | None = field(default=None, metadata={
        "help": "two outputs.json files A B to compare instead of generating", "metavar": ("A", "B")})
    judge_model: str | None = field(default=None, metadata={
        "help": "with --compare: local judge model (name, directory, adapter)"})
    judge_url: str | None = field(default=None, metadata={
        "help": "with --compare: base URL of an OpenAI-compatible endpoint (.../v1)"})
    judge_name: str | None = field(default=None, metadata={"help": "with --judge_url: the model name to request"})
    judge_api_key_env: str | None = field(default=None, metadata={
        "help": "with --judge_url: environment variable holding the API key"})

    def __post_init__(self):
        if self.compare is not None:
            if len(self.compare) != 2:
                raise UsageError(f"--compare takes two files (A B), got {len(self.compare)}")
            if (self.judge_model is None) == (self.judge_url is None):
                raise UsageError("--compare needs exactly one of --judge_model or --judge_url")
            if self.judge_url and not self.judge_name:
                raise UsageError("--judge_url needs --judge_name (the model the endpoint should use)")
        elif self.model is None:
            raise UsageError("--model is required (or --compare A B)")
        if "all" in self.kinds and len(self.kinds) > 1:
            raise UsageError("--kinds all stands alone")


def arguments() -> tuple:
    return (EvalArguments,)


def parse(argv: list[str]) -> tuple:
    """(EvalArguments,) from the command line and --config FILE."""
    from . import options

    return options.parse(argv, arguments(), prog="cutalign eval", description=__doc__)


def run(argv: list[str]) -> int:
    (args,) = parse(argv)

    from ..io import write_json

    metrics = _compare(args) if args.compare else _evaluate(args)
    write_json(Path(args.output_dir) / "metrics.json", metrics)
    print(json.dumps({k: v for k, v in metrics.items() if k != "per_kind"}, indent=2))
    return 0


def read_prompts(path: str) -> list:
    """The prompts of a prompt file: JSON/JSONL rows with 'prompt' or 'instruction', or a JSON list of strings."""
    from ..data import DataError
    from ..data.converters import read_jsonl

    file = Path(path)
    if file.suffix == ".json" and file.is_file() and file.read_text(encoding="utf-8").lstrip()[:1] == "[":
        rows = list(enumerate(json.loads(file.read_text(encoding="utf-8")), start=1))
    else:
        rows = read_jsonl(file)
    prompts = []
    for row, value in rows:
        prompt = value if isinstance(value, str) else value.get("prompt", value.get("instruction")) \
            if isinstance(value, dict) else None
        if not (isinstance(prompt, str) and prompt.strip()) and not (isinstance(prompt, list) and prompt):
            raise DataError("needs a non-empty 'prompt' or 'instruction'", file=path, row=row, field="prompt")
        prompts.append(prompt)
    return prompts


def _evaluate(args: EvalArguments) -> dict:
    from ..data import load_judgments
    from ..tasks import parse_constraints, task_prompts
    from .checks import require_model

    if args.prompts:
        prompts = read_prompts(args.prompts)
    else:
        kinds = KINDS if args.kinds == ["all"] else tuple(args.kinds)
        prompts = task_prompts("heldout", n=args.n, kinds=kinds, seed=0)
    references = load_judgments(args.references, format=args.format, split=args.split) if args.references else None
    require_model(args.model)  # after the files are read, before the model loads

    from ..eval import generate_records, guard_metrics, task_accuracy
    from ..io import write_json
    from ..models import load_model, load_tokenizer
    from ..generation import SamplingConfig

    tokenizer, model = load_tokenizer(args.model), load_model(args.model)
    sampling = SamplingConfig(max_new_tokens=args.max_new_tokens, batch_size=args.batch_size)
    records = generate_records(model, tokenizer, prompts, generator=args.generator or args.model, sampling=sampling,
                               template=args.template, prompt_transform=prompt_transform(args.model))
    write_json(Path(args.output_dir) / "outputs.json", records)
    outputs = [r["output"] for r in records]
    metrics = {"model": args.model, "n": len(records)}
    if all(isinstance(p, str) and parse_constraints(p) for p in prompts):
        metrics["task"] = task_accuracy(prompts, outputs)
    metrics["guard"] = guard_metrics(outputs, model, tokenizer,
                                     references["prompt"] if references else None,
                                     references["completion"] if references else None, template=args.template)
    return metrics


def prompt_transform(model: str):
    """Chain of Hindsight answers under its good-response phrase: apply it when ``cutalign baseline coh`` saved the
    model (its ``baseline_metrics.json`` says so)."""
    metrics = Path(model) / "baseline_metrics.json"
    if metrics.is_file() and json.loads(metrics.read_text(encoding="utf-8")).get("method") == "coh":
        from ..baselines import inference_prompt

        return inference_prompt
    return None


def _compare(args: EvalArguments) -> dict:
    from ..eval import EndpointPairwiseJudge, ModelJudge, read_records, win_rate

    a, b = (read_records(path) for path in args.compare)
    if [r["instruction"] for r in a] != [r["instruction"] for r in b]:
        raise UsageError(f"{args.compare[0]} and {args.compare[1]} must answer the same instructions in the same order")
    if args.judge_url:
        key = os.environ.get(args.judge_api_key_env) if args.judge_api_key_env else None
        if args.judge_api_key_env and not key:
            raise UsageError(f"the environment variable {args.judge_api_key_env} is not set")
        judge = EndpointPairwiseJudge(args.judge_url, args.judge_name, api_key=key)
    else:
        from ..models import load_model, load_tokenizer
        from .checks import require_model

        require_model(args.judge_model, "--judge_model")
        judge = ModelJudge(load_model(args.judge_model), load_tokenizer(args.judge_model), template=args.template)
    result = win_rate([r["instruction"] for r in a], [r["output"] for r in a], [r["output"] for r in b], judge)
    return {"a": args.compare[0], "b": args.compare[1], "judge": args.judge_model or args.judge_url, **result}

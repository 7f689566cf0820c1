"""`cutalign eval`: answer a prompt set with a saved model or adapter and score it, or compare two output files.

    cutalign eval --model out/adapter --out eval/            # built-in held-out prompts: pass rate + guard
    cutalign eval --model default --prompts prompts.jsonl --out eval/
    cutalign eval --compare a/outputs.json b/outputs.json --judge-model default --out eval/
    cutalign eval --compare a/outputs.json b/outputs.json --judge-url http://localhost:8000/v1 --judge-name m

Outputs: ``outputs.json`` (AlpacaEval format: instruction, output, generator) and ``metrics.json``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .errors import UsageError


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="evaluate a model (pass rate, guard metrics) or compare two output files (win rate)",
        description="Generate answers with a model or adapter and score them, or compare two AlpacaEval-format "
        "output files with a judge (position-swapped win rate with a 95%% interval).",
    )
    parser.add_argument("--model", default=None,
                        help="model to evaluate: 'default' (embedded SmolLM2), a directory or a saved adapter")
    parser.add_argument("--prompts", default=None,
                        help="prompt file (JSON/JSONL rows with 'prompt' or 'instruction', or a JSON list of "
                        "strings); default: the built-in task's held-out prompts")
    parser.add_argument("--kinds", default="no_commas",
                        help="built-in task: comma-separated constraint kinds (default no_commas; 'all' for all)")
    parser.add_argument("--n", type=int, default=None, help="built-in task: number of held-out prompts (default all)")
    parser.add_argument("--template", default="chat", choices=("chat", "alpaca"), help="prompt template (default chat)")
    parser.add_argument("--max-new-tokens", type=int, default=64, help="new tokens per answer (default 64)")
    parser.add_argument("--batch-size", type=int, default=16, help="generation batch size (default 16)")
    parser.add_argument("--generator", default=None, help="name recorded in outputs.json (default: the model name)")
    parser.add_argument("--references", default=None,
                        help="JSON/JSONL rows with prompt and completion: reference answers for the held-out "
                        "log-likelihood guard metric")
    parser.add_argument("--compare", nargs=2, metavar=("A", "B"), default=None,
                        help="two outputs.json files to compare instead of generating")
    parser.add_argument("--judge-model", default=None, help="with --compare: local judge model (name, dir, adapter)")
    parser.add_argument("--judge-url", default=None,
                        help="with --compare: base URL of an OpenAI-compatible endpoint (…/v1)")
    parser.add_argument("--judge-name", default=None, help="with --judge-url: the model name to request")
    parser.add_argument("--judge-api-key-env", default=None,
                        help="with --judge-url: environment variable holding the API key")
    parser.add_argument("--out", required=True, help="output directory")
    parser.set_defaults(run=run)


def _read_prompts(path: str) -> list:
    from .data import DataError
    from .data.converters import read_jsonl

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


def run(args) -> int:
    from .io import write_json

    out = Path(args.out)
    if args.compare:
        metrics = _compare(args)
    else:
        if args.model is None:
            raise UsageError("--model is required (or --compare A B)")
        metrics = _evaluate(args, out)
    write_json(out / "metrics.json", metrics)
    print(json.dumps({k: v for k, v in metrics.items() if k != "per_kind"}, indent=2))
    return 0


def _evaluate(args, out: Path) -> dict:
    from .data import load_judgments
    from .eval import generate_records, guard_metrics, task_accuracy
    from .io import write_json
    from .models import load_model, load_tokenizer
    from .generation import SamplingConfig
    from .tasks import KINDS, parse_constraints, task_prompts

    if args.prompts:
        prompts = _read_prompts(args.prompts)
    else:
        kinds = KINDS if args.kinds == "all" else tuple(k.strip() for k in args.kinds.split(","))
        prompts = task_prompts("heldout", n=args.n, kinds=kinds, seed=0)
    references = load_judgments(args.references) if args.references else None
    tokenizer, model = load_tokenizer(args.model), load_model(args.model)
    sampling = SamplingConfig(max_new_tokens=args.max_new_tokens, batch_size=args.batch_size)
    records = generate_records(model, tokenizer, prompts, generator=args.generator or args.model, sampling=sampling,
                               template=args.template, prompt_transform=_prompt_transform(args.model))
    write_json(out / "outputs.json", records)
    outputs = [r["output"] for r in records]
    metrics = {"model": args.model, "n": len(records)}
    if all(isinstance(p, str) and parse_constraints(p) for p in prompts):
        metrics["task"] = task_accuracy(prompts, outputs)
    metrics["guard"] = guard_metrics(outputs, model, tokenizer,
                                     references["prompt"] if references else None,
                                     references["completion"] if references else None, template=args.template)
    return metrics


def _prompt_transform(model: str):
    """Chain of Hindsight answers under its good-response phrase: apply it when ``cutalign baseline coh`` saved the
    model (its ``baseline_metrics.json`` says so)."""
    metrics = Path(model) / "baseline_metrics.json"
    if metrics.is_file() and json.loads(metrics.read_text(encoding="utf-8")).get("method") == "coh":
        from .baselines import inference_prompt

        return inference_prompt
    return None


def _compare(args) -> dict:
    from .eval import EndpointPairwiseJudge, ModelJudge, read_records, win_rate

    a, b = (read_records(path) for path in args.compare)
    if [r["instruction"] for r in a] != [r["instruction"] for r in b]:
        raise UsageError(f"{args.compare[0]} and {args.compare[1]} must answer the same instructions in the same order")
    if (args.judge_model is None) == (args.judge_url is None):
        raise UsageError("--compare needs exactly one of --judge-model or --judge-url")
    if args.judge_url:
        if not args.judge_name:
            raise UsageError("--judge-url needs --judge-name (the model the endpoint should use)")
        key = os.environ.get(args.judge_api_key_env) if args.judge_api_key_env else None
        if args.judge_api_key_env and not key:
            raise UsageError(f"the environment variable {args.judge_api_key_env} is not set")
        judge = EndpointPairwiseJudge(args.judge_url, args.judge_name, api_key=key)
    else:
        from .models import load_model, load_tokenizer

        judge = ModelJudge(load_model(args.judge_model), load_tokenizer(args.judge_model), template=args.template)
    result = win_rate([r["instruction"] for r in a], [r["output"] for r in a], [r["output"] for r in b], judge)
    return {"a": args.compare[0], "b": args.compare[1], "judge": args.judge_model or args.judge_url, **result}

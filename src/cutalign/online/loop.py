"""The online loop: each round samples fresh prompts, generates, judges, trains with CUT and evaluates.

Everything lives in one run directory, each file written atomically (:mod:`cutalign.io`)::

    output_dir/
      config.json            the run's config (a restart with a different one is refused; rounds may grow)
      heldout.json           the fixed held-out prompts
      round-00/              the starting model: adapter/ (fresh LoRA, a no-op) and eval.json
      round-01/
        prompts.json         this round's fresh training prompts
        generations.jsonl    {"id", "prompt", "completion"}; generations.partial.jsonl while generating
        judgments.jsonl      {"id", "judgment", "failed"}: rewritten after every batch of rows judged
        dataset.jsonl        the CUT data: judged rows (failed and empty responses left out), positives
                             down-sampled
        counts.json          the round's data counts; its presence marks the judging as done
        adapter/             the LoRA adapter after this round's training
        train.json           the trainer's metrics
        eval.json            greedy held-out answers, their pass rate and per-kind pass rates
        report.json          the round's counts, metrics and phase times (the round is done)
      summary.json, pass_rate.png

Resuming: ``run_online`` with the same config picks up where a killed run stopped. A phase whose output exists is
skipped; generation resumes at the first missing batch (each batch has its own seed, so the answers equal an
uninterrupted run's); judging sends only rows without a judgment (and rows that failed); training restarts the
round from the previous round's adapter with the same seed. The model is never judged twice for a row.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..data import count_examples, downsample_positives, load_judgments
from ..data.templates import resolve_template
from ..errors import UsageError
from ..generation import SamplingConfig, generate
from ..io import read_json, read_jsonl, write_json, write_jsonl, write_text
from ..judges import HumanJudge, JudgeFailure, build_judge
from ..tasks import pass_rate, task_prompts, wilson_interval
from .config import OnlineConfig

logger = logging.getLogger("cutalign.online")

JUDGE_BATCH = 16
"""Rows sent to a machine judge at once; judgments are saved after each batch (a human judge gets the round)."""

RESUMABLE_KEYS = ("rounds", "output_dir")
"""Config keys that may change between a run and its resumption."""


def round_dir(run_dir, index: int) -> Path:
    return Path(run_dir) / f"round-{index:02d}"


def round_prompts(config: OnlineConfig, index: int) -> list[str]:
    """The fresh prompts of round ``index`` (1-based), the same whatever the number of rounds.

    ``task_prompts`` visits the base instructions in an order fixed by the seed, so the slice of round ``index``
    holds base instructions no earlier round used until the task's instructions run out.
    """
    n = config.prompts_per_round
    kinds = tuple(config.task.kinds) if config.task.kinds else None
    prompts = task_prompts("train", n=n * index, kinds=kinds, seed=config.seed,
                           constraints_per_prompt=config.task.constraints_per_prompt)
    return prompts[n * (index - 1):]


def heldout_prompts(config: OnlineConfig) -> list[str]:
    kinds = tuple(config.task.kinds) if config.task.kinds else None
    return task_prompts("heldout", n=config.eval.size, kinds=kinds, seed=config.seed,
                        constraints_per_prompt=config.task.constraints_per_prompt)


def _check_run_config(config: OnlineConfig, run_dir: Path) -> None:
    """Record the config in a new run directory; refuse to resume a run that was started with another one."""
    current = {k: v for k, v in config.to_dict().items() if k not in RESUMABLE_KEYS}
    path = run_dir / "config.json"
    if not path.exists():
        write_json(path, current)
        return
    saved = read_json(path)
    changed = sorted(k for k in current.keys() | saved.keys() if current.get(k) != saved.get(k))
    if changed:
        raise UsageError(f"{run_dir} holds a run started with a different config (changed: {', '.join(changed)}); "
                         "use another output_dir or restore those settings")


class OnlineRun:
    """One run directory and the model that moves through it, round after round."""

    def __init__(self, config: OnlineConfig, model, tokenizer, judge, *, callbacks=(), progress: bool = True):
        from peft import get_peft_model

        from ..logprobs import add_token_logprobs_forward

        self.config, self.tokenizer, self.judge = config, tokenizer, judge
        self.callbacks, self.progress = list(callbacks), progress
        self.run_dir = Path(config.output_dir)
        # The settings every round trains with (output_dir and seed are the round's own, set in train_round).
        self.training = config.cut_config(output_dir=str(self.run_dir), seed=config.seed)
        # The prompt format of training, generation and evaluation alike ("auto" resolved once, with this tokenizer).
        self.template = resolve_template(self.training.template, tokenizer)
        lora = config.model.peft_config()
        if lora is None:
            raise UsageError("the online loop trains LoRA adapters round after round: set model.lora: true")
        add_token_logprobs_forward(model)  # before PEFT wraps it, as CUTTrainer expects
        torch.manual_seed(config.seed)  # the fresh LoRA weights of round 0
        self.model = get_peft_model(model, lora)
        self.model_round = 0  # which round's adapter the model holds
        self.times: dict[str, float] = {}

    # -- the model's state --------------------------------------------------------------------------------------
    def use_round(self, index: int) -> None:
        """Put the adapter saved after round ``index`` into the model (a no-op when it already holds it)."""
        if self.model_round == index:
            return
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        weights = load_file(str(round_dir(self.run_dir, index) / "adapter" / "adapter_model.safetensors"))
        set_peft_model_state_dict(self.model, weights)
        self.model_round = index

    def save_adapter(self, index: int) -> None:
        """Save the model's adapter as round ``index``'s, atomically (a temporary directory, then a rename)."""
        final = round_dir(self.run_dir, index) / "adapter"
        tmp = final.with_name("adapter.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        self.model.save_pretrained(str(tmp), save_embedding_layers=False)  # no hub lookup for "default"
        self.tokenizer.save_pretrained(str(tmp))
        tmp.replace(final)
        self.model_round = index

    # -- phases ---------------------------------------------------------------------------------------------------
    def generate_round(self, index: int, prompts: list[str]) -> list[dict]:
        """This round's sampled responses, resumed batch by batch from ``generations.partial.jsonl``."""
        directory = round_dir(self.run_dir, index)
        final, partial = directory / "generations.jsonl", directory / "generations.partial.jsonl"
        if final.exists():
            return read_jsonl(final)
        rows = read_jsonl(partial) if partial.exists() else []
        g = self.config.generation
        if len(rows) < len(prompts):
            self.use_round(index - 1)
        bar = tqdm(total=len(prompts), initial=len(rows), desc=f"round {index}: generating", unit="prompt",
                   disable=not self.progress)
        for start in range(len(rows), len(prompts), g.batch_size):
            batch = prompts[start:start + g.batch_size]
            sampling = dataclasses.replace(g, seed=self.config.seed * 1_000_003 + index * 1000 + start)
            answers = generate(self.model, self.tokenizer, batch, sampling, template=self.template,
                               progress=False)
            rows += [{"id": f"r{index:02d}-{start + i:05d}", "prompt": p, "completion": a}
                     for i, (p, a) in enumerate(zip(batch, answers))]
            write_jsonl(partial, rows)
            bar.update(len(batch))
        bar.close()
        write_jsonl(final, rows)
        partial.unlink(missing_ok=True)
        return rows

    def judge_round(self, index: int, rows: list[dict]) -> dict[str, dict]:
        """Judgments by row id; rows already judged are not sent again, failed rows are."""
        path = round_dir(self.run_dir, index) / "judgments.jsonl"
        records = {r["id"]: r for r in read_jsonl(path)} if path.exists() else {}
        todo = [row for row in rows if row["id"] not in records or records[row["id"]]["failed"]]
        size = len(todo) if isinstance(self.judge, HumanJudge) else JUDGE_BATCH
        bar = tqdm(total=len(rows), initial=len(rows) - len(todo), desc=f"round {index}: judging", unit="row",
                   disable=not self.progress)
        for start in range(0, len(todo), max(size, 1)):
            batch = todo[start:start + size]
            judgments = self.judge([r["prompt"] for r in batch], [r["completion"] for r in batch])
            if len(judgments) != len(batch):
                raise RuntimeError(f"the judge returned {len(judgments)} judgments for {len(batch)} rows")
            for row, judgment in zip(batch, judgments):
                failed = judgment.reason if isinstance(judgment, JudgeFailure) else None
                if judgment is not None and not isinstance(judgment, (str, JudgeFailure)):
                    failed = f"the judge returned {type(judgment).__name__}, not a string, None or JudgeFailure"
                records[row["id"]] = {"id": row["id"], "judgment": None if failed else judgment, "failed": failed}
                if failed:
                    logger.warning("round %d, row %s: not judged: %s", index, row["id"], failed)
            write_jsonl(path, [records[r["id"]] for r in rows if r["id"] in records])
            bar.update(len(batch))
        bar.close()
        return records

    def build_dataset(self, index: int, rows: list[dict], records: dict[str, dict]) -> dict:
        """Write ``dataset.jsonl``: judged rows with a non-empty response, positives down-sampled. Returns counts."""
        judged = [{**row, "judgment": records[row["id"]]["judgment"]}
                  for row in rows if not records[row["id"]]["failed"]]
        usable = [row for row in judged if row["completion"].strip()]
        counts = {"prompts": len(rows), "failed": len(rows) - len(judged), "empty_responses": len(judged) - len(usable),
                  "negatives": sum(r["judgment"] is not None for r in judged),
                  "positives": sum(r["judgment"] is None for r in judged), "trained_rows": 0}
        dataset = []
        if usable:
            kept = downsample_positives(load_judgments(usable), self.training.positive_ratio,
                                        seed=self.config.seed + index)
            dataset = [{k: row[k] for k in ("id", "prompt", "completion", "judgment")} for row in kept.to_list()]
            counts["trained_rows"] = len(dataset)
            counts["trained"] = count_examples(kept)
        write_jsonl(round_dir(self.run_dir, index) / "dataset.jsonl", dataset)
        return counts

    def train_round(self, index: int, dataset: list[dict]) -> None:
        """Train from round ``index - 1``'s adapter on ``dataset``; save ``train.json``, then the adapter."""
        from ..trainer import CUTTrainer

        self.use_round(index - 1)
        directory = round_dir(self.run_dir, index)
        if not dataset:
            logger.warning("round %d: nothing to train on; the adapter stays as it was", index)
            write_json(directory / "train.json", {"skipped": "no training data"})
            self.save_adapter(index)
            return
        # Positives were down-sampled when the round's dataset was written (build_dataset): train on all of it.
        args = self.config.cut_config(output_dir=str(directory / "trainer"), seed=self.config.seed + index,
                                      positive_ratio=-1, disable_tqdm=not self.progress)
        trainer = CUTTrainer(self.model, args, train_dataset=dataset, processing_class=self.tokenizer,
                             callbacks=self.callbacks)
        self.model_round = None  # mid-training: the weights match no saved round
        result = trainer.train()
        write_json(directory / "train.json", {**result.metrics, "log_history": trainer.state.log_history})
        self.save_adapter(index)
        shutil.rmtree(directory / "trainer", ignore_errors=True)

    def evaluate_round(self, index: int, heldout: list[str]) -> dict:
        """Greedy answers to the held-out prompts with round ``index``'s adapter, scored by the rule judge."""
        self.use_round(index)
        e = self.config.eval
        sampling = SamplingConfig(max_new_tokens=e.max_new_tokens, temperature=0.0, batch_size=e.batch_size)
        answers = generate(self.model, self.tokenizer, heldout, sampling, template=self.template,
                           progress=self.progress, description=f"round {index}: held-out")
        score = pass_rate(heldout, answers)
        passed = round(score["pass_rate"] * score["n"])
        low, high = wilson_interval(passed, score["n"])
        return {**score, "passed": passed, "ci95": [low, high],
                "responses": [{"prompt": p, "completion": a} for p, a in zip(heldout, answers)]}

    def _timed(self, name: str, function, *args):
        started = time.monotonic()
        value = function(*args)
        self.times[name] = round(time.monotonic() - started, 2)
        return value

    def run_round(self, index: int, heldout: list[str]) -> dict:
        directory = round_dir(self.run_dir, index)
        if (directory / "report.json").exists():
            return read_json(directory / "report.json")
        directory.mkdir(parents=True, exist_ok=True)
        self.times = {}
        if not (directory / "prompts.json").exists():
            write_json(directory / "prompts.json", round_prompts(self.config, index))
        prompts = read_json(directory / "prompts.json")
        rows = self._timed("generate", self.generate_round, index, prompts)
        if not (directory / "counts.json").exists():
            records = self._timed("judge", self.judge_round, index, rows)
            write_json(directory / "counts.json", self.build_dataset(index, rows, records))
        counts = read_json(directory / "counts.json")
        if not (directory / "adapter").exists():
            self._timed("train", self.train_round, index, read_jsonl(directory / "dataset.jsonl"))
        if not (directory / "eval.json").exists():
            write_json(directory / "eval.json", self._timed("evaluate", self.evaluate_round, index, heldout))
        evaluation = read_json(directory / "eval.json")
        train = read_json(directory / "train.json")
        failed = [r for r in read_jsonl(directory / "judgments.jsonl") if r["failed"]]
        report = {"round": index, **counts, "failed_rows": failed, "train_loss": train.get("train_loss"),
                  "heldout": {k: evaluation[k] for k in ("pass_rate", "n", "passed", "ci95", "per_kind")},
                  "seconds": self.times}
        write_json(directory / "report.json", report)
        write_text(directory / "report.md", round_markdown(report))
        return report


def round_markdown(report: dict) -> str:
    held = report["heldout"]
    lines = [f"# Round {report['round']}", "",
             f"- prompts: {report['prompts']}; judged negative: {report['negatives']}, positive: {report['positives']}, "
             f"failed: {report['failed']}; empty responses: {report['empty_responses']}",
             f"- trained on {report['trained_rows']} rows; final train loss: {report['train_loss']}",
             f"- held-out pass rate: {held['pass_rate']:.3f} ({held['passed']}/{held['n']}, "
             f"95% CI {held['ci95'][0]:.3f}-{held['ci95'][1]:.3f})",
             f"- seconds per phase: {report['seconds']}"]
    lines += [f"- failed row {r['id']}: {r['failed']}" for r in report["failed_rows"]]
    return "\n".join(lines) + "\n"


def summary_table(rows: list[dict]) -> str:
    """A plain-text table: one line per round (round 0 is the starting model)."""
    header = f"{'round':>5}  {'negatives':>9}  {'positives':>9}  {'failed':>6}  {'trained':>7}  {'loss':>7}  " \
             f"{'held-out pass rate':<28}"
    lines = [header, "-" * len(header)]
    for r in rows:
        held = r["heldout"]
        cells = ["-"] * 5 if r["round"] == 0 else [
            r["negatives"], r["positives"], r["failed"], r["trained_rows"],
            "-" if r["train_loss"] is None else f"{r['train_loss']:.3f}"]
        rate = f"{held['pass_rate']:.3f} ({held['passed']}/{held['n']}, {held['ci95'][0]:.2f}-{held['ci95'][1]:.2f})"
        lines.append(f"{r['round']:>5}  {cells[0]:>9}  {cells[1]:>9}  {cells[2]:>6}  {cells[3]:>7}  {cells[4]:>7}  "
                     f"{rate:<28}")
    return "\n".join(lines)


def write_chart(path: Path, rows: list[dict]) -> None:
    """The held-out pass rate per round with its 95% interval, as a PNG (written atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = [r["round"] for r in rows]
    y = [r["heldout"]["pass_rate"] for r in rows]
    low = [v - r["heldout"]["ci95"][0] for v, r in zip(y, rows)]
    high = [r["heldout"]["ci95"][1] - v for v, r in zip(y, rows)]
    figure, axes = plt.subplots(figsize=(5, 3.2))
    axes.errorbar(x, y, yerr=[low, high], marker="o", capsize=3)
    axes.set(xlabel="round (0 = starting model)", ylabel="held-out pass rate", ylim=(0, 1), xticks=x,
             title="Online CUT: held-out pass rate")
    figure.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp")
    figure.savefig(tmp, format="png", dpi=100)
    plt.close(figure)
    tmp.replace(path)


def run_online(config: OnlineConfig, *, model=None, tokenizer=None, judge=None, callbacks=(),
               progress: bool = True) -> dict:
    """Run (or resume) ``config.rounds`` rounds; returns the summary also written to ``summary.json``.

    ``model``/``tokenizer`` default to ``config.model``; ``judge`` to the one the config describes. ``callbacks``
    are ``transformers.TrainerCallback`` objects for every round's training.
    """
    from peft import PeftModel

    from ..models import load_model, load_tokenizer

    run_dir = Path(config.output_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    _check_run_config(config, run_dir)
    if judge is None:
        judge = build_judge(config.judge, run_dir)
    if tokenizer is None:
        tokenizer = load_tokenizer(config.model.model)
    if model is None:
        model = load_model(config.model.model, **config.model.model_init_kwargs())
        if isinstance(model, PeftModel):  # a saved adapter: its merged weights are the starting model
            model = model.merge_and_unload()
    run = OnlineRun(config, model, tokenizer, judge, callbacks=callbacks, progress=progress)

    if not (run_dir / "heldout.json").exists():
        write_json(run_dir / "heldout.json", heldout_prompts(config))
    heldout = read_json(run_dir / "heldout.json")
    start = round_dir(run_dir, 0)
    start.mkdir(exist_ok=True)
    if not (start / "adapter").exists():
        run.save_adapter(0)
    if not (start / "eval.json").exists():
        write_json(start / "eval.json", run.evaluate_round(0, heldout))
    evaluation = read_json(start / "eval.json")
    rows = [{"round": 0, "heldout": {k: evaluation[k] for k in ("pass_rate", "n", "passed", "ci95", "per_kind")}}]
    for index in range(1, config.rounds + 1):
        rows.append(run.run_round(index, heldout))
        logger.info("round %d: held-out pass rate %.3f", index, rows[-1]["heldout"]["pass_rate"])
    summary = {"rounds": [{k: v for k, v in r.items() if k != "failed_rows"} for r in rows],
               "output_dir": str(run_dir), "config": config.to_dict()}
    write_json(run_dir / "summary.json", summary)
    write_chart(run_dir / "pass_rate.png", rows)
    if progress:
        print(summary_table(rows))
        print(f"run directory: {run_dir} (chart: {run_dir / 'pass_rate.png'})")
    return summary

"""The online loop: each round takes fresh instructions, generates, judges, trains with CUT and evaluates.

Everything lives in one run directory, each file written atomically (:mod:`cutalign.io`)::

    output_dir/
      config.json            the run's config (a restart with a different one is refused; rounds may grow)
      heldout.json           the run's held-out prompts (prompts:)
      prompt_pool.json       with prompts.file: the training instructions in their seeded order, the files' SHA-256
      round-00/              the starting model: adapter/ (fresh LoRA, a no-op) and its evaluations
      round-01/
        prompts.json         this round's fresh training prompts
        generations.jsonl    {"id", "prompt", "completion"} (+ "failed" for a row the server did not answer);
                             generations.partial.jsonl while generating
        judgments.jsonl      {"id", "judgment", "failed"}: rewritten after every batch of rows judged
        dataset.jsonl        the CUT data: judged rows (failed and empty responses left out), positives
                             down-sampled
        counts.json          the round's data counts; its presence marks the judging as done
        adapter/             the LoRA adapter after this round's training
        train.json           the trainer's metrics (train.yaml and train.log too, with a launcher)
        eval.json            the evaluation named "heldout"; eval-<name>.json for each other one
        guard.json           with guard:, the guard's decision (keep, retrain, rollback), written before it is
                             acted on; retrain replaces adapter/, train.json and the evaluations
        report.json          the round's counts, metrics and phase times (the round is done)
      summary.json, pass_rate.png (evals.png when an evaluation is not a rule pass rate)

Resuming: ``run_online`` with the same config picks up where a killed run stopped. A phase whose output exists is
skipped; generation resumes at the first missing batch (each batch, and with the server backend each row, has its
own seed, so the answers equal an uninterrupted run's); judging sends only rows without a judgment (and rows that
failed); rows the server failed to answer are asked again while the round's data is not yet built; training
restarts the round from the previous round's adapter with the same seed; an evaluation without its file runs
again. No row is judged twice. With ``guard:``, a round whose decision (``guard.json``) is on disk repeats the
action it names (discarding the first attempt, or copying the accepted adapter), which is idempotent, and goes on.

Backends (``generation.backend``): ``hf`` generates with the model in this process; ``openai`` asks a server
(:mod:`cutalign.online.backend`), which is told to load each round's adapter (under a name that holds the adapter's
digest, so a server that already has it is not asked again, after a resume too). Training runs in this process,
or, with ``launcher:``, under ``accelerate launch`` (:mod:`cutalign.online.launcher`). The model is loaded here
only when something needs it: training in process, generation with ``hf``, or the fresh round-0 adapter.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import time
from pathlib import Path

import datasets
import torch
from tqdm.auto import tqdm

from ..data import count_examples, downsample_positives
from ..data.templates import resolve_template
from ..errors import UsageError
from ..generation import SamplingConfig, generate, instruction_text
from ..io import read_json, read_jsonl, write_json, write_jsonl, write_text
from ..judges import HumanJudge, JudgeFailure, build_judge
from .backend import GenerationFailure, ServerGenerator
from .config import OnlineConfig
from .evals import HEADLINE, ROUND_ZERO, Evaluator, eval_file, headline, read_reference
from .guard import KEEP, RETRAIN, ROLLBACK, decide
from .prompts import PromptPool, TaskPrompts, prepare_prompts, task_heldout_prompts, task_round_prompts
from .report import chart_name, round_markdown, summary_table, write_chart
from .resume import check_run_config

logger = logging.getLogger("cutalign.online")

JUDGE_BATCH = 16
"""Rows sent to a machine judge at once; judgments are saved after each batch (a human judge gets the round)."""

round_prompts = task_round_prompts  # the built-in task's prompts of a round

GUARD_FILE = "guard.json"
RETRAINED = 2
"""``train.json``'s ``attempt`` after the guard's retraining: the first attempt's files are gone by then."""


def round_dir(run_dir, index: int) -> Path:
    return Path(run_dir) / f"round-{index:02d}"


def accepted_round(run_dir, index: int) -> int:
    """The round whose model stands after round ``index``: the round itself, unless the guard rolled it back."""
    path = round_dir(run_dir, index) / GUARD_FILE
    return read_json(path)["accepted_round"] if path.exists() else index


class OnlineRun:
    """One run directory, the model that moves through it round after round, and the backend that answers."""

    def __init__(self, config: OnlineConfig, tokenizer, judge, *, model=None, callbacks=(), progress: bool = True):
        self.config, self.tokenizer, self.judge = config, tokenizer, judge
        self.callbacks, self.progress = list(callbacks), progress
        self.run_dir = Path(config.output_dir)
        # The settings every round trains with (output_dir and seed are the round's own, set in train_round).
        self.training = config.cut_config(output_dir=str(self.run_dir), seed=config.seed)
        # The prompt format of training, generation and evaluation alike ("auto" resolved once, with this tokenizer).
        self.template = resolve_template(self.training.template, tokenizer)
        self._base, self._model = model, None
        self.model_round = None  # which round's adapter the model holds
        self.server = None
        if config.generation.backend == "openai":
            self.server = ServerGenerator(config.generation.server, tokenizer, self.template)
        self._served: set[str] = set()  # model names the server is known to answer to
        self.times: dict[str, float] = {}

    # -- the model's state --------------------------------------------------------------------------------------
    @property
    def model(self):
        """The starting model with a fresh LoRA adapter (round 0's), loaded on first use."""
        if self._model is None:
            from peft import PeftModel, get_peft_model

            from ..logprobs import add_token_logprobs_forward
            from ..models import load_model

            base = self._base
            if base is None:
                base = load_model(self.config.model.model, **self.config.model.model_init_kwargs())
                if isinstance(base, PeftModel):  # a saved adapter: its merged weights are the starting model
                    base = base.merge_and_unload()
            add_token_logprobs_forward(base)  # before PEFT wraps it, as CUTTrainer expects
            torch.manual_seed(self.config.seed)  # the fresh LoRA weights of round 0
            self._model = get_peft_model(base, self.config.model.peft_config())
            # Where the Trainer would put it (the GPU if there is one): round 0's answers are generated there too.
            self._model.to(self.training.device)
            self.model_round = 0
        return self._model

    def use_round(self, index: int) -> None:
        """Put the adapter saved after round ``index`` into the model (a no-op when it already holds it)."""
        model = self.model
        if self.model_round == index:
            return
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        weights = load_file(str(round_dir(self.run_dir, index) / "adapter" / "adapter_model.safetensors"))
        set_peft_model_state_dict(model, weights)
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

    def served_name(self, index: int) -> str:
        """The server's name for round ``index``'s model: the base for round 0 (its adapter is a no-op), else the
        round's adapter, loaded into the server unless it already holds it."""
        if index == 0:
            return self.config.generation.server.model
        adapter = round_dir(self.run_dir, index) / "adapter"
        digest = hashlib.sha256((adapter / "adapter_model.safetensors").read_bytes()).hexdigest()[:12]
        name = f"{self.run_dir.name}-r{index:02d}-{digest}"
        if name not in self._served:
            self._served = self.server.served_models()
            if name not in self._served:
                self.server.load_adapter(name, str(adapter.resolve()))
                self._served.add(name)
        return name

    # -- generation -----------------------------------------------------------------------------------------------
    def row_seed(self, index: int, row: int) -> int:
        """The seed of one row's request to the server: the same in a resumed run, distinct across rows and rounds."""
        return self.config.seed * 1_000_003 + index * 1_000_000 + row

    def sample(self, index: int, start: int, prompts: list, rows: list[int]) -> list:
        """Round ``index``'s sampled answers (text or :class:`GenerationFailure`) from round ``index - 1``'s model;
        ``start`` is the batch's first row (its seed with ``hf``), ``rows`` the rows' numbers (their seeds with a
        server)."""
        g = self.config.generation
        sampling = SamplingConfig(max_new_tokens=g.max_new_tokens, temperature=g.temperature, top_p=g.top_p,
                                  batch_size=g.batch_size, seed=self.config.seed * 1_000_003 + index * 1000 + start)
        if self.server is None:
            self.use_round(index - 1)
            return generate(self.model, self.tokenizer, prompts, sampling, template=self.template, progress=False)
        return self.server.generate(prompts, sampling, model=self.served_name(index - 1),
                                    seeds=[self.row_seed(index, r) for r in rows], progress=False)

    @staticmethod
    def _row(index: int, number: int, prompt, answer) -> dict:
        row = {"id": f"r{index:02d}-{number:05d}", "prompt": prompt}
        if isinstance(answer, GenerationFailure):
            logger.warning("round %d, row %d: no answer from the server: %s", index, number, answer.reason)
            return {**row, "completion": None, "failed": answer.reason}
        return {**row, "completion": answer}

    def generate_round(self, index: int, prompts: list) -> list[dict]:
        """This round's sampled responses, resumed batch by batch from ``generations.partial.jsonl``; rows the server
        failed to answer are asked again while the round's data is not yet built."""
        directory = round_dir(self.run_dir, index)
        final, partial = directory / "generations.jsonl", directory / "generations.partial.jsonl"
        if final.exists():
            rows = read_jsonl(final)
            failed = [i for i, row in enumerate(rows) if row.get("failed")]
            if failed and not (directory / "counts.json").exists():
                answers = self.sample(index, 0, [rows[i]["prompt"] for i in failed], failed)
                for i, answer in zip(failed, answers):
                    rows[i] = self._row(index, i, rows[i]["prompt"], answer)
                write_jsonl(final, rows)
            return rows
        rows = read_jsonl(partial) if partial.exists() else []
        batch_size = self.config.generation.batch_size
        bar = tqdm(total=len(prompts), initial=len(rows), desc=f"round {index}: generating", unit="prompt",
                   disable=not self.progress)
        for start in range(len(rows), len(prompts), batch_size):
            batch = prompts[start:start + batch_size]
            answers = self.sample(index, start, batch, list(range(start, start + len(batch))))
            rows += [self._row(index, start + i, p, a) for i, (p, a) in enumerate(zip(batch, answers))]
            write_jsonl(partial, rows)
            bar.update(len(batch))
        bar.close()
        write_jsonl(final, rows)
        partial.unlink(missing_ok=True)
        return rows

    def answer(self, index: int, prompts: list, spec, description: str) -> list[str]:
        """Greedy answers of round ``index``'s model for an evaluation; a failed request stops the evaluation
        (a score over the answers that happened to arrive would mislead; running again asks again)."""
        sampling = SamplingConfig(max_new_tokens=spec.max_new_tokens, temperature=0.0, batch_size=spec.batch_size)
        if self.server is None:
            self.use_round(index)
            return generate(self.model, self.tokenizer, prompts, sampling, template=self.template,
                            progress=self.progress, description=description)
        answers = self.server.generate(prompts, sampling, model=self.served_name(index), seeds=[0] * len(prompts),
                                       progress=self.progress, description=description)
        failures = [a for a in answers if isinstance(a, GenerationFailure)]
        if failures:
            raise RuntimeError(f"{description}: the server failed {len(failures)} of {len(prompts)} answers (first: "
                               f"{failures[0].reason}); run again to retry the evaluation")
        return answers

    # -- judging, data, training ----------------------------------------------------------------------------------
    def judge_round(self, index: int, rows: list[dict]) -> dict[str, dict]:
        """Judgments by row id; rows already judged are not sent again, failed rows are."""
        path = round_dir(self.run_dir, index) / "judgments.jsonl"
        records = {r["id"]: r for r in read_jsonl(path)} if path.exists() else {}
        answered = [row for row in rows if not row.get("failed")]
        todo = [row for row in answered if row["id"] not in records or records[row["id"]]["failed"]]
        size = len(todo) if isinstance(self.judge, HumanJudge) else JUDGE_BATCH
        bar = tqdm(total=len(answered), initial=len(answered) - len(todo), desc=f"round {index}: judging",
                   unit="row", disable=not self.progress)
        for start in range(0, len(todo), max(size, 1)):
            batch = todo[start:start + size]
            judgments = self.judge([instruction_text(r["prompt"]) for r in batch], [r["completion"] for r in batch])
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
        answered = [row for row in rows if not row.get("failed")]
        judged = [{**row, "judgment": records[row["id"]]["judgment"]}
                  for row in answered if not records[row["id"]]["failed"]]
        usable = [row for row in judged if row["completion"].strip()]
        counts = {"prompts": len(rows), "generation_failed": len(rows) - len(answered),
                  "failed": len(answered) - len(judged), "empty_responses": len(judged) - len(usable),
                  "negatives": sum(r["judgment"] is not None for r in judged),
                  "positives": sum(r["judgment"] is None for r in judged), "trained_rows": 0}
        dataset = []
        if usable:
            # The loop's own rows need no validating; the trainer loads (and logs) the written dataset.
            table = datasets.Dataset.from_list([{k: row[k] for k in ("id", "prompt", "completion", "judgment")}
                                                for row in usable])
            kept = downsample_positives(table, self.training.positive_ratio, seed=self.config.seed + index)
            dataset = kept.to_list()
            counts["trained_rows"] = len(dataset)
            counts["trained"] = count_examples(kept)
        write_jsonl(round_dir(self.run_dir, index) / "dataset.jsonl", dataset)
        return counts

    def train_round(self, index: int, dataset: list[dict], learning_rate: float | None = None) -> None:
        """Train from round ``index - 1``'s adapter on ``dataset``; save ``train.json``, then the adapter.
        ``learning_rate`` is the guard's retraining rate (``train.json`` then records it, with ``attempt: 2``)."""
        directory = round_dir(self.run_dir, index)
        retrain = {} if learning_rate is None else {"attempt": RETRAINED, "learning_rate": learning_rate}
        if not dataset:
            logger.warning("round %d: nothing to train on; the adapter stays as it was", index)
            write_json(directory / "train.json", {"skipped": "no training data", **retrain})
            tmp = directory / "adapter.tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.copytree(round_dir(self.run_dir, index - 1) / "adapter", tmp)
            tmp.replace(directory / "adapter")
            return
        if self.config.launcher is not None:
            from .launcher import launch_round

            launch_round(self.config, index, directory, round_dir(self.run_dir, index - 1) / "adapter",
                         progress=self.progress, learning_rate=learning_rate)
            if retrain:
                write_json(directory / "train.json", {**read_json(directory / "train.json"), **retrain})
            (directory / "adapter.tmp").replace(directory / "adapter")
            shutil.rmtree(directory / "trainer", ignore_errors=True)
            return
        from ..trainer import CUTTrainer

        self.use_round(index - 1)
        # Positives were down-sampled when the round's dataset was written (build_dataset): train on all of it.
        args = self.config.cut_config(output_dir=str(directory / "trainer"), seed=self.config.seed + index,
                                      positive_ratio=-1, disable_tqdm=not self.progress,
                                      **({"learning_rate": learning_rate} if retrain else {}))
        trainer = CUTTrainer(self.model, args, train_dataset=dataset, processing_class=self.tokenizer,
                             callbacks=self.callbacks)
        self.model_round = None  # mid-training: the weights match no saved round
        result = trainer.train()
        write_json(directory / "train.json", {**result.metrics, "log_history": trainer.state.log_history, **retrain})
        self.save_adapter(index)
        shutil.rmtree(directory / "trainer", ignore_errors=True)

    # -- evaluation and the round as a whole ---------------------------------------------------------------------
    def evaluate_round(self, index: int, evaluator: Evaluator) -> dict:
        """Every evaluation of round ``index`` (those without their file), by name: the headline figures."""
        directory = round_dir(self.run_dir, index)
        out = {}
        for spec in self.config.eval:
            path = directory / eval_file(spec.name)
            if not path.exists():
                write_json(path, evaluator.run(spec, index))
            out[spec.name] = headline(read_json(path))
        return out

    def _timed(self, name: str, function, *args):
        started = time.monotonic()
        value = function(*args)
        self.times[name] = round(self.times.get(name, 0) + time.monotonic() - started, 2)  # a retrain adds up
        return value

    def train_and_evaluate(self, index: int, evaluator: Evaluator, learning_rate: float | None = None) -> dict:
        """Train round ``index`` unless its adapter exists, then run the evaluations without their files."""
        directory = round_dir(self.run_dir, index)
        if not (directory / "adapter").exists():
            self._timed("train", self.train_round, index, read_jsonl(directory / "dataset.jsonl"), learning_rate)
        return self._timed("evaluate", self.evaluate_round, index, evaluator)

    # -- the guard (cutalign.online.guard) -------------------------------------------------------------------------
    def guard_round(self, index: int, evaluator: Evaluator) -> dict:
        """Train and evaluate round ``index`` under the guard, acting on its decisions until one is final (keep or
        rollback); returns the evaluations. Each decision is written to ``guard.json`` before it is acted on, and
        acting is idempotent, so a run killed at any point resumes to the same files."""
        guard = self.config.guard
        directory = round_dir(self.run_dir, index)
        spec = next(s for s in self.config.eval if s.name == (guard.eval or self.config.eval[0].name))
        score_key = HEADLINE[spec.kind]
        compared_with = accepted_round(self.run_dir, index - 1)
        accepted = headline(read_json(round_dir(self.run_dir, compared_with) / eval_file(spec.name)))
        state = read_json(directory / GUARD_FILE) if (directory / GUARD_FILE).exists() else {"attempts": []}
        while True:
            action = state.get("action")
            if action == RETRAIN:
                self.discard_attempt(index)
            elif action == ROLLBACK:
                self.roll_back(index, compared_with)
            if action in (KEEP, ROLLBACK):
                return self.evaluate_round(index, evaluator)  # the last attempt's files, already written
            retrained = action == RETRAIN
            retrain_rate = self.training.learning_rate * guard.retrain_lr_factor if retrained else None
            evals = self.train_and_evaluate(index, evaluator, retrain_rate)
            decision = decide(accepted, evals[spec.name], guard, score_key, retrained=retrained)
            attempt = {"learning_rate": retrain_rate or self.training.learning_rate,
                       "metrics": watched_figures(evals[spec.name], score_key), "action": decision.action,
                       "reasons": decision.reasons}
            state = {"round": index, "eval": spec.name, "action": decision.action, "reasons": decision.reasons,
                     "attempts": state["attempts"] + [attempt], "compared_with": compared_with,
                     "compared_metrics": watched_figures(accepted, score_key),
                     "accepted_round": index if decision.action == KEEP else compared_with}
            write_json(directory / GUARD_FILE, state)
            if decision.action != KEEP:
                logger.warning("round %d: the guard says %s: %s", index, decision.action, "; ".join(decision.reasons))

    def discard_attempt(self, index: int) -> None:
        """Remove round ``index``'s first attempt (evaluations, then adapter, then train.json; its data stays) so it
        is trained again. A no-op once the retrained attempt's train.json exists; safe to repeat after a kill."""
        directory = round_dir(self.run_dir, index)
        train = directory / "train.json"
        if train.exists() and read_json(train).get("attempt") == RETRAINED:
            return
        for spec in self.config.eval:
            (directory / eval_file(spec.name)).unlink(missing_ok=True)
        shutil.rmtree(directory / "adapter", ignore_errors=True)
        for name in ("train.yaml", "train.log", "train.json"):
            (directory / name).unlink(missing_ok=True)
        if self.model_round == index:
            self.model_round = None

    def roll_back(self, index: int, accepted: int) -> None:
        """Make round ``index``'s adapter a copy of round ``accepted``'s, so the next round starts from the accepted
        model (copied to adapter.tmp, then swapped in; repeated whole after a kill)."""
        directory = round_dir(self.run_dir, index)
        tmp = directory / "adapter.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(round_dir(self.run_dir, accepted) / "adapter", tmp)
        shutil.rmtree(directory / "adapter", ignore_errors=True)
        tmp.replace(directory / "adapter")
        if self.model_round == index:
            self.model_round = None

    def run_round(self, index: int, pool, evaluator: Evaluator) -> dict | None:
        """Round ``index`` from wherever it stopped; None when the instructions ran out before it began."""
        directory = round_dir(self.run_dir, index)
        if (directory / "report.json").exists():
            return read_json(directory / "report.json")
        self.times = {}
        if not (directory / "prompts.json").exists():
            prompts = pool.for_round(index)
            if prompts is None:
                return None
            directory.mkdir(parents=True, exist_ok=True)
            write_json(directory / "prompts.json", prompts)
        prompts = read_json(directory / "prompts.json")
        rows = self._timed("generate", self.generate_round, index, prompts)
        if not (directory / "counts.json").exists():
            records = self._timed("judge", self.judge_round, index, rows)
            write_json(directory / "counts.json", self.build_dataset(index, rows, records))
        counts = read_json(directory / "counts.json")
        if self.config.guard is None:
            evals = self.train_and_evaluate(index, evaluator)
        else:
            evals = self.guard_round(index, evaluator)
        train = read_json(directory / "train.json")
        failed = [{"id": r["id"], "failed": f"generation: {r['failed']}"} for r in rows if r.get("failed")]
        failed += [r for r in read_jsonl(directory / "judgments.jsonl") if r["failed"]]
        report = {"round": index, **counts, "failed_rows": failed, "train_loss": train.get("train_loss"),
                  "evals": evals, **({"heldout": evals["heldout"]} if "heldout" in evals else {}),
                  **({"guard": guard_summary(read_json(directory / GUARD_FILE))} if self.config.guard else {}),
                  "seconds": self.times}
        write_json(directory / "report.json", report)
        write_text(directory / "report.md", round_markdown(report, kinds_of(self.config)))
        return report


def watched_figures(metrics: dict, score_key: str) -> dict:
    """The figures of an evaluation the guard compares: its score, mean words and (rule) per-kind pass rates."""
    return {k: metrics[k] for k in (score_key, "mean_words", "per_kind") if k in metrics}


def guard_summary(state: dict) -> dict:
    """What a round's report says about the guard: the final action, why, after how many attempts, and whose model
    stands (``guard.json`` holds every attempt's figures)."""
    return {"action": state["action"], "reasons": state["reasons"], "attempts": len(state["attempts"]),
            "eval": state["eval"], "accepted_round": state["accepted_round"]}


def kinds_of(config: OnlineConfig) -> dict[str, str]:
    """Each evaluation's kind, by name, in the config's order."""
    return {spec.name: spec.kind for spec in config.eval}


def run_online(config: OnlineConfig, *, model=None, tokenizer=None, judge=None, callbacks=(),
               progress: bool = True) -> dict:
    """Run (or resume) ``config.rounds`` rounds; returns the summary also written to ``summary.json``.

    ``model``/``tokenizer`` default to ``config.model``; ``judge`` to the one the config describes. ``callbacks``
    are ``transformers.TrainerCallback`` objects for every round's training (in process). Every file the config
    names is read and checked before a model loads; when the instructions run out before ``config.rounds``, the
    loop stops after the last full round and says so (``summary["stopped"]``).
    """
    from ..models import load_tokenizer

    run_dir = Path(config.output_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    check_run_config(config, run_dir)
    if tokenizer is None:
        tokenizer = load_tokenizer(config.model.model)
    template = resolve_template(config.cut_config(output_dir=str(run_dir), seed=config.seed).template, tokenizer)
    references = {spec.name: read_reference(spec) for spec in config.eval
                  if spec.kind == "pairwise" and spec.reference != ROUND_ZERO}
    pool: PromptPool | TaskPrompts
    if config.prompts.file is not None:
        exclude = [r.get("prompt") or r["instruction"] for records in references.values() for r in records]
        pool = prepare_prompts(config, run_dir, tokenizer, template, exclude)
    else:
        rule_sizes = [spec.size for spec in config.eval if spec.kind == "rule"]
        pool = TaskPrompts(config, run_dir, rule_sizes[0] if rule_sizes else 48)
    if judge is None:
        judge = build_judge(config.judge, run_dir)
    run = OnlineRun(config, tokenizer, judge, model=model, callbacks=callbacks, progress=progress)
    evaluator = Evaluator(config.eval, answer=run.answer, heldout=pool.heldout,
                          task_heldout=lambda size: task_heldout_prompts(config, size),
                          round_zero=lambda spec: read_json(round_dir(run_dir, 0) / eval_file(spec.name)),
                          references=references)

    start = round_dir(run_dir, 0)
    start.mkdir(exist_ok=True)
    if not (start / "adapter").exists():
        run.save_adapter(0)
    evals = run.evaluate_round(0, evaluator)
    rows = [{"round": 0, "evals": evals, **({"heldout": evals["heldout"]} if "heldout" in evals else {})}]
    stopped = None
    for index in range(1, config.rounds + 1):
        report = run.run_round(index, pool, evaluator)
        if report is None:
            stopped = pool.exhausted(index)
            logger.warning("%s", stopped)
            break
        rows.append(report)
        logger.info("round %d: %s", index, {name: m for name, m in report.get("evals", {}).items()})
    kinds = kinds_of(config)
    summary = {"rounds": [{k: v for k, v in r.items() if k != "failed_rows"} for r in rows],
               "evals": [{"name": name, "kind": kind} for name, kind in kinds.items()],
               "output_dir": str(run_dir), "config": config.to_dict(), "stopped": stopped}
    if config.guard is not None:
        summary["accepted_round"] = accepted_round(run_dir, rows[-1]["round"])
    write_json(run_dir / "summary.json", summary)
    chart = run_dir / chart_name(kinds)
    write_chart(chart, rows, kinds)
    if run.server is not None:
        run.server.close()
    if progress:
        print(summary_table(rows, kinds))
        if stopped:
            print(f"stopped: {stopped}")
        if config.guard is not None:
            print(f"accepted model: round {summary['accepted_round']} (the guard watches eval "
                  f"{config.guard.eval or config.eval[0].name})")
        print(f"run directory: {run_dir} (chart: {chart})")
    return summary

"""The online loop on tiny models: the run directory, resuming after a kill in each phase, reports and config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from transformers import TrainerCallback

from conftest import make_model, make_tokenizer
from cutalign.errors import UsageError
from cutalign.online import loop as loop_module
from cutalign.online.config import config_from_dict, load_config
from cutalign.judges import JudgeFailure, RuleJudge
from cutalign.online.loop import round_prompts, run_online
from cutalign.tasks import rule_judge

ROUND_FILES = ("prompts.json", "generations.jsonl", "judgments.jsonl", "dataset.jsonl", "counts.json", "eval.json")


def make_config(run_dir, **overrides):
    raw = {
        "output_dir": str(run_dir), "rounds": 2, "prompts_per_round": 6, "seed": 3,
        "task": {"kinds": ["no_commas", "lowercase"]},
        "generation": {"max_new_tokens": 6, "temperature": 1.0, "batch_size": 4},
        "eval": {"size": 3, "max_new_tokens": 4, "batch_size": 4},
        "judge": {"kind": "rule"},
        "model": {"lora_r": 2, "lora_alpha": 4, "lora_target_modules": ["q_proj", "v_proj"]},
        "training": {"num_train_epochs": 1, "per_device_train_batch_size": 2, "positive_ratio": -1.0,
                     "max_length": 128, "template": "chat", "learning_rate": 3e-4},
    }
    raw.update(overrides)
    return config_from_dict(raw)


class CountingJudge:
    """The rule judge, counting rows per call; raises once `fail_after` rows have been judged in total."""

    def __init__(self, fail_after: int | None = None):
        self.rows: list[tuple[str, str]] = []
        self.fail_after = fail_after

    def __call__(self, instructions, responses):
        if self.fail_after is not None and len(self.rows) >= self.fail_after:
            raise RuntimeError("judge killed")
        self.rows += list(zip(instructions, responses))
        # The tiny model's answers fail every rule; judge odd-length ones by the rules and call the rest good, so
        # that the data holds both kinds.
        return [rule_judge(i, r) if len(r) % 2 else None for i, r in zip(instructions, responses)]


def run(config, judge=None, callbacks=()):
    return run_online(config, model=make_model("llama"), tokenizer=make_tokenizer(), judge=judge or CountingJudge(),
                      callbacks=callbacks, progress=False)


def files_of(run_dir: Path) -> dict[str, str]:
    out = {}
    for index in (1, 2):
        for name in ROUND_FILES:
            out[f"round-{index:02d}/{name}"] = (run_dir / f"round-{index:02d}" / name).read_text()
    out["round-00/eval.json"] = (run_dir / "round-00" / "eval.json").read_text()
    # The adapters, exactly: a resumed round must start from the previous round's weights, not from fresh ones.
    from safetensors.torch import load_file

    for index in (0, 1, 2):
        weights = load_file(str(run_dir / f"round-{index:02d}" / "adapter" / "adapter_model.safetensors"))
        out[f"round-{index:02d}/adapter"] = {k: v.tolist() for k, v in sorted(weights.items())}
    return out


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted run: its files, and the rows its judge saw."""
    run_dir = tmp_path_factory.mktemp("reference")
    judge = CountingJudge()
    summary = run(make_config(run_dir), judge)
    return run_dir, files_of(run_dir), judge.rows, summary


def test_uninterrupted_run_writes_every_round(reference):
    run_dir, files, judged, summary = reference
    assert [r["round"] for r in summary["rounds"]] == [0, 1, 2]
    assert (run_dir / "pass_rate.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (run_dir / "round-02" / "adapter" / "adapter_model.safetensors").is_file()
    # Each round judged its own 6 fresh prompts exactly once.
    assert len(judged) == 12
    for index in (1, 2):
        generations = [json.loads(line) for line in files[f"round-{index:02d}/generations.jsonl"].splitlines()]
        assert [g["prompt"] for g in generations] == round_prompts(make_config(run_dir), index)
        dataset = [json.loads(line) for line in files[f"round-{index:02d}/dataset.jsonl"].splitlines()]
        # positive_ratio -1 keeps every judged row with a non-empty response.
        expected = [g for g in generations if g["completion"].strip()]
        assert [d["id"] for d in dataset] == [g["id"] for g in expected]
        report = json.loads((run_dir / f"round-{index:02d}" / "report.json").read_text())
        assert report["negatives"] + report["positives"] == 6
        assert report["heldout"]["n"] == 3
    # Round 2 starts from round 1's adapter, so its weights differ from the fresh round-0 adapter.
    from safetensors.torch import load_file

    before = load_file(str(run_dir / "round-00" / "adapter" / "adapter_model.safetensors"))
    after = load_file(str(run_dir / "round-02" / "adapter" / "adapter_model.safetensors"))
    assert any(not (before[k] == after[k]).all() for k in before)


def test_each_round_loads_its_training_data_once(tmp_path, caplog):
    """The loop down-samples its own rows without loading them as training data: the trainer's load is the one
    "Loaded N examples" line of a round."""
    import logging

    with caplog.at_level(logging.INFO, logger="cutalign"):
        run(make_config(tmp_path, rounds=1))
    loaded = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Loaded ")]
    trained = [json.loads(line) for line in (tmp_path / "round-01" / "dataset.jsonl").read_text().splitlines()]
    assert len(loaded) == 1 and loaded[0].startswith(f"Loaded {len(trained)} examples"), loaded


def test_rounds_get_fresh_prompts():
    config = make_config("unused", prompts_per_round=20)
    first, second = round_prompts(config, 1), round_prompts(config, 2)
    assert len(first) == len(second) == 20
    base = lambda prompt: prompt.rsplit(".", 2)[0]  # noqa: E731  the instruction without its constraint
    assert not {base(p) for p in first} & {base(p) for p in second}


def test_resume_after_a_kill_while_judging(reference, tmp_path):
    _, expected, judged, _ = reference
    killed = CountingJudge(fail_after=6)  # round 1 fully judged (6 rows), killed on round 2's first call
    with pytest.raises(RuntimeError, match="judge killed"):
        run(make_config(tmp_path, rounds=3), killed)  # more rounds than the reference: prompts do not depend on it
    resumed = CountingJudge()
    run(make_config(tmp_path), resumed)
    assert files_of(tmp_path) == expected
    # Nothing judged twice: the two judges together saw exactly the reference's rows.
    assert killed.rows + resumed.rows == judged


def test_resume_after_a_kill_while_judging_mid_round(reference, tmp_path, monkeypatch):
    _, expected, judged, _ = reference
    monkeypatch.setattr(loop_module, "JUDGE_BATCH", 4)
    killed = CountingJudge(fail_after=8)  # round 1 in batches of 4 + 2, round 2: one batch of 4, then the kill
    with pytest.raises(RuntimeError, match="judge killed"):
        run(make_config(tmp_path), killed)
    assert len(killed.rows) == 10
    saved = (tmp_path / "round-02" / "judgments.jsonl").read_text().splitlines()
    assert len(saved) == 4
    resumed = CountingJudge()
    run(make_config(tmp_path), resumed)
    assert files_of(tmp_path) == expected
    assert killed.rows + resumed.rows == judged
    assert len(resumed.rows) == 2


class KillAtStep(TrainerCallback):
    def __init__(self, round_to_kill: int, step: int):
        self.round_to_kill, self.step, self.rounds_seen = round_to_kill, step, 0

    def on_train_begin(self, args, state, control, **kwargs):
        self.rounds_seen += 1

    def on_step_end(self, args, state, control, **kwargs):
        if self.rounds_seen == self.round_to_kill and state.global_step == self.step:
            raise RuntimeError("training killed")


def test_resume_after_a_kill_while_training(reference, tmp_path):
    _, expected, judged, _ = reference
    first = CountingJudge()
    with pytest.raises(RuntimeError, match="training killed"):
        run(make_config(tmp_path), first, callbacks=[KillAtStep(round_to_kill=2, step=1)])
    assert not (tmp_path / "round-02" / "adapter").exists()
    second = CountingJudge()
    run(make_config(tmp_path), second)
    assert files_of(tmp_path) == expected
    assert second.rows == [] and first.rows == judged


def test_resume_after_a_kill_while_generating(reference, tmp_path, monkeypatch):
    _, expected, judged, _ = reference
    calls = {"n": 0}
    real_generate = loop_module.generate

    def dying_generate(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 6:  # round 0 eval, round 1 (2 batches), round 1 eval, round 2 first batch, then this
            raise RuntimeError("generation killed")
        return real_generate(*args, **kwargs)

    monkeypatch.setattr(loop_module, "generate", dying_generate)
    with pytest.raises(RuntimeError, match="generation killed"):
        run(make_config(tmp_path))
    partial = (tmp_path / "round-02" / "generations.partial.jsonl").read_text().splitlines()
    assert len(partial) == 4  # the first batch was kept
    monkeypatch.setattr(loop_module, "generate", real_generate)
    run(make_config(tmp_path))
    assert files_of(tmp_path) == expected
    assert not (tmp_path / "round-02" / "generations.partial.jsonl").exists()


class FlakyJudge:
    """Fails (per row) the rows whose response has an even length on the first pass, then judges everything."""

    def __init__(self):
        self.passes = 0

    def __call__(self, instructions, responses):
        self.passes += 1
        if self.passes == 1:
            return [JudgeFailure("garbage") if len(r) % 2 == 0 else rule_judge(i, r)
                    for i, r in zip(instructions, responses)]
        return RuleJudge()(instructions, responses)


def test_failed_rows_are_reported_left_out_and_retried_on_resume(tmp_path):
    config = make_config(tmp_path, rounds=1)
    judge = FlakyJudge()
    run_online(config, model=make_model("llama"), tokenizer=make_tokenizer(), judge=judge, progress=False)
    generations = [json.loads(x) for x in (tmp_path / "round-01" / "generations.jsonl").read_text().splitlines()]
    bad_ids = [g["id"] for g in generations if len(g["completion"]) % 2 == 0]
    assert bad_ids, "the tiny model should give some even-length responses under this seed"
    report = json.loads((tmp_path / "round-01" / "report.json").read_text())
    assert [r["id"] for r in report["failed_rows"]] == bad_ids
    assert report["failed"] == len(bad_ids)
    dataset_ids = [json.loads(x)["id"] for x in (tmp_path / "round-01" / "dataset.jsonl").read_text().splitlines()]
    assert not set(dataset_ids) & set(bad_ids)
    assert "failed row" in (tmp_path / "round-01" / "report.md").read_text()

    # Killed before training: on resume only the failed rows go to the judge again.
    for name in ("counts.json", "dataset.jsonl", "report.json", "train.json", "eval.json"):
        (tmp_path / "round-01" / name).unlink()
    import shutil

    shutil.rmtree(tmp_path / "round-01" / "adapter")
    seen = []

    def recording(instructions, responses):
        seen.extend(responses)
        return RuleJudge()(instructions, responses)

    run_online(config, model=make_model("llama"), tokenizer=make_tokenizer(), judge=recording, progress=False)
    assert seen == [g["completion"] for g in generations if g["id"] in bad_ids]
    report = json.loads((tmp_path / "round-01" / "report.json").read_text())
    assert report["failed"] == 0 and report["negatives"] + report["positives"] == 6


def test_a_different_config_in_the_same_run_dir_is_refused(reference, tmp_path):
    run_dir = reference[0]
    with pytest.raises(UsageError, match=r"different config \(changed: seed\)"):
        run(make_config(run_dir, seed=4))


def test_cli_overrides_rounds_and_output_dir(tmp_path):
    path = tmp_path / "online.yaml"
    path.write_text("rounds: 3\noutput_dir: a\njudge: {kind: rule}\n")
    config = load_config(path, rounds=5, output_dir=str(tmp_path / "b"))
    assert config.rounds == 5 and config.output_dir == str(tmp_path / "b")


def test_cli_bad_config_is_one_error_line_before_any_work(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "online.yaml"
    path.write_text(f"output_dir: {tmp_path / 'run'}\njudge: {{kind: oracle}}\n")
    result = subprocess.run([sys.executable, "-m", "cutalign", "online", "--config", str(path)],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: {path}: judge.kind must be one of rule, callable, model, endpoint, human, got 'oracle'")
    assert not (tmp_path / "run").exists()


def test_human_judge_in_the_loop(tmp_path):
    """The loop waits at the round until the person's file is complete, then trains on those judgments."""
    import threading
    import time

    from cutalign.judges import HumanJudge

    config = make_config(tmp_path / "run", rounds=1, judge={"kind": "human", "poll_seconds": 0.05})
    human_dir = tmp_path / "run" / "human"
    written = {}

    def person():
        while not list(human_dir.glob("todo-*.jsonl")):
            time.sleep(0.05)
        todo = next(human_dir.glob("todo-*.jsonl"))
        time.sleep(0.1)  # the todo file is complete once it exists (atomic write)
        rows = [json.loads(line) for line in todo.read_text().splitlines()]
        for i, row in enumerate(rows):
            row["judgment"] = f"Critique {i}." if i % 2 else None
        written.update({row["completion"]: row["judgment"] for row in rows})
        todo.with_name(todo.name.replace("todo-", "done-")).write_text("".join(json.dumps(r) + "\n" for r in rows))

    thread = threading.Thread(target=person)
    thread.start()
    run_online(config, model=make_model("llama"), tokenizer=make_tokenizer(),
               judge=HumanJudge(human_dir, poll_seconds=0.05, timeout_s=60), progress=False)
    thread.join()
    dataset = [json.loads(x) for x in (tmp_path / "run" / "round-01" / "dataset.jsonl").read_text().splitlines()]
    assert dataset and all(row["judgment"] == written[row["completion"]] for row in dataset)


def test_bad_scheduler_is_a_config_error(tmp_path):
    path = tmp_path / "online.yaml"
    path.write_text("judge: {kind: rule}\ntraining: {lr_scheduler_type: cosine_typo}\n")
    with pytest.raises(UsageError, match="training: .*cosine_typo"):
        load_config(path)


def test_training_section_is_a_cutconfig_override_map(tmp_path):
    """Any CUTConfig field works in training: (also ones the loop never names); typos and loop-owned keys do not."""
    path = tmp_path / "online.yaml"
    path.write_text("judge: {kind: rule}\ntraining: {activation_checkpointing: true, learning_rate: 3e-4, "
                    "threshold: 1.3}\n")
    config = load_config(path)
    args = config.cut_config(output_dir=str(tmp_path / "t"), seed=5)
    assert args.activation_checkpointing and args.learning_rate == 3e-4 and args.threshold == 1.3 and args.seed == 5
    assert args.save_strategy == "no"  # the loop's default, which training: may override
    for text, message in (("{threshhold: 1.2}", "unknown key training.threshhold.*did you mean threshold"),
                          ("{output_dir: x}", "training.output_dir is set by the loop"),
                          ("{threshold: -1}", "threshold must be > 0"),
                          ("{alpha: fast}", "training.alpha must be a number")):
        path.write_text(f"judge: {{kind: rule}}\ntraining: {text}\n")
        with pytest.raises(UsageError, match=message):
            load_config(path)


def test_model_section_is_a_model_config(tmp_path):
    path = tmp_path / "online.yaml"
    path.write_text("judge: {kind: rule}\nmodel: default\n")
    assert load_config(path).model.model == "default"
    path.write_text("judge: {kind: rule}\nmodel: {lora_r: 0}\n")
    with pytest.raises(UsageError, match="lora_r and lora_alpha must be >= 1"):
        load_config(path)


def test_a_run_directory_of_the_previous_version_resumes(tmp_path):
    """config.json, report.json and summary of runs written before several evaluations existed: the `eval` mapping,
    no prompts/launcher/backend keys, reports with `heldout` only. Such a run continues to more rounds."""
    config = make_config(tmp_path, rounds=1)
    run(config)
    saved = json.loads((tmp_path / "config.json").read_text())
    old = {k: v for k, v in saved.items() if k not in ("prompts", "launcher")}
    old["eval"] = {"size": 3, "max_new_tokens": 4, "batch_size": 4}
    old["judge"] = {k: v for k, v in old["judge"].items() if k != "prompt"}
    (tmp_path / "config.json").write_text(json.dumps(old))
    report_path = tmp_path / "round-01" / "report.json"
    report = json.loads(report_path.read_text())
    old_report = {k: v for k, v in report.items() if k not in ("evals", "generation_failed")}
    report_path.write_text(json.dumps(old_report))
    (tmp_path / "heldout.json").unlink()  # rebuilt the same from the seed

    summary = run(make_config(tmp_path, rounds=2))
    assert [r["round"] for r in summary["rounds"]] == [0, 1, 2]
    assert summary["rounds"][1]["heldout"] == report["heldout"] and "evals" not in summary["rounds"][1]
    assert summary["rounds"][2]["evals"]["heldout"]["n"] == 3
    assert (tmp_path / "pass_rate.png").is_file()
    assert json.loads((tmp_path / "config.json").read_text()) == old  # the record is not rewritten
    # A changed setting is still refused, in the old record's shape too.
    with pytest.raises(UsageError, match=r"changed: eval"):
        run(make_config(tmp_path, rounds=2, eval={"size": 4, "max_new_tokens": 4, "batch_size": 4}))


def test_config_json_of_an_hf_run_keeps_the_earlier_shape(tmp_path):
    """Keys added since are left out of config.json at their defaults (generation.backend, generation.server)."""
    raw = make_config(tmp_path).to_dict()
    assert set(raw["generation"]) == {"max_new_tokens", "temperature", "top_p", "batch_size"}
    assert raw["eval"] == [{"kind": "rule", "name": "heldout", "size": 3, "max_new_tokens": 4, "batch_size": 4,
                            "reference": None, "judge": None, "function": None}]
    assert raw["launcher"] is None and raw["prompts"]["file"] is None


def test_the_demo_config_is_the_shipped_rule_config_with_its_eval_mapping():
    """`cutalign demo` edits the shipped online-rule config's `eval` and `task` mappings: they stay mappings."""
    from cutalign.cli.demo import DemoArguments, demo_config

    args = DemoArguments(output_dir="demo-output", seed=1, rounds=2, prompts_per_round=8, model="default",
                         kinds=["no_commas"], max_new_tokens=16, heldout_prompts=5, learning_rate=1e-3,
                         num_train_epochs=1)
    config = demo_config(args)
    assert [(e.kind, e.name, e.size, e.max_new_tokens) for e in config.eval] == [("rule", "heldout", 5, 16)]
    assert config.generation.backend == "hf" and config.launcher is None and config.prompts.file is None

"""The guard: its rule as a table of cases, its config section, and the loop acting on it (retrain, then roll back;
resume after a kill mid-retrain gives the files of an uninterrupted run)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from transformers import TrainerCallback

from conftest import make_model, make_tokenizer
from cutalign.errors import UsageError
from cutalign.judges import RuleJudge
from cutalign.online.config import config_from_dict
from cutalign.online.guard import GuardConfig, decide
from cutalign.online.loop import run_online

GUARD = GuardConfig(eval="heldout", max_score_drop=0.1, max_length_drop=0.25, max_kind_drop=0.25)


def rule_figures(rate: float, words: float, **kinds: float) -> dict:
    per_kind = {kind: {"pass_rate": value, "n": 10} for kind, value in kinds.items()}
    return {"pass_rate": rate, "mean_words": words, "per_kind": per_kind}


# (case, accepted, current, retrained, action, reasons)
CASES = [
    ("within every tolerance", rule_figures(0.6, 42, no_commas=0.6), rule_figures(0.5, 31.5, no_commas=0.35), False,
     "keep", []),
    ("better on everything", rule_figures(0.5, 40, no_commas=0.5), rule_figures(0.7, 45, no_commas=0.8), False,
     "keep", []),
    ("score drops past the tolerance", rule_figures(0.6, 42), rule_figures(0.45, 42), False,
     "retrain", ["pass rate 0.450 < 0.600 - 0.1"]),
    ("answers get shorter", rule_figures(0.6, 42), rule_figures(0.9, 25), False,
     "retrain", ["mean words 25.0 < 0.75 x 42.0"]),
    ("one kind falls", rule_figures(0.5, 40, no_commas=0.8, lowercase=0.2), rule_figures(0.6, 40, no_commas=0.5,
                                                                                          lowercase=0.7), False,
     "retrain", ["no_commas pass rate 0.500 < 0.800 - 0.25"]),
    ("a kind missing from this round is not compared", rule_figures(0.5, 40, no_commas=0.8),
     rule_figures(0.5, 40, lowercase=0.1), False, "keep", []),
    ("second failure", rule_figures(0.6, 42), rule_figures(0.3, 20), True,
     "rollback", ["pass rate 0.300 < 0.600 - 0.1", "mean words 20.0 < 0.75 x 42.0"]),
    ("a retrained round that passes is kept", rule_figures(0.6, 42), rule_figures(0.6, 42), True, "keep", []),
]


@pytest.mark.parametrize("case, accepted, current, retrained, action, reasons", CASES, ids=[c[0] for c in CASES])
def test_decide(case, accepted, current, retrained, action, reasons):
    decision = decide(accepted, current, GUARD, "pass_rate", retrained=retrained)
    assert (decision.action, decision.reasons) == (action, reasons)


def test_decide_on_a_callable_mean_without_kinds():
    guard = GuardConfig(eval="score")  # the defaults: no score drop allowed
    assert decide({"mean": 2.0, "mean_words": 10}, {"mean": 2.0, "mean_words": 8}, guard, "mean",
                  retrained=False).action == "keep"
    decision = decide({"mean": 2.0, "mean_words": 10}, {"mean": 1.5, "mean_words": 7}, guard, "mean", retrained=False)
    assert decision.reasons == ["mean 1.500 < 2.000 - 0", "mean words 7.0 < 0.75 x 10.0"]


# -- the config section ----------------------------------------------------------------------------------------------
def make_config(run_dir, **overrides):
    raw = {
        "output_dir": str(run_dir), "rounds": 3, "prompts_per_round": 4, "seed": 3,
        "task": {"kinds": ["no_commas", "lowercase"]},
        "generation": {"max_new_tokens": 6, "temperature": 1.0, "batch_size": 4},
        "eval": [{"kind": "callable", "name": "score", "function": "test_online_guard:score", "size": 3,
                  "max_new_tokens": 4, "batch_size": 4}],
        # The score is the signal here; the tiny model's answer lengths wander at random, so length is not watched.
        "guard": {"max_length_drop": 1.0},
        "judge": {"kind": "rule"},
        "model": {"lora_r": 2, "lora_alpha": 4, "lora_target_modules": ["q_proj", "v_proj"]},
        "training": {"num_train_epochs": 1, "per_device_train_batch_size": 2, "positive_ratio": -1.0,
                     "max_length": 128, "template": "chat", "learning_rate": 3e-4},
    }
    raw.update(overrides)
    return config_from_dict(raw)


def test_guard_section_defaults_and_absence(tmp_path):
    config = make_config(tmp_path, guard={})
    assert config.guard == GuardConfig(eval="score")  # the first evaluation, recorded by name
    assert config.to_dict()["guard"]["eval"] == "score"
    assert "guard" not in make_config(tmp_path, guard=None).to_dict()  # absent: config.json as before


@pytest.mark.parametrize("guard, message", [
    ({"max_lenght_drop": 0.2}, r"unknown key guard.max_lenght_drop \(did you mean max_length_drop"),
    ({"eval": "heldout"}, r"guard.eval must name an evaluation \(score\), got 'heldout'"),
    ({"max_score_drop": -0.1}, "guard.max_score_drop must be >= 0"),
    ({"max_length_drop": 1.5}, "guard.max_length_drop must be between 0 and 1"),
    ({"max_kind_drop": -1}, "guard.max_kind_drop must be >= 0"),
    ({"retrain_lr_factor": 1.0}, "guard.retrain_lr_factor must be between 0 and 1"),
    ({"max_score_drop": "a lot"}, "guard.max_score_drop must be a number"),
])
def test_guard_config_errors(tmp_path, guard, message):
    with pytest.raises(UsageError, match=message):
        make_config(tmp_path, guard=guard)


# -- the loop --------------------------------------------------------------------------------------------------------
LAST_TRAINED = {"round": None}
"""The round whose training ran last in this process: what makes the evaluation below see round 2 as worse."""


def score(instruction: str, response: str) -> float:
    """The callable evaluation: 1 for every answer, 0 after round 2's training (either attempt)."""
    return 0.0 if LAST_TRAINED["round"] == 2 else 1.0


class Trainings(TrainerCallback):
    """Records each training's round, learning rate and starting LoRA weights; with ``kill_retrain`` raises at the
    first step of a retraining (a learning rate below the config's)."""

    def __init__(self, kill_retrain: bool = False):
        self.starts: list[tuple[int, float, dict]] = []
        self.kill_retrain = kill_retrain

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        from peft import get_peft_model_state_dict

        index = int(Path(args.output_dir).parent.name.removeprefix("round-"))
        LAST_TRAINED["round"] = index
        weights = {k: v.detach().clone() for k, v in get_peft_model_state_dict(model).items()}
        self.starts.append((index, args.learning_rate, weights))

    def on_step_end(self, args, state, control, **kwargs):
        if self.kill_retrain and args.learning_rate < 3e-4:
            raise RuntimeError("retraining killed")


def run(config, callback):
    LAST_TRAINED["round"] = None  # a fresh process
    return run_online(config, model=make_model("llama"), tokenizer=make_tokenizer(), judge=RuleJudge(),
                      callbacks=[callback], progress=False)


def files_of(run_dir: Path) -> dict:
    """Everything that must not depend on a kill: data, evaluations, the guard's decisions, adapters (bytes), reports
    without their timings, and the retrained round's learning rate."""
    out = {}
    for index in (1, 2, 3):
        directory = run_dir / f"round-{index:02d}"
        for name in ("prompts.json", "generations.jsonl", "judgments.jsonl", "dataset.jsonl", "counts.json",
                     "eval-score.json", "guard.json"):
            out[f"{index}/{name}"] = (directory / name).read_text()
        out[f"{index}/adapter"] = (directory / "adapter" / "adapter_model.safetensors").read_bytes()
        report = json.loads((directory / "report.json").read_text())
        out[f"{index}/report"] = {k: v for k, v in report.items() if k != "seconds"}
        train = json.loads((directory / "train.json").read_text())
        out[f"{index}/train"] = (train.get("attempt"), train.get("learning_rate"), train["train_loss"])
    return out


@pytest.fixture(scope="module")
def guarded_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("guarded")
    trainings = Trainings()
    summary = run(make_config(run_dir), trainings)
    return run_dir, trainings, summary


def test_a_degraded_round_is_retrained_then_rolled_back(guarded_run, capsys):
    from safetensors.torch import load_file

    run_dir, trainings, summary = guarded_run
    # Round 2 was trained twice, the second time at half the learning rate, and round 3 once.
    assert [(index, rate) for index, rate, _ in trainings.starts] == [(1, 3e-4), (2, 3e-4), (2, 1.5e-4), (3, 3e-4)]
    train = json.loads((run_dir / "round-02" / "train.json").read_text())
    assert (train["attempt"], train["learning_rate"]) == (2, 1.5e-4)
    assert all(row["learning_rate"] <= 1.5e-4 for row in train["log_history"] if "learning_rate" in row)

    guard = json.loads((run_dir / "round-02" / "guard.json").read_text())
    assert guard["action"] == "rollback" and guard["accepted_round"] == 1 and guard["compared_with"] == 1
    assert [(a["action"], a["learning_rate"], a["reasons"]) for a in guard["attempts"]] == [
        ("retrain", 3e-4, ["mean 0.000 < 1.000 - 0"]), ("rollback", 1.5e-4, ["mean 0.000 < 1.000 - 0"])]
    for index, action, accepted in ((1, "keep", 1), (3, "keep", 3)):
        decision = json.loads((run_dir / f"round-{index:02d}" / "guard.json").read_text())
        assert (decision["action"], decision["accepted_round"], len(decision["attempts"])) == (action, accepted, 1)
    assert json.loads((run_dir / "round-03" / "guard.json").read_text())["compared_with"] == 1

    # The rolled-back round's adapter is the accepted round's, byte for byte, and round 3 trained from it.
    for name in ("adapter_model.safetensors", "adapter_config.json"):
        assert (run_dir / "round-02" / "adapter" / name).read_bytes() == \
            (run_dir / "round-01" / "adapter" / name).read_bytes()
    accepted = load_file(str(run_dir / "round-01" / "adapter" / "adapter_model.safetensors"))
    round_3_start = trainings.starts[-1][2]
    assert round_3_start.keys() == accepted.keys()
    assert all((round_3_start[k] == accepted[k]).all() for k in accepted)
    retrain_start = trainings.starts[2][2]  # the retrain also started from the accepted adapter
    assert all((retrain_start[k] == accepted[k]).all() for k in accepted)

    # Reports, summary and table say so.
    report = json.loads((run_dir / "round-02" / "report.json").read_text())
    assert report["guard"] == {"action": "rollback", "reasons": ["mean 0.000 < 1.000 - 0"], "attempts": 2,
                               "eval": "score", "accepted_round": 1}
    assert "rolled back after 2 attempts (mean 0.000 < 1.000 - 0)" in (run_dir / "round-02" / "report.md").read_text()
    assert [r.get("guard", {}).get("action") for r in summary["rounds"]] == [None, "keep", "rollback", "keep"]
    assert summary["accepted_round"] == 3
    from cutalign.online.report import summary_table

    table = summary_table(summary["rounds"], {"score": "callable"}).splitlines()
    assert table[0].rstrip().endswith("guard")
    assert [line.rstrip().split("  ")[-1].strip() for line in table[2:]] == ["-", "kept", "rolled back to 1", "kept"]


def test_resume_after_a_kill_during_the_retrain(guarded_run, tmp_path):
    run_dir = guarded_run[0]
    with pytest.raises(RuntimeError, match="retraining killed"):
        run(make_config(tmp_path), Trainings(kill_retrain=True))
    guard = json.loads((tmp_path / "round-02" / "guard.json").read_text())
    assert guard["action"] == "retrain"  # written before acting: the first attempt is gone, the retrain died
    assert not (tmp_path / "round-02" / "adapter").exists() and not (tmp_path / "round-02" / "eval-score.json").exists()
    resumed = Trainings()
    run(make_config(tmp_path), resumed)
    assert [(index, rate) for index, rate, _ in resumed.starts] == [(2, 1.5e-4), (3, 3e-4)]
    assert files_of(tmp_path) == files_of(run_dir)


def test_resume_after_a_kill_before_the_first_attempt_is_discarded(guarded_run, tmp_path, monkeypatch):
    """Killed right after guard.json says "retrain": the first attempt's files are all still there."""
    from cutalign.online import loop as loop_module

    run_dir = guarded_run[0]
    real = loop_module.OnlineRun.discard_attempt

    def killed(self, index):
        raise RuntimeError("killed before discarding")

    monkeypatch.setattr(loop_module.OnlineRun, "discard_attempt", killed)
    with pytest.raises(RuntimeError, match="killed before discarding"):
        run(make_config(tmp_path), Trainings())
    assert (tmp_path / "round-02" / "adapter").exists() and (tmp_path / "round-02" / "eval-score.json").exists()
    monkeypatch.setattr(loop_module.OnlineRun, "discard_attempt", real)
    resumed = Trainings()
    run(make_config(tmp_path), resumed)
    assert [(index, rate) for index, rate, _ in resumed.starts] == [(2, 1.5e-4), (3, 3e-4)]
    assert files_of(tmp_path) == files_of(run_dir)

"""Judge training and evaluation on tiny models: the SFT data, the metrics against naive references, a real fit."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from conftest import make_model, make_tokenizer
from cutalign.judges.training import (
    JUDGE_TRAINING,
    agreement,
    evaluate_judge,
    judge_examples,
    rouge_l,
    split_rows,
    train_judge,
)
from cutalign import CUTConfig, ModelConfig
from cutalign.judges import NO_ISSUES, JudgeFailure, ModelJudge, judge_prompt


def naive_lcs(a: list[str], b: list[str]) -> int:
    """The longest common subsequence by brute-force recursion (fine for a few words)."""
    if not a or not b:
        return 0
    if a[0] == b[0]:
        return 1 + naive_lcs(a[1:], b[1:])
    return max(naive_lcs(a[1:], b), naive_lcs(a, b[1:]))


@pytest.mark.parametrize("candidate, reference", [
    ("the response uses two commas", "The response uses commas, e.g. after 'red'"),
    ("No", "yes"),
    ("a b a b c", "b a c a b"),
    ("", "anything"),
])
def test_rouge_l_matches_a_naive_lcs(candidate, reference):
    a, b = candidate.lower().replace(",", " ").replace("'", " ").split(), \
        reference.lower().replace(",", " ").replace("'", " ").replace(".", " ").split()
    lcs = naive_lcs(a, b)
    expected = 0.0 if lcs == 0 else 2 * (lcs / len(a)) * (lcs / len(b)) / (lcs / len(a) + lcs / len(b))
    assert rouge_l(candidate, reference) == pytest.approx(expected)


def test_judge_examples_map_good_rows_to_the_fixed_answer():
    rows = [{"id": "a", "prompt": "Say hi.", "completion": "Hi.", "judgment": None},
            {"id": "b", "prompt": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Go."}],
             "completion": "Went.", "judgment": "Too short."}]
    assert judge_examples(rows) == [
        {"id": "a", "prompt": judge_prompt("Say hi.", "Hi."), "completion": NO_ISSUES, "judgment": None},
        {"id": "b", "prompt": judge_prompt("Go.", "Went."), "completion": "Too short.", "judgment": None},
    ]


def test_agreement_counts_against_a_hand_count():
    predictions = [None, "bad a", "bad b", None, JudgeFailure("garbage"), "bad c"]
    references = [None, "bad a", None, "bad d", "bad e", "bad c x"]
    report = agreement(predictions, references)
    # Parsed rows: 5. Bad as bad: rows 2 and 6; good as bad: row 3; bad as good: row 4; good as good: row 1.
    assert report["confusion"] == {"bad_as_bad": 2, "good_as_bad": 1, "bad_as_good": 1, "good_as_good": 1}
    assert report["failed"] == 1 and report["n"] == 6
    assert report["accuracy"] == pytest.approx(3 / 5)
    assert report["precision_bad"] == pytest.approx(2 / 3)
    assert report["recall_bad"] == pytest.approx(2 / 3)
    assert report["rouge_l"] == pytest.approx((1.0 + rouge_l("bad c", "bad c x")) / 2)
    assert report["reference_bad_share"] == pytest.approx(4 / 6)


def test_split_rows_is_seeded_and_disjoint():
    rows = [{"id": str(i)} for i in range(10)]
    train, held = split_rows(rows, 0.3, seed=1)
    assert len(held) == 3 and len(train) == 7
    assert {r["id"] for r in train} | {r["id"] for r in held} == {str(i) for i in range(10)}
    assert split_rows(rows, 0.3, seed=1) == (train, held)
    with pytest.raises(ValueError, match="too few"):
        split_rows(rows[:1], 0.5, seed=0)


def test_a_trained_tiny_judge_reproduces_its_training_judgments(tmp_path):
    rows = [
        {"id": "1", "prompt": "Name a fruit. Do not use any commas.", "completion": "Apples, pears.",
         "judgment": "Uses a comma."},
        {"id": "2", "prompt": "Name a color.", "completion": "Blue is nice.", "judgment": None},
    ]
    tokenizer = make_tokenizer()
    model = make_model("llama")
    # The random head's rows are so small that no hidden state (normalized) can make one token likely; LoRA does not
    # touch the head, so scale it up to give the adapters something to steer.
    with torch.no_grad():
        model.lm_head.weight.mul_(20)
    untrained = evaluate_judge(ModelJudge(model, tokenizer, max_new_tokens=8), rows)
    model_config = ModelConfig(lora_r=8, lora_alpha=16,
                               lora_target_modules=["q_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
    args = CUTConfig(**{**JUDGE_TRAINING, "output_dir": str(tmp_path / "judge"), "num_train_epochs": 70,
                        "learning_rate": 1e-2, "per_device_train_batch_size": 2, "disable_tqdm": True})
    trained, tokenizer = train_judge(rows, model_config=model_config, args=args, model=model, tokenizer=tokenizer)
    report = evaluate_judge(ModelJudge(trained, tokenizer, max_new_tokens=8), rows)
    assert untrained["accuracy"] != 1.0 or untrained["rouge_l"] != 1.0
    assert [e["judge"] for e in report["examples"]] == ["Uses a comma.", None]
    assert report["accuracy"] == 1.0 and report["rouge_l"] == 1.0
    saved = tmp_path / "judge"
    assert (saved / "adapter_model.safetensors").is_file() and (saved / "tokenizer_config.json").is_file()
    assert json.loads((saved / "train_metrics.json").read_text())["train_loss"] > 0


def test_train_judge_cli_rejects_bad_input(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"prompt": "x", "completion": "", "judgment": None}) + "\n")
    result = subprocess.run([sys.executable, "-m", "cutalign", "train-judge", "--data", str(bad),
                             "--output_dir", str(tmp_path / "out")], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == f"error: {bad}, row 1, field 'completion': is empty"
    assert not (tmp_path / "out").exists()


def test_balance_classes_repeats_the_rarer_class_and_keeps_every_row():
    from cutalign.judges.training import balance_classes

    rows = [{"id": i, "judgment": None if i < 2 else f"bad {i}"} for i in range(7)]  # 2 good, 5 bad
    balanced = balance_classes(rows, seed=0)
    assert balanced[:7] == rows
    assert sum(r["judgment"] is None for r in balanced) == 5 and sum(r["judgment"] is not None for r in balanced) == 5
    assert {r["id"] for r in balanced[7:]} == {0, 1}
    assert balance_classes(rows, seed=0) == balanced
    assert balance_classes(rows[2:], seed=0) == rows[2:]  # one class only: nothing to balance


def test_train_judge_options_start_from_the_judge_recipe(tmp_path):
    """One parser for model, data and training options; the judge's recipe under --config under the command line."""
    from cutalign.cli import train_judge

    model_config, _, training = train_judge.parse([])
    assert training.learning_rate == JUDGE_TRAINING["learning_rate"] and training.output_dir == "runs/judge"
    assert model_config.lora_r == 16  # ModelConfig's own default: LoRA settings are declared once
    config = tmp_path / "judge.yaml"
    config.write_text("learning_rate: 1.0e-3\nlora_r: 4\nthreshold: 1.3\n")
    model_config, _, training = train_judge.parse(["--config", str(config), "--learning_rate", "2e-3"])
    assert training.learning_rate == 2e-3 and model_config.lora_r == 4 and training.threshold == 1.3

"""Baselines: each method's training rows say what the method says, and each one trains (parameters change)."""

import dataclasses
import json

import pytest
import torch
from peft import LoraConfig
from transformers import TrainingArguments
from trl import DPOConfig, KTOConfig, SFTConfig

from conftest import make_model, make_tokenizer, tiny_examples
from cutalign import CUTConfig
from cutalign.baselines import (
    METHODS,
    forward_prediction_rows,
    hindsight_rows,
    ilf_rows,
    inference_prompt,
    kto_rows,
    preference_pairs,
    sft_rows,
    tokenize_rows,
    train_baseline,
    trl_config,
)
from cutalign.baselines.forward_prediction import FP_REQUEST, POSITIVE_JUDGMENT
from cutalign.baselines.hindsight import GOOD_PHRASE
from cutalign.data.templates import plain_prompt

JUDGMENT = tiny_examples()[-1]["judgment"]


def test_sft_positive_drops_negatives_and_sft_all_keeps_them():
    data = tiny_examples(n_pos=2, n_neg=3)
    assert [r["completion"] for r in sft_rows(data, positives_only=True)] == ["The answer is 0.", "The answer is 2."]
    assert len(sft_rows(data, positives_only=False)) == 5


def test_tokenized_labels_cover_the_completion_only():
    tokenizer = make_tokenizer()
    rows = forward_prediction_rows(tiny_examples(n_pos=1, n_neg=1))
    tokenized = tokenize_rows(rows, tokenizer, template="chat", max_length=512)
    for row, ids, labels in zip(rows, tokenized["input_ids"], tokenized["labels"]):
        target = [label for label in labels if label != -100]
        assert tokenizer.decode(target) == row["completion"] + tokenizer.eos_token
        prompt_len = labels.index(target[0])
        assert tokenizer.decode(ids[:prompt_len]) == plain_prompt(row["prompt"], "chat", tokenizer)
        assert ids[prompt_len:] == target


def test_forward_prediction_targets_are_judgments():
    data = tiny_examples(n_pos=1, n_neg=1)
    rows = forward_prediction_rows(data)
    assert [r["completion"] for r in rows] == [POSITIVE_JUDGMENT, JUDGMENT]
    assert data[1]["completion"] in rows[1]["prompt"] and FP_REQUEST in rows[1]["prompt"]
    chat = forward_prediction_rows([{**data[1], "prompt": [{"role": "user", "content": "Hi"}]}])
    assert [m["role"] for m in chat[0]["prompt"]] == ["user", "assistant", "user"]


def test_hindsight_prompts_carry_the_phrase():
    data = tiny_examples(n_pos=1, n_neg=1)
    rows = hindsight_rows(data)
    assert rows[0]["prompt"].endswith(GOOD_PHRASE) and JUDGMENT in rows[1]["prompt"]
    assert "bad response" in rows[1]["prompt"] and rows[1]["completion"] == data[1]["completion"]
    assert inference_prompt("Q") == f"Q\n\n{GOOD_PHRASE}"


def test_ilf_uses_data_refinements_then_generates_the_rest():
    data = tiny_examples(n_pos=1, n_neg=2)
    data[1]["refinement"] = "the capital of france is paris."
    seen = []

    def refine(prompts):
        seen.extend(prompts)
        return ["generated fix"] * len(prompts)

    rows, counts = ilf_rows(data, refine)
    assert [r["completion"] for r in rows] == [data[0]["completion"], data[1]["refinement"], "generated fix"]
    assert counts == {"positive": 1, "refinement_from_data": 1, "refinement_generated": 1,
                      "dropped_empty_refinement": 0}
    assert len(seen) == 1 and JUDGMENT in seen[0] and data[2]["completion"] in seen[0]
    with pytest.raises(ValueError, match="1 negative example"):
        ilf_rows(data)


def test_preference_pairs_come_from_the_same_prompt():
    data = [
        {"prompt": "A", "completion": "good a", "judgment": None},
        {"prompt": "A", "completion": "bad a", "judgment": "wrong"},
        {"prompt": "A", "completion": "bad a2", "judgment": "wrong too"},
        {"prompt": "B", "completion": "bad b", "judgment": "wrong"},
        {"prompt": "C", "completion": "good c", "judgment": None},
    ]
    pairs, counts = preference_pairs(data)
    assert pairs == [{"prompt": "A", "chosen": "good a", "rejected": "bad a"},
                     {"prompt": "A", "chosen": "good a", "rejected": "bad a2"}]
    assert counts == {"prompts_with_pairs": 1, "prompts_without_pairs": 2, "pairs": 2}
    data[3]["refinement"] = "fixed b"
    pairs, _ = preference_pairs(data)
    assert {"prompt": "B", "chosen": "fixed b", "rejected": "bad b"} in pairs
    assert [r["label"] for r in kto_rows(data)] == [True, False, False, False, True]


def _paired_data():
    rows = []
    for i in range(4):
        rows.append({"prompt": f"Name the capital of France, take {i}.", "completion": "the capital is paris.",
                     "judgment": None})
        rows.append({"prompt": f"Name the capital of France, take {i}.", "completion": "The capital is Paris.",
                     "judgment": JUDGMENT})
    return rows


@pytest.mark.parametrize("method", METHODS)
def test_every_baseline_trains(method, tmp_path):
    tokenizer = make_tokenizer()
    model = make_model("llama")
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    args = CUTConfig(output_dir=str(tmp_path), learning_rate=1e-2, num_train_epochs=1, per_device_train_batch_size=4,
                     report_to=[], save_strategy="no", logging_steps=1, use_cpu=True, seed=0)
    peft = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    trainer = train_baseline(method, model, _paired_data(), tokenizer, training_args=args, peft_config=peft,
                             refine=lambda prompts: ["the capital is paris."] * len(prompts))
    lora = {n: p for n, p in trainer.model.named_parameters() if "lora_B" in n}
    assert lora and any(p.abs().sum() > 0 for p in lora.values())  # lora_B starts at zero: it moved
    assert all(torch.equal(p, before[n]) for n, p in model.named_parameters() if n in before and "lora" not in n)
    assert trainer.state.global_step >= 1
    if method == "dpo":
        assert trainer.baseline_counts == {"prompts_with_pairs": 4, "pairs": 4}
    if method == "sft-positive":
        assert trainer.baseline_counts == {"rows": 4}


def test_unknown_method():
    with pytest.raises(ValueError, match="unknown baseline 'ppo'"):
        train_baseline("ppo", None, [], None, training_args={})


@pytest.mark.parametrize("config_class", [SFTConfig, DPOConfig, KTOConfig])
def test_trl_configs_take_every_training_argument_of_the_run(config_class, tmp_path):
    """Every TrainingArguments field reaches TRL's config by name, TRL's differing defaults (bf16, logging_steps,
    learning rate, gradient checkpointing) included; a dict of keywords leaves TRL's defaults for the rest."""
    run = CUTConfig(output_dir=str(tmp_path), max_steps=1, report_to="none", learning_rate=0.123, logging_steps=3,
                    lr_scheduler_type="constant", weight_decay=0.5, use_cpu=True, seed=7)
    config = trl_config(config_class, run, max_length=64)
    assert isinstance(config, config_class) and config.max_length == 64
    for field in dataclasses.fields(TrainingArguments):
        if field.init:
            assert getattr(config, field.name) == getattr(run, field.name), field.name
    assert config.bf16 is False and config.max_steps == 1 and config.report_to == [] and config.learning_rate == 0.123
    from_dict = trl_config(config_class, {"output_dir": str(tmp_path), "use_cpu": True, "bf16": False})
    assert from_dict.logging_steps == 10  # TRL's default, not the Trainer's 500


def test_the_baseline_command_takes_cut_trains_options(tmp_path):
    """`cutalign baseline` parses cutalign train's options: --max_steps, --report_to and --max_length reach the TRL
    config it trains with (saved by the Trainer as training_args.bin), for an SFT-style method and for DPO."""
    from conftest import make_model as tiny

    from cutalign.cli import main

    model_dir, data = tmp_path / "tiny", tmp_path / "paired.jsonl"
    tiny("llama").save_pretrained(model_dir)
    make_tokenizer().save_pretrained(model_dir)
    data.write_text("".join(json.dumps(row) + "\n" for row in _paired_data()))
    run_yaml = tmp_path / "run.yaml"
    run_yaml.write_text(f"model: {model_dir}\ntrain_data: {data}\nlora_target_modules: [q_proj, v_proj]\n"
                        "learning_rate: 0.01\nsave_strategy: 'no'\n")
    for method, config_class in (("sft-all", SFTConfig), ("dpo", DPOConfig)):
        out = tmp_path / method
        assert main(["baseline", method, "--config", str(run_yaml), "--output_dir", str(out), "--max_steps", "1",
                     "--report_to", "none", "--max_length", "64"]) == 0
        args = torch.load(out / "training_args.bin", weights_only=False)
        assert type(args) is config_class
        assert (args.max_steps, args.report_to, args.max_length) == (1, [], 64)
        assert args.learning_rate == 0.01 and args.bf16 is False  # the YAML's value; TRL's bf16 default not taken
        metrics = json.loads((out / "baseline_metrics.json").read_text())
        assert metrics["method"] == method and metrics["train"]["step"] == 1

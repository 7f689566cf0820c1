"""CUT's optional pairwise (DPO) term: pairing, the loss against a naive formula, the collated views against plain
forwards, the reference model, logging and errors."""

import math

import pytest
import torch
from conftest import make_model, make_tokenizer
from peft import LoraConfig
from test_trainer import config

from cutalign import CUTTrainer
from cutalign.data import load_judgments
from cutalign.data.collator import CUTCollator
from cutalign.data.pairs import preferred_responses
from cutalign.data.tokenize import tokenize_dataset
from cutalign.logprobs import add_token_logprobs_forward, batch_token_logps
from cutalign.loss import pairwise_loss

BAD = "The response uses capital letters, e.g. in 'The'; the instruction asks for lowercase."


def paired_rows(n: int = 3) -> list[dict]:
    """n prompts, each with one good and one bad response, plus a bad response without a good sibling."""
    rows = []
    for i in range(n):
        prompt = f"Name the capital of country {i} in lowercase."
        rows.append({"prompt": prompt, "completion": f"the capital is city {i}.", "judgment": None})
        rows.append({"prompt": prompt, "completion": f"The Capital Is City {i}.", "judgment": BAD})
    rows.append({"prompt": "Count to three in lowercase.", "completion": "One, Two, Three.", "judgment": BAD})
    return rows


def test_preferred_responses_hand_out_good_siblings_in_turn_then_refinements():
    rows = [
        {"prompt": "a", "completion": "good 1", "judgment": None},
        {"prompt": "a", "completion": "bad 1", "judgment": "no"},
        {"prompt": "a", "completion": "good 2", "judgment": None},
        {"prompt": "a", "completion": "bad 2", "judgment": "no"},
        {"prompt": "a", "completion": "bad 3", "judgment": "no"},
        {"prompt": "b", "completion": "bad", "judgment": "no", "refinement": "fixed"},
        {"prompt": "c", "completion": "bad", "judgment": "no", "refinement": "  "},
        {"prompt": "d", "completion": "same", "judgment": None},
        {"prompt": "d", "completion": "same", "judgment": "no"},
    ]
    for row in rows:
        row.setdefault("refinement", None)
    got = preferred_responses(load_judgments(rows))
    assert got == [None, "good 1", None, "good 2", "good 1", "fixed", None, None, None]


def test_pairwise_loss_matches_the_dpo_formula_and_rewards_the_preferred_response():
    chosen, rejected = torch.tensor([-3.0, -8.0], requires_grad=True), torch.tensor([-5.0, -2.0])
    reference_chosen, reference_rejected = torch.tensor([-4.0, -6.0]), torch.tensor([-5.5, -1.0])
    losses, margins = pairwise_loss(chosen, rejected, reference_chosen, reference_rejected, beta=0.5)
    for k in range(2):
        margin = (chosen[k].item() - reference_chosen[k].item()) - (rejected[k].item() - reference_rejected[k].item())
        assert margins[k].item() == pytest.approx(margin)
        assert losses[k].item() == pytest.approx(math.log(1 + math.exp(-0.5 * margin)), rel=1e-6)
    losses.sum().backward()
    assert (chosen.grad < 0).all()  # raising the preferred response's likelihood lowers the loss
    equal, _ = pairwise_loss(rejected, rejected, rejected, rejected, beta=0.1)
    assert torch.allclose(equal, torch.full((2,), math.log(2)))


@pytest.mark.parametrize("padding_free", [False, True])
def test_pairwise_views_score_what_plain_forwards_score(padding_free):
    """Every index of a pairwise batch reads the score that a forward of that view alone gives: the policy's
    preferred responses in the batch with gradient, both responses of each pair in the reference batch."""
    tokenizer = make_tokenizer()
    model = add_token_logprobs_forward(make_model("llama")).eval()
    data = load_judgments(paired_rows())
    data = data.add_column("preferred", preferred_responses(data))
    tokenized, report = tokenize_dataset(data, tokenizer, template="alpaca", max_length=256)
    assert report.pairs == 3 and "3 pair(s)" in report.summary()
    features = [tokenized[i] for i in range(len(tokenized))]
    batch = CUTCollator(tokenizer.pad_token_id, padding_free=padding_free, detach_judgment=True, pairwise=True)(features)
    assert batch["paired"].tolist() == [False, True] * 3 + [False]
    with torch.no_grad():
        policy = batch_token_logps(model, batch)
        reference = batch_token_logps(model, batch, "reference_")

        def alone(prompt, completion):
            logps = torch.log_softmax(model(input_ids=torch.tensor([prompt + completion])).logits[0], -1)
            return logps[torch.arange(len(prompt) - 1, len(prompt) - 1 + len(completion)), torch.tensor(completion)]

        for b, f in enumerate(features):
            if not f["preferred_ids"]:
                continue
            m, n = len(f["preferred_ids"]), len(f["completion_ids"])
            preferred = alone(f["prompt_ids"], f["preferred_ids"])
            assert batch["preferred_mask"][b].sum() == m
            assert torch.allclose(policy[batch["preferred_index"][b, :m]], preferred, atol=1e-5)
            assert torch.allclose(reference[batch["reference_preferred_index"][b, :m]], preferred, atol=1e-5)
            rejected = alone(f["prompt_ids"], f["completion_ids"])
            assert torch.allclose(reference[batch["reference_rejected_index"][b, :n]], rejected, atol=1e-5)


def lora():
    return LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")


def test_at_the_start_the_pairwise_term_is_log2_per_pair_and_the_adapter_off_model_is_the_reference(tmp_path):
    """A fresh LoRA adapter leaves the model equal to the reference (margins 0), so the term is exactly
    weight x log 2 x pairs / examples on top of the CUT loss without it."""
    args = dict(per_device_train_batch_size=7, threshold=1.0, align_n_weight=0.0, unflagged_weight=0.0)
    trainer = CUTTrainer(make_model("llama"), config(tmp_path, pairwise_weight=2.0, **args),
                         train_dataset=paired_rows(), processing_class=make_tokenizer(), peft_config=lora())
    assert trainer.reference_model is None
    without = CUTTrainer(make_model("llama"), config(tmp_path, **args), train_dataset=paired_rows(),
                         processing_class=make_tokenizer(), peft_config=lora())
    features = [trainer.train_dataset[i] for i in range(len(trainer.train_dataset))]
    plain = [without.train_dataset[i] for i in range(len(without.train_dataset))]
    with torch.no_grad():
        loss = trainer.compute_loss(trainer.model, trainer.data_collator(features))
        base = without.compute_loss(without.model, without.data_collator(plain))
    assert loss.item() == pytest.approx(base.item() + 2.0 * math.log(2) * 3 / 7, rel=1e-5)


@pytest.mark.parametrize("reduction", ["normalized", "reference"])
def test_pairwise_training_logs_parts_that_add_up_and_learns_the_preference(reduction, tmp_path):
    """Under accumulation the logged parts, pairwise included, add up to the logged loss; training on the pairs
    alone (every other part off) makes the preferred responses relatively more likely than under the reference."""
    args = config(tmp_path, per_device_train_batch_size=2, gradient_accumulation_steps=2, max_steps=8,
                  logging_steps=2, reduction=reduction, threshold=1.0, pairwise_weight=1.0, align_p_weight=0.0,
                  align_n_weight=0.0, unflagged_weight=0.0, alpha=0.0, learning_rate=2e-2)
    trainer = CUTTrainer(make_model("llama"), args, train_dataset=paired_rows(), processing_class=make_tokenizer(),
                         peft_config=lora())
    trainer.train()
    logs = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert len(logs) == 4
    for entry in logs:
        parts = sum(entry[k] for k in ("align_p", "align_n", "misalign_mle", "unlikelihood", "pairwise"))
        assert parts == pytest.approx(entry["loss"], rel=1e-4, abs=1e-7)
        assert entry["pairs"] >= 1
    assert logs[-1]["pairwise/margin"] > 0 and logs[-1]["pairwise/accuracy"] > 0.5
    assert logs[-1]["pairwise"] < logs[0]["pairwise"]


def test_full_weights_get_a_frozen_reference_copy(tmp_path):
    model = make_model("llama")
    trainer = CUTTrainer(model, config(tmp_path, pairwise_weight=1.0, max_steps=3), train_dataset=paired_rows(),
                         processing_class=make_tokenizer())
    reference = {n: p.detach().clone() for n, p in trainer.reference_model.named_parameters()}
    assert all(torch.equal(p, dict(model.named_parameters())[n]) for n, p in reference.items())
    trainer.train()
    assert all(torch.equal(p, reference[n]) for n, p in trainer.reference_model.named_parameters())
    assert any(not torch.equal(p, reference[n]) for n, p in model.named_parameters())
    assert trainer.state.log_history[0]["pairs"] > 0


def test_pairwise_without_pairs_is_refused_and_too_long_pairs_are_reported(tmp_path, caplog):
    unpaired = [row for row in paired_rows() if row["judgment"]][:1] + [
        {"prompt": "Another question?", "completion": "yes.", "judgment": None}]
    with pytest.raises(ValueError, match="no pair for it"):
        CUTTrainer(make_model("llama"), config(tmp_path, pairwise_weight=1.0), train_dataset=unpaired,
                   processing_class=make_tokenizer())
    rows = paired_rows(2)
    rows[0]["completion"] = "word " * 400  # the good answer of the first prompt cannot follow its prompt
    trainer = CUTTrainer(make_model("llama"), config(tmp_path, pairwise_weight=1.0, max_length=420),
                         train_dataset=rows, processing_class=make_tokenizer())
    report = trainer.data_reports["train"]["tokenization"]
    assert report.pairs == 1 and len(report.pairs_too_long) == 1
    assert "1 pair(s) left out" in caplog.text

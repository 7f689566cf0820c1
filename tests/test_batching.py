"""Batching: padding-free batches give the same log-probabilities and update as padded ones; length grouping
finds the ``length`` column CUTTrainer adds."""

import random

import pytest
import torch
from conftest import make_model, make_tokenizer
from test_trainer import assert_same_sgd_step, config

from cutalign.data import load_judgments
from cutalign.data.collator import CUTCollator, pack_views
from cutalign.data.tokenize import tokenize_dataset
from cutalign.logprobs import add_token_logprobs_forward, check_packed_views_stay_apart
from cutalign import CUTConfig, CUTTrainer


def uneven_examples(n: int = 8) -> list[dict]:
    rows = []
    for i in range(n):
        rows.append({"prompt": "Say a number" + " please" * (i % 3) + ".",  # views of 40 to 250 tokens
                     "completion": "Seven" + " and more" * (30 if i % 8 == 5 else i % 4),
                     "judgment": None if i % 3 == 0 else "The number is wrong" + " again" * i + "."})
    return rows


def features(tokenizer, examples):
    tokenized, _ = tokenize_dataset(load_judgments(examples), tokenizer, template="alpaca", max_length=256)
    return [tokenized[i] for i in range(len(tokenized))]


def test_pack_views_places_every_view_without_overlap_within_capacity():
    rng = random.Random(0)
    lengths = [rng.randint(1, 40) for _ in range(30)]
    places, rows, width = pack_views(lengths, capacity=40)
    spans = sorted((row, offset, offset + n) for (row, offset), n in zip(places, lengths))
    for (row, _, end), (next_row, next_start, _) in zip(spans, spans[1:]):
        assert row != next_row or end <= next_start  # no two views overlap
    assert all(end <= 40 for _, _, end in spans) and width <= 40
    assert rows < len(lengths)  # short views share rows
    assert rows >= -(-sum(lengths) // 40)
    with pytest.raises(ValueError, match="does not fit"):
        pack_views([5, 41], capacity=40)


@pytest.mark.parametrize("single_row", [False, True])
@pytest.mark.parametrize("kind", ["llama", "qwen2", "gpt2"])
def test_packed_batch_scores_equal_padded_batch_scores(kind, single_row):
    tokenizer = make_tokenizer()
    model = add_token_logprobs_forward(make_model(kind)).eval()
    batch_features = features(tokenizer, uneven_examples())
    padded = CUTCollator(tokenizer.pad_token_id)(batch_features)
    packed = CUTCollator(tokenizer.pad_token_id, padding_free=True, single_row=single_row)(batch_features)
    assert "attention_mask" not in packed and packed["input_ids"].numel() < padded["input_ids"].numel()
    if single_row:
        assert packed["input_ids"].shape[0] == 1
    with torch.no_grad():
        scores = {}
        for name, batch in (("padded", padded), ("packed", packed)):
            token_logps = model(input_ids=batch["input_ids"], attention_mask=batch.get("attention_mask"),
                                position_ids=batch.get("position_ids"), score_positions=batch["score_positions"],
                                score_targets=batch["score_targets"]).token_logps
            scores[name] = (token_logps[batch["plain_index"]], token_logps[batch["mle_index"]])
    for key in ("plain_index", "mle_index", "shift_labels", "negative"):
        assert torch.equal(padded[key], packed[key])
    mask = padded["completion_mask"]
    for padded_scores, packed_scores in zip(scores["padded"], scores["packed"]):
        assert torch.allclose(padded_scores[mask], packed_scores[mask], atol=1e-5)


def test_padding_free_training_step_equals_padded_step(tmp_path):
    assert CUTConfig(output_dir=str(tmp_path)).padding_free  # the default
    assert_same_sgd_step(tmp_path, uneven_examples(), dict(per_device_train_batch_size=8, padding_free=False),
                         dict(per_device_train_batch_size=8, padding_free=True))


def test_model_that_ignores_position_restarts_is_refused(tmp_path):
    model = make_model("llama")
    backbone_forward = model.model.forward

    def forward_without_position_ids(*args, position_ids=None, **kwargs):  # packed views would see each other
        return backbone_forward(*args, **kwargs)

    check_packed_views_stay_apart(model)  # the unmodified model passes
    model.model.forward = forward_without_position_ids
    with pytest.raises(ValueError, match="padding_free=False"):
        check_packed_views_stay_apart(model)
    with pytest.raises(ValueError, match="keeps packed sequences apart"):
        CUTTrainer(model, config(tmp_path, padding_free=True), train_dataset=uneven_examples(),
                   processing_class=make_tokenizer())


def test_length_column_counts_the_tokens_run_and_feeds_length_grouping(tmp_path):
    def padded_tokens(strategy):
        args = config(tmp_path, per_device_train_batch_size=4, train_sampling_strategy=strategy, padding_free=False)
        trainer = CUTTrainer(make_model("llama"), args, train_dataset=uneven_examples(64),
                             processing_class=make_tokenizer())
        return trainer, sum(batch["input_ids"].numel() for batch in trainer.get_train_dataloader())

    trainer, random_tokens = padded_tokens("random")
    for example in trainer.train_dataset:
        views = [example["prompt_ids"]] + ([example["judgment_prompt_ids"]] if example["negative"] else [])
        assert example["length"] == sum(len(view) + len(example["completion_ids"]) for view in views)
    _, grouped_tokens = padded_tokens("group_by_length")
    assert grouped_tokens < 0.9 * random_tokens  # 16% fewer here; without the column grouping fails outright

"""CUTTrainer on tiny random models: parameters move, the loss falls, log-probs match plain forwards."""

import dataclasses
import json

import pytest
import torch
from conftest import make_model, make_tokenizer, tiny_examples
from peft import LoraConfig

from cutalign.data.collator import CUTCollator
from cutalign.data.tokenize import tokenize_dataset
from cutalign.data import load_judgments
from cutalign.logprobs import add_token_logprobs_forward, batch_token_logps
from cutalign.models import load_model
from cutalign import CUTConfig, CUTTrainer


def config(tmp_path, **overrides):
    """A short run with every loss part on (the reference weights), so that each part is exercised."""
    values = dict(
        output_dir=str(tmp_path / "out"), per_device_train_batch_size=6, max_steps=6, learning_rate=5e-3,
        report_to=[], logging_steps=1, positive_ratio=-1, save_strategy="no", use_cpu=True, seed=0,
        lr_scheduler_type="constant", disable_tqdm=True, align_n_weight=1.0, unflagged_weight=1.0,
    )
    values.update(overrides)
    return CUTConfig(**values)


@pytest.mark.parametrize("kind", ["llama", "qwen2", "gpt2"])
def test_training_changes_every_parameter_and_lowers_loss(kind, tmp_path):
    model = make_model(kind)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainer = CUTTrainer(model, config(tmp_path, threshold=1.0), train_dataset=tiny_examples(),
                         processing_class=make_tokenizer())
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(len(trainer.train_dataset))])
    with torch.no_grad():
        initial = trainer.compute_loss(model, batch).item()
    trainer.train()
    with torch.no_grad():
        final = trainer.compute_loss(model, batch).item()
    unchanged = [n for n, p in model.named_parameters() if torch.equal(p, before[n])]
    assert unchanged == []
    assert final < initial
    logged = trainer.state.log_history[0]
    for key in ("loss", "align_p", "align_n", "misalign_mle", "unlikelihood", "flagged_fraction", "logps/plain",
                "logps/judgment", "tokens"):
        assert key in logged


@pytest.mark.parametrize("reduction", ["normalized", "reference"])
def test_logged_parts_add_up_to_the_logged_loss_under_accumulation(reduction, tmp_path):
    """With 2 accumulation steps and 2 optimizer steps per log, align_p + align_n + misalign_mle + unlikelihood is
    the Trainer's logged loss (not half of it), and with nothing flagged the unlikelihood part is exactly 0."""
    for threshold, flagged in ((1.0, True), (1e9, False)):
        args = config(tmp_path, per_device_train_batch_size=3, gradient_accumulation_steps=2, max_steps=4,
                      logging_steps=2, reduction=reduction, threshold=threshold, positive_ratio=-1)
        trainer = CUTTrainer(make_model("llama"), args, train_dataset=tiny_examples(), processing_class=make_tokenizer())
        trainer.train()
        logs = [entry for entry in trainer.state.log_history if "loss" in entry]
        assert len(logs) == 2
        for entry in logs:
            parts = entry["align_p"] + entry["align_n"] + entry["misalign_mle"] + entry["unlikelihood"]
            assert parts == pytest.approx(entry["loss"], rel=1e-4)
            assert (entry["unlikelihood"] > 0) == flagged and (entry["flagged_fraction"] > 0) == flagged
            assert entry["misalign_mle"] > 0 or flagged
            if flagged:
                assert entry["ratio/flagged"] > threshold


@pytest.mark.parametrize("padding_free", [False, True])
@pytest.mark.parametrize("contrast", [None, "The response does not follow the instruction."])
@pytest.mark.parametrize("detach_judgment", [False, True])
def test_training_logprobs_match_plain_forward_of_each_view(padding_free, contrast, detach_judgment):
    tokenizer = make_tokenizer()
    model = add_token_logprobs_forward(make_model("llama"))
    tokenized, _ = tokenize_dataset(load_judgments(tiny_examples(2, 2)), tokenizer, template="alpaca", max_length=256,
                                    contrast_judgment=contrast)
    features = [tokenized[i] for i in range(len(tokenized))]
    batch = CUTCollator(tokenizer.pad_token_id, padding_free=padding_free, contrast=contrast is not None,
                        detach_judgment=detach_judgment)(features)
    assert ("contrast_index" in batch) == (contrast is not None)
    # The first batch holds the plain views (and the judgment views unless detached); the rest is detached.
    assert len(batch["input_ids"]) == (4 if detach_judgment else 6) or padding_free
    assert ("detached_input_ids" in batch) == (detach_judgment or contrast is not None)
    model.eval()
    with torch.no_grad():
        scores = torch.cat([
            batch_token_logps(model, batch, prefix)
            for prefix in ("", "detached_") if prefix + "input_ids" in batch
        ])
        for b, f in enumerate(features):
            completion = f["completion_ids"]
            views = [("prompt_ids", batch["plain_index"])]
            views.append(("judgment_prompt_ids" if f["negative"] else "prompt_ids", batch["mle_index"]))
            if contrast is not None:
                views.append(("contrast_prompt_ids" if f["negative"] else "prompt_ids", batch["contrast_index"]))
            for key, index in views:
                ids = torch.tensor([f[key] + completion])  # this view alone, no padding
                logps = torch.log_softmax(model(input_ids=ids).logits[0], -1)
                start = len(f[key]) - 1
                expected = logps[torch.arange(start, start + len(completion)), torch.tensor(completion)]
                got = scores[index[b, : len(completion)]]
                assert torch.allclose(got, expected, atol=1e-5), (b, key)


@pytest.mark.parametrize("padding_free", [False, True])
@pytest.mark.parametrize("contrast", [None, "The response does not follow the instruction."])
def test_views_without_gradient_run_apart_and_leave_loss_and_gradients_unchanged(tmp_path, padding_free, contrast):
    """With align_n_weight = 0 (the default) the judgment views run in a forward without gradient: the loss and
    every gradient equal those of one forward over all views, and that second forward really records no graph."""
    trainer = CUTTrainer(make_model("llama"), config(tmp_path, align_n_weight=0.0, threshold=1.0,
                                                     padding_free=padding_free, contrast_judgment=contrast),
                         train_dataset=tiny_examples(), processing_class=make_tokenizer())
    assert trainer.data_collator.detach_judgment
    features = [trainer.train_dataset[i] for i in range(len(trainer.train_dataset))]
    grad_enabled = []
    trainer.model.register_forward_pre_hook(lambda module, args: grad_enabled.append(torch.is_grad_enabled()))
    results = []
    for detach in (False, True):
        batch = dataclasses.replace(trainer.data_collator, detach_judgment=detach)(features)
        trainer.model.zero_grad()
        loss = trainer.compute_loss(trainer.model, batch)
        loss.backward()
        results.append((loss.detach(), {n: p.grad.clone() for n, p in trainer.model.named_parameters()}))
    # Contrast views are always detached; judgment views only with detach_judgment.
    assert grad_enabled == ([False, True] if contrast else [True]) + [False, True]
    (joint_loss, joint_grads), (split_loss, split_grads) = results
    assert torch.allclose(joint_loss, split_loss, atol=1e-6)
    assert all(g.abs().sum() > 0 for g in split_grads.values())
    for name, grad in split_grads.items():
        assert torch.allclose(grad, joint_grads[name], atol=1e-6), name


def test_judgment_views_keep_their_gradient_when_align_n_trains_on_them(tmp_path):
    trainer = CUTTrainer(make_model("llama"), config(tmp_path), train_dataset=tiny_examples(),
                         processing_class=make_tokenizer())
    assert not trainer.data_collator.detach_judgment
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(len(trainer.train_dataset))])
    assert "detached_input_ids" not in batch


def test_a_batch_without_negatives_still_runs_the_forward_without_gradient(tmp_path):
    """Processes training together must call the model equally often (DDP syncs buffers on every forward; ZeRO-3
    and FSDP gather weights): a batch of positives alone gets a one-view detached batch whose scores are unread."""
    trainer = CUTTrainer(make_model("llama"), config(tmp_path, align_n_weight=0.0),
                         train_dataset=tiny_examples(3, 0) + tiny_examples(0, 1), processing_class=make_tokenizer())
    positives = [f for f in (trainer.train_dataset[i] for i in range(len(trainer.train_dataset))) if not f["negative"]]
    batch = trainer.data_collator(positives)
    assert len(batch["detached_input_ids"]) == 1
    assert len(batch["detached_score_targets"]) == len(positives[0]["completion_ids"])
    assert batch["mle_index"].max() < len(batch["score_targets"])  # every read score comes from the first batch
    calls = []
    trainer.model.register_forward_pre_hook(lambda module, args: calls.append(torch.is_grad_enabled()))
    loss = trainer.compute_loss(trainer.model, batch)
    assert calls == [False, True] and torch.isfinite(loss)


def test_contrast_judgment_flags_only_what_the_judgment_adds(tmp_path):
    """Flagging by p(y|x,j) / p(y|x,j0): rows whose judgment *is* j0 get no flag at all, while the same rows are
    flagged under the paper's ratio; with real judgments, training runs and moves every parameter."""
    neutral = "The response does not follow the instruction."
    rows = [{**row, "judgment": neutral if row["judgment"] else None} for row in tiny_examples()]

    def first_log(data, **overrides):
        model = make_model("llama")
        before = {n: p.detach().clone() for n, p in model.named_parameters()}
        trainer = CUTTrainer(model, config(tmp_path, max_steps=1, threshold=1.01, **overrides), train_dataset=data,
                             processing_class=make_tokenizer())
        trainer.train()
        assert all(not torch.equal(p, before[n]) for n, p in model.named_parameters())
        return trainer.state.log_history[0]

    assert first_log(rows)["flagged_fraction"] > 0
    assert first_log(rows, contrast_judgment=neutral)["flagged_fraction"] == 0
    assert "flagged_fraction" in first_log(tiny_examples(), contrast_judgment=neutral)


def assert_same_sgd_step(tmp_path, train_dataset, first: dict, second: dict):
    """One SGD step from the same start under two sets of config overrides: every parameter moves, and equally."""
    def one_step(overrides):
        model = make_model("llama", seed=1)
        args = config(tmp_path, max_steps=1, optim="sgd", learning_rate=0.5, threshold=1.0, **overrides)
        CUTTrainer(model, args, train_dataset=train_dataset, processing_class=make_tokenizer()).train()
        return {n: p.detach().clone() for n, p in model.named_parameters()}

    a, b = one_step(first), one_step(second)
    start = {n: p.detach() for n, p in make_model("llama", seed=1).named_parameters()}
    for name in a:
        assert not torch.equal(a[name], start[name])
        assert torch.allclose(a[name], b[name], atol=1e-6), name


def test_normalized_reduction_same_update_for_any_accumulation_split(tmp_path):
    """One optimizer step over 6 examples: batch 6 x 1 accumulation == batch 2 x 3 accumulation steps."""
    uneven = [  # uneven lengths and mixes, so that per-micro-batch averaging would weigh tokens differently
        {"prompt": "Say a number.", "completion": "Seven" + " and more" * (3 * i), "judgment": None if i < 2 else
         "The number is wrong" + "." * i} for i in range(6)
    ]
    assert_same_sgd_step(tmp_path, uneven,
                         dict(per_device_train_batch_size=6, gradient_accumulation_steps=1),
                         dict(per_device_train_batch_size=2, gradient_accumulation_steps=3, dataloader_drop_last=False))


def test_lora_trains_only_adapters_and_saves_reloadable_adapter(tmp_path):
    model = make_model("llama")
    base = {n: p.detach().clone() for n, p in model.named_parameters()}
    lora = LoraConfig(r=4, lora_alpha=8, target_modules=["gate_proj", "up_proj", "down_proj"], task_type="CAUSAL_LM")
    trainer = CUTTrainer(model, config(tmp_path), train_dataset=tiny_examples(), processing_class=make_tokenizer(),
                         peft_config=lora)
    adapters = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if p.requires_grad}
    assert adapters and all("lora_" in n for n in adapters)
    trainer.train()
    for name, value in trainer.model.named_parameters():
        if "lora_B" in name:
            assert not torch.equal(value, adapters[name]), name
    for name, value in trainer.model.get_base_model().named_parameters():
        if "lora_" not in name:
            assert torch.equal(value, base[name.replace(".base_layer", "")]), name

    out = tmp_path / "adapter"
    trainer.save_model(str(out))
    assert (out / "adapter_config.json").is_file() and (out / "tokenizer_config.json").is_file()


def test_resume_from_checkpoint_continues_the_run(tmp_path):
    args = config(tmp_path, max_steps=4, save_strategy="steps", save_steps=2)
    first = CUTTrainer(make_model("llama"), args, train_dataset=tiny_examples(), processing_class=make_tokenizer())
    first.train()
    assert (tmp_path / "out" / "checkpoint-2").is_dir()
    resumed = CUTTrainer(make_model("llama"), config(tmp_path, max_steps=4, save_strategy="steps", save_steps=2),
                         train_dataset=tiny_examples(), processing_class=make_tokenizer())
    resumed.train(resume_from_checkpoint=str(tmp_path / "out" / "checkpoint-2"))
    assert resumed.state.global_step == 4
    final_first = {n: p for n, p in first.model.named_parameters()}
    for name, value in resumed.model.named_parameters():
        assert torch.allclose(value, final_first[name], atol=1e-6), name


def test_full_model_save_reloads_with_from_pretrained(tmp_path):
    trainer = CUTTrainer(make_model("gpt2"), config(tmp_path, max_steps=1), train_dataset=tiny_examples(),
                         processing_class=make_tokenizer())
    trainer.train()
    trainer.save_model(str(tmp_path / "full"))
    reloaded = load_model(str(tmp_path / "full"))
    for (name, a), b in zip(trainer.model.named_parameters(), reloaded.parameters()):
        assert torch.equal(a, b), name


def test_downsampling_and_too_long_rows_are_reported(tmp_path):
    rows = tiny_examples(n_pos=8, n_neg=4)
    rows.append({"prompt": "p", "completion": "word " * 300, "judgment": "too long", "id": "long-one"})
    trainer = CUTTrainer(make_model("llama"), config(tmp_path, positive_ratio=0.5, max_length=128),
                         train_dataset=rows, processing_class=make_tokenizer())
    report = trainer.data_reports["train"]
    assert report["loaded"] == {"positives": 8, "negatives": 5, "total": 13}
    assert report["after_downsampling"]["positives"] == 2  # int(0.5 * 5)
    assert report["tokenization"].removed_too_long == ["long-one"]
    assert len(trainer.train_dataset) == 2 + 4


def test_chat_template_mode_trains(tmp_path):
    rows = tiny_examples()
    rows[0]["prompt"] = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hi."}]
    rows = [dict(r, prompt=[{"role": "user", "content": r["prompt"]}]) if isinstance(r["prompt"], str) else r
            for r in rows]
    trainer = CUTTrainer(make_model("qwen2"), config(tmp_path, template="chat", max_steps=2), train_dataset=rows,
                         processing_class=make_tokenizer())
    trainer.train()
    assert trainer.state.global_step == 2


def test_defaults_are_the_measured_mix_and_the_reference_mix_is_one_option_away(tmp_path):
    """CUTConfig's defaults: Align-P MLE + flagged unlikelihood, every positive kept, normalized reduction. The
    reference mix is REFERENCE_MIX, and the shipped reference-mix.yaml holds the same values."""
    from cutalign.config import REFERENCE_MIX, config_file
    from cutalign.io import read_yaml

    args = CUTConfig(output_dir=str(tmp_path))
    assert (args.align_p_weight, args.align_n_weight, args.unflagged_weight) == (1.0, 0.0, 0.0)
    assert (args.threshold, args.alpha, args.positive_ratio, args.reduction) == (1.1, 1.0, -1.0, "normalized")
    assert read_yaml(config_file("reference-mix", online=False)) == REFERENCE_MIX
    reference = CUTConfig(output_dir=str(tmp_path), **REFERENCE_MIX)
    assert (reference.align_n_weight, reference.unflagged_weight, reference.positive_ratio, reference.reduction) == \
        (1.0, 1.0, 0.25, "reference")


@pytest.mark.parametrize("field,value,message", [
    ("threshold", 0.0, "threshold must be > 0"),
    ("alpha", -1.0, "alpha must be >= 0"),
    ("max_flagged_fraction", 0.0, "max_flagged_fraction must be in"),
    ("contrast_judgment", " ", "contrast_judgment must not be empty"),
    ("reduction", "mean", "reduction must be one of"),
    ("template", "vicuna", "template must be one of"),
    ("align_n_weight", -0.5, "align_n_weight must be >= 0"),
    ("pairwise_weight", -1.0, "pairwise_weight must be >= 0"),
    ("pairwise_beta", 0.0, "pairwise_beta must be > 0"),
    ("chat_judgment_template", "{content}", "must contain {judgment}"),
    ("max_length", 1, "max_length must be >= 2"),
])
def test_config_rejects_bad_values(tmp_path, field, value, message):
    with pytest.raises(ValueError, match=message):
        CUTConfig(output_dir=str(tmp_path), **{field: value})


def test_saved_adapter_loads_outside_cutalign_and_has_a_real_model_card(tmp_path, monkeypatch):
    """A model given as a directory: the adapter records that directory (absolute), loads with plain PEFT offline
    to the same weights as cutalign.load_model, and its README is a CUT model card, not PEFT's blank template."""
    from peft import AutoPeftModelForCausalLM

    base_dir = tmp_path / "base"
    make_model("llama").save_pretrained(base_dir)
    make_tokenizer().save_pretrained(base_dir)
    monkeypatch.chdir(tmp_path)  # the model is named by a relative path
    args = config(tmp_path, max_steps=2, threshold=1.0, alpha=0.5)
    trainer = CUTTrainer("base", args, train_dataset=tiny_examples(),
                         peft_config=LoraConfig(r=4, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    trainer.train()
    out = tmp_path / "adapter"
    trainer.save_model(str(out))
    saved = json.loads((out / "adapter_config.json").read_text())
    assert saved["base_model_name_or_path"] == str(base_dir.resolve())
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir("/")
    plain = AutoPeftModelForCausalLM.from_pretrained(str(out))
    ours = load_model(str(out))
    ids = torch.tensor([[1, 5, 9, 12]])
    with torch.no_grad():
        assert torch.allclose(plain(ids).logits, ours(ids).logits, atol=1e-5)
    card = (out / "README.md").read_text()
    assert "More Information Needed" not in card
    for expected in ("base_model: " + str(base_dir.resolve()), "arXiv:2312.14591", "@article{xu2023reasons",
                     "| `threshold` | 1.0 |", "| `alpha` | 0.5 |", "| `pairwise_weight` | 0.0 |", "- cutalign", "- cut", "- trl",
                     "3 positives, 3 negatives", "train_loss"):
        assert expected in card, expected


def test_saving_an_adapter_asks_no_hub(tmp_path, monkeypatch):
    """PEFT's embedding-layer check would ask the hub for the base's config on every save; cutalign skips it."""
    import huggingface_hub

    calls = []
    monkeypatch.delenv("HF_HUB_OFFLINE")  # PEFT skips the lookup in offline mode; users rarely set it
    monkeypatch.setattr(huggingface_hub, "file_exists", lambda *a, **k: calls.append(a) or False)
    monkeypatch.setattr("peft.utils.other.file_exists", lambda *a, **k: calls.append(a) or False)
    model = make_model("llama")
    model.name_or_path = model.config._name_or_path = "some-org/some-model"
    trainer = CUTTrainer(model, config(tmp_path, max_steps=1), train_dataset=tiny_examples(),
                         processing_class=make_tokenizer(),
                         peft_config=LoraConfig(r=4, target_modules=["q_proj"], task_type="CAUSAL_LM"))
    trainer.save_model(str(tmp_path / "adapter"))
    assert calls == []
    assert (tmp_path / "adapter" / "adapter_model.safetensors").is_file()


def test_data_is_checked_before_the_model_loads(tmp_path, monkeypatch):
    """A data mistake that needs no model fails before load_model is ever called (models can take minutes)."""
    model_dir = tmp_path / "base"
    make_tokenizer().save_pretrained(model_dir)  # a tokenizer is all the data checks need

    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded before the data was checked")

    monkeypatch.setattr("cutalign.trainer.load_model", no_model)
    chat_rows = [{"prompt": [{"role": "user", "content": "Hi"}], "completion": "Hello there.", "judgment": "Too short."}]
    with pytest.raises(ValueError, match="'alpaca' template needs plain-text prompts"):
        CUTTrainer(str(model_dir), config(tmp_path, template="alpaca"), train_dataset=chat_rows)


def test_auto_template_follows_the_tokenizer_and_drops_are_warned(tmp_path, caplog):
    examples = tiny_examples(n_pos=4, n_neg=4)
    with caplog.at_level("WARNING", logger="cutalign"):
        chat = CUTTrainer(make_model("llama"), config(tmp_path, positive_ratio=0.25), train_dataset=examples,
                          processing_class=make_tokenizer(chat=True))
    assert CUTConfig(output_dir=str(tmp_path)).template == "auto"
    assert chat.template == "chat"
    assert "kept 1 of 4 positives (positive_ratio=0.25 x 4 negatives)" in caplog.text
    plain = CUTTrainer(make_model("llama"), config(tmp_path), train_dataset=examples,
                       processing_class=make_tokenizer(chat=False))
    assert plain.template == "alpaca"


def test_a_launch_that_formed_no_process_group_is_refused(tmp_path, monkeypatch):
    """WORLD_SIZE=2 from the launcher but one process in the Accelerator: two copies would each train on all the
    data and write the same folder. Refuse it."""
    args = config(tmp_path)  # the process state is set up here, as one process
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(RuntimeError, match="launched as 2 processes .* training runs in 1"):
        CUTTrainer(make_model("llama"), args, train_dataset=tiny_examples(), processing_class=make_tokenizer())


def test_without_an_accelerator_training_runs_on_the_cpu(tmp_path):
    if torch.accelerator.is_available():
        pytest.skip("this machine has an accelerator")
    assert CUTConfig(output_dir=str(tmp_path)).use_cpu

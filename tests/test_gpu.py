"""GPU-only paths: QLoRA (bitsandbytes 4-bit base + LoRA) and bf16 training. Skipped without a CUDA GPU."""

import importlib.util

import pytest
import torch
from conftest import make_model, make_tokenizer, tiny_examples
from peft import LoraConfig

from cutalign import CUTConfig, CUTTrainer

needs_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def _config(tmp_path, **overrides):
    return CUTConfig(output_dir=str(tmp_path), max_steps=3, per_device_train_batch_size=6, learning_rate=1e-2,
                     report_to="none", save_strategy="no", positive_ratio=-1, logging_steps=1, **overrides)


def _lora():
    return LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")


@needs_gpu
@pytest.mark.skipif(importlib.util.find_spec("bitsandbytes") is None, reason="needs bitsandbytes")
def test_qlora_trains_the_adapters_of_a_4bit_model(tmp_path):
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    make_model("llama").save_pretrained(tmp_path / "base")
    quantization = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                      bnb_4bit_compute_dtype=torch.bfloat16)
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "base", quantization_config=quantization,
                                                 device_map={"": 0})
    trainer = CUTTrainer(model, _config(tmp_path / "out", bf16=True), train_dataset=tiny_examples(),
                         processing_class=make_tokenizer(), peft_config=_lora())
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if p.requires_grad}
    trainer.train()
    after = dict(trainer.model.named_parameters())
    assert before and all(not torch.equal(before[n], after[n].detach()) for n in before)
    assert all(torch.isfinite(torch.tensor(h["loss"])) for h in trainer.state.log_history if "loss" in h)


@needs_gpu
def test_bf16_gpu_training_matches_the_fp32_loss_of_the_first_step(tmp_path):
    losses = {}
    for name, bf16 in (("fp32", False), ("bf16", True)):
        trainer = CUTTrainer(make_model("llama"), _config(tmp_path / name, bf16=bf16, max_steps=1),
                             train_dataset=tiny_examples(), processing_class=make_tokenizer(), peft_config=_lora())
        trainer.train()
        losses[name] = trainer.state.log_history[0]["loss"]
    assert losses["bf16"] == pytest.approx(losses["fp32"], rel=0.05)

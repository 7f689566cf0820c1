"""`cutalign export`: a saved adapter merged into its base model loads with plain transformers, offline, and gives
the adapter's logits; the embedded GGUF-based model exports to ordinary safetensors."""

import json

import pytest
import torch
from conftest import make_model, make_tokenizer, tiny_examples
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer

from cutalign import CUTConfig, CUTTrainer
from cutalign.cli import main
from cutalign.models import load_model


def assert_same_logits(exported_dir, adapter_dir, ids, atol):
    plain = AutoModelForCausalLM.from_pretrained(str(exported_dir)).eval()  # no cutalign, no PEFT
    ours = load_model(str(adapter_dir)).eval()
    with torch.no_grad():
        expected = ours(ids).logits
        with ours.disable_adapter():
            assert not torch.allclose(expected, ours(ids).logits, atol=atol)  # the adapter matters
        torch.testing.assert_close(plain(ids).logits, expected, rtol=0, atol=atol)


def test_an_exported_adapter_loads_with_plain_transformers(tmp_path, monkeypatch, capsys):
    base = tmp_path / "base"
    make_model("llama").save_pretrained(base)
    make_tokenizer().save_pretrained(base)
    config = CUTConfig(output_dir=str(tmp_path / "run"), max_steps=3, learning_rate=5e-2, per_device_train_batch_size=6,
                       positive_ratio=-1, report_to=[], save_strategy="no", use_cpu=True, disable_tqdm=True)
    trainer = CUTTrainer(str(base), config, train_dataset=tiny_examples(),
                         peft_config=LoraConfig(r=4, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    trainer.train()
    trainer.save_model(str(tmp_path / "adapter"))

    monkeypatch.chdir(tmp_path)
    assert main(["export", "adapter", "merged"]) == 0
    assert "merged the adapter into its base model" in capsys.readouterr().out
    merged = tmp_path / "merged"
    assert (merged / "model.safetensors").is_file() and not (merged / "adapter_config.json").exists()
    assert AutoTokenizer.from_pretrained(str(merged)).eos_token == "<|im_end|>"
    assert_same_logits(merged, tmp_path / "adapter", torch.tensor([[1, 5, 9, 12, 40, 7]]), atol=1e-5)


def test_export_checks_its_adapter_first(tmp_path, capsys):
    assert main(["export", str(tmp_path / "missing"), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ADAPTER ") and "is not 'default', an existing directory" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_an_adapter_on_the_embedded_model_exports_to_plain_safetensors(tmp_path):
    """The embedded model is a GGUF file read by transformers; the export is an ordinary checkpoint (safetensors,
    no quantization config) that plain from_pretrained reads without gguf_file."""
    model = get_peft_model(load_model("default"), LoraConfig(r=4, target_modules=["q_proj", "v_proj"],
                                                             init_lora_weights=False, task_type="CAUSAL_LM"))
    model.save_pretrained(str(tmp_path / "adapter"), save_embedding_layers=False)
    del model
    assert main(["export", str(tmp_path / "adapter"), str(tmp_path / "merged")]) == 0
    files = {path.name for path in (tmp_path / "merged").iterdir()}
    assert "model.safetensors" in files and not any(name.endswith(".gguf") for name in files)
    assert "quantization_config" not in json.loads((tmp_path / "merged" / "config.json").read_text())
    tokenizer = AutoTokenizer.from_pretrained(str(tmp_path / "merged"))
    ids = tokenizer("The capital of France is", return_tensors="pt").input_ids
    assert_same_logits(tmp_path / "merged", tmp_path / "adapter", ids, atol=1e-4)


def test_an_adapter_trained_on_the_embedded_model_passes_the_model_check(tmp_path):
    """Such an adapter records the upstream hub id as its base (for tools outside cutalign); cutalign loads the
    embedded copy for it, so the check before loading (export, eval, train from an adapter) must accept it."""
    from cutalign.cli.checks import require_model
    from cutalign.models import EMBEDDED_UPSTREAM_ID, ModelNotFoundError, embedded_model_dir

    try:
        embedded_model_dir()
    except ModelNotFoundError:
        pytest.skip("the embedded model is not installed")
    (tmp_path / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": EMBEDDED_UPSTREAM_ID}))
    require_model(str(tmp_path))

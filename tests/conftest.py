"""Shared test helpers: tiny random causal LMs and a tokenizer built in memory (no network, no hub)."""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path

# Before anything imports huggingface_hub or datasets: both read these once, at import.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402
import torch  # noqa: E402
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers  # noqa: E402
from transformers import (  # noqa: E402
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
    Qwen2Config,
    Qwen2ForCausalLM,
)

torch.set_num_threads(2)

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "cut-online"

CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

_CORPUS = [
    "Below is an instruction that describes a task. Write a response that appropriately completes the request.",
    "### Instruction: ### Judgment: ### Response: the response should match the corresponding judgment.",
    "The capital of France is Paris. Water boils at 100 degrees. Answer in all lowercase letters.",
    "Do not use any commas, the response uses capital letters, e.g. in 'The'. Include the word rainbow.",
    "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789 .,;:!?'\"-()[]{}<>/\\|@#$%^&*_+=~`\n",
]


@functools.cache
def _tokenizer_json() -> str:
    tokenizer = Tokenizer(models.BPE(unk_token=None))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(_CORPUS * 4, trainer=trainer)
    return tokenizer.to_str()


def make_tokenizer(chat: bool = True) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer (about 400 entries) with eos = pad = <|im_end|> and a ChatML chat template."""
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(_tokenizer_json()),
        eos_token="<|im_end|>",
        pad_token="<|im_end|>",
        bos_token=None,
    )
    if chat:
        tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def make_model(kind: str = "llama", vocab_size: int | None = None, seed: int = 0):
    """A tiny random causal LM of the given architecture: "llama", "qwen2" or "gpt2"."""
    torch.manual_seed(seed)
    vocab_size = vocab_size or len(make_tokenizer())
    if kind == "llama":
        config = LlamaConfig(
            vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512, tie_word_embeddings=False,
        )
        return LlamaForCausalLM(config)
    if kind == "qwen2":
        config = Qwen2Config(
            vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
        )
        return Qwen2ForCausalLM(config)
    if kind == "gpt2":
        config = GPT2Config(vocab_size=vocab_size, n_embd=32, n_layer=2, n_head=4, n_positions=512)
        return GPT2LMHeadModel(config)
    raise ValueError(kind)


@pytest.fixture
def tokenizer():
    return make_tokenizer()


def tiny_examples(n_pos: int = 3, n_neg: int = 3) -> list[dict]:
    """A handful of canonical examples: positives without a judgment, negatives with one."""
    rows = []
    for i in range(n_pos):
        rows.append({"prompt": f"What is {i} plus {i}?", "completion": f"The answer is {2 * i}.", "judgment": None})
    for i in range(n_neg):
        rows.append({
            "prompt": f"Name the capital of France in lowercase, take {i}.",
            "completion": "The capital of France is Paris.",
            "judgment": "The response uses capital letters, e.g. in 'The', 'Paris'; the instruction asks for lowercase.",
        })
    return rows


@pytest.fixture()
def quiet_datasets():
    """No progress bars or info logs from `datasets` while a test runs (data tests opt in with autouse)."""
    import datasets

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    yield
    datasets.enable_progress_bars()


def write_jsonl(path, rows):
    """Write ``rows`` as JSON Lines to ``path``; return the path."""
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path

"""Prompt views and tokenization: the reference templates exactly, chat views, the left-truncation rule."""

import pytest
from conftest import make_tokenizer

from cutalign.data.templates import ALPACA_JUDGMENT, ALPACA_PLAIN, judgment_prompt, plain_prompt
from cutalign.data.tokenize import tokenize_dataset, tokenize_example
from cutalign.data import load_judgments


def test_alpaca_templates_are_the_reference_strings():
    assert ALPACA_PLAIN == (
        "Below is an instruction that describes a task. Write a response that appropriately completes the request."
        "\n\n### Instruction:\n{instruction}\n\n### Response:\n")
    assert ALPACA_JUDGMENT == (
        "Below is an instruction that describes a task. Write a response to the instruction and the response should"
        " match the corresponding judgment.\n\n### Instruction:\n{instruction}\n\n### Judgment:\n{judgment}\n\n"
        "### Response:\n")
    assert plain_prompt("Add {x}.", "alpaca").endswith("### Instruction:\nAdd {x}.\n\n### Response:\n")
    assert "### Judgment:\nWrong.\n\n" in judgment_prompt("Add.", "Wrong.", "alpaca")


def test_chat_views_put_the_judgment_in_the_last_user_turn():
    tokenizer = make_tokenizer()
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hi."}]
    plain = plain_prompt(messages, "chat", tokenizer)
    judged = judgment_prompt(messages, "Too long.", "chat", tokenizer, "{content} [judgment: {judgment}]")
    assert plain == ("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nSay hi.<|im_end|>\n"
                     "<|im_start|>assistant\n")
    assert judged == plain.replace("Say hi.", "Say hi. [judgment: Too long.]")
    assert messages[-1]["content"] == "Say hi."  # the caller's messages are not modified


def test_template_errors():
    with pytest.raises(ValueError, match="alpaca' template needs plain-text prompts"):
        plain_prompt([{"role": "user", "content": "x"}], "alpaca")
    with pytest.raises(ValueError, match="must end with a user turn"):
        plain_prompt([{"role": "assistant", "content": "x"}], "chat", make_tokenizer())
    with pytest.raises(ValueError, match="template must be one of"):
        plain_prompt("x", "vicuna")


def test_completion_is_shared_and_ends_with_eos():
    tokenizer = make_tokenizer()
    example = {"prompt": "Name a city.", "completion": "Paris.", "judgment": "Too short.", "id": "0"}
    features, truncated = tokenize_example(example, tokenizer, template="alpaca", max_length=512)
    assert not truncated
    assert features["completion_ids"] == tokenizer("Paris.", add_special_tokens=False)["input_ids"] + [
        tokenizer.eos_token_id]
    assert tokenizer.decode(features["prompt_ids"]) == plain_prompt("Name a city.", "alpaca")
    assert tokenizer.decode(features["judgment_prompt_ids"]) == judgment_prompt("Name a city.", "Too short.", "alpaca")


def test_long_prompts_are_cut_from_the_left_and_too_long_responses_removed():
    tokenizer = make_tokenizer()
    rows = [
        {"prompt": "word " * 200, "completion": "The end.", "judgment": None, "id": "long-prompt"},
        {"prompt": "Hi.", "completion": "x " * 200, "judgment": "Bad.", "id": "long-response"},
        {"prompt": "Hi.", "completion": "Hello.", "judgment": None, "id": "short"},
    ]
    tokenized, report = tokenize_dataset(load_judgments(rows), tokenizer, template="alpaca", max_length=160)
    assert report.kept == 2 and report.truncated_prompts == 1 and report.removed_too_long == ["long-response"]
    assert "1 removed" in report.summary() and "long-response" in report.summary()
    long_prompt = tokenized[0]
    full_prompt = tokenizer(plain_prompt("word " * 200, "alpaca"))["input_ids"]
    assert len(long_prompt["prompt_ids"]) + len(long_prompt["completion_ids"]) == 160
    assert long_prompt["prompt_ids"] == full_prompt[-len(long_prompt["prompt_ids"]):]  # the end of the prompt kept
    assert tokenizer.decode(long_prompt["completion_ids"]) == "The end.<|im_end|>"  # the response whole


def test_nothing_left_is_an_error():
    rows = [{"prompt": "Hi.", "completion": "x " * 200, "judgment": None, "id": "a"}]
    with pytest.raises(ValueError, match="no example left to train on"):
        tokenize_dataset(load_judgments(rows), make_tokenizer(), template="alpaca", max_length=16)

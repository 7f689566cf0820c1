"""cutalign.inspect: the ratios and flags it shows are the trainer's, and its pages escape the data."""

import html
import json
import math
import re

import pytest
import torch
from conftest import make_model, make_tokenizer, tiny_examples
from peft import LoraConfig, get_peft_model

from cutalign import CUTConfig, CUTTrainer
from cutalign.data import load_judgments
from cutalign.data.collator import CUTCollator
from cutalign.data.templates import judgment_prompt, plain_prompt
from cutalign.data.tokenize import tokenize_dataset
from cutalign.inspect import (
    DEFAULT_THRESHOLD,
    DEFAULT_THRESHOLDS,
    flagged_fraction_by_threshold,
    inspect_judgments,
    render_html,
    render_terminal,
    render_threshold_table,
    token_pieces,
    token_ratios,
)
from cutalign.loss import cut_loss, flag_tokens


def judged_rows():
    """Two positives and five negatives with different responses and judgments."""
    rows = tiny_examples(2, 0)
    for i, (completion, judgment) in enumerate([
        ("The capital of France is Paris.", "The response uses capital letters, e.g. in 'The', 'Paris'."),
        ("Paris, the capital, is big.", "The response uses 2 commas: 'Paris, the', 'capital, is'."),
        ("Water boils at 100 degrees.", "Include the word rainbow in your answer."),
        ("abc def ghi", "The response is too short to follow the instruction."),
        ("The Sun, the Rain and a rainbow.", "Expected all lowercase letters, yet the answer uses 'The', 'Sun'."),
    ]):
        rows.append({"prompt": f"Describe thing {i} in lowercase.", "completion": completion, "judgment": judgment})
    return rows


def trainer_batch(model, tokenizer, rows, template):
    """The batch the trainer builds for these rows, and its two log-probability tensors (B, T)."""
    tokenized, _ = tokenize_dataset(load_judgments(rows), tokenizer, template=template, max_length=256)
    batch = CUTCollator(tokenizer.pad_token_id)([tokenized[i] for i in range(len(tokenized))])
    model.eval()
    with torch.no_grad():
        token_logps = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                            score_positions=batch["score_positions"], score_targets=batch["score_targets"]).token_logps
    return batch, token_logps[batch["mle_index"]], token_logps[batch["plain_index"]]


def gap_thresholds(rows):
    """λ values halfway between neighbouring ratios (so float rounding cannot move a token across λ): one near
    each quartile of all ratios."""
    ratios = sorted(r for row in rows for r in row.ratios)
    picks = []
    for q in (0.25, 0.5, 0.75):
        i = max(1, int(q * len(ratios)))
        while i < len(ratios) - 1 and ratios[i] - ratios[i - 1] < 1e-4:
            i += 1
        picks.append((ratios[i - 1] + ratios[i]) / 2)
    return picks


@pytest.mark.parametrize("template", ["alpaca", "chat"])
def test_flags_equal_the_flagged_tokens_of_the_loss(template):
    tokenizer = make_tokenizer()
    model = make_model("llama")
    rows = judged_rows()
    inspected = token_ratios(model, tokenizer, rows, template=template, max_length=256, batch_size=2)
    assert [row.completion for row in inspected] == [r["completion"] for r in rows if r["judgment"]]
    batch, mle, plain = trainer_batch(model, tokenizer, rows, template)
    mask, negative = batch["completion_mask"], batch["negative"]
    total = int((mask & negative[:, None]).sum())
    for threshold in [*gap_thresholds(inspected), 1.0, DEFAULT_THRESHOLD]:
        output = cut_loss(mle, plain, mask, negative, threshold=threshold, alpha=1.0, reduction="normalized")
        shown = sum(sum(row.flags(threshold)) for row in inspected)
        assert shown == int(output.num_flagged_tokens), threshold
        batch_flags = flag_tokens(mle, plain, mask, negative, threshold)
        expected = [batch_flags[b, : int(mask[b].sum())].tolist() for b in range(len(rows)) if negative[b]]
        assert [row.flags(threshold) for row in inspected] == expected
    median = gap_thresholds(inspected)[1]
    assert 0 < sum(sum(row.flags(median)) for row in inspected) < total  # the test separates something


def test_ratios_equal_a_naive_full_forward_of_each_view():
    tokenizer = make_tokenizer()
    model = make_model("qwen2")
    inspected = token_ratios(model, tokenizer, judged_rows(), template="alpaca", max_length=256)
    assert len(inspected) == 5
    with torch.no_grad():
        for row in inspected:
            completion = tokenizer(row.completion, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
            view_logps = []
            for text in (judgment_prompt(row.prompt, row.judgment, "alpaca"), plain_prompt(row.prompt, "alpaca")):
                prompt = tokenizer(text)["input_ids"]
                logits = model(input_ids=torch.tensor([prompt + completion])).logits[0]
                logps = torch.log_softmax(logits.float(), -1)
                start = len(prompt) - 1
                view_logps.append(logps[torch.arange(start, start + len(completion)), torch.tensor(completion)])
            expected = torch.exp(view_logps[0] - view_logps[1])
            assert torch.allclose(torch.tensor(row.ratios), expected, rtol=1e-4, atol=1e-5)
            assert torch.allclose(torch.tensor(row.plain_logps), view_logps[1], atol=1e-5)
            assert "".join(row.pieces) == tokenizer.decode(completion)


NEUTRAL = "The response does not follow the instruction."


@pytest.mark.parametrize("selection", [
    {},
    {"max_flagged_fraction": 0.3},
    {"contrast_judgment": NEUTRAL},
    {"contrast_judgment": NEUTRAL, "max_flagged_fraction": 0.3},
])
def test_trainer_compute_loss_flags_the_same_tokens(tmp_path, selection):
    """The trainer's flags, row by row, under each token-selection option, equal what inspect shows."""
    tokenizer = make_tokenizer()
    model = make_model("llama")
    rows = judged_rows()
    cap = selection.get("max_flagged_fraction", 1.0)
    inspected = token_ratios(model, tokenizer, rows, template="alpaca", max_length=256,
                             contrast_judgment=selection.get("contrast_judgment"))
    assert all((row.contrast_logps is None) == ("contrast_judgment" not in selection) for row in inspected)
    capped = False
    for threshold in gap_thresholds(inspected):
        args = CUTConfig(output_dir=str(tmp_path), threshold=threshold, template="alpaca", max_length=256,
                         positive_ratio=-1, use_cpu=True, report_to=[], save_strategy="no", **selection)
        trainer = CUTTrainer(model, args, train_dataset=rows, processing_class=tokenizer)
        batch = trainer.data_collator([trainer.train_dataset[i] for i in range(len(trainer.train_dataset))])
        with torch.no_grad():
            _, output = trainer.compute_loss(model, batch, return_outputs=True)
        lengths = batch["completion_mask"].sum(1)
        expected = [output.flagged[b, : lengths[b]].tolist() for b in range(len(lengths)) if batch["negative"][b]]
        assert [row.flags(threshold, cap) for row in inspected] == expected, threshold
        capped |= sum(map(sum, expected)) < sum(sum(row.flags(threshold)) for row in inspected)
    assert capped == (cap < 1)  # the cap removed flags at some λ, so the comparison tested it


def test_a_lora_model_at_initialization_scores_like_its_base():
    tokenizer = make_tokenizer()
    base = token_ratios(make_model("llama"), tokenizer, judged_rows(), template="alpaca", max_length=256)
    lora = get_peft_model(make_model("llama"), LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    lora.train()
    wrapped = token_ratios(lora, tokenizer, judged_rows(), template="alpaca", max_length=256)
    assert lora.training  # the mode is restored
    for a, b in zip(base, wrapped):
        assert torch.allclose(torch.tensor(a.ratios), torch.tensor(b.ratios), atol=1e-5)


def test_positives_skipped_limit_ids_and_errors():
    tokenizer = make_tokenizer()
    model = make_model("llama")
    rows = [dict(row, id=f"row-{i}") for i, row in enumerate(judged_rows())]
    rows[3]["id"] = rows[4]["id"] = "same"  # repeated ids still map back to their own rows
    inspected = token_ratios(model, tokenizer, rows, template="alpaca", max_length=256, limit=3)
    assert [row.id for row in inspected] == ["row-2", "same", "same"]
    assert [row.completion for row in inspected] == [r["completion"] for r in rows[2:5]]
    with pytest.raises(ValueError, match="no row has a judgment"):
        token_ratios(model, tokenizer, tiny_examples(2, 0), template="alpaca", max_length=256)
    with pytest.raises(ValueError, match="limit must be a positive integer"):
        token_ratios(model, tokenizer, rows, template="alpaca", max_length=256, limit=0)


def test_rows_too_long_for_max_length_are_skipped_like_training_skips_them():
    tokenizer = make_tokenizer()
    rows = judged_rows()
    rows[2]["completion"] = "word " * 60
    inspected = token_ratios(make_model("llama"), tokenizer, rows, template="alpaca", max_length=40)
    assert rows[2]["completion"] not in [row.completion for row in inspected]
    assert len(inspected) == 4


def test_flagged_fraction_by_threshold_counts_ratios_over_each_threshold():
    inspected = token_ratios(make_model("llama"), make_tokenizer(), judged_rows(), template="alpaca", max_length=256)
    fractions = flagged_fraction_by_threshold(inspected)
    assert list(fractions) == list(DEFAULT_THRESHOLDS)
    ratios = [r for row in inspected for r in row.ratios]
    for threshold, fraction in fractions.items():
        assert fraction == sum(r > threshold for r in ratios) / len(ratios)
    values = list(fractions.values())
    assert values == sorted(values, reverse=True)
    custom = flagged_fraction_by_threshold(inspected, gap_thresholds(inspected))
    assert 0 < list(custom.values())[1] < 1
    table = render_threshold_table(fractions, threshold=1.1)
    assert "1.10" in table and "<- threshold" in table.splitlines()[3]


HOSTILE = {
    "prompt": "Summarize </pre><script>alert('p')</script> please.",
    "completion": "<script>alert(1)</script> & <b>bold</b>\n\x1b[2J done.",
    "judgment": "It uses <i>tags</i> & \"quotes\"; remove <script>.",
}


def test_html_is_self_contained_and_escapes_everything():
    tokenizer = make_tokenizer()
    inspected = token_ratios(make_model("llama"), tokenizer, [HOSTILE] + judged_rows(), template="alpaca",
                             max_length=256)
    page = render_html(inspected, threshold=1e9)  # nothing flagged: the response text is shown as is
    lowered = page.lower()
    assert "<script" not in lowered and "javascript:" not in lowered
    assert "src=" not in lowered and "href=" not in lowered and "<link" not in lowered
    assert "<b>" not in page and "<i>" not in page
    assert page.count("<pre>") == page.count("</pre>") == 3 * len(inspected)
    responses = re.findall(r'<div class="label">Response</div><pre>(.*?)</pre>', page, re.DOTALL)
    assert html.unescape(re.sub(r"<[^>]+>", "", responses[0])) == "".join(inspected[0].pieces)
    assert html.escape(HOSTILE["judgment"]) in page and html.escape(HOSTILE["prompt"]) in page
    flagged_page = render_html(inspected, threshold=gap_thresholds(inspected)[1])
    assert flagged_page.count('class="flagged"') == sum(sum(row.flags(gap_thresholds(inspected)[1]))
                                                        for row in inspected)
    assert "<script" not in flagged_page.lower()


def test_terminal_highlights_flagged_tokens_and_neutralizes_control_characters():
    inspected = token_ratios(make_model("llama"), make_tokenizer(), [HOSTILE] + judged_rows(), template="alpaca",
                             max_length=256)
    threshold = gap_thresholds(inspected)[1]
    flagged = sum(sum(row.flags(threshold)) for row in inspected)
    colored = render_terminal(inspected, threshold)
    assert colored.count("\x1b[1;97;41m") == flagged
    assert "\x1b[2J" not in colored and "\\x1b[2J" in colored.replace("\x1b[1;97;41m", "").replace("\x1b[0m", "")
    plain = render_terminal(inspected, threshold, color=False)
    assert "\x1b" not in plain
    assert plain.count("«") == flagged
    assert f"of {sum(len(row.pieces) for row in inspected[:1])} response tokens flagged" in plain


def test_token_pieces_join_to_the_decoded_text_across_multibyte_characters():
    tokenizer = make_tokenizer()
    ids = tokenizer("café — naïve ☂ ok", add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    pieces = token_pieces(tokenizer, ids)
    assert len(pieces) == len(ids)
    assert "".join(pieces) == tokenizer.decode(ids)
    assert "" in pieces  # a byte-level token inside a multi-byte character adds nothing by itself


def test_inspect_judgments_loads_data_file_and_model_directory(tmp_path):
    tokenizer, model = make_tokenizer(), make_model("llama")
    model.save_pretrained(tmp_path / "model")
    tokenizer.save_pretrained(tmp_path / "model")
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in judged_rows()))
    loaded = inspect_judgments(data, str(tmp_path / "model"), device="cpu", template="alpaca", max_length=256,
                               limit=2)
    direct = token_ratios(model, tokenizer, judged_rows(), template="alpaca", max_length=256, limit=2)
    assert [row.id for row in loaded] == ["2", "3"]
    for a, b in zip(loaded, direct):
        assert all(math.isclose(x, y, rel_tol=1e-5) for x, y in zip(a.ratios, b.ratios))


def test_auto_template_resolves_as_the_trainer_resolves_it():
    tokenizer, model = make_tokenizer(), make_model("llama")
    auto = token_ratios(model, tokenizer, judged_rows(), max_length=256)  # the default template, "auto"
    chat = token_ratios(model, tokenizer, judged_rows(), template="chat", max_length=256)
    assert [row.ratios for row in auto] == [row.ratios for row in chat]

"""Evaluation: AlpacaEval records, pass rate with Wilson intervals, guard metrics, position-swapped win rate."""

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
import torch

from conftest import make_model, make_tokenizer
from cutalign.io import write_json
from cutalign.data import DataError
from cutalign.data.templates import plain_prompt
from cutalign.eval import (
    EndpointPairwiseJudge,
    ModelJudge,
    distinct_n,
    generate_records,
    guard_metrics,
    heldout_logp,
    parse_verdict,
    read_records,
    task_accuracy,
    win_rate,
)
from cutalign.generation import SamplingConfig
from cutalign.judges import EndpointError
from cutalign.tasks import wilson_interval


def test_records_are_alpacaeval_format_and_roundtrip(tmp_path):
    tokenizer, model = make_tokenizer(), make_model()
    seen = []

    def transform(prompt):
        seen.append(prompt)
        return prompt if isinstance(prompt, list) else prompt + " Be good."

    prompts = ["Say hi.", [{"role": "user", "content": "Name a colour."}]]
    records = generate_records(model, tokenizer, prompts, generator="tiny", prompt_transform=transform,
                               sampling=SamplingConfig(max_new_tokens=4), progress=False)
    assert [r["instruction"] for r in records] == ["Say hi.", "Name a colour."]
    assert all(r["generator"] == "tiny" and isinstance(r["output"], str) for r in records)
    assert "prompt" in records[1] and "prompt" not in records[0]
    assert seen[0] == "Say hi."  # the transform saw the prompts; the records keep the originals
    write_json(tmp_path / "out.json", records)
    assert read_records(tmp_path / "out.json") == records
    (tmp_path / "bad.json").write_text(json.dumps([{"instruction": "x"}]))
    with pytest.raises(DataError) as error:
        read_records(tmp_path / "bad.json")
    assert error.value.row == 1 and error.value.field == "output"


def test_task_accuracy_with_wilson_intervals():
    instructions = ["Explain why the sky is blue. Do not use any commas in your answer."] * 3 + [
        "Describe how clouds form. Answer in all lowercase letters."]
    outputs = ["The sky is blue because air scatters blue light more than red light.",
               "The sky is blue because air, dust and water scatter blue light.",
               "ok",
               "clouds form when warm air rises and cools so water vapor condenses."]
    report = task_accuracy(instructions, outputs)
    assert report["pass_rate"] == 0.5 and report["ci"] == list(wilson_interval(2, 4))
    assert report["per_kind"]["no_commas"]["pass_rate"] == pytest.approx(1 / 3)
    assert report["per_kind"]["no_commas"]["ci"] == list(wilson_interval(1, 3))
    assert report["per_kind"]["lowercase"]["ci"] == list(wilson_interval(1, 1))


def test_distinct_n_matches_a_naive_count():
    texts = ["a b a b", "a b c"]
    assert distinct_n(texts, 1) == 3 / 7
    assert distinct_n(texts, 2) == len({("a", "b"), ("b", "a"), ("b", "c")}) / 5
    assert distinct_n(["one"], 2) == 0.0
    guard = guard_metrics(["a b", "c d e f"])
    assert guard["mean_words"] == 3.0 and "heldout_logp" not in guard


def test_heldout_logp_matches_full_softmax():
    tokenizer, model = make_tokenizer(), make_model()
    prompts, references = ["What is 2 plus 2?", "Name the capital."], ["The answer is 4.", "paris"]
    total, count = 0.0, 0
    for prompt, reference in zip(prompts, references):
        prompt_ids = tokenizer(plain_prompt(prompt, "chat", tokenizer), add_special_tokens=False)["input_ids"]
        target = tokenizer(reference, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        ids = torch.tensor([prompt_ids + target])
        with torch.no_grad():
            logps = torch.log_softmax(model(input_ids=ids).logits[0].float(), -1)
        for t, token in enumerate(target):
            total += logps[len(prompt_ids) - 1 + t, token].item()
            count += 1
    got = heldout_logp(model, tokenizer, prompts, references, batch_size=1)
    assert got == pytest.approx(total / count, abs=1e-4)
    assert heldout_logp(model, tokenizer, prompts, references, batch_size=2) == pytest.approx(got, abs=1e-4)


def test_win_rate_position_swap_cancels_a_position_biased_judge():
    instructions, a, b = ["q1", "q2", "q3", "q4"], ["long answer a"] * 4, ["b"] * 4
    always_first = win_rate(instructions, a, b, lambda i, x, y: ["1"] * len(i))
    assert always_first["win_rate"] == 0.5 and always_first["ties"] == 4 and always_first["consistent"] == 0
    assert always_first["first_position_rate"] == 1.0
    longer = win_rate(instructions, a, b, lambda i, x, y: ["1" if len(p) > len(q) else "2" for p, q in zip(x, y)])
    assert longer["win_rate"] == 1.0 and longer["wins"] == 4 and longer["consistent"] == 1.0
    mixed = win_rate(instructions, ["x", "x", "long", "long"], ["long", "long", "x", "x"],
                     lambda i, x, y: ["1" if len(p) > len(q) else "2" for p, q in zip(x, y)])
    assert mixed["win_rate"] == 0.5 and mixed["ci"][0] < 0.5 < mixed["ci"][1]
    with pytest.raises(ValueError, match="the judge returned 'A'"):
        win_rate(["q"], ["a"], ["b"], lambda i, x, y: ["A"])


def test_model_judge_reads_the_probabilities_of_1_and_2():
    tokenizer, model = make_tokenizer(), make_model()
    judge = ModelJudge(model, tokenizer, batch_size=2)
    verdicts = judge(["Say hi.", "Count."], ["hi", "1 2"], ["hello", "one"])
    one, two = judge.choice_ids
    from cutalign.judges.pairwise import COMPARE_PROMPT
    for verdict, (i, x, y) in zip(verdicts, [("Say hi.", "hi", "hello"), ("Count.", "1 2", "one")]):
        ids = tokenizer(plain_prompt(COMPARE_PROMPT.format(instruction=i, first=x, second=y), "chat", tokenizer),
                        add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ids])).logits[0, -1]
        assert verdict == ("1" if logits[one] > logits[two] else "2")


def test_endpoint_judge_over_http():
    asked = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            asked.append((self.path, self.headers.get("Authorization"), body))
            content = body["messages"][0]["content"]
            reply = "Response 2" if "Response 1:\nshort" in content else "1."
            payload = json.dumps({"choices": [{"message": {"content": reply}}]}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        judge = EndpointPairwiseJudge(f"http://127.0.0.1:{server.server_port}/v1", "judge-model", api_key="k")
        result = win_rate(["q"], ["a longer answer"], ["short"], judge)
    finally:
        server.shutdown()
    assert result["win_rate"] == 1.0
    assert asked[0][0] == "/v1/chat/completions" and asked[0][1] == "Bearer k"
    assert asked[0][2]["model"] == "judge-model" and asked[0][2]["temperature"] == 0
    assert parse_verdict("no idea") == "tie"
    with pytest.raises(EndpointError, match=r"request to http://127\.0\.0\.1:9/v1/chat/completions failed: "
                       r"ConnectError: .* \(after 2 attempts\)"):
        EndpointPairwiseJudge("http://127.0.0.1:9/v1", "m", timeout_s=2, max_retries=1, backoff_s=0)(["q"], ["a"], ["b"])


def test_greedy_answers_do_not_depend_on_the_batch_they_are_decoded_in():
    """The benchmark decodes its held-out prompts in one batch of 64 because, with left padding and the attention mask,
    a row's greedy answer does not depend on its neighbours: prompts of very different lengths give the same answers
    alone as in one batch (a wrong padding side or mask would shift the short prompts' answers)."""
    from cutalign.generation import generate

    tokenizer, model = make_tokenizer(), make_model()
    prompts = ["Hi.", "Say something about the weather today in three or four short words please.", "Name a colour.",
               "Count to three."]
    alone = [generate(model, tokenizer, [p], SamplingConfig(max_new_tokens=12), progress=False)[0] for p in prompts]
    together = generate(model, tokenizer, prompts, SamplingConfig(max_new_tokens=12, batch_size=len(prompts)),
                        progress=False)
    assert together == alone
    assert len(set(alone)) > 1  # the answers differ, so a mix-up between rows would show

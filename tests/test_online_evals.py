"""The online loop's evaluations: the eval section's forms, rule + pairwise + callable together in every round's
report, the summary and the chart, win rates against a naive recomputation, and the prompt template files."""

from __future__ import annotations

import json
import math
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import make_model, make_tokenizer
from test_online_loop import CountingJudge, make_config

from cutalign.errors import UsageError
from cutalign.judges.pairwise import COMPARE_PROMPT
from cutalign.judges import JUDGE_PROMPT
from cutalign.online.config import config_from_dict, load_config
from cutalign.online.evals import EvalConfig, eval_file
from cutalign.online.loop import run_online


def word_count(instruction: str, response: str) -> float:
    """A callable evaluation: the words of the answer."""
    return float(len(response.split()))


def broken(instruction: str, response: str) -> float:
    raise ZeroDivisionError("no")


def not_a_number(instruction: str, response: str):
    return "many"


class StubJudge(BaseHTTPRequestHandler):
    """A chat-completions server: pairwise prompts are judged by length (longer wins, equal: "tie"), judgment
    prompts answered "No issues."; every request's content is recorded on the server object."""

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        content = body["messages"][-1]["content"]
        self.server.asked.append(content)
        if "Response 1:\n" in content:
            first, second = content.split("Response 1:\n", 1)[1].split("\n\nResponse 2:\n", 1)
            answer = "tie" if len(first) == len(second) else ("1" if len(first) > len(second) else "2")
        else:
            answer = "No issues."
        data = json.dumps({"choices": [{"message": {"content": answer}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def stub():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), StubJudge)
    httpd.asked = []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd, f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()
    httpd.server_close()


def naive_win_rate(answers: list[str], others: list[str]) -> tuple[float, int]:
    """By hand: the length judge prefers the longer answer in either position; equal lengths tie."""
    scores = [1.0 if len(a) > len(b) else 0.0 if len(a) < len(b) else 0.5 for a, b in zip(answers, others)]
    return sum(scores) / len(scores), sum(s == 0.5 for s in scores)


def test_the_eval_section_forms(tmp_path):
    base = {"judge": {"kind": "rule"}}
    legacy = config_from_dict({**base, "eval": {"size": 5, "max_new_tokens": 8, "batch_size": 2}})
    assert legacy.eval == [EvalConfig(kind="rule", name="heldout", size=5, max_new_tokens=8, batch_size=2)]
    assert config_from_dict(base).eval == [EvalConfig(kind="rule", name="heldout", size=48)]
    listed = config_from_dict({**base, "eval": [{"kind": "rule", "size": 5, "max_new_tokens": 8, "batch_size": 2}]})
    assert listed.eval == legacy.eval
    named = config_from_dict({**base, "eval": {"heldout": {"size": 5, "max_new_tokens": 8, "batch_size": 2},
                                               "words": {"kind": "callable", "function": "test_online_evals:word_count",
                                                         "size": 2}}})
    assert [(e.name, e.kind) for e in named.eval] == [("heldout", "rule"), ("words", "callable")]
    # to_dict round-trips (config.json, the summary).
    assert config_from_dict(named.to_dict()).eval == named.eval
    assert eval_file("heldout") == "eval.json" and eval_file("words") == "eval-words.json"


@pytest.mark.parametrize("evals, message", [
    ([{"kind": "rule"}, {"kind": "rule"}], "two evaluations are named 'heldout'"),
    ([{"kind": "bleu"}], "kind must be one of rule, pairwise, callable"),
    ([{"kind": "rule", "function": "x:y"}], "eval.heldout.function does not apply to an evaluation of kind 'rule'"),
    ([{"kind": "pairwise", "judge": {"kind": "model"}}], "eval.pairwise.reference is required"),
    ([{"kind": "pairwise", "reference": "round-0"}], "eval.pairwise.judge is required"),
    ([{"kind": "pairwise", "reference": "round-0", "judge": {"kind": "endpoint", "model": "m"}}],
     "eval.pairwise.judge.base_url is required"),
    ([{"kind": "pairwise", "reference": "round-0", "judge": {"kind": "model", "base_url": "http://x"}}],
     "judge.base_url does not apply to a pairwise judge of kind 'model'"),
    ([{"kind": "pairwise", "reference": "nope.json", "judge": {"kind": "model"}}], "nope.json is not a file"),
    ([{"kind": "callable"}], "eval.callable.function is required"),
    ([{"kind": "callable", "function": "no_such_module_x:f"}], "cannot import module 'no_such_module_x'"),
    ([{"kind": "callable", "name": "a b", "function": "test_online_evals:word_count"}], "letters, digits"),
    ([{"kind": "rule", "size": 0}], "eval.heldout.size must be >= 1"),
    ([{"kind": "rule", "colour": "red"}], r"unknown key eval\[0\].colour"),
])
def test_bad_evaluations_are_config_errors(evals, message):
    with pytest.raises(UsageError, match=message):
        config_from_dict({"judge": {"kind": "rule"}, "eval": evals})


def test_rule_pairwise_and_callable_together_every_round(tmp_path, stub):
    httpd, url = stub
    reference = [{"instruction": f"Say something about {w}.", "output": "x" * n}
                 for w, n in (("rain", 3), ("tea", 9), ("maps", 1), ("cats", 30))]
    (tmp_path / "reference.json").write_text(json.dumps(reference))
    config = make_config(tmp_path / "run", eval=[
        {"kind": "rule", "size": 3, "max_new_tokens": 4, "batch_size": 4},
        {"kind": "pairwise", "name": "vs_ref", "reference": str(tmp_path / "reference.json"), "max_new_tokens": 4,
         "judge": {"kind": "endpoint", "base_url": url, "model": "judge", "max_retries": 0, "concurrency": 3}},
        {"kind": "pairwise", "name": "vs_start", "reference": "round-0", "max_new_tokens": 5,
         "judge": {"kind": "endpoint", "base_url": url, "model": "judge", "max_retries": 0}},
        {"kind": "callable", "name": "words", "function": "test_online_evals:word_count", "max_new_tokens": 6},
    ])
    summary = run_online(config, model=make_model("llama"), tokenizer=make_tokenizer(), judge=CountingJudge(),
                         progress=False)
    run = tmp_path / "run"
    heldout = json.loads((run / "heldout.json").read_text())
    # Judge requests: vs_ref 2 x 4 per round (rounds 0, 1, 2); vs_start 2 x 3 in rounds 1 and 2, none in round 0.
    pairwise = [c for c in httpd.asked if "Response 1:" in c]
    assert len(pairwise) == 3 * 8 + 2 * 6
    start = json.loads((run / "round-00" / "eval-vs_start.json").read_text())
    assert start["win_rate"] == 0.5 and start["judged"] is False and "verdicts" not in start
    round0 = [r["completion"] for r in start["responses"]]
    assert [r["prompt"] for r in start["responses"]] == heldout
    for index in (0, 1, 2):
        directory = run / f"round-{index:02d}"
        vs_ref = json.loads((directory / "eval-vs_ref.json").read_text())
        answers = [r["completion"] for r in vs_ref["responses"]]
        assert [r["prompt"] for r in vs_ref["responses"]] == [r["instruction"] for r in reference]
        expected, ties = naive_win_rate(answers, [r["output"] for r in reference])
        assert vs_ref["win_rate"] == pytest.approx(expected) and vs_ref["ties"] == ties and vs_ref["n"] == 4
        assert vs_ref["ci95"][0] <= vs_ref["win_rate"] <= vs_ref["ci95"][1]
        # Position swapping: each instruction was shown with our answer first and with the reference first.
        for answer, ref, instruction in zip(answers, reference, [r["instruction"] for r in reference]):
            first = COMPARE_PROMPT.format(instruction=instruction, first=answer, second=ref["output"])
            second = COMPARE_PROMPT.format(instruction=instruction, first=ref["output"], second=answer)
            assert first in httpd.asked and second in httpd.asked
        words = json.loads((directory / "eval-words.json").read_text())
        counted = [float(len(r["completion"].split())) for r in words["responses"]]
        mean = sum(counted) / len(counted)
        sd = math.sqrt(sum((c - mean) ** 2 for c in counted) / (len(counted) - 1))
        assert words["mean"] == pytest.approx(mean) and words["scores"] == counted
        assert words["ci95"] == pytest.approx([mean - 1.96 * sd / math.sqrt(3), mean + 1.96 * sd / math.sqrt(3)])
        rule = json.loads((directory / "eval.json").read_text())
        assert rule["n"] == 3 and "per_kind" in rule
        report = summary["rounds"][index]
        assert set(report["evals"]) == {"heldout", "vs_ref", "vs_start", "words"}
        assert report["heldout"] == report["evals"]["heldout"]
        assert "responses" not in report["evals"]["vs_ref"] and report["evals"]["words"]["mean"] == words["mean"]
        if index:
            vs_start = json.loads((directory / "eval-vs_start.json").read_text())
            mine = [r["completion"] for r in vs_start["responses"]]
            assert vs_start["win_rate"] == pytest.approx(naive_win_rate(mine, round0)[0])
            assert vs_start["judged"] is True and len(vs_start["verdicts"]) == 3
            text = (directory / "report.md").read_text()
            assert "eval vs_ref (pairwise), win rate" in text and "eval words (callable), mean" in text
    assert summary["evals"] == [{"name": "heldout", "kind": "rule"}, {"name": "vs_ref", "kind": "pairwise"},
                                {"name": "vs_start", "kind": "pairwise"}, {"name": "words", "kind": "callable"}]
    assert (run / "evals.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and not (run / "pass_rate.png").exists()
    # No round trained on an instruction of the reference file (the task's prompts never hold them anyway).
    trained = [p for k in (1, 2) for p in json.loads((run / f"round-0{k}" / "prompts.json").read_text())]
    assert not set(trained) & {r["instruction"] for r in reference}


def test_callable_failures_name_the_answer(tmp_path):
    for function, message in (("broken", r"test_online_evals:broken raised on answer 1: ZeroDivisionError: no"),
                              ("not_a_number", r"returned 'many' for answer 1; it must return a finite number")):
        config = make_config(tmp_path / function, rounds=1,
                             eval=[{"kind": "callable", "function": f"test_online_evals:{function}", "size": 2}])
        with pytest.raises(RuntimeError, match=message):
            run_online(config, model=make_model("llama"), tokenizer=make_tokenizer(), judge=CountingJudge(),
                       progress=False)


def test_judgment_and_pairwise_prompts_are_template_files(tmp_path, stub):
    from cutalign.judges.base import JUDGE_PROMPT_FILE
    from cutalign.judges.pairwise import COMPARE_PROMPT_FILE

    # The shipped files are the defaults, word for word.
    assert JUDGE_PROMPT_FILE.read_text().removesuffix("\n") == JUDGE_PROMPT and "No issues." in JUDGE_PROMPT
    assert COMPARE_PROMPT_FILE.read_text().removesuffix("\n") == COMPARE_PROMPT
    httpd, url = stub
    (tmp_path / "judge.txt").write_text("Judge {{strictly}}: {instruction} => {response}\n")
    (tmp_path / "pairwise.txt").write_text("Pick 1 or 2.\nTask: {instruction}\nResponse 1:\n{first}\n\n"
                                           "Response 2:\n{second}\n")
    (tmp_path / "ref.json").write_text(json.dumps([{"instruction": "Say hi.", "output": "hello"}]))
    (tmp_path / "online.yaml").write_text(json.dumps({
        **{k: v for k, v in make_config(tmp_path / "run", rounds=1).to_dict().items() if k not in ("judge", "eval")},
        "judge": {"kind": "endpoint", "base_url": url, "model": "j", "prompt": "judge.txt", "max_retries": 0},
        "eval": [{"kind": "pairwise", "reference": "ref.json", "max_new_tokens": 3,
                  "judge": {"kind": "endpoint", "base_url": url, "model": "j", "prompt": "pairwise.txt"}}]}))
    config = load_config(tmp_path / "online.yaml")  # relative template paths: next to the config file
    run_online(config, model=make_model("llama"), tokenizer=make_tokenizer(), progress=False)
    lines = (tmp_path / "run" / "round-01" / "generations.jsonl").read_text().splitlines()
    generations = [json.loads(line) for line in lines]
    judged = [c for c in httpd.asked if c.startswith("Judge {strictly}: ")]
    assert sorted(judged) == sorted(f"Judge {{strictly}}: {g['prompt']} => {g['completion']}" for g in generations)
    assert sum(c.startswith("Pick 1 or 2.\nTask: Say hi.\n") for c in httpd.asked) == 4  # rounds 0 and 1, swapped
    # A template without its fields, or with a lone brace, is a config error.
    for text, message in (("Judge {instruction} only", "has no {response}"),
                          ("{instruction} {response} {oops", "lone brace")):
        (tmp_path / "judge.txt").write_text(text)
        with pytest.raises(UsageError, match=message):
            load_config(tmp_path / "online.yaml")

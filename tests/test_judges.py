"""Judges (rule, callable, model, endpoint against a real local HTTP server, human) and config validation."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import make_model, make_tokenizer
from cutalign.data import DataError
from cutalign.errors import UsageError
from cutalign.online.config import config_from_dict, load_config
from cutalign.judges import (
    NO_ISSUES,
    CallableJudge,
    EndpointJudge,
    HumanJudge,
    JudgeFailure,
    ModelJudge,
    RuleJudge,
    judge_prompt,
    parse_judgment,
)
from cutalign.tasks import rule_judge, task_prompts


def test_parse_judgment():
    assert parse_judgment(NO_ISSUES) is None
    assert parse_judgment("  judgment: no issues, well done") is None
    assert parse_judgment("The response uses 2 commas.") == "The response uses 2 commas."
    assert parse_judgment("Judgment: Too long.") == "Too long."
    assert parse_judgment("") == JudgeFailure("empty judgment")
    assert parse_judgment("Judgment:   ") == JudgeFailure("empty judgment")
    assert isinstance(parse_judgment("... 0 0 !!"), JudgeFailure)
    assert isinstance(parse_judgment("ok"), JudgeFailure)
    assert isinstance(parse_judgment(None), JudgeFailure)


def test_rule_judge_matches_the_task_rules():
    instructions = ["Name a fruit. Do not use any commas in your answer."] * 2
    responses = ["Apples, pears and plums are fruit.", "Apples are a kind of fruit."]
    assert RuleJudge()(instructions, responses) == [rule_judge(i, r) for i, r in zip(instructions, responses)]
    assert RuleJudge()(instructions, responses)[1] is None
    with pytest.raises(ValueError, match="2 instructions and 1 responses"):
        RuleJudge()(instructions, responses[:1])


def test_rule_judge_class_matches_function_and_checks_lengths():
    prompts = task_prompts("train", n=6, seed=1)
    responses = ["The Sun, the rain.", "no commas and no capitals here", "", "- a b\n- c d", "fine words here", "x"]
    assert RuleJudge()(prompts, responses) == [rule_judge(p, r) for p, r in zip(prompts, responses)]
    with pytest.raises(ValueError, match="got 6 instructions and 5 responses"):
        RuleJudge()(prompts, responses[:5])


def test_callable_judge_fails_only_the_bad_rows():
    def function(instruction, response):
        if response == "boom":
            raise KeyError("x")
        if response == "number":
            return 3
        return "" if response == "fine" else f"bad: {response}"

    out = CallableJudge(function)(["i"] * 4, ["boom", "number", "fine", "meh"])
    assert out[0] == JudgeFailure("KeyError: 'x'")
    assert out[1] == JudgeFailure("the function returned int, not a string or None")
    assert out[2:] == [None, "bad: meh"]


def test_model_judge_parses_a_tiny_model_output():
    tokenizer = make_tokenizer()
    judge = ModelJudge(make_model("llama"), tokenizer, max_new_tokens=5, batch_size=2)
    out = judge(["Say hi.", "Say bye."], ["hi", "bye"])
    assert len(out) == 2
    # The random model writes gibberish: the result is whatever parse_judgment makes of the greedy text.
    from cutalign.generation import SamplingConfig, generate

    texts = generate(judge.model, tokenizer, [judge_prompt("Say hi.", "hi"), judge_prompt("Say bye.", "bye")],
                     SamplingConfig(max_new_tokens=5, batch_size=2), progress=False)
    assert out == [parse_judgment(t) for t in texts]


# -- the endpoint judge, against a real server ------------------------------------------------------------------


class Handler(BaseHTTPRequestHandler):
    """Answers by the response text it is asked about: each names a behaviour."""

    attempts: dict = {}
    auth: list = []

    def log_message(self, *args):  # keep test output quiet
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Handler.auth.append(self.headers.get("Authorization"))
        content = body["messages"][0]["content"]
        response = content.split("Response:\n", 1)[1].split("\n\n", 1)[0]
        Handler.attempts[response] = Handler.attempts.get(response, 0) + 1
        n = Handler.attempts[response]
        if response == "good":
            return self.reply(200, {"choices": [{"message": {"content": NO_ISSUES}}]})
        if response == "bad":
            return self.reply(200, {"choices": [{"message": {"content": "The response is bad."}}]})
        if response == "flaky" and n == 1:  # a server error, then a judgment
            return self.reply(500, {"error": "overloaded"})
        if response == "flaky":
            return self.reply(200, {"choices": [{"message": {"content": "Flaky but judged."}}]})
        if response == "slow" and n == 1:  # longer than the client's timeout, then fast
            time.sleep(1.0)
        if response == "slow":
            return self.reply(200, {"choices": [{"message": {"content": "Slow but judged."}}]})
        if response == "malformed":
            return self.reply(200, b"<html>not json</html>")
        if response == "garbage":
            return self.reply(200, {"choices": [{"message": {"content": "  "}}]})
        if response == "forbidden":
            return self.reply(403, {"error": "no"})
        return self.reply(500, {"error": "always down"})

    def reply(self, status, payload):
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
            pass


@pytest.fixture
def server():
    Handler.attempts, Handler.auth = {}, []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()
    httpd.server_close()


def test_endpoint_judge_against_a_real_server(server, monkeypatch):
    monkeypatch.setenv("TEST_JUDGE_KEY", "sk-secret-123")
    judge = EndpointJudge(server, "judge-model", api_key_env="TEST_JUDGE_KEY", concurrency=3, timeout_s=0.4,
                          max_retries=2, backoff_s=0.01)
    responses = ["good", "bad", "flaky", "slow", "malformed", "garbage", "forbidden", "down"]
    out = judge(["Do it."] * len(responses), responses)
    assert out[:4] == [None, "The response is bad.", "Flaky but judged.", "Slow but judged."]
    assert isinstance(out[4], JudgeFailure) and out[4].reason.startswith("malformed reply")
    assert out[5] == JudgeFailure("empty judgment")
    assert out[6] == JudgeFailure(f"HTTP 403 from {server}/chat/completions")  # a client error is not retried
    assert out[7] == JudgeFailure(f"HTTP 500 from {server}/chat/completions (after 3 attempts)")
    assert Handler.attempts == {"good": 1, "bad": 1, "flaky": 2, "slow": 2, "malformed": 3, "garbage": 1,
                                "forbidden": 1, "down": 3}
    assert set(Handler.auth) == {"Bearer sk-secret-123"}
    assert not any("sk-secret" in f.reason for f in out if isinstance(f, JudgeFailure))


def test_endpoint_judge_unreachable_server_fails_rows_not_the_call():
    judge = EndpointJudge("http://127.0.0.1:9/v1", "m", max_retries=1, backoff_s=0.0, timeout_s=0.5)
    out = judge(["a", "b"], ["x", "y"])
    assert all(isinstance(o, JudgeFailure) and "after 2 attempts" in o.reason for o in out)


def test_endpoint_judge_needs_its_key(monkeypatch):
    monkeypatch.delenv("NO_SUCH_KEY_VAR", raising=False)
    with pytest.raises(ValueError, match="NO_SUCH_KEY_VAR"):
        EndpointJudge("http://127.0.0.1:9/v1", "m", api_key_env="NO_SUCH_KEY_VAR")


# -- the human judge ----------------------------------------------------------------------------------------------


def test_human_judge_waits_for_the_complete_file(tmp_path):
    judge = HumanJudge(tmp_path, poll_seconds=0.05, timeout_s=10)
    instructions, responses = ["Say hi.", "Say bye."], ["Hi, you.", "bye"]
    todo, done = judge.files(instructions, responses)

    def person():
        while not todo.exists():
            time.sleep(0.02)
        rows = [json.loads(line) for line in todo.read_text().splitlines()]
        done.write_text(json.dumps({**rows[1], "judgment": ""}) + "\n")  # incomplete: the judge keeps waiting
        time.sleep(0.3)
        rows[0]["judgment"] = "Uses a comma."
        done.write_text("".join(json.dumps(r) + "\n" for r in [rows[1], rows[0]]))

    thread = threading.Thread(target=person)
    thread.start()
    started = time.monotonic()
    out = judge(instructions, responses)
    thread.join()
    assert out == ["Uses a comma.", None]
    assert time.monotonic() - started >= 0.3
    assert [json.loads(x)["judgment"] for x in todo.read_text().splitlines()] == [None, None]


def test_human_judge_reads_an_annotate_export_and_validates(tmp_path):
    judge = HumanJudge(tmp_path, poll_seconds=0.01, timeout_s=0.2)
    todo, done = judge.files(["Say hi."], ["hi there you"])
    done.parent.mkdir(parents=True, exist_ok=True)
    done.write_text(json.dumps({"id": "7", "prompt": "Say hi.", "completion": "hi there you", "judgment": None}) + "\n")
    with pytest.raises(DataError) as error:
        judge(["Say hi."], ["hi there you"])
    assert str(error.value) == f"{done}, row 1, field 'id': unknown id '7'"
    done.write_text(json.dumps({"id": "1", "prompt": "Say hi.", "completion": "changed", "judgment": None}) + "\n")
    with pytest.raises(DataError, match="row 1, field 'completion': differs"):
        judge(["Say hi."], ["hi there you"])
    done.write_text("\n" + json.dumps({"id": "1", "judgment": 5}) + "\n")
    with pytest.raises(DataError, match="row 2, field 'judgment': must be a string or null, got int"):
        judge(["Say hi."], ["hi there you"])
    done.unlink()
    with pytest.raises(TimeoutError):
        judge(["Say hi."], ["hi there you"])


# -- config validation: clear errors before any work --------------------------------------------------------------


def test_config_errors_name_the_problem(tmp_path, monkeypatch):
    def error(raw):
        with pytest.raises(UsageError) as info:
            config_from_dict(raw, source="c.yaml")
        return str(info.value)

    assert error({}) == "c.yaml: missing required key judge"
    assert error({"judge": {"kind": "oracle"}}) == (
        "c.yaml: judge.kind must be one of rule, callable, model, endpoint, human, got 'oracle'")
    assert error({"judge": {"kind": "rule"}, "prompts_per_rnd": 3}) == (
        "c.yaml: unknown key prompts_per_rnd (did you mean prompts_per_round?)")
    assert error({"judge": {"kind": "rule"}, "training": {"learning_rate": "fast"}}) == (
        "c.yaml: training.learning_rate must be a number, got str 'fast'")
    assert error({"judge": {"kind": "rule", "base_url": "http://x"}}).startswith(
        "c.yaml: judge.base_url does not apply to judge kind 'rule'")
    assert error({"judge": {"kind": "endpoint", "model": "m"}}) == (
        "c.yaml: judge.base_url is required for judge kind 'endpoint'")
    monkeypatch.delenv("MISSING_KEY_VAR", raising=False)
    assert error({"judge": {"kind": "endpoint", "model": "m", "base_url": "http://x", "api_key_env": "MISSING_KEY_VAR"}}) == (
        "c.yaml: judge.api_key_env: the environment variable MISSING_KEY_VAR is not set")
    assert error({"judge": {"kind": "callable", "function": "no_such_module_xyz:f"}}).startswith(
        "c.yaml: judge.function: cannot import module 'no_such_module_xyz'")
    assert error({"judge": {"kind": "callable", "function": "cutalign.tasks:nope"}}) == (
        "c.yaml: judge.function: module 'cutalign.tasks' has no attribute 'nope'")
    missing = tmp_path / "no-model"
    assert error({"judge": {"kind": "model", "model": str(missing)}}) == (
        f"c.yaml: judge.model: {str(missing)!r} is not a directory (give a model or adapter directory, or 'default')")
    assert error({"judge": {"kind": "rule"}, "task": {"kinds": ["shouting"]}}).startswith("c.yaml: task.kinds must be")
    ok = config_from_dict({"judge": {"kind": "callable", "function": "cutalign.tasks:rule_judge"}})
    assert ok.judge.function == "cutalign.tasks:rule_judge"
    assert error({"judge": {"kind": "rule", "max_judgment_chars": 10}}).startswith(
        "c.yaml: judge.max_judgment_chars does not apply to judge kind 'rule'")
    assert error({"judge": {"kind": "endpoint", "model": "m", "base_url": "http://x", "max_response_bytes": 0}}) == (
        "c.yaml: judge.max_response_bytes must be >= 1, got 0")
    # The generation section is a SamplingConfig: its own checks, reported with the key; the seed is the loop's.
    assert error({"judge": {"kind": "rule"}, "generation": {"temperature": -1}}) == (
        "c.yaml: generation.temperature must be >= 0, got -1.0")
    assert error({"judge": {"kind": "rule"}, "generation": {"top_p": 0}}) == (
        "c.yaml: generation.top_p must be in (0, 1], got 0.0")
    assert error({"judge": {"kind": "rule"}, "generation": {"seed": 0}}) == (
        "c.yaml: generation.seed is not a setting: each generation batch's seed is derived from the top-level seed")


def test_generation_section_is_a_sampling_config():
    from cutalign.generation import SamplingConfig

    config = config_from_dict({"judge": {"kind": "rule"}, "generation": {"top_p": 0.9, "batch_size": 2}})
    assert config.generation == SamplingConfig(temperature=0.8, top_p=0.9, batch_size=2)  # missing keys: defaults
    assert config_from_dict({"judge": {"kind": "rule"}}).generation == SamplingConfig(temperature=0.8)
    assert config.to_dict()["generation"] == {"max_new_tokens": 64, "temperature": 0.8, "top_p": 0.9, "batch_size": 2}


def test_config_file_errors(tmp_path):
    with pytest.raises(UsageError, match="config file not found"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("judge: [unclosed\n")
    with pytest.raises(UsageError, match="invalid YAML"):
        load_config(bad)
    bad.write_bytes(b"\xff\xfe judge")
    with pytest.raises(UsageError, match="cannot read the config"):
        load_config(bad)


def test_example_configs_are_valid(monkeypatch):
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "configs"
    monkeypatch.setenv("CUTALIGN_JUDGE_API_KEY", "x")
    rule = load_config(root / "online-rule.yaml")
    assert rule.judge.kind == "rule" and rule.rounds == 3
    endpoint = load_config(root / "online-endpoint.yaml")
    assert endpoint.judge.kind == "endpoint"


def test_online_loop_with_an_endpoint_judge_matches_the_rule_judge(tmp_path):
    """A round judged over HTTP by examples/rule_judge_endpoint.py gives the same data as the rule judge in process."""
    import sys
    from pathlib import Path

    from test_online_loop import make_config

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
    from rule_judge_endpoint import RuleJudgeHandler

    from cutalign.online.loop import run_online

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), RuleJudgeHandler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
        endpoint = config_from_dict({**vars_of(make_config(tmp_path / "a", rounds=1)),
                                     "judge": {"kind": "endpoint", "base_url": url, "model": "m", "max_retries": 0}})
        run_online(endpoint, model=make_model("llama"), tokenizer=make_tokenizer(), progress=False)
    finally:
        httpd.shutdown()
        httpd.server_close()
    rule = make_config(tmp_path / "b", rounds=1)
    run_online(rule, model=make_model("llama"), tokenizer=make_tokenizer(), progress=False)
    for name in ("generations.jsonl", "dataset.jsonl", "judgments.jsonl"):
        assert (tmp_path / "a" / "round-01" / name).read_text() == (tmp_path / "b" / "round-01" / name).read_text()


def vars_of(config) -> dict:
    raw = config.to_dict()
    del raw["judge"]
    return raw


def test_example_endpoint_splits_only_judge_prompts():
    import sys
    from pathlib import Path

    from cutalign.judges import JUDGE_PROMPT

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
    from rule_judge_endpoint import split_prompt

    prompt = JUDGE_PROMPT.format(instruction="Say hi.\n\nDo not use commas.", response="Hi, you.\n\nBye")
    assert split_prompt(prompt) == ("Say hi.\n\nDo not use commas.", "Hi, you.\n\nBye")
    with pytest.raises(ValueError):
        split_prompt("hello")


def test_generation_and_judges_import_neither_the_loop_nor_evaluation():
    """Imports flow one way: generation and judges sit below the online loop, evaluation and the CLI."""
    import ast
    from pathlib import Path

    import cutalign

    root = Path(cutalign.__file__).parent
    above = ("cutalign.online", "cutalign.eval", "cutalign.cli", "cutalign.demo")
    for path in [root / "generation.py", *sorted((root / "judges").glob("*.py"))]:
        package = "cutalign" if path.parent == root else "cutalign.judges"
        forbidden = above + (("cutalign.judges",) if package == "cutalign" else ())
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                base = package.split(".")[:len(package.split(".")) - node.level + 1] if node.level else []
                names = [".".join(base + ([node.module] if node.module else []))]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                assert not name.startswith(forbidden) and not name.endswith("_cli"), f"{path.name} imports {name}"


"""The online loop with `generation.backend: openai` against the stand-in server of examples/: adapters loaded once per
round, requests and their prompts, failed rows recorded and retried, and resuming after a kill in every phase."""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

import httpx
import pytest

from conftest import make_model, make_tokenizer
from test_online_loop import ROUND_FILES, CountingJudge, KillAtStep, files_of, make_config

from cutalign.data.templates import plain_prompt
from cutalign.errors import UsageError
from cutalign.generation import SamplingConfig
from cutalign.judges import EndpointError
from cutalign.online import backend as backend_module
from cutalign.online.backend import GenerationFailure, ServerClient, ServerGenerator
from cutalign.online.loop import run_online

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
from openai_generation_server import ModelServer, serve  # noqa: E402


class FlakyServer(ModelServer):
    """Fails (HTTP 500) every request whose prompt contains one of ``poison`` while ``failing`` is set."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.poison: tuple[str, ...] = ()
        self.failing = False
        self.prompts: list[str] = []

    def generate(self, text, **kwargs):
        self.prompts.append(text)
        if self.failing and any(p in text for p in self.poison):
            raise RuntimeError("the model crashed")
        return super().generate(text, **kwargs)


@pytest.fixture(scope="module")
def server():
    """The stand-in server on 127.0.0.1 with the tests' tiny model as "base"; shut down after the module."""
    model_server = FlakyServer(make_model("llama"), make_tokenizer(), "base")
    httpd = serve(model_server)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield model_server, f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=10)


def stats(url: str) -> dict:
    return httpx.get(url.replace("/v1", "/stats")).json()


def openai_config(run_dir, url, **overrides):
    generation = {"max_new_tokens": 6, "temperature": 1.0, "batch_size": 4, "backend": "openai",
                  "server": {"base_url": url, "model": "base", "concurrency": 2, "max_retries": 0}}
    return make_config(run_dir, generation=generation, **overrides)


def run(config, judge=None, callbacks=()):
    return run_online(config, model=make_model("llama"), tokenizer=make_tokenizer(), judge=judge or CountingJudge(),
                      callbacks=callbacks, progress=False)


@pytest.fixture(scope="module")
def reference(server, tmp_path_factory):
    """An uninterrupted 2-round run through the server: its files, judged rows, and the server's counts."""
    model_server, url = server
    run_dir = tmp_path_factory.mktemp("openai-reference")
    before = stats(url)
    model_server.prompts.clear()
    judge = CountingJudge()
    run(openai_config(run_dir, url), judge)
    return run_dir, files_of(run_dir), judge.rows, before, stats(url), list(model_server.prompts)


def test_each_round_asks_the_server_with_its_adapter(server, reference):
    model_server, url = server
    run_dir, files, judged, before, after, prompts = reference
    # Two rounds: each round's adapter is loaded exactly once (for its evaluation and the next round's generation).
    assert after["adapter_loads"] - before["adapter_loads"] == 2
    names = [n for n in after["adapters"] if n.startswith(run_dir.name)]
    assert [n.split("-r")[-1][:2] for n in names] == ["01", "02"]
    # 6 sampled answers per round and 3 held-out answers per evaluated round (rounds 0, 1, 2): 21 completions.
    assert after["requests"]["completions"] - before["requests"]["completions"] == 21
    assert after["requests"]["chat"] == before["requests"]["chat"]
    # The server got the prompts rendered exactly as the trainer renders them (chat template, no added tokens).
    round_one = json.loads(files["round-01/prompts.json"])
    tokenizer = make_tokenizer()
    # Concurrent requests may reach the server in any order; round 0's 3 evaluation answers all come first.
    assert sorted(plain_prompt(p, "chat", tokenizer) for p in round_one) == sorted(prompts[3:9])
    assert len(judged) == 12
    report = json.loads((run_dir / "round-02" / "report.json").read_text())
    assert report["generation_failed"] == 0 and report["heldout"]["n"] == 3


def test_sampled_answers_are_seeded_per_row(server):
    """The same prompt and seed give the same answer whatever else is asked; another seed another answer."""
    _, url = server
    tokenizer = make_tokenizer()
    generator = ServerGenerator(backend_module.ServerConfig(base_url=url, model="base", concurrency=3), tokenizer,
                                "chat")
    sampling = SamplingConfig(max_new_tokens=8, temperature=1.0)
    alone = generator.generate(["Say hi."], sampling, model="base", seeds=[7], progress=False)
    together = generator.generate(["Count.", "Say hi.", "Name it."], sampling, model="base", seeds=[1, 7, 2],
                                  progress=False)
    others = generator.generate(["Say hi."] * 4, sampling, model="base", seeds=[8, 9, 10, 11], progress=False)
    assert together[1] == alone[0]
    assert any(answer != alone[0] for answer in others)
    failed = generator.generate(["Say hi."], sampling, model="no-such-model", seeds=[0], progress=False)
    assert isinstance(failed[0], GenerationFailure) and "HTTP 404" in failed[0].reason


def test_the_client_retries_and_names_the_url(server):
    model_server, url = server
    client = ServerClient(url, "/completions", api_key=None, timeout_s=10, max_retries=2, backoff_s=0,
                          max_response_bytes=1 << 20)
    model_server.poison, model_server.failing = ("<<boom>>",), True
    try:
        with pytest.raises(EndpointError, match=r"HTTP 500 from http://127\.0\.0\.1:\d+/v1/completions \(after 3 "):
            client.request({"model": "base", "prompt": "<<boom>>", "max_tokens": 2}, lambda body: body)
    finally:
        model_server.failing = False
    garbled = client.request({"model": "base", "prompt": "hi", "max_tokens": 2}, lambda body: body)
    assert json.loads(garbled)["object"] == "text_completion"
    with pytest.raises(EndpointError, match="malformed reply"):
        client.request({"model": "base", "prompt": "hi", "max_tokens": 2}, lambda body: json.loads(body)["nope"])


def test_failed_rows_are_recorded_left_out_and_asked_again_on_resume(server, tmp_path):
    model_server, url = server
    config = openai_config(tmp_path, url, rounds=1)
    from cutalign.online.prompts import task_round_prompts

    prompts = task_round_prompts(config, 1)
    poison = (prompts[1], prompts[4])
    model_server.poison, model_server.failing = poison, True
    try:
        judge = CountingJudge()
        run(config, judge)
    finally:
        model_server.failing = False
    rows = [json.loads(x) for x in (tmp_path / "round-01" / "generations.jsonl").read_text().splitlines()]
    failed = [r["id"] for r in rows if r.get("failed")]
    assert failed == ["r01-00001", "r01-00004"] and all(r["completion"] is None for r in rows if r.get("failed"))
    assert "HTTP 500" in rows[1]["failed"]
    report = json.loads((tmp_path / "round-01" / "report.json").read_text())
    assert report["generation_failed"] == 2 and report["negatives"] + report["positives"] == 4
    assert [r["id"] for r in report["failed_rows"]] == failed and "generation failed: 2" in (
        tmp_path / "round-01" / "report.md").read_text()
    assert len(judge.rows) == 4  # the unanswered rows never went to the judge
    dataset = [json.loads(x)["id"] for x in (tmp_path / "round-01" / "dataset.jsonl").read_text().splitlines()]
    assert not set(dataset) & set(failed)

    # Killed before the round's data was built: on resume only the failed rows go to the server again.
    import shutil

    for name in ("counts.json", "dataset.jsonl", "report.json", "train.json", "eval.json"):
        (tmp_path / "round-01" / name).unlink()
    shutil.rmtree(tmp_path / "round-01" / "adapter")
    model_server.prompts.clear()
    judge = CountingJudge()
    run(config, judge)
    tokenizer = make_tokenizer()
    # (with concurrency 2 the two requests reach the server in either order)
    assert sorted(model_server.prompts[:2]) == sorted(plain_prompt(p, "chat", tokenizer) for p in poison)
    rows = [json.loads(x) for x in (tmp_path / "round-01" / "generations.jsonl").read_text().splitlines()]
    assert not any(r.get("failed") for r in rows)
    assert [r[1] for r in judge.rows] == [rows[1]["completion"], rows[4]["completion"]]
    assert json.loads((tmp_path / "round-01" / "report.json").read_text())["generation_failed"] == 0


def test_resume_after_a_kill_while_generating_is_byte_identical(server, reference, tmp_path, monkeypatch):
    _, url = server
    _, expected, judged, *_ = reference
    calls = {"n": 0}
    real = ServerGenerator.generate

    def dying(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 6:  # round 0 eval, round 1 (2 batches), round 1 eval, round 2 first batch, then this
            raise RuntimeError("generation killed")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(ServerGenerator, "generate", dying)
    with pytest.raises(RuntimeError, match="generation killed"):
        run(openai_config(tmp_path, url))
    assert len((tmp_path / "round-02" / "generations.partial.jsonl").read_text().splitlines()) == 4
    monkeypatch.setattr(ServerGenerator, "generate", real)
    loads = stats(url)["adapter_loads"]
    judge = CountingJudge()
    run(openai_config(tmp_path, url), judge)
    assert files_of(tmp_path) == expected
    assert stats(url)["adapter_loads"] - loads == 1  # round 1's adapter was already on the server: only round 2's


@pytest.mark.parametrize("phase", ["judge", "train", "evaluate"])
def test_resume_after_a_kill_in_other_phases(server, reference, tmp_path, monkeypatch, phase):
    _, url = server
    _, expected, judged, *_ = reference
    judge, callbacks = CountingJudge(), []
    if phase == "judge":
        judge = CountingJudge(fail_after=6)
    elif phase == "train":
        callbacks = [KillAtStep(round_to_kill=2, step=1)]
    else:
        from cutalign.online import loop as loop_module

        real = loop_module.OnlineRun.answer

        def dying(self, index, *args):
            if index == 2:
                raise RuntimeError("evaluate killed")
            return real(self, index, *args)

        monkeypatch.setattr(loop_module.OnlineRun, "answer", dying)
    with pytest.raises(RuntimeError, match="killed"):
        run(openai_config(tmp_path, url), judge, callbacks)
    monkeypatch.undo()
    resumed = CountingJudge()
    run(openai_config(tmp_path, url), resumed)
    assert files_of(tmp_path) == expected
    assert judge.rows + resumed.rows == judged  # nothing judged twice


def test_openai_backend_config_is_checked_before_any_work(tmp_path, monkeypatch):
    from cutalign.online.config import config_from_dict

    def error(generation):
        with pytest.raises(UsageError) as caught:
            config_from_dict({"judge": {"kind": "rule"}, "generation": generation})
        return str(caught.value)

    assert "generation.server is required with backend openai" in error({"backend": "openai"})
    assert "generation.server applies to backend openai only" in error({"server": {"base_url": "http://x/v1"}})
    assert "generation.backend must be one of hf, openai" in error({"backend": "vllm"})
    assert "generation.server.model: required" in error({"backend": "openai", "server": {"base_url": "http://x"}})
    assert "generation.server.api: must be one of completions, chat" in error(
        {"backend": "openai", "server": {"base_url": "http://x", "model": "m", "api": "responses"}})
    monkeypatch.delenv("NO_SUCH_KEY_VAR", raising=False)
    assert "NO_SUCH_KEY_VAR is not set" in error(
        {"backend": "openai", "server": {"base_url": "http://x", "model": "m", "api_key_env": "NO_SUCH_KEY_VAR"}})
    # A saved adapter as the starting model cannot be served: the server would load the base without it.
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "x"}))
    with pytest.raises(UsageError, match="is a saved adapter; with generation.backend: openai"):
        config_from_dict({"judge": {"kind": "rule"}, "model": str(adapter),
                          "generation": {"backend": "openai", "server": {"base_url": "http://x", "model": "m"}}})


def test_round_files_are_those_of_the_hf_backend(reference):
    run_dir = reference[0]
    for name in ROUND_FILES:
        assert (run_dir / "round-01" / name).is_file()

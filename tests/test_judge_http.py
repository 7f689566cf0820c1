"""The judges' HTTP client under fault injection: a local server that misbehaves in each way a tester found.

The server speaks raw bytes over TCP (so it can send what no HTTP library would: a cut body, a non-HTTP reply,
bytes trickled past the deadline, 10 MB) and picks its behaviour from a ``<<name>>`` marker in the prompt. One batch
mixes every fault with good rows: each faulty row must fail with a clear reason, the good rows must be judged, the
API key must not reach the server a redirect points to, and the batch must finish in bounded time.
"""

from __future__ import annotations

import json
import re
import socketserver
import sys
import threading
import time
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

from cutalign.eval import EndpointPairwiseJudge, win_rate
from cutalign.judges import NO_ISSUES, EndpointError, EndpointJudge, JudgeFailure, RuleJudge
from cutalign.tasks import task_prompts

KEY = "sk-test-secret-4242"
MiB = 1 << 20
TRICKLE_PAUSE_S = 0.05
TRICKLE_MAX_BYTES = 200  # 10 s at most: the handler stops on its own even if the client never gave up


class FaultServer(socketserver.ThreadingTCPServer):
    """Serves chat completions, each marker's way; records attempts and the headers of every request."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, elsewhere_url: str | None = None):
        super().__init__(("127.0.0.1", 0), FaultHandler)
        self.elsewhere_url = elsewhere_url  # None: this is the server redirects point to; it answers everything
        self.attempts: dict[str, int] = {}
        self.headers: list[dict[str, str]] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class FaultHandler(socketserver.StreamRequestHandler):
    def handle(self):
        headers = {}
        self.rfile.readline()  # the request line
        for _ in range(100):
            line = self.rfile.readline(65536).decode("latin-1").strip()
            if not line:
                break
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        body = self.rfile.read(int(headers.get("content-length", 0)))
        marker = re.search(r"<<([\w-]+)>>", body.decode("utf-8", "replace"))
        behaviour = marker.group(1) if marker else "none"
        with self.server.lock:
            self.server.headers.append(headers)
            self.server.attempts[behaviour] = self.server.attempts.get(behaviour, 0) + 1
        try:
            self.respond(behaviour)
        except OSError:  # the client gave up (deadline, size cap): that is the point
            pass

    def respond(self, behaviour: str) -> None:
        write = self.wfile.write
        if self.server.elsewhere_url is None:  # a server the key must never reach: it would take it gladly
            return write(completion("Answered elsewhere."))
        if behaviour == "good":
            return write(completion(NO_ISSUES))
        if behaviour == "bad":
            return write(completion("The response is bad."))
        if behaviour == "long":
            return write(completion("word " * 2000))
        if behaviour == "cut":  # announces 1000 bytes, sends 100, hangs up
            return write(head(200, **{"Content-Length": "1000"}) + b'{"choices": [' + b" " * 87)
        if behaviour == "not-http":
            return write(b"SSH-2.0-OpenSSH_9.6\r\nProtocol mismatch.\r\n")
        if behaviour in ("redirect-307", "redirect-302"):
            return write(head(int(behaviour[-3:]), Location=self.server.elsewhere_url + "/chat/completions",
                              **{"Content-Length": "0"}))
        if behaviour == "nested":  # valid bytes, but JSON too deep for the parser
            data = b"[" * 100_000
            return write(head(200, **{"Content-Length": str(len(data))}) + data)
        if behaviour in ("trickle-body", "trickle-head"):
            data = completion("Slow but judged.")
            if behaviour == "trickle-body":
                self.wfile.write(data[:data.index(b"\r\n\r\n") + 4])
                data = data[data.index(b"\r\n\r\n") + 4:]
            for byte in data[:TRICKLE_MAX_BYTES]:
                write(bytes([byte]))
                time.sleep(TRICKLE_PAUSE_S)
            return None
        if behaviour in ("huge", "huge-unannounced"):  # 10 MB of a JSON string, with or without Content-Length
            size = 10 * MiB
            extra = {"Content-Length": str(size)} if behaviour == "huge" else {}
            write(head(200, **extra) + b'"')
            chunk = b"x" * 65536
            for _ in range(size // len(chunk)):
                write(chunk)
            return None
        return write(head(404, **{"Content-Length": "0"}))


def head(status: int, **headers: str) -> bytes:
    lines = [f"HTTP/1.1 {status} Whatever", "Content-Type: application/json", "Connection: close"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def completion(text: str) -> bytes:
    data = json.dumps({"choices": [{"message": {"role": "assistant", "content": text}}]}).encode()
    return head(200, **{"Content-Length": str(len(data))}) + data


@pytest.fixture
def servers():
    """The faulty judge server and the server its redirects point to; both stop when the test ends."""
    elsewhere = FaultServer()
    main = FaultServer(elsewhere.url)
    threads = [threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
               for s in (main, elsewhere)]
    for thread in threads:
        thread.start()
    yield main, elsewhere
    for server in (main, elsewhere):
        server.shutdown()
        server.server_close()


def test_every_fault_fails_only_its_row(servers, monkeypatch):
    main, elsewhere = servers
    monkeypatch.setenv("TEST_JUDGE_KEY", KEY)
    judge = EndpointJudge(main.url, "judge-model", api_key_env="TEST_JUDGE_KEY", concurrency=4, timeout_s=1.0,
                          max_retries=1, backoff_s=0.05)
    url = main.url + "/chat/completions"
    behaviours = ["good", "cut", "not-http", "redirect-307", "bad", "trickle-body", "trickle-head", "huge",
                  "huge-unannounced", "long", "nested", "redirect-302", "good"]
    started = time.monotonic()
    out = dict(zip(behaviours, judge(["Do it."] * len(behaviours), [f"<<{b}>>" for b in behaviours])))
    elapsed = time.monotonic() - started

    assert out["good"] is None and out["bad"] == "The response is bad."
    reasons = {b: j.reason for b, j in out.items() if isinstance(j, JudgeFailure)}
    assert set(reasons) == set(behaviours) - {"good", "bad"}
    # (1) a body cut mid-way and (2) a reply that is not HTTP: transport errors, retried, then the row fails.
    assert reasons["cut"].startswith(f"request to {url} failed: RemoteProtocolError: ")
    assert reasons["not-http"].startswith(f"request to {url} failed: RemoteProtocolError: ")
    for name in ("cut", "not-http", "nested"):
        assert reasons[name].endswith("(after 2 attempts)") and main.attempts[name] == 2
    assert reasons["nested"].startswith(f"malformed reply from {url}: b'[[[[")
    # (3) redirects are not followed: nothing reaches the other server, the key least of all; no retry.
    for code in (307, 302):
        assert reasons[f"redirect-{code}"] == (
            f"HTTP {code} from {url}: redirect to '{elsewhere.url}/chat/completions' not followed "
            "(a judge request is only ever sent to base_url)")
        assert main.attempts[f"redirect-{code}"] == 1
    assert elsewhere.headers == []
    # (4) trickled replies, in the headers or in the body, are cut at the total deadline, then retried once.
    for name in ("trickle-body", "trickle-head"):
        assert reasons[name] == f"request to {url} took longer than timeout_s (1 s) (after 2 attempts)"
        assert main.attempts[name] == 2
    # (5) 10 MB: refused by its Content-Length, or abandoned once past the cap; not retried.
    assert reasons["huge"] == f"reply from {url} has {10 * MiB} bytes, more than max_response_bytes ({MiB})"
    assert reasons["huge-unannounced"] == f"reply from {url} is longer than max_response_bytes ({MiB})"
    assert main.attempts["huge"] == main.attempts["huge-unannounced"] == 1
    # An answer far longer than a judgment is not one.
    assert reasons["long"] == f"the judgment from {url} has 10000 characters, more than max_judgment_chars (4000)"
    # The key went to the judge server with every request, and into no reason.
    assert len(main.headers) == sum(main.attempts.values())
    assert {h.get("authorization") for h in main.headers} == {f"Bearer {KEY}"}
    assert not any(KEY in reason for reason in reasons.values())
    # Bounded: two trickled attempts of 1 s each, in parallel with the rest (unbounded, they take 10 s each).
    assert elapsed < 4.0, elapsed


def test_the_deadline_is_total_not_per_read(servers):
    """A reply trickled one byte every 50 ms never trips a per-read timeout; the total deadline stops it."""
    main, _ = servers
    judge = EndpointJudge(main.url, "m", concurrency=1, timeout_s=0.6, max_retries=0)
    started = time.monotonic()
    (out,) = judge(["Do it."], ["<<trickle-body>>"])
    elapsed = time.monotonic() - started
    assert out == JudgeFailure(f"request to {main.url}/chat/completions took longer than timeout_s (0.6 s) "
                               "(after 1 attempt)")
    assert 0.6 <= elapsed < 1.2, elapsed


def test_the_limits_are_settings(servers):
    main, _ = servers
    url = main.url + "/chat/completions"
    judge = EndpointJudge(main.url, "m", max_retries=0, max_response_bytes=100, max_judgment_chars=19)
    out = judge(["Do it."] * 3, ["<<bad>>", "<<good>>", "<<long>>"])
    assert out[0] == JudgeFailure(f"the judgment from {url} has 20 characters, more than max_judgment_chars (19)")
    assert out[1] is None  # a 76-byte reply fits in 100
    long_reply = len(completion("word " * 2000).split(b"\r\n\r\n", 1)[1])
    assert out[2] == JudgeFailure(f"reply from {url} has {long_reply} bytes, more than max_response_bytes (100)")


def test_pairwise_judge_fails_loudly_and_keeps_its_key(servers):
    """The pairwise evaluator shares the client: a redirect or a broken reply is an error naming the URL."""
    main, elsewhere = servers
    url = main.url + "/chat/completions"
    judge = EndpointPairwiseJudge(main.url, "m", api_key=KEY, timeout_s=1.0, max_retries=1, backoff_s=0.0)
    with pytest.raises(EndpointError) as error:
        win_rate(["q <<redirect-307>>"], ["a"], ["b"], judge)
    assert str(error.value).startswith(f"HTTP 307 from {url}: redirect to ")
    assert elsewhere.headers == []
    with pytest.raises(EndpointError, match=r"RemoteProtocolError: .* \(after 2 attempts\)") as error:
        win_rate(["q <<cut>>"], ["a"], ["b"], judge)
    assert KEY not in str(error.value) and url in str(error.value)


def test_a_good_server_judges_as_before():
    """Against the stand-in server, the endpoint judge's judgments equal the in-process rule judge's, exactly."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
    from rule_judge_endpoint import RuleJudgeHandler

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), RuleJudgeHandler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        prompts = task_prompts("heldout", n=12, seed=5)
        responses = ["The Sun, the Rain and a rainbow.", "- one thing\n- another thing", "plain lowercase words",
                     "Ünïcödé, “quotes” — and emoji 🌈 in it.", "", "x"] * 2
        judge = EndpointJudge(f"http://127.0.0.1:{httpd.server_address[1]}/v1", "m", max_retries=0)
        assert judge(prompts, responses) == RuleJudge()(prompts, responses)
    finally:
        httpd.shutdown()
        httpd.server_close()

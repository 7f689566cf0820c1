"""The one HTTP client of the judges: ``POST {base_url}/chat/completions`` on an OpenAI-compatible server.

Both the endpoint judge (:mod:`cutalign.judges.endpoint`) and the pairwise evaluator
(:class:`cutalign.judges.pairwise.EndpointPairwiseJudge`) send their requests through :class:`ChatClient`. A judge
server is outside the project's control, so the client bounds what one can do to a run:

* **No credential forwarding.** Redirects are never followed (``follow_redirects=False``): any 3xx answer fails
  the request, so the API key and the prompt are only ever sent to ``base_url``. The key is not logged and is not
  put in any error message.
* **A total deadline per request.** httpx bounds each network wait (connect, each read, each write) by
  ``timeout_s`` but not their sum, so a server that trickles bytes could hold a request for ever; a timer closes
  the request's connection when ``timeout_s`` has passed since the request started.
* **A size cap.** The reply is read in chunks and abandoned once it passes ``max_response_bytes`` (or announces a
  larger ``Content-Length``). Compressed replies are refused (the client asks for ``identity``), so the cap is on
  the bytes kept in memory.
* **Retries for what may pass.** Timeouts, broken connections, replies that are not HTTP, HTTP 429 and 5xx and
  bodies that are not a chat completion are retried up to ``max_retries`` times, waiting ``backoff_s``, then twice
  that, and so on. Other 4xx answers, redirects and oversized or compressed replies fail at once (asking again
  would get the same answer). A request that fails raises :class:`EndpointError`; nothing else escapes.

Connections are not kept alive between requests (each request opens its own), which is what lets the deadline
close exactly that request's connection; a judge's request costs far more than a TCP handshake.
"""

from __future__ import annotations

import json
import socket
import threading
import time

import httpx

DEFAULT_MAX_RESPONSE_BYTES = 1 << 20
"""1 MiB: a chat completion of a judgment is a few kilobytes; anything near this is not one."""


class EndpointError(RuntimeError):
    """A request that failed for good. The message names the URL and the reason, never the API key."""


class _Retryable(Exception):
    """An attempt that failed in a way that may pass: the client tries again after a pause."""


class ChatClient:
    """Asks one model on an OpenAI-compatible chat-completions server, one user message per request.

    ``complete(content)`` sends ``{"model", "messages": [{"role": "user", "content"}], "temperature": 0,
    "max_tokens"}`` and returns the text of the first choice; see the module docstring for the limits and retries.
    The client is safe to share between threads.
    """

    def __init__(self, base_url: str, model: str, *, api_key: str | None = None, max_tokens: int = 96,
                 timeout_s: float = 60.0, max_retries: int = 3, backoff_s: float = 1.0,
                 max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES):
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model, self.max_tokens = model, max_tokens
        self.timeout_s, self.max_retries, self.backoff_s = timeout_s, max_retries, backoff_s
        self.max_response_bytes = max_response_bytes
        self._headers = {"Accept-Encoding": "identity"}  # httpx adds Content-Type for the JSON body
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._client = httpx.Client(follow_redirects=False, timeout=httpx.Timeout(timeout_s),
                                    limits=httpx.Limits(max_keepalive_connections=0))

    def close(self) -> None:
        self._client.close()

    def complete(self, content: str) -> str:
        """The model's answer to ``content``; :class:`EndpointError` when the request fails (after retries)."""
        payload = {"model": self.model, "messages": [{"role": "user", "content": content}], "temperature": 0,
                   "max_tokens": self.max_tokens}
        problem = ""
        for attempt in range(self.max_retries + 1):
            if attempt:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
            try:
                return self._attempt(payload)
            except _Retryable as error:
                problem = str(error)
        attempts = self.max_retries + 1
        raise EndpointError(f"{problem} (after {attempts} attempt{'s' if attempts > 1 else ''})")

    def _attempt(self, payload: dict) -> str:
        """One request within its deadline: the answer, or :class:`_Retryable` / :class:`EndpointError`."""
        deadline = _Deadline(self.timeout_s)
        try:
            with self._client.stream("POST", self.url, json=payload, headers=self._headers,
                                     extensions={"trace": deadline.trace}) as reply:
                self._check_status(reply)
                body = self._read_body(reply, deadline)
        except (httpx.HTTPError, OSError) as error:  # every transport failure, as httpx or the socket reports it
            if deadline.expired:
                raise _Retryable(f"request to {self.url} took longer than timeout_s ({self.timeout_s:g} s)") from None
            raise _Retryable(f"request to {self.url} failed: {type(error).__name__}: {error}") from None
        finally:
            deadline.stop()
        try:
            content = json.loads(body)["choices"][0]["message"]["content"]
        except (ValueError, RecursionError, KeyError, IndexError, TypeError):
            content = None
        if not isinstance(content, str):
            raise _Retryable(f"malformed reply from {self.url}: {body[:80]!r}")
        return content

    def _check_status(self, reply: httpx.Response) -> None:
        code = reply.status_code
        if 300 <= code < 400:
            location = reply.headers.get("location", "")[:200]
            raise EndpointError(f"HTTP {code} from {self.url}: redirect to {location!r} not followed "
                                "(a judge request is only ever sent to base_url)")
        if code == 429 or code >= 500:
            raise _Retryable(f"HTTP {code} from {self.url}")
        if code >= 400 or code < 200:
            raise EndpointError(f"HTTP {code} from {self.url}")

    def _read_body(self, reply: httpx.Response, deadline: "_Deadline") -> bytes:
        """The reply's bytes, read chunk by chunk up to ``max_response_bytes``."""
        limit = self.max_response_bytes
        encoding = reply.headers.get("content-encoding", "identity").strip().lower()
        if encoding != "identity":
            raise EndpointError(f"reply from {self.url} is {encoding}-encoded; the client accepts only identity")
        announced = reply.headers.get("content-length", "")
        if announced.isdigit() and int(announced) > limit:
            raise EndpointError(f"reply from {self.url} has {announced} bytes, more than max_response_bytes ({limit})")
        chunks, size = [], 0
        for chunk in reply.iter_raw():
            size += len(chunk)
            if size > limit:
                raise EndpointError(f"reply from {self.url} is longer than max_response_bytes ({limit})")
            chunks.append(chunk)
        if not deadline.stop():  # the timer closed the connection: what was read may be cut short
            raise httpx.ReadError("the connection was closed at the deadline")
        return b"".join(chunks)


class _Deadline:
    """Closes one request's connection once ``seconds`` have passed, unless :meth:`stop` came first.

    The connection's socket is learnt from httpx's ``trace`` extension (the events that report a new TCP or TLS
    stream); shutting it down wakes the read or write that waits on it, which then fails as a transport error.
    """

    def __init__(self, seconds: float):
        self._lock = threading.Lock()
        self._socket: socket.socket | None = None
        self._stopped = False
        self.expired = False
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def trace(self, event: str, info: dict) -> None:
        if event.endswith(("connect_tcp.complete", "start_tls.complete")):
            with self._lock:
                self._socket = info["return_value"].get_extra_info("socket")
                if self.expired:
                    self._shut()

    def stop(self) -> bool:
        """Cancel the timer; True when it had not fired (the request finished in time)."""
        with self._lock:
            self._stopped = True
            self._timer.cancel()
            return not self.expired

    def _expire(self) -> None:
        with self._lock:
            if not self._stopped:
                self.expired = True
                self._shut()

    def _shut(self) -> None:
        if self._socket is not None:
            try:
                self._socket.shutdown(socket.SHUT_RDWR)
            except OSError:  # already closed by httpx
                pass

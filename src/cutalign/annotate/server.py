"""The annotation server: a Starlette app over a :class:`~cutalign.annotate.store.Journal`, and :func:`serve`.

Routes:

* ``GET /``: the page (``static/index.html``); ``GET /static/...``: its script and style sheet;
* ``GET /api/rows``: progress, where to start, and one summary per row (id, status, revision count, preview);
* ``GET /api/row?id=ID``: one row in full, with its decision and every revision;
* ``POST /api/judgments``: ``{"row_id", "verdict": "good"|"bad"|"skip", "judgment", "annotator",
  "seen_revision"}`` appends one record and returns the row; ``conflict`` is true when someone else saved the
  row after ``seen_revision`` (the revision the client showed), in which case both records are kept.

Model output is untrusted: the page only ever inserts it as text, and a strict Content-Security-Policy (no inline
script, no other origin) backs that up. With a token, every request must carry it: the page as ``?token=``
(which also sets a same-site cookie for the static files), API calls as the ``X-Cutalign-Token`` header.
A token must be at least :data:`MIN_TOKEN_CHARS` characters, without surrounding whitespace. Without one the
server must listen on a loopback address, and refuses requests whose ``Host`` is not ``localhost`` or a loopback
address (``127.0.0.0/8``, ``::1``; a DNS-rebinding page's Host is its own domain name) or whose body is not JSON
(cross-site form posts).
"""

import contextlib
import getpass
import hmac
import ipaddress
import json
import os
import socket
import threading
import time
from pathlib import Path
from urllib.parse import quote, unquote

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers, QueryParams
from starlette.requests import Request, cookie_parser
from starlette.responses import FileResponse, JSONResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from cutalign.annotate.store import MAX_JUDGMENT_BYTES, VERDICTS, Journal, decision, journal_path, load_rows, status

STATIC = Path(__file__).parent / "static"
TOKEN_ENV = "CUTALIGN_ANNOTATE_TOKEN"
TOKEN_HEADER = "x-cutalign-token"
TOKEN_COOKIE = "cutalign_token"
MAX_BODY_BYTES = 64 * 1024
"""Room for a judgment at the limit even when every character is JSON-escaped."""
MAX_ANNOTATOR_CHARS = 100
MIN_TOKEN_CHARS = 16
"""A token shorter than this is refused: it is the only lock on a page served beyond this machine."""
SECURITY_HEADERS = [
    (b"content-security-policy", b"default-src 'self'; img-src 'self' data:; frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
]


class HTTPError(Exception):
    def __init__(self, status_code: int, message: str):
        super().__init__(message)
        self.status_code = status_code
        self.message = message


def is_loopback(host: str) -> bool:
    """True for ``localhost`` (any case) and any loopback address: ``127.0.0.0/8``, ``::1`` (bracketed or not)."""
    host = host.lower()
    if host == "localhost":
        return True
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_token(token: str | None) -> str | None:
    """Return ``token`` if it is long enough and has no surrounding whitespace; ``None`` means no token."""
    if token is not None and (len(token) < MIN_TOKEN_CHARS or token != token.strip()):
        raise ValueError(
            f"the token (--token or ${TOKEN_ENV}) must be at least {MIN_TOKEN_CHARS} characters, without surrounding "
            f"whitespace; got {len(token)} characters. Make one with: python -c 'import secrets; "
            "print(secrets.token_urlsafe())'"
        )
    return token


class Guard:
    """ASGI middleware: checks the token and the Host header, and adds the security headers to every response."""

    def __init__(self, app, *, token: str | None, loopback: bool):
        self.app, self.token, self.loopback = app, token, loopback

    def refusal(self, scope) -> tuple[int, str] | None:
        headers = Headers(scope=scope)
        if self.loopback and not is_loopback(_host_name(headers.get("host", ""))):
            return 403, "this server answers only to a loopback Host (localhost or a loopback address)"
        if self.token is None:
            return None
        path, query = scope["path"], QueryParams(scope["query_string"])
        if path.startswith("/api/"):
            given = headers.get(TOKEN_HEADER)
        elif path.startswith("/static/"):
            given = query.get("token") or unquote(cookie_parser(headers.get("cookie", "")).get(TOKEN_COOKIE, ""))
        else:
            given = query.get("token")
        if not given:
            return 401, "a token is required: open the URL printed by `cutalign annotate`"
        if not hmac.compare_digest(given.encode("utf-8"), self.token.encode("utf-8")):
            return 403, "wrong token"
        return None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        refused = self.refusal(scope)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + SECURITY_HEADERS
                if self.token and refused is None and scope["path"] == "/":
                    cookie = f"{TOKEN_COOKIE}={quote(self.token)}; Path=/; HttpOnly; SameSite=Strict"
                    message["headers"].append((b"set-cookie", cookie.encode("latin-1")))
            await send(message)

        if refused is not None:
            response = JSONResponse({"error": refused[1]}, status_code=refused[0])
            return await response(scope, receive, send_with_headers)
        await self.app(scope, receive, send_with_headers)


def _host_name(host: str) -> str:
    """``127.0.0.1:8765`` -> ``127.0.0.1``, ``[::1]:8765`` -> ``[::1]``; a Host without a port stays as it is."""
    name, _, port = host.rpartition(":")
    return name if name and port.isdigit() else host


def prompt_text(prompt) -> str:
    """A prompt as plain text: a string as is, chat messages as ``role: content`` lines."""
    if isinstance(prompt, str):
        return prompt
    return "\n".join(f"{message['role']}: {message['content']}" for message in prompt)


def row_state(journal: Journal, row_id: str) -> dict:
    row, revisions = journal.rows[journal.index[row_id]], journal.revisions[row_id]
    decided = decision(revisions)
    return {
        "index": journal.index[row_id],
        "id": row_id,
        "prompt": row["prompt"],
        "completion": row["completion"],
        "input_judgment": row["judgment"],
        "status": status(revisions),
        "judgment": None if decided is None else decided["judgment"],
        "revision": len(revisions),
        "revisions": revisions,
    }


async def _json_body(request: Request) -> dict:
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise HTTPError(415, "the body must be JSON (Content-Type: application/json)")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise HTTPError(413, f"the request body is over {MAX_BODY_BYTES} bytes")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise HTTPError(400, f"the request body is not valid UTF-8 ({error.reason} at byte {error.start})") from None
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as error:
        raise HTTPError(400, f"the request body is not valid JSON: {error}") from None
    if not isinstance(payload, dict):
        raise HTTPError(400, "the request body must be a JSON object")
    return payload


def _check_text(value: str, field: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise HTTPError(400, f"{field} holds a lone surrogate, which is not valid Unicode") from None
    return value


def check_judgment_request(payload: dict, journal: Journal, default_annotator: str) -> tuple:
    """Validate a ``POST /api/judgments`` body; return ``(row_id, verdict, judgment, annotator, seen_revision)``."""
    unknown = sorted(set(payload) - {"row_id", "verdict", "judgment", "annotator", "seen_revision"})
    if unknown:
        raise HTTPError(400, f"unknown field(s): {', '.join(unknown)}")
    row_id = payload.get("row_id")
    if not isinstance(row_id, str):
        raise HTTPError(400, "row_id must be a string")
    if row_id not in journal.index:
        raise HTTPError(404, f"unknown row id {row_id!r}")
    verdict = payload.get("verdict")
    if verdict not in VERDICTS:
        raise HTTPError(400, f"verdict must be one of {', '.join(VERDICTS)}, got {verdict!r}")
    judgment = payload.get("judgment")
    if verdict == "bad":
        if not isinstance(judgment, str) or not judgment.strip():
            raise HTTPError(400, "a 'bad' verdict needs a non-empty judgment (use 'good' for a good response)")
        judgment = _check_text(judgment.strip(), "judgment")
        size = len(judgment.encode("utf-8"))
        if size > MAX_JUDGMENT_BYTES:
            raise HTTPError(413, f"the judgment is {size} bytes; the limit is {MAX_JUDGMENT_BYTES}")
    elif judgment is not None:
        raise HTTPError(400, f"judgment must be null for a {verdict!r} verdict")
    annotator = payload.get("annotator")
    if annotator is not None and not isinstance(annotator, str):
        raise HTTPError(400, "annotator must be a string")
    annotator = _check_text((annotator or "").strip(), "annotator") or default_annotator
    if len(annotator) > MAX_ANNOTATOR_CHARS:
        raise HTTPError(400, f"annotator is over {MAX_ANNOTATOR_CHARS} characters")
    seen = payload.get("seen_revision")
    if seen is not None and (isinstance(seen, bool) or not isinstance(seen, int) or seen < 0):
        raise HTTPError(400, "seen_revision must be a non-negative integer")
    return row_id, verdict, judgment, annotator, seen


def create_app(journal: Journal, *, annotator: str, token: str | None = None, loopback: bool = True):
    """The ASGI app serving ``journal``; ``annotator`` names records whose client gave no name."""

    async def page(request):
        return FileResponse(STATIC / "index.html")

    async def rows(request):
        await run_in_threadpool(journal.refresh)
        summaries = [
            {
                "id": row["id"],
                "status": status(journal.revisions[row["id"]]),
                "revisions": len(journal.revisions[row["id"]]),
                "preview": " ".join(prompt_text(row["prompt"]).split())[:120],
            }
            for row in journal.rows
        ]
        return JSONResponse({
            "file": journal.path.name.removesuffix(".judgments.jsonl"),
            "annotator": annotator,
            "max_judgment_bytes": MAX_JUDGMENT_BYTES,
            "start": journal.start_index(),
            "progress": journal.progress(),
            "rows": summaries,
        })

    async def row(request):
        row_id = request.query_params.get("id")
        if row_id is None:
            raise HTTPError(400, "give the row id as ?id=")
        if row_id not in journal.index:
            raise HTTPError(404, f"unknown row id {row_id!r}")
        await run_in_threadpool(journal.refresh)
        return JSONResponse(row_state(journal, row_id))

    async def save(request):
        row_id, verdict, judgment, name, seen = check_judgment_request(await _json_body(request), journal, annotator)
        record, previous = await run_in_threadpool(journal.append, row_id, verdict, judgment, name)
        return JSONResponse({
            "record": record,
            "conflict": seen is not None and seen != previous,
            "row": row_state(journal, row_id),
            "progress": journal.progress(),
        })

    async def http_error(request, error: HTTPError):
        return JSONResponse({"error": error.message}, status_code=error.status_code)

    app = Starlette(
        routes=[
            Route("/", page),
            Route("/api/rows", rows),
            Route("/api/row", row),
            Route("/api/judgments", save, methods=["POST"]),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ],
        exception_handlers={HTTPError: http_error},
    )
    return Guard(app, token=token, loopback=loopback)


def serve(path, *, host: str = "127.0.0.1", port: int = 8765, token: str | None = None, annotator: str | None = None):
    """Serve the annotation page for the rows of ``path`` until interrupted; print the URL to open.

    ``token`` defaults to ``$CUTALIGN_ANNOTATE_TOKEN``; it is required when ``host`` is not a loopback address, and
    must be at least :data:`MIN_TOKEN_CHARS` characters without surrounding whitespace.
    """
    token = check_token(token or os.environ.get(TOKEN_ENV) or None)
    loopback = is_loopback(host)
    if not loopback and token is None:
        raise ValueError(f"serving on {host!r} exposes the page beyond this machine: give --token or set ${TOKEN_ENV}")
    journal = Journal(load_rows(path), journal_path(path))
    app = create_app(journal, annotator=annotator or getpass.getuser(), token=token, loopback=loopback)
    progress = journal.progress()
    shown = socket.gethostname() if host in ("0.0.0.0", "::") else f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}/" + (f"?token={quote(token)}" if token else "")
    print(f"Annotating {path}: {progress['done']} of {progress['total']} rows done; judgments go to {journal.path}")
    print(f"Open {url}", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")


@contextlib.contextmanager
def background(app, *, host: str = "127.0.0.1", port: int = 0, start_timeout: float = 10.0):
    """Run ``app`` in a thread for the duration of a ``with`` block and yield its base URL.

    ``port=0`` picks a free port (the socket is bound before the server starts, so no other process can take
    it in between). The server is stopped, and its thread joined, when the block exits.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + start_timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the annotation server did not start within {start_timeout} s")
            time.sleep(0.01)
        shown = f"[{host}]" if family == socket.AF_INET6 else host
        yield f"http://{shown}:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(start_timeout)
        sock.close()

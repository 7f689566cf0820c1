"""The annotation server's API and journal: every endpoint, the token, bad bodies, restarts, concurrent saves."""

import json
import logging
import threading

import httpx
import pytest
from starlette.testclient import TestClient

from cutalign.annotate import export, serve
from cutalign.annotate.server import MAX_BODY_BYTES, background, create_app, is_loopback
from cutalign.annotate.store import MAX_JUDGMENT_BYTES, Journal, journal_path, load_rows
from cutalign.data import DataError, load_judgments

BASE = "http://127.0.0.1:8765"


def write_rows(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


@pytest.fixture
def generations(tmp_path):
    """A generations file as `cutalign eval` writes it: id, prompt, completion and keys the page ignores."""
    rows = [
        {"id": f"g{number}", "prompt": f"Write {number} words.", "completion": f"Answer {number}.", "seed": number}
        for number in range(4)
    ]
    rows[2]["judgment"] = "An AI judge thinks this is too short."
    return write_rows(tmp_path / "gen.jsonl", rows)


def client_for(path, *, token=None, annotator="ana"):
    journal = Journal(load_rows(path), journal_path(path))
    return TestClient(create_app(journal, annotator=annotator, token=token), base_url=BASE), journal


def save(client, row_id, verdict, judgment=None, **extra):
    return client.post("/api/judgments", json={"row_id": row_id, "verdict": verdict, "judgment": judgment, **extra})


def journal_lines(path):
    """The journal's records; a blank line reads as ``None``."""
    lines = journal_path(path).read_text(encoding="utf-8").splitlines()
    return [json.loads(line) if line.strip() else None for line in lines]


def test_page_and_static_files_are_served_with_a_strict_content_security_policy(generations):
    client, _ = client_for(generations)
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '<script src="static/app.js"' in page.text
    assert "script-src" not in page.headers["content-security-policy"]  # default-src 'self' covers scripts
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    for name, kind in (("app.js", "javascript"), ("app.css", "text/css")):
        response = client.get(f"/static/{name}")
        assert response.status_code == 200 and kind in response.headers["content-type"]
    assert "innerHTML" not in client.get("/static/app.js").text
    assert client.get("/static/missing.js").status_code == 404


def test_rows_lists_progress_start_and_previews(generations):
    client, _ = client_for(generations)
    data = client.get("/api/rows").json()
    assert data["file"] == "gen.jsonl"
    assert data["annotator"] == "ana"
    assert data["max_judgment_bytes"] == MAX_JUDGMENT_BYTES
    assert data["progress"] == {"done": 0, "skipped": 0, "total": 4}
    assert data["start"] == 0
    assert data["rows"] == [
        {"id": f"g{number}", "status": "open", "revisions": 0, "preview": f"Write {number} words."}
        for number in range(4)
    ]


def test_chat_prompts_are_previewed_as_role_lines_and_served_as_messages(tmp_path):
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Name\n  a colour."}]
    path = write_rows(tmp_path / "chat.jsonl", [{"id": "c", "prompt": messages, "completion": "Blue."}])
    client, _ = client_for(path)
    assert client.get("/api/rows").json()["rows"][0]["preview"] == "system: Be brief. user: Name a colour."
    assert client.get("/api/row", params={"id": "c"}).json()["prompt"] == messages


def test_row_returns_the_row_in_full_and_refuses_unknown_or_missing_ids(generations):
    client, _ = client_for(generations)
    row = client.get("/api/row", params={"id": "g2"}).json()
    assert row == {
        "index": 2, "id": "g2", "prompt": "Write 2 words.", "completion": "Answer 2.",
        "input_judgment": "An AI judge thinks this is too short.",
        "status": "open", "judgment": None, "revision": 0, "revisions": [],
    }
    unknown = client.get("/api/row", params={"id": "nope"})
    assert unknown.status_code == 404 and unknown.json() == {"error": "unknown row id 'nope'"}
    assert client.get("/api/row").status_code == 400


def test_saving_good_bad_and_skip_appends_records_and_updates_the_state(generations):
    client, _ = client_for(generations)
    first = save(client, "g0", "good", annotator="  bo  ")
    assert first.status_code == 200
    assert first.json()["record"]["annotator"] == "bo"  # trimmed
    assert save(client, "g1", "bad", "  Too long.\n").json()["row"]["judgment"] == "Too long."
    skipped = save(client, "g2", "skip").json()
    assert skipped["row"]["status"] == "skip"
    assert skipped["progress"] == {"done": 2, "skipped": 1, "total": 4}

    lines = journal_lines(generations)
    keys = ("row_id", "verdict", "judgment", "annotator", "revision")
    assert [tuple(line[key] for key in keys) for line in lines] == [
        ("g0", "good", None, "bo", 1),
        ("g1", "bad", "Too long.", "ana", 1),
        ("g2", "skip", None, "ana", 1),
    ]
    assert all(line["time"].endswith("+00:00") for line in lines)
    data = client.get("/api/rows").json()
    assert [row["status"] for row in data["rows"]] == ["good", "bad", "skip", "open"]
    assert data["start"] == 3  # the first row never touched; skipped rows come after

    # A later decision of the same row is a new revision; a skip never replaces a decision.
    save(client, "g1", "good")
    save(client, "g1", "skip")
    row = client.get("/api/row", params={"id": "g1"}).json()
    assert (row["status"], row["judgment"], row["revision"]) == ("good", None, 3)
    assert [record["verdict"] for record in row["revisions"]] == ["bad", "good", "skip"]


@pytest.mark.parametrize(
    "body, status, error",
    [
        ({"row_id": "zz", "verdict": "good"}, 404, "unknown row id 'zz'"),
        ({"row_id": 3, "verdict": "good"}, 400, "row_id must be a string"),
        ({"row_id": "g0", "verdict": "meh"}, 400, "verdict must be one of good, bad, skip, got 'meh'"),
        ({"row_id": "g0", "verdict": "bad", "judgment": "   "}, 400, "a 'bad' verdict needs a non-empty judgment"),
        ({"row_id": "g0", "verdict": "good", "judgment": "x"}, 400, "judgment must be null for a 'good' verdict"),
        ({"row_id": "g0", "verdict": "good", "color": 1}, 400, "unknown field(s): color"),
        ({"row_id": "g0", "verdict": "good", "annotator": 5}, 400, "annotator must be a string"),
        ({"row_id": "g0", "verdict": "good", "annotator": "a" * 101}, 400, "annotator is over 100 characters"),
        ({"row_id": "g0", "verdict": "good", "seen_revision": True}, 400, "seen_revision must be a non-negative"),
        ({"row_id": "g0", "verdict": "good", "seen_revision": -1}, 400, "seen_revision must be a non-negative"),
        (["g0", "good"], 400, "the request body must be a JSON object"),
    ],
)
def test_bad_requests_are_refused_with_a_clear_error_and_write_nothing(generations, body, status, error):
    client, _ = client_for(generations)
    response = client.post("/api/judgments", json=body)
    assert response.status_code == status
    assert response.json()["error"].startswith(error)
    assert not journal_path(generations).exists()


def test_oversized_judgments_and_bodies_are_refused_with_413(generations):
    client, _ = client_for(generations)
    at_limit = "é" * (MAX_JUDGMENT_BYTES // 2)  # two UTF-8 bytes each: exactly the limit
    assert save(client, "g0", "bad", at_limit).status_code == 200
    over = save(client, "g1", "bad", at_limit + "x")
    assert over.status_code == 413
    limit = MAX_JUDGMENT_BYTES
    assert over.json() == {"error": f"the judgment is {limit + 1} bytes; the limit is {limit}"}
    huge = client.post(
        "/api/judgments",
        content=b'{"pad": "' + b"x" * MAX_BODY_BYTES + b'"}',
        headers={"content-type": "application/json"},
    )
    assert huge.status_code == 413 and "over 65536 bytes" in huge.json()["error"]
    assert [line["row_id"] for line in journal_lines(generations)] == ["g0"]


def test_invalid_utf8_bad_json_lone_surrogates_and_non_json_bodies_are_refused(generations):
    client, _ = client_for(generations)
    headers = {"content-type": "application/json"}
    body = b'{"row_id": "g0", "verdict": "bad", "judgment": "\xff\xfe"}'
    invalid = client.post("/api/judgments", content=body, headers=headers)
    assert invalid.status_code == 400
    assert invalid.json()["error"] == "the request body is not valid UTF-8 (invalid start byte at byte 48)"
    broken = client.post("/api/judgments", content=b'{"row_id": "g0",', headers=headers)
    assert broken.status_code == 400 and broken.json()["error"].startswith("the request body is not valid JSON")
    surrogate = client.post(
        "/api/judgments", content=b'{"row_id": "g0", "verdict": "bad", "judgment": "\\ud800"}', headers=headers
    )
    assert surrogate.status_code == 400
    assert surrogate.json()["error"] == "judgment holds a lone surrogate, which is not valid Unicode"
    form = client.post("/api/judgments", content=b"row_id=g0&verdict=good", headers={"content-type": "text/plain"})
    assert form.status_code == 415  # a cross-site form post cannot send application/json without a preflight
    assert not journal_path(generations).exists()


def test_a_token_guards_the_page_the_static_files_and_the_api(generations):
    client, _ = client_for(generations, token="s3cret/+")
    for path in ("/", "/static/app.js", "/api/rows"):
        missing = client.get(path)
        assert missing.status_code == 401, path
        assert "token is required" in missing.json()["error"]
    assert client.get("/", params={"token": "wrong"}).status_code == 403
    assert client.get("/api/rows", headers={"X-Cutalign-Token": "wrong"}).status_code == 403
    assert client.get("/api/rows", params={"token": "s3cret/+"}).status_code == 401  # the API wants the header
    assert save(client, "g0", "good").status_code == 401
    assert not journal_path(generations).exists()

    page = client.get("/", params={"token": "s3cret/+"})
    assert page.status_code == 200
    assert "HttpOnly" in page.headers["set-cookie"] and "SameSite=Strict" in page.headers["set-cookie"]
    assert client.get("/static/app.css").status_code == 200  # the cookie the page set
    client.cookies.clear()
    assert client.get("/static/app.css").status_code == 401
    assert client.get("/static/app.css", params={"token": "s3cret/+"}).status_code == 200
    headers = {"X-Cutalign-Token": "s3cret/+"}
    assert client.get("/api/rows", headers=headers).status_code == 200
    assert client.post("/api/judgments", json={"row_id": "g0", "verdict": "good"}, headers=headers).status_code == 200


def test_a_loopback_server_refuses_foreign_host_headers(generations):
    client, _ = client_for(generations)
    assert client.get("/api/rows", headers={"host": "evil.example:8765"}).status_code == 403
    for host in ("localhost:8765", "127.0.0.1", "[::1]:8765"):
        assert client.get("/api/rows", headers={"host": host}).status_code == 200, host


@pytest.fixture
def served(monkeypatch, capsys):
    """Run `serve` without a server: returns ``serve(...)``'s app and the URL it printed."""
    monkeypatch.delenv("CUTALIGN_ANNOTATE_TOKEN", raising=False)
    apps = []
    monkeypatch.setattr("cutalign.annotate.server.uvicorn.run", lambda app, **options: apps.append(app))

    def run(path, **options):
        serve(path, **options)
        url = capsys.readouterr().out.split("Open ")[1].strip()
        return apps[-1], url

    return run


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "127.42.0.9", "localhost", "::1"])
def test_a_loopback_server_answers_the_url_it_prints(generations, served, host):
    app, url = served(generations, host=host, port=8799)
    assert TestClient(app, base_url=url).get("/api/rows").status_code == 200, url


def test_a_server_bound_on_127_0_0_2_answers_its_own_address(generations):
    app = create_app(Journal(load_rows(generations), journal_path(generations)), annotator="ana")
    with background(app, host="127.0.0.2") as base:
        assert base.startswith("http://127.0.0.2:")
        assert httpx.get(f"{base}/api/rows").status_code == 200
        assert httpx.get(f"{base}/api/rows", headers={"host": "evil.example"}).status_code == 403


def test_the_host_check_accepts_loopback_addresses_only(generations):
    client, _ = client_for(generations)
    for host in ("127.0.0.2:8765", "127.255.0.1", "[0:0:0:0:0:0:0:1]:8765", "LocalHost:8765"):
        assert client.get("/api/rows", headers={"host": host}).status_code == 200, host
    for host in ("127.0.0.2.evil.example", "0.0.0.0:8765", "[::]:8765", "10.0.0.1", "localhost.evil.example", ""):
        assert client.get("/api/rows", headers={"host": host}).status_code == 403, host


@pytest.mark.parametrize("token", [" ", "short", "a" * 15, " " + "a" * 20, "a" * 20 + "\n"])
def test_serve_refuses_a_short_or_padded_token(generations, served, monkeypatch, token):
    with pytest.raises(ValueError, match="at least 16 characters, without surrounding whitespace"):
        served(generations, token=token)
    monkeypatch.setenv("CUTALIGN_ANNOTATE_TOKEN", token)
    with pytest.raises(ValueError, match="at least 16 characters"):
        served(generations, host="0.0.0.0")


def test_serve_accepts_a_token_of_16_characters(generations, served):
    app, url = served(generations, host="0.0.0.0", token="0123456789abcdef")
    assert url.endswith("/?token=0123456789abcdef")
    client = TestClient(app, base_url="http://192.0.2.1:8765")
    assert client.get("/api/rows", headers={"X-Cutalign-Token": "0123456789abcdef"}).status_code == 200


def test_the_token_help_says_how_long_it_must_be(capsys):
    from cutalign.annotate import server
    from cutalign.cli import annotate, main

    assert annotate.MIN_TOKEN_CHARS == server.MIN_TOKEN_CHARS and annotate.TOKEN_ENV == server.TOKEN_ENV
    with pytest.raises(SystemExit):
        main(["annotate", "--help"])
    assert f"at least {server.MIN_TOKEN_CHARS} characters" in " ".join(capsys.readouterr().out.split())


def test_serve_refuses_a_non_loopback_host_without_a_token(generations, monkeypatch):
    monkeypatch.delenv("CUTALIGN_ANNOTATE_TOKEN", raising=False)
    with pytest.raises(ValueError, match="give --token or set \\$CUTALIGN_ANNOTATE_TOKEN"):
        serve(generations, host="0.0.0.0")
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("example.org")


def test_concurrent_saves_of_one_row_from_two_clients_are_both_kept(generations):
    _, journal = client_for(generations)
    app = create_app(journal, annotator="server")
    per_client = 10
    barrier = threading.Barrier(2)
    responses = {"ana": [], "bo": []}

    def annotate(name, base):
        with httpx.Client(base_url=base, timeout=10) as client:
            barrier.wait(timeout=10)
            for number in range(per_client):
                body = {"row_id": "g1", "verdict": "bad", "judgment": f"{name} {number}", "annotator": name,
                        "seen_revision": 0}
                responses[name].append(client.post("/api/judgments", json=body))

    with background(app) as base:
        threads = [threading.Thread(target=annotate, args=(name, base)) for name in responses]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        final = httpx.get(f"{base}/api/row", params={"id": "g1"}, timeout=10).json()

    results = [response.json() for name in responses for response in responses[name]]
    assert all(response.status_code == 200 for name in responses for response in responses[name])
    # Every save is a distinct revision; only the very first one saw what its client had seen (revision 0).
    assert sorted(result["record"]["revision"] for result in results) == list(range(1, 2 * per_client + 1))
    assert sum(not result["conflict"] for result in results) == 1
    lines = journal_lines(generations)
    assert [line["revision"] for line in lines] == list(range(1, 2 * per_client + 1))
    expected = [f"{name} {number}" for name in responses for number in range(per_client)]
    assert sorted(line["judgment"] for line in lines) == sorted(expected)
    assert final["revisions"] == lines and final["judgment"] == lines[-1]["judgment"]
    for name in responses:  # each client's own saves land in its order
        mine = [line["judgment"] for line in lines if line["annotator"] == name]
        assert mine == [f"{name} {number}" for number in range(per_client)]


def test_a_second_journal_on_the_same_file_sees_and_numbers_after_the_first(generations):
    rows = load_rows(generations)
    first, second = Journal(rows, journal_path(generations)), Journal(rows, journal_path(generations))
    first.append("g0", "bad", "Wrong.", "ana")
    record, previous = second.append("g0", "good", None, "bo")  # reads ana's record under the lock first
    assert (record["revision"], previous) == (2, 1)
    first.refresh()
    for journal in (first, second):
        assert [record["annotator"] for record in journal.revisions["g0"]] == ["ana", "bo"]


def test_a_restart_replays_the_journal_and_continues_at_the_first_open_row(generations):
    client, _ = client_for(generations)
    for row_id in ("g0", "g1"):
        save(client, row_id, "bad", f"Judgment of {row_id}.")
    save(client, "g3", "skip")
    restarted, journal = client_for(generations)  # a new server process over the same files
    data = restarted.get("/api/rows").json()
    assert data["progress"] == {"done": 2, "skipped": 1, "total": 4}
    assert data["start"] == 2
    assert restarted.get("/api/row", params={"id": "g1"}).json()["judgment"] == "Judgment of g1."
    save(restarted, "g2", "good")
    assert restarted.get("/api/rows").json()["start"] == 3  # only the skipped row is left
    save(restarted, "g3", "good")
    assert restarted.get("/api/rows").json()["start"] == 0  # all decided


def test_a_line_torn_by_a_crash_is_reported_then_cut_off_before_the_next_append(generations, caplog):
    client, _ = client_for(generations)
    save(client, "g0", "good")
    with open(journal_path(generations), "ab") as handle:
        handle.write(b'{"row_id": "g1", "verd')
    with caplog.at_level(logging.WARNING, logger="cutalign.annotate"):
        restarted, journal = client_for(generations)
    assert "unterminated line" in caplog.text
    assert journal.progress()["done"] == 1
    save(restarted, "g1", "good")
    assert [line["row_id"] for line in journal_lines(generations)] == ["g0", "g1"]


@pytest.mark.parametrize(
    "line, message",
    [
        (b"not json", "gen.jsonl.judgments.jsonl, row 2: is not a JSON record"),
        (b'{"row_id": "gone", "verdict": "good", "judgment": null, "annotator": "a", "time": "t", "revision": 1}',
         "row 2, field 'row_id': row id 'gone' is not in the input file"),
        (b'{"row_id": "g1", "verdict": "bad", "judgment": null, "annotator": "a", "time": "t", "revision": 1}',
         "row 2, field 'judgment': a 'bad' verdict needs a non-empty judgment"),
        (b'{"row_id": "g1", "verdict": "good", "judgment": null, "annotator": "a", "time": "t"}',
         "row 2, field 'revision': must be an integer, got None"),
    ],
)
def test_a_corrupt_journal_line_names_the_file_and_the_line(generations, line, message):
    client, _ = client_for(generations)
    save(client, "g0", "good")
    with open(journal_path(generations), "ab") as handle:
        handle.write(line + b"\n")
    with pytest.raises(DataError) as error:
        client_for(generations)
    assert message in str(error.value)


def test_blank_lines_in_the_journal_are_skipped_by_the_server_and_the_export(generations, tmp_path):
    client, _ = client_for(generations)
    save(client, "g0", "bad", "Too short.")
    with open(journal_path(generations), "ab") as handle:
        handle.write(b"\n  \r\n")  # e.g. a journal touched by an editor: blank lines hold no record
    restarted, journal = client_for(generations)
    assert journal.progress()["done"] == 1
    save(restarted, "g1", "good")
    assert [line["row_id"] for line in journal_lines(generations) if line] == ["g0", "g1"]
    assert Journal(load_rows(generations), journal_path(generations)).progress()["done"] == 2
    assert export(generations, tmp_path / "out.jsonl")["exported"] == 2
    with open(journal_path(generations), "ab") as handle:
        handle.write(b"\nnot json\n")
    with pytest.raises(DataError, match=r"judgments.jsonl, row 6: is not a JSON record"):
        client_for(generations)  # line numbers still count the blank lines


def test_duplicate_ids_in_the_input_are_an_error(tmp_path):
    path = write_rows(tmp_path / "dup.jsonl", [{"id": "a", "prompt": "p", "completion": "c"}] * 2)
    with pytest.raises(DataError, match=r"dup.jsonl, row 2, field 'id': duplicate id 'a' \(first on row 1\)"):
        load_rows(path)


def test_export_writes_the_latest_decision_per_row_and_counts_the_rest(generations, tmp_path, caplog):
    client, _ = client_for(generations)
    save(client, "g0", "bad", "First try.")
    save(client, "g0", "bad", "Second thought.")
    save(client, "g1", "bad", "Wrong.")
    save(client, "g1", "good")
    save(client, "g2", "skip")
    out = tmp_path / "out" / "judged.jsonl"
    with caplog.at_level(logging.WARNING, logger="cutalign.annotate"):
        counts = export(generations, out)
    assert counts == {"exported": 2, "good": 1, "bad": 1, "undecided": 2, "total": 4}
    assert "2 of 4 rows" in caplog.text
    assert [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()] == [
        {"id": "g0", "prompt": "Write 0 words.", "completion": "Answer 0.", "judgment": "Second thought."},
        {"id": "g1", "prompt": "Write 1 words.", "completion": "Answer 1.", "judgment": None},
    ]
    assert sorted(path.name for path in out.parent.iterdir()) == ["judged.jsonl"]  # no temporary file left
    assert load_judgments(out)["judgment"] == ["Second thought.", None]  # what `cutalign train` reads
    with pytest.raises(ValueError, match="refusing to overwrite"):
        export(generations, generations)

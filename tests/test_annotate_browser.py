"""The annotation page in a real headless Chromium: clicks and keys, a reload, the export, untrusted output."""

import json
import os

import pytest

from cutalign.annotate import export
from cutalign.annotate.server import background, create_app
from cutalign.annotate.store import Journal, journal_path, load_rows

CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags Chromium dials out at start-up, which this closed network refuses.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
HOSTILE = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2"><b>bold?</b>'

pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is absent (.ci/install-chromium installs it)"
)


@pytest.fixture
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=30_000)
        yield browser
        browser.close()


def test_three_rows_annotated_with_clicks_and_keys_survive_a_reload_and_reach_the_export(browser, tmp_path):
    rows = [
        {"id": "a", "prompt": "Say hello.", "completion": "Hello!"},
        {"id": "b", "prompt": "Print a tag.", "completion": HOSTILE},
        {"id": "c", "prompt": "Count to three.", "completion": "1, 2, 4"},
        {"id": "d", "prompt": "Name a fruit.", "completion": "Carrot."},
    ]
    path = tmp_path / "gen.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    app = create_app(Journal(load_rows(path), journal_path(path)), annotator="server", token="tok3n")

    with background(app) as base:
        page = browser.new_page()
        page.set_default_timeout(10_000)
        page.goto(f"{base}/?token=tok3n")
        page.fill("#annotator", "ana")

        # Row 1: good, by a click.
        page.wait_for_selector("#row-id:text('a')")
        page.click("#good")

        # Row 2: the hostile response shows as text, and runs nothing; judged with the keyboard.
        page.wait_for_selector("#row-id:text('b')")
        assert page.text_content("#completion") == HOSTILE
        assert page.locator("#completion script, #completion img, #completion b").count() == 0
        assert page.evaluate("window.__pwned") is None
        page.keyboard.press("j")
        page.keyboard.type("Prints raw HTML.")
        page.keyboard.press("Control+Enter")

        # Row 3: the g key, then back with b, then a judgment by a click: a second revision of row 3.
        page.wait_for_selector("#row-id:text('c')")
        page.keyboard.press("g")
        page.wait_for_selector("#row-id:text('d')")
        page.keyboard.press("b")
        page.wait_for_selector("#row-id:text('c')")
        assert page.text_content("#status") == "good"
        page.fill("#judgment", "Skips 3.")
        page.click("#save")
        page.wait_for_selector("#row-id:text('d')")
        assert page.text_content("#progress-text") == "3 / 4 done"

        # A reload continues at the first open row, with everything saved.
        page.reload()
        page.wait_for_selector("#row-id:text('d')")
        assert page.text_content("#progress-text") == "3 / 4 done"
        assert page.input_value("#annotator") == "ana"
        page.click("#back")
        page.wait_for_selector("#row-id:text('c')")
        assert page.input_value("#judgment") == "Skips 3."
        assert page.text_content("#revision-note") == "2 revisions"

        # The list view shows every row's status and jumps to a row.
        page.keyboard.press("l")
        page.wait_for_selector("#list-body tr")
        statuses = page.eval_on_selector_all("#list-body tr", "rows => rows.map(r => r.children[2].textContent)")
        assert statuses == ["good", "bad", "bad", "open"]
        assert page.text_content("#list-body tr:nth-child(2) td:nth-child(5)") == "Print a tag."
        page.click("#list-body tr:nth-child(2)")
        page.wait_for_selector("#row-id:text('b')")
        assert page.input_value("#judgment") == "Prints raw HTML."
        assert page.evaluate("window.__pwned") is None
        page.close()

    journal = [json.loads(line) for line in journal_path(path).read_text(encoding="utf-8").splitlines()]
    assert [(r["row_id"], r["verdict"], r["annotator"]) for r in journal] == [
        ("a", "good", "ana"), ("b", "bad", "ana"), ("c", "good", "ana"), ("c", "bad", "ana"),
    ]
    out = tmp_path / "judged.jsonl"
    assert export(path, out) == {"exported": 3, "good": 1, "bad": 2, "undecided": 1, "total": 4}
    assert [(row["id"], row["judgment"]) for row in map(json.loads, out.read_text(encoding="utf-8").splitlines())] == [
        ("a", None), ("b", "Prints raw HTML."), ("c", "Skips 3."),
    ]

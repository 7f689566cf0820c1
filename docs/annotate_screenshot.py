"""Take docs/annotate.png, the README's picture of `cutalign annotate`: a few sample rows, one judgment half-typed.

Run with the project's venv and Debian's chromium (see .ci/install-chromium):
    .venv/bin/python docs/annotate_screenshot.py
"""

import json
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

from cutalign.annotate.server import background, create_app
from cutalign.annotate.store import Journal, journal_path, load_rows

ROWS = [
    ("What is the capital of France? Answer in one sentence, all lowercase.", "The capital of France is Paris."),
    ("List three primary colours, without commas.", "Red, yellow, and blue."),
    ("Write a haiku about autumn rain.", "Cold rain on the roof\nleaves let go of the maple\nthe gutter hums low"),
    ("Explain what a <div> tag does, in one sentence.", "A <div> groups other elements into a block."),
]
OUT = Path(__file__).parent / "annotate.png"


def main():
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "generations.jsonl"
        rows = [{"id": str(n), "prompt": prompt, "completion": reply} for n, (prompt, reply) in enumerate(ROWS)]
        path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
        journal = Journal(load_rows(path), journal_path(path))
        journal.append("2", "good", None, "ana")
        journal.append("1", "bad", "Uses commas, which the instruction forbids.", "ana")
        journal.append("1", "bad", "Uses two commas (after 'Red' and 'yellow'); the instruction forbids commas.", "bo")
        args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync"]
        with background(create_app(journal, annotator="ana")) as base, sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=args)
            page = browser.new_page(viewport={"width": 1000, "height": 600}, device_scale_factor=1)
            page.goto(base)
            page.fill("#annotator", "ana")
            page.wait_for_selector("#row-id:text('0')")
            page.fill("#judgment", "Not all lowercase: 'The' and 'Paris' are capitalised.")
            page.screenshot(path=OUT, full_page=True)
            browser.close()
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()

"""cutalign.io: atomic writes leave the old file or the new one, with the mode the umask gives a new file."""

import os
import stat

import pytest

from cutalign.annotate.store import export
from cutalign.io import read_json, read_jsonl, write_json, write_jsonl, write_text


@pytest.fixture
def umask():
    """Set the process umask for one test, and restore it."""
    previous = os.umask(0o022)
    yield lambda mask: os.umask(mask)
    os.umask(previous)


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize(("mask", "expected"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600), (0o027, 0o640)])
def test_written_files_get_the_mode_of_the_umask(tmp_path, umask, mask, expected):
    umask(mask)
    write_text(tmp_path / "a.txt", "x")
    write_json(tmp_path / "b.json", {"a": 1})
    write_jsonl(tmp_path / "c.jsonl", [{"a": 1}])
    assert [mode(tmp_path / name) for name in ("a.txt", "b.json", "c.jsonl")] == [expected] * 3


def test_a_rewrite_takes_the_umask_mode_and_leaves_no_temporary_file(tmp_path, umask):
    path = tmp_path / "sub" / "f.json"
    write_json(path, [1])
    umask(0o077)
    write_json(path, [2])
    assert read_json(path) == [2] and mode(path) == 0o600
    assert os.listdir(path.parent) == ["f.json"]


def test_a_failed_write_keeps_the_old_file_and_removes_the_temporary_one(tmp_path):
    path = tmp_path / "f.jsonl"
    write_jsonl(path, [{"a": 1}])
    with pytest.raises(UnicodeEncodeError):
        write_text(path, "half written \ud800")  # fails inside the write, after the temporary file exists
    assert read_jsonl(path) == [{"a": 1}]
    assert os.listdir(tmp_path) == ["f.jsonl"]


def test_the_annotation_export_gets_the_umask_mode(tmp_path, umask):
    umask(0o022)
    rows = tmp_path / "rows.jsonl"
    write_jsonl(rows, [{"id": "a", "prompt": "p", "completion": "c"}])
    (tmp_path / "rows.jsonl.judgments.jsonl").write_text(
        '{"row_id": "a", "verdict": "good", "judgment": null, "annotator": "x", "time": "t", "revision": 1}\n'
    )
    export(rows, tmp_path / "out.jsonl")
    assert mode(tmp_path / "out.jsonl") == 0o644

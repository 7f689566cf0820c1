"""Where judgment rows come from: save_to_disk directories, hub dataset names (offline), and what a string is."""

import json
import time
from pathlib import Path

import datasets
import huggingface_hub.constants
import pytest

from cutalign.data import DataError, load_judgments
from cutalign.data.sources import looks_like_hub_name


@pytest.fixture(autouse=True)
def _quiet(quiet_datasets):
    yield


@pytest.fixture
def offline(monkeypatch):
    """Offline as under ``HF_HUB_OFFLINE=1`` exported before Python starts: both libraries read it at import."""
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)


@pytest.fixture
def no_hub(monkeypatch):
    """Fail the test if anything asks the Hub."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"load_dataset called with {args} {kwargs}")

    monkeypatch.setattr(datasets, "load_dataset", refuse)


def rows(tag, n):
    return [{"prompt": f"{tag} q{i}", "completion": f"{tag} a{i}", "judgment": "bad" if i % 2 else None}
            for i in range(n)]


# --- save_to_disk directories -----------------------------------------------------------------------------------


def test_a_saved_dataset_directory_loads_like_its_rows(tmp_path, no_hub):
    datasets.Dataset.from_list(rows("x", 3)).save_to_disk(str(tmp_path / "saved"))
    loaded = load_judgments(tmp_path / "saved")
    assert loaded.to_list() == [
        {"prompt": "x q0", "completion": "x a0", "judgment": None, "score": None, "id": "0"},
        {"prompt": "x q1", "completion": "x a1", "judgment": "bad", "score": None, "id": "1"},
        {"prompt": "x q2", "completion": "x a2", "judgment": None, "score": None, "id": "2"},
    ]
    assert load_judgments(str(tmp_path / "saved")).to_list() == loaded.to_list()
    with pytest.raises(ValueError, match=r"split='test' does not apply to .*saved, a saved Dataset"):
        load_judgments(tmp_path / "saved", split="test")


def test_a_saved_dataset_dict_gives_train_by_default_and_any_split_by_name(tmp_path, no_hub):
    splits = datasets.DatasetDict(
        train=datasets.Dataset.from_list(rows("train", 4)), test=datasets.Dataset.from_list(rows("test", 2))
    )
    splits.save_to_disk(str(tmp_path / "dd"))
    train = load_judgments(tmp_path / "dd")
    assert len(train) == 4 and train["prompt"][0] == "train q0" and train["judgment"] == [None, "bad", None, "bad"]
    test = load_judgments(tmp_path / "dd", split="test")
    assert test["prompt"] == ["test q0", "test q1"]
    with pytest.raises(DataError) as info:
        load_judgments(tmp_path / "dd", split="validation")
    assert str(info.value) == f"{tmp_path / 'dd'}: has no split 'validation'; its splits are 'train', 'test'"
    assert load_judgments(splits, split="test")["prompt"] == ["test q0", "test q1"]  # the object, too


def test_errors_in_a_saved_split_name_the_directory_split_row_and_field(tmp_path):
    bad = rows("t", 3)
    bad[2]["completion"] = "  "
    datasets.DatasetDict(test=datasets.Dataset.from_list(bad)).save_to_disk(str(tmp_path / "dd"))
    with pytest.raises(DataError) as info:
        load_judgments(tmp_path / "dd", split="test")
    assert str(info.value) == f"{tmp_path / 'dd'} (split 'test'), row 3, field 'completion': is empty"


def test_a_directory_that_is_not_a_saved_dataset(tmp_path):
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "data.jsonl").write_text(json.dumps(rows("x", 1)[0]) + "\n")
    with pytest.raises(DataError, match=r"plain: is a directory but not a dataset saved with datasets' save_to_disk"):
        load_judgments(tmp_path / "plain")


@pytest.mark.parametrize(
    ("source", "split", "what"),
    [("d.jsonl", "train", "a file"), (None, "train", "a list"), ("dataset", "test", "a Dataset")],
)
def test_split_is_refused_where_there_are_no_splits(tmp_path, source, split, what):
    (tmp_path / "d.jsonl").write_text(json.dumps(rows("x", 1)[0]) + "\n")
    given = {"d.jsonl": tmp_path / "d.jsonl", None: rows("x", 1), "dataset": datasets.Dataset.from_list(rows("x", 1))}
    with pytest.raises(ValueError, match=f"split='{split}' does not apply to {what}, which has no splits"):
        load_judgments(given[source], split=split)


# --- path or hub name -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "is_name"),
    [
        ("trl-lib/ultrafeedback", True), ("squad", True), ("owner/name-v1.5", True),
        ("HuggingFaceH4/ultrachat_200k", True),
        ("x.jsonl", False), ("x.JSON", False), ("owner/x.parquet", False), ("x.csv.gz", False), ("./data", False),
        ("/abs/data", False), ("a/b/c", False), ("~/data", False), ("", False), ("owner/", False),
    ],
)
def test_what_reads_as_a_hub_name(text, is_name):
    assert looks_like_hub_name(text) is is_name


def test_a_missing_file_with_a_data_suffix_is_file_not_found_not_a_hub_lookup(tmp_path, monkeypatch, no_hub):
    monkeypatch.chdir(tmp_path)
    for name in ("missing.jsonl", "owner/missing.json", "./missing"):
        with pytest.raises(DataError) as info:
            load_judgments(name)
        assert str(info.value) == f"{Path(name)}: file not found"


def test_an_empty_string_is_no_source_not_the_current_directory(no_hub):
    for source in ("", "  "):
        with pytest.raises(DataError, match="^no data source given: the path or dataset name is an empty string$"):
            load_judgments(source)


def test_an_existing_path_wins_over_a_hub_name(tmp_path, monkeypatch, no_hub):
    monkeypatch.chdir(tmp_path)
    datasets.Dataset.from_list(rows("local", 2)).save_to_disk("owner/name")
    assert load_judgments("owner/name")["prompt"] == ["local q0", "local q1"]
    (tmp_path / "squad").write_text(json.dumps(rows("x", 1)[0]) + "\n")
    with pytest.raises(DataError, match="^squad: unknown file extension ''"):
        load_judgments("squad")
    assert load_judgments("squad", file_format="jsonl")["prompt"] == ["x q0"]


def test_a_hub_name_is_loaded_with_its_split(monkeypatch):
    calls = []

    def load_dataset(name, split):
        calls.append((name, split))
        return datasets.Dataset.from_list(rows(split, 3))

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    assert load_judgments("owner/judged")["prompt"] == ["train q0", "train q1", "train q2"]
    assert load_judgments("owner/judged", split="test")["prompt"][2] == "test q2"
    assert calls == [("owner/judged", "train"), ("owner/judged", "test")]

    bad = rows("x", 2)
    bad[1]["judgment"] = 5
    monkeypatch.setattr(datasets, "load_dataset", lambda name, split: datasets.Dataset.from_list(bad))
    with pytest.raises(DataError) as info:
        load_judgments("owner/judged")
    assert str(info.value) == "owner/judged (split 'train'), row 2, field 'judgment': must be a string or null, got int"


def test_a_hub_error_becomes_one_line_naming_the_dataset_and_split(monkeypatch):
    def load_dataset(name, split):
        raise ValueError(f'Unknown split "{split}". Should be one of [\'train\'].\nTraceback details')

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    with pytest.raises(DataError) as info:
        load_judgments("owner/judged", split="dev")
    assert str(info.value) == (
        "owner/judged (split 'dev'): cannot be loaded from the Hugging Face Hub: Unknown split \"dev\". Should be "
        "one of ['train']."
    )


@pytest.mark.parametrize("name", ["cutalign-tests/not-in-any-cache", "cutalign_no_such_dataset"])
def test_a_hub_name_not_in_the_cache_is_one_line_naming_it_offline(offline, name):
    started = time.monotonic()
    with pytest.raises(DataError) as info:
        load_judgments(name, split="test")
    elapsed = time.monotonic() - started
    message = str(info.value)
    assert "\n" not in message and info.value.__cause__ is None and info.value.__suppress_context__
    assert message == (
        f"{name}: dataset not available offline: no such file or directory here, and not in the local Hugging Face "
        f"cache (HF_HUB_OFFLINE is set). To use it, run datasets.load_dataset({name!r}, split='test')"
        ".save_to_disk('DIR') on a machine with network, copy DIR here and pass DIR instead of the name"
    )
    assert elapsed < 15, f"took {elapsed:.1f} s"


@pytest.mark.parametrize(
    ("offline_mode", "raised", "expected"),
    [
        (False, ConnectionError("Couldn't reach 'owner/judged' on the Hub (LocalEntryNotFoundError)"),
         "owner/judged: dataset not available offline: no such file or directory here, and not in the local Hugging "
         "Face cache, and the Hub could not be reached. To use it, run"),
        (False, datasets.exceptions.DatasetNotFoundError("Dataset 'owner/judged' doesn't exist on the Hub.\nMore."),
         "owner/judged: no such file or directory, and no dataset of that name on the Hugging Face Hub (Dataset "
         "'owner/judged' doesn't exist on the Hub.)"),
    ],
)
def test_hub_lookups_that_fail_online_are_one_line_too(monkeypatch, offline_mode, raised, expected):
    def load_dataset(name, split):
        raise raised

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", offline_mode)
    with pytest.raises(DataError) as info:
        load_judgments("owner/judged")
    assert str(info.value).startswith(expected) and "\n" not in str(info.value)

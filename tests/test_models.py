"""Model names: the embedded model's upstream id, what adapters record as their base."""

from pathlib import Path

from cutalign.models import EMBEDDED_UPSTREAM_ID, base_model_id, is_default


def test_embedded_model_is_recorded_by_its_upstream_id_and_loads_back_offline(tmp_path, monkeypatch):
    assert base_model_id("default") == base_model_id(None) == EMBEDDED_UPSTREAM_ID
    # The test machines' hub cache holds no copy of the upstream model: cutalign loads the embedded copy for it.
    assert is_default(EMBEDDED_UPSTREAM_ID) and is_default("default")  # "default": adapters saved before the id
    assert not is_default("some-org/some-model")


def test_a_directory_is_recorded_as_an_absolute_path(tmp_path, monkeypatch):
    (tmp_path / "base").mkdir()
    monkeypatch.chdir(tmp_path)
    assert base_model_id("base") == str((tmp_path / "base").resolve())
    assert base_model_id("some-org/some-model") == "some-org/some-model"
    assert Path(base_model_id("base")).is_absolute()

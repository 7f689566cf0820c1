"""The shipped online configs: the paper's recipe and the one-machine version of its workload, with their data."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from conftest import make_model, make_tokenizer  # noqa: F401  (the tests' HF_HUB_OFFLINE setting)

from cutalign.config import SHIPPED_CONFIGS
from cutalign.online.config import config_from_dict, load_config

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "examples" / "data"


def test_the_paper_recipe(tmp_path, monkeypatch):
    text = (SHIPPED_CONFIGS / "paper-online.yaml").read_text()
    # Stand-ins for the three files and the model the user provides.
    model = tmp_path / "base-model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    (tmp_path / "instructions.jsonl").write_text(json.dumps({"instruction": "Say hi."}) + "\n")
    (tmp_path / "reference_outputs.json").write_text(json.dumps([{"instruction": "Say bye.", "output": "Bye."}]))
    raw = yaml.safe_load(text.replace("REPLACE-ME/", str(tmp_path) + "/"))
    monkeypatch.setenv("OPENAI_API_KEY", "x")
    config = config_from_dict(raw, base_dir=tmp_path)
    assert config.rounds == 4 and config.prompts_per_round == 1000
    t = config.training
    assert (t["threshold"], t["alpha"], t["reduction"], t["positive_ratio"]) == (1.1, 1.0, "reference", 0.25)
    assert t["align_p_weight"] == t["align_n_weight"] == t["unflagged_weight"] == 1.0
    assert config.judge.kind == "endpoint" and config.generation.backend == "openai"
    [evaluation] = config.eval
    assert evaluation.kind == "pairwise" and evaluation.reference == str(tmp_path / "reference_outputs.json")
    assert evaluation.judge.kind == "endpoint"
    original = yaml.safe_load(text)  # what the user must fill in, and nothing else
    placeholders = (original["model"]["model"], original["prompts"]["file"], original["prompts"]["heldout_file"],
                    original["generation"]["server"]["model"], original["eval"][0]["reference"])
    assert all(value.startswith("REPLACE-ME/") for value in placeholders)
    assert text.count("REPLACE-ME/") == len(placeholders) + 1  # and once in the vllm command of a comment


def test_the_local_config_and_its_data():
    config = load_config("online-local-judge")
    assert config.rounds == 3 and config.generation.backend == "openai" and config.judge.kind == "endpoint"
    assert config.eval[0].kind == "pairwise" and config.eval[0].judge.kind == "endpoint"
    assert [e.kind for e in config.eval] == ["pairwise", "rule"]  # a win rate and the built-in task's pass rate
    rows = [json.loads(line) for line in (DATA / "instructions.jsonl").read_text().splitlines()]
    instructions = [row["instruction"] for row in rows]
    assert len(instructions) >= 60 and len(set(instructions)) == len(instructions)
    reference = json.loads((DATA / "reference_outputs.json").read_text())
    assert all(set(r) >= {"instruction", "output"} and len(r["output"].split()) > 30 for r in reference)
    held = {r["instruction"] for r in reference}
    assert held <= set(instructions)
    # Enough training instructions for every round (the held-out ones never count).
    assert len(instructions) - len(held) >= config.rounds * config.prompts_per_round

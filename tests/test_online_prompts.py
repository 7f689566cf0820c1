"""The online loop on the user's own instructions: file formats, checks before any model loads, the seeded pool,
held-out instructions no round trains on, running out (stop or wrap around), and paths relative to the config."""

from __future__ import annotations

import csv
import json
import random

import pytest

from conftest import make_model, make_tokenizer
from test_online_loop import CountingJudge

from cutalign.errors import UsageError
from cutalign.generation import instruction_text
from cutalign.online.config import config_from_dict, load_config
from cutalign.online.loop import run_online
from cutalign.online.prompts import PromptPool, prepare_prompts, read_instructions

INSTRUCTIONS = [f"Write one short sentence about the number {i}." for i in range(20)]
RULE_EVAL = [{"kind": "rule", "size": 2, "max_new_tokens": 4}]  # needs no held-out instructions of the file


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def prompt_file(tmp_path):
    return write_jsonl(tmp_path / "instructions.jsonl", [{"instruction": text} for text in INSTRUCTIONS])


@pytest.fixture
def model_dir(tmp_path):
    """A tiny saved model, so that `model:` is a valid directory (the tests pass the model object itself)."""
    path = tmp_path / "tiny-model"
    make_model("llama").save_pretrained(path)
    make_tokenizer().save_pretrained(path)
    return path


def user_config(run_dir, prompt_file, **overrides):
    raw = {
        "output_dir": str(run_dir), "rounds": 2, "prompts_per_round": 5, "seed": 3,
        "prompts": {"file": str(prompt_file), "heldout_size": 4, "max_prompt_length": 64},
        "generation": {"max_new_tokens": 5, "temperature": 1.0, "batch_size": 4},
        "eval": [{"kind": "callable", "function": "test_online_evals:word_count", "max_new_tokens": 4}],
        "judge": {"kind": "rule"},
        "model": {"lora_r": 2, "lora_alpha": 4, "lora_target_modules": ["q_proj", "v_proj"]},
        "training": {"num_train_epochs": 1, "per_device_train_batch_size": 2, "positive_ratio": -1.0,
                     "max_length": 128, "template": "chat"},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(raw.get(key), dict):
            raw[key] = {**raw[key], **value}
        else:
            raw[key] = value
    return config_from_dict(raw)


def test_every_format_reads_the_same_instructions(tmp_path):
    import datasets
    import pyarrow
    import pyarrow.parquet

    rows = [{"instruction": text, "other": i} for i, text in enumerate(INSTRUCTIONS[:4])]
    write_jsonl(tmp_path / "a.jsonl", rows)
    (tmp_path / "a.json").write_text(json.dumps(rows))
    with open(tmp_path / "a.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["instruction", "other"])
        writer.writeheader()
        writer.writerows(rows)
    pyarrow.parquet.write_table(pyarrow.Table.from_pylist(rows), tmp_path / "a.parquet")
    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "saved"))
    for name in ("a.jsonl", "a.json", "a.csv", "a.parquet", "saved"):
        assert [p for _, p in read_instructions(tmp_path / name, None, "prompts.file")] == INSTRUCTIONS[:4], name
    # A named column, and chat messages.
    chats = [{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": t}]}
             for t in INSTRUCTIONS[:2]]
    read = read_instructions(write_jsonl(tmp_path / "chat.jsonl", chats), "messages", "prompts.file")
    assert [instruction_text(p) for _, p in read] == INSTRUCTIONS[:2]
    assert [row for row, _ in read] == [1, 2]


@pytest.mark.parametrize("rows, message", [
    ([], "holds no instructions"),
    ([{"text": "hi"}], "has no column instruction or prompt .*its columns: text.*prompts.column"),
    ([{"instruction": "ok"}, {"instruction": "  "}], r"row 2, column 'instruction': is empty"),
    ([{"instruction": [{"role": "assistant", "content": "x"}]}], "the last chat message must be the user's"),
])
def test_bad_instruction_files_name_the_row(tmp_path, rows, message):
    path = write_jsonl(tmp_path / "bad.jsonl", rows)
    with pytest.raises(UsageError, match=message):
        read_instructions(path, None, "prompts.file")


def test_duplicates_and_long_instructions_are_refused_with_counts_and_rows(tmp_path):
    tokenizer = make_tokenizer()
    texts = ["Say hi.", "Say bye.", "Say hi.", "Count to three.", "Say hi.", "Say bye."]
    path = write_jsonl(tmp_path / "dup.jsonl", [{"prompt": t} for t in texts])
    config = user_config(tmp_path / "run", path, prompts={"heldout_size": None}, eval=RULE_EVAL)
    with pytest.raises(UsageError) as error:
        prepare_prompts(config, tmp_path, tokenizer, "chat")
    text = str(error.value)
    assert "2 instruction(s) appear more than once (3 extra row(s) of 6)" in text
    assert "'Say hi.' x3 (rows 1, 3, 5)" in text and "'Say bye.' x2 (rows 2, 6)" in text
    # Too long: the rendered prompt's tokens are counted (never cut), rows named.
    long = ["Say hi.", "word " * 80, "Say bye.", "more words " * 40]
    path = write_jsonl(tmp_path / "long.jsonl", [{"instruction": t} for t in long])
    config = user_config(tmp_path / "run2", path, prompts={"heldout_size": None, "max_prompt_length": 40},
                         eval=RULE_EVAL)
    with pytest.raises(UsageError, match=r"2 instruction\(s\) are longer than prompts.max_prompt_length \(40 "
                       r"tokens.*rows 2 \(\d+ tokens\), 4 \(\d+ tokens\)"):
        prepare_prompts(config, tmp_path, tokenizer, "chat")
    assert not (tmp_path / "prompt_pool.json").exists()


def test_checks_run_before_any_model_loads(tmp_path, model_dir, monkeypatch):
    """A bad prompt file stops the CLI path (no model given) with the file's problem, not with a model load."""
    import cutalign.models

    def no_model(*args, **kwargs):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(cutalign.models, "load_model", no_model)
    path = write_jsonl(tmp_path / "dup.jsonl", [{"instruction": "Say hi."}] * 3)
    config = user_config(tmp_path / "run", path, model={"model": str(model_dir)}, prompts={"heldout_size": None},
                         eval=RULE_EVAL)
    with pytest.raises(UsageError, match="1 instruction\\(s\\) appear more than once"):
        run_online(config, progress=False)


def test_config_checks_of_the_prompts_section(tmp_path, prompt_file):
    def error(**overrides):
        with pytest.raises(UsageError) as caught:
            user_config(tmp_path / "run", prompt_file, **overrides)
        return str(caught.value)

    assert "prompts.file: " in error(prompts={"file": str(tmp_path / "missing.jsonl")})
    assert "does not exist" in error(prompts={"file": str(tmp_path / "missing.jsonl")})
    assert "exclude each other" in error(prompts={"heldout_file": str(prompt_file), "heldout_size": 3})
    assert "task: configures the built-in task" in error(task={"kinds": ["no_commas"]})
    assert "prompts.reuse applies to prompts.file only" in error(prompts={"file": None, "reuse": True,
                                                                           "heldout_size": None})
    assert "eval.callable answers the run's held-out instructions, and prompts.file has none" in error(
        prompts={"heldout_size": None})


def test_the_pool_is_seeded_disjoint_from_held_out_and_reference_instructions(tmp_path, prompt_file):
    tokenizer = make_tokenizer()
    config = user_config(tmp_path / "run", prompt_file)
    reference = [{"instruction": INSTRUCTIONS[0], "output": "x"}]
    pool = prepare_prompts(config, tmp_path, tokenizer, "chat", exclude=[r["instruction"] for r in reference])
    assert len(pool.heldout) == 4 and len(pool.train) == 15  # 20 - 4 held out - 1 reference (if not held out)
    held = set(pool.heldout)
    assert not held & set(pool.train) and INSTRUCTIONS[0] not in pool.train
    # The naive reference: shuffle the row order under the seed, hold out the first 4, shuffle the rest.
    order = list(range(20))
    random.Random(3).shuffle(order)
    assert pool.heldout == [INSTRUCTIONS[i] for i in sorted(order[:4])]
    rest = [INSTRUCTIONS[i] for i in sorted(order[4:]) if INSTRUCTIONS[i] != INSTRUCTIONS[0]]
    random.Random(4).shuffle(rest)
    assert pool.train == rest
    rounds = [pool.for_round(k) for k in (1, 2, 3)]
    assert [len(r) for r in rounds] == [5, 5, 5] and len({p for r in rounds for p in r}) == 15
    assert pool.for_round(4) is None and "round 4 needs 5 new instructions but 0 of the 15" in pool.exhausted(4)
    # Read back on resume, the same; a changed file is refused.
    again = prepare_prompts(config, tmp_path, tokenizer, "chat")
    assert again.train == pool.train and again.heldout == pool.heldout
    prompt_file.write_text(prompt_file.read_text() + json.dumps({"instruction": "New one."}) + "\n")
    with pytest.raises(UsageError, match="prompts.file .* changed since this run started"):
        prepare_prompts(config, tmp_path, tokenizer, "chat")


def test_reuse_wraps_around_without_repeating_within_a_round(tmp_path, prompt_file):
    pool = PromptPool(list("abcdefg"), [], prompts_per_round=3, reuse=True)
    assert [pool.for_round(k) for k in (1, 2, 3, 4)] == [list("abc"), list("def"), list("gab"), list("cde")]
    # A round larger than the pool would repeat an instruction within the round: refused before any work.
    config = user_config(tmp_path / "run", prompt_file, prompts_per_round=17, prompts={"reuse": True})
    with pytest.raises(UsageError, match=r"leaves 16 training instruction\(s\).*fewer than prompts_per_round \(17\)"):
        prepare_prompts(config, tmp_path, make_tokenizer(), "chat")


def test_a_run_on_user_instructions_stops_when_they_run_out(tmp_path, prompt_file):
    config = user_config(tmp_path / "run", prompt_file, rounds=4)
    judge = CountingJudge()
    summary = run_online(config, model=make_model("llama"), tokenizer=make_tokenizer(), judge=judge, progress=False)
    # 20 instructions, 4 held out, 5 per round: 3 full rounds, then a clear stop.
    assert [r["round"] for r in summary["rounds"]] == [0, 1, 2, 3]
    assert "round 4 needs 5 new instructions but 1 of the 16" in summary["stopped"]
    assert not (tmp_path / "run" / "round-04").exists()
    heldout = json.loads((tmp_path / "run" / "heldout.json").read_text())
    trained = [json.loads((tmp_path / "run" / f"round-0{k}" / "prompts.json").read_text()) for k in (1, 2, 3)]
    flat = [p for r in trained for p in r]
    assert len(flat) == len(set(flat)) == 15 and not set(flat) & set(heldout)
    assert [i for i, _ in judge.rows] == flat  # the judge saw each round's instructions, in order
    evaluation = json.loads((tmp_path / "run" / "round-03" / "eval-callable.json").read_text())
    assert [r["prompt"] for r in evaluation["responses"]] == heldout
    # Raising the rounds with reuse off changes nothing more; the summary says so again.
    again = run_online(config, model=make_model("llama"), tokenizer=make_tokenizer(), judge=CountingJudge(),
                       progress=False)
    assert again["stopped"] == summary["stopped"]


def test_relative_input_paths_are_read_relative_to_the_config_file(tmp_path, prompt_file, monkeypatch):
    folder = tmp_path / "configs"
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "in.jsonl").write_text(prompt_file.read_text())
    (folder / "online.yaml").write_text(
        "judge: {kind: rule}\nprompts: {file: data/in.jsonl, heldout_size: 2}\n"
        "eval: [{kind: rule, size: 3}]\n")
    monkeypatch.chdir(tmp_path)  # not the config's directory
    config = load_config(folder / "online.yaml")
    assert config.prompts.file == str((folder / "data" / "in.jsonl").resolve())
    # The shipped local config names the repository's examples/data the same way.
    local = load_config("online-local-judge")
    assert local.prompts.file.endswith("examples/data/instructions.jsonl")
    assert local.eval[0].reference.endswith("examples/data/reference_outputs.json")

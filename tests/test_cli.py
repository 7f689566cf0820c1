"""The `cutalign` command end to end on a tiny model saved to disk; errors are one line and exit status 2."""

import json
import subprocess
import sys

import pytest
import yaml
from conftest import make_model, make_tokenizer, tiny_examples

from cutalign.cli import main
from cutalign.models import load_model


@pytest.fixture
def tiny_model_dir(tmp_path):
    path = tmp_path / "tiny-llama"
    make_model("llama").save_pretrained(path)
    make_tokenizer().save_pretrained(path)
    return path


@pytest.fixture
def data_file(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in tiny_examples()))
    return path


def write_config(tmp_path, **values):
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


def test_train_end_to_end_with_yaml_and_overrides(tmp_path, tiny_model_dir, data_file, capsys):
    out = tmp_path / "out"
    config = write_config(tmp_path, model=str(tiny_model_dir), train_data=str(data_file), output_dir=str(out),
                          max_steps=50, per_device_train_batch_size=6, report_to="none", lora_r=4,
                          lora_target_modules=["q_proj", "v_proj"], positive_ratio=-1, threshold=1.2,
                          use_cpu=True, save_strategy="no")
    code = main(["train", "--config", str(config), "--max_steps", "2", "--learning_rate", "0.01"])
    assert code == 0
    metrics = json.loads((out / "cutalign_metrics.json").read_text())
    assert metrics["data"]["train"]["loaded"] == {"positives": 3, "negatives": 3, "total": 6}
    adapter_config = json.loads((out / "adapter_config.json").read_text())
    assert adapter_config["r"] == 4 and sorted(adapter_config["target_modules"]) == ["q_proj", "v_proj"]
    trainer_state = metrics["train"]
    assert trainer_state["train_loss"] > 0
    reloaded = load_model(str(out))  # the adapter reloads on top of its base model
    assert any("lora_A" in n for n, _ in reloaded.named_parameters())
    assert "saved the adapter" in capsys.readouterr().out


def test_command_line_values_override_the_yaml(tmp_path, data_file):
    from cutalign.train_cli import parse_options

    config = write_config(tmp_path, train_data=str(data_file), threshold=1.5, output_dir=str(tmp_path / "o"))
    _, script, cut = parse_options(["--config", str(config), "--threshold", "1.3", "--alpha", "0.5"])
    assert cut.threshold == 1.3 and cut.alpha == 0.5 and script.train_data == str(data_file)


@pytest.mark.parametrize("values,args,message", [
    ({"treshold": 1.2}, [], "unknown option 'treshold' (did you mean threshold"),
    ({}, ["--treshold", "1.2"], "unknown option(s) --treshold 1.2 (did you mean threshold"),
    ({"threshold": 0}, [], "threshold must be > 0"),
    ({"reduction": "sum"}, [], "reduction must be one of"),
    ({"train_data": None}, [], "train_data is required"),
    ({"train_data": "missing.jsonl"}, [], "missing.jsonl"),
])
def test_config_errors_are_one_clear_line(tmp_path, data_file, capsys, values, args, message):
    config = write_config(tmp_path, **{"train_data": str(data_file), "output_dir": str(tmp_path / "o"), **values})
    code = main(["train", "--config", str(config), *args])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ") and message in err
    assert "Traceback" not in err


def test_bad_value_type_is_an_argparse_error(tmp_path, data_file, capsys):
    config = write_config(tmp_path, train_data=str(data_file), output_dir=str(tmp_path / "o"))
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--config", str(config), "--threshold", "high"])
    assert exit_info.value.code == 2
    assert "argument --threshold: invalid float value: 'high'" in capsys.readouterr().err


def test_data_errors_name_file_row_and_field(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "a", "completion": "b"}\n{"prompt": "a", "completion": ""}\n')
    config = write_config(tmp_path, train_data=str(bad), output_dir=str(tmp_path / "o"))
    assert main(["train", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "bad.jsonl, row 2, field 'completion'" in err


def test_help_documents_every_option():
    result = subprocess.run([sys.executable, "-m", "cutalign.cli", "train", "--help"], capture_output=True,
                            text=True, check=True)
    for option in ("--threshold", "--alpha", "--positive_ratio", "--template", "--align_n_weight", "--reduction",
                   "--lora_r", "--train_data", "--learning_rate", "--config"):
        assert option in result.stdout
    top = subprocess.run([sys.executable, "-m", "cutalign.cli", "--help"], capture_output=True, text=True, check=True)
    for command in ("train", "demo", "annotate"):
        assert command in top.stdout
    assert subprocess.run([sys.executable, "-m", "cutalign.cli", "demo", "--bogus"], capture_output=True,
                          text=True).returncode == 2


@pytest.mark.slow
def test_embedded_model_loads_and_generates():
    from cutalign.models import load_tokenizer
    from cutalign.generation import SamplingConfig, generate

    tokenizer = load_tokenizer("default")
    model = load_model("default")
    assert type(model).__name__ == "LlamaForCausalLM"
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(134.5e6, rel=0.01)
    assert tokenizer.chat_template and tokenizer.eos_token == "<|im_end|>"
    answers = generate(model, tokenizer, ["What is the capital of France? Answer in one sentence.", "Say hello."],
                       SamplingConfig(max_new_tokens=12), progress=False)
    assert "Paris" in answers[0]
    assert all(a.strip() for a in answers)


def test_baseline_then_eval_end_to_end(tmp_path, tiny_model_dir, data_file):
    """`cutalign baseline` trains and saves an adapter that `cutalign eval` loads, answers with and scores."""
    from cutalign.tasks import task_prompts

    out = tmp_path / "sft"
    code = main(["baseline", "sft-all", "--train_data", str(data_file), "--output_dir", str(out),
                 "--model", str(tiny_model_dir), "--num_train_epochs", "1", "--learning_rate", "0.01",
                 "--lora_target_modules", "q_proj", "v_proj", "--lora_r", "4"])
    assert code == 0
    metrics = json.loads((out / "baseline_metrics.json").read_text())
    assert metrics["method"] == "sft-all" and metrics["train"]["train_loss"] > 0
    assert json.loads((out / "adapter_config.json").read_text())["r"] == 4

    prompts = tmp_path / "prompts.jsonl"
    wanted = task_prompts("heldout", n=3, kinds=("no_commas",), seed=0)
    prompts.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in wanted))
    code = main(["eval", "--model", str(out), "--prompts", str(prompts), "--max-new-tokens", "4",
                 "--references", str(data_file), "--out", str(tmp_path / "eval")])
    assert code == 0
    outputs = json.loads((tmp_path / "eval" / "outputs.json").read_text())
    assert [r["instruction"] for r in outputs] == wanted and all(r["generator"] == str(out) for r in outputs)
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["n"] == 3 and metrics["task"]["n"] == 3
    assert metrics["guard"]["heldout_logp"] < 0


def test_eval_errors_name_the_file_row_and_field(tmp_path, tiny_model_dir, capsys):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(json.dumps({"prompt": "fine"}) + "\n" + json.dumps({"text": "no prompt"}) + "\n")
    code = main(["eval", "--model", str(tiny_model_dir), "--prompts", str(prompts), "--out", str(tmp_path / "e")])
    assert code == 2
    err = capsys.readouterr().err
    assert str(prompts) in err and "row 2" in err and "prompt" in err
    assert main(["eval", "--out", str(tmp_path / "e")]) == 2
    assert "--model is required" in capsys.readouterr().err


def test_baseline_rejects_bad_data_before_loading_a_model(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"prompt": "p", "completion": "", "judgment": None}) + "\n")
    code = main(["baseline", "dpo", "--train_data", str(bad), "--output_dir", str(tmp_path / "o"),
                 "--model", str(tmp_path / "missing-model")])
    assert code == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "completion" in err


def test_demo_runs_the_online_loop_and_resumes(tmp_path, tiny_model_dir, capsys):
    out = tmp_path / "demo"
    argv = ["demo", "--output-dir", str(out), "--model", str(tiny_model_dir), "--rounds", "1",
            "--prompts-per-round", "4", "--heldout-prompts", "3", "--max-new-tokens", "4", "--epochs", "1",
            "--no-progress"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "before" in printed and "after" in printed and "cutalign annotate" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    assert [r["round"] for r in metrics["per_round"]] == [0, 1] and metrics["before"]["n"] == 3
    report = json.loads((out / "round-01" / "report.json").read_text())
    assert report["prompts"] == 4 and (out / "round-01" / "adapter").is_dir()
    after = [json.loads(line) for line in (out / "heldout_after.jsonl").read_text().splitlines()]
    assert len(after) == 3 and set(after[0]) == {"id", "prompt", "completion"}
    # The same command with one more round continues the run: round 1 is kept, round 2 is added.
    before_mtime = (out / "round-01" / "report.json").stat().st_mtime_ns
    assert main([*argv[:6], "2", *argv[7:]]) == 0
    assert (out / "round-01" / "report.json").stat().st_mtime_ns == before_mtime
    assert json.loads((out / "metrics.json").read_text())["rounds"] == 2


def test_eval_asks_a_chain_of_hindsight_model_under_its_good_phrase(tmp_path):
    from cutalign.baselines import inference_prompt
    from cutalign.eval_cli import _prompt_transform

    (tmp_path / "coh").mkdir()
    (tmp_path / "coh" / "baseline_metrics.json").write_text(json.dumps({"method": "coh"}))
    (tmp_path / "sft").mkdir()
    (tmp_path / "sft" / "baseline_metrics.json").write_text(json.dumps({"method": "sft-all"}))
    assert _prompt_transform(str(tmp_path / "coh")) is inference_prompt
    assert _prompt_transform(str(tmp_path / "sft")) is None and _prompt_transform("default") is None


def test_baseline_command_offers_every_library_baseline():
    from cutalign.baseline_cli import METHODS
    from cutalign.baselines import METHODS as LIBRARY_METHODS

    assert METHODS == LIBRARY_METHODS

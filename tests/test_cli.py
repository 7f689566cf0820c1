"""The `cutalign` command end to end on a tiny model saved to disk; errors are one line and exit status 2."""

import json
import subprocess
import sys
import time
from dataclasses import dataclass, field

import pytest
import transformers
import yaml
from conftest import make_model, make_tokenizer, tiny_examples

from cutalign import __version__
from cutalign.cli import COMMANDS, main, options
from cutalign.cli.shipped_help import COMMANDS as HELP_PAGE_COMMANDS, help_page, live_help
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
    from cutalign.cli.train import parse

    config = write_config(tmp_path, train_data=str(data_file), threshold=1.5, output_dir=str(tmp_path / "o"))
    _, data, cut = parse(["--config", str(config), "--threshold", "1.3", "--alpha", "0.5"])
    assert cut.threshold == 1.3 and cut.alpha == 0.5 and data.train_data == str(data_file)


@pytest.mark.parametrize("values,args,message", [
    ({"treshold": 1.2}, [], "unknown option 'treshold' (did you mean threshold"),
    ({}, ["--treshold", "1.2"], "unknown option(s) --treshold 1.2 (did you mean --threshold"),
    ({"threshold": 0}, [], "threshold must be > 0"),
    ({"threshold": "high"}, [], "run.yaml: threshold: invalid value 'high'"),
    ({}, ["--threshold", "high"], "argument --threshold: invalid float value: 'high'"),
    ({"reduction": "sum"}, [], "reduction must be one of"),
    ({"lora_r": 1.5}, [], "run.yaml: lora_r: invalid value 1.5"),
    ({"train_data": None}, [], "the following arguments are required: --train_data"),
    ({"train_data": "missing.jsonl"}, [], "missing.jsonl"),
])
def test_config_errors_are_one_clear_line(tmp_path, data_file, capsys, values, args, message):
    config = write_config(tmp_path, **{"train_data": str(data_file), "output_dir": str(tmp_path / "o"), **values})
    code = main(["train", "--config", str(config), *args])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ") and message in err
    assert "Traceback" not in err and len(err.splitlines()) == 1


def test_invalid_yaml_is_one_line(tmp_path, capsys):
    config = tmp_path / "run.yaml"
    config.write_text("threshold: [1.2\n")
    assert main(["train", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {config}: invalid YAML") and len(err.splitlines()) == 1


def test_data_errors_name_file_row_and_field(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "a", "completion": "b"}\n{"prompt": "a", "completion": ""}\n')
    config = write_config(tmp_path, train_data=str(bad), output_dir=str(tmp_path / "o"))
    assert main(["train", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "bad.jsonl, row 2, field 'completion'" in err


def test_help_documents_every_option():
    result = subprocess.run([sys.executable, "-m", "cutalign", "train", "--help"], capture_output=True,
                            text=True, check=True)
    for option in ("--threshold", "--alpha", "--positive_ratio", "--template", "--align_n_weight", "--reduction",
                   "--lora_r", "--train_data", "--learning_rate", "--config", "--output_dir"):
        assert option in result.stdout
    assert "--output-dir" not in result.stdout and "--lora-r" not in result.stdout  # one spelling per flag
    top = subprocess.run([sys.executable, "-m", "cutalign", "--help"], capture_output=True, text=True, check=True)
    for command in COMMANDS:
        assert command in top.stdout
    assert subprocess.run([sys.executable, "-m", "cutalign", "demo", "--bogus"], capture_output=True,
                          text=True).returncode == 2


def test_version_and_help_do_not_load_torch():
    result = subprocess.run([sys.executable, "-m", "cutalign", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == f"cutalign {__version__}"
    # The top-level help and every command's: train, baseline and train-judge answer from their shipped pages
    # (building their parser imports TrainingArguments, hence torch); the others build their parser.
    probe = ("import sys\nfrom cutalign.cli import main\n"
             "for argv in (['--help'], ['--version'], ['online', '--help'], ['demo', '--help'], "
             "['annotate', '--help'], ['eval', '--help'], ['inspect', '--help'], ['export', '--help'], "
             "['train', '--help'], ['baseline', '-h'], ['train-judge', '--help']):\n"
             "    try:\n        main(argv)\n    except SystemExit as e:\n        assert e.code == 0, (argv, e.code)\n"
             "    loaded = [m for m in ('torch', 'transformers.training_args') if m in sys.modules]\n"
             "    assert not loaded, (argv, loaded)\n"
             "print('ok')\n")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith("ok")


@pytest.mark.parametrize("command", HELP_PAGE_COMMANDS)
def test_shipped_help_pages_are_the_parsers_own(command, capsys):
    """Each shipped --help page is what the command's parser prints now; a stale page, or one made with another
    transformers version (then it would not be used), fails here: run `make help-pages`."""
    page = help_page(command)
    assert page is not None, f"cli/help/{command}.txt is missing or made with other versions: run make help-pages"
    assert page == live_help(command), f"cli/help/{command}.txt is out of date: run make help-pages"
    assert main([command, "--help"]) == 0 and capsys.readouterr().out == page


def test_help_with_other_arguments_builds_the_parser(capsys, monkeypatch):
    """Only a bare --help is answered from the page: with any other argument the parser runs (and, here, stops at
    --help after reading the config), so a page never hides an error in the rest of the command line."""
    monkeypatch.setattr("cutalign.cli.help_page", lambda command: pytest.fail("page used"))
    with pytest.raises(SystemExit):
        main(["train", "--help", "--threshold", "1.5"])
    assert "--threshold" in capsys.readouterr().out


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
    code = main(["eval", "--model", str(out), "--prompts", str(prompts), "--max_new_tokens", "4",
                 "--references", str(data_file), "--output_dir", str(tmp_path / "eval")])
    assert code == 0
    outputs = json.loads((tmp_path / "eval" / "outputs.json").read_text())
    assert [r["instruction"] for r in outputs] == wanted and all(r["generator"] == str(out) for r in outputs)
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["n"] == 3 and metrics["task"]["n"] == 3
    assert metrics["guard"]["heldout_logp"] < 0


def test_eval_errors_name_the_file_row_and_field(tmp_path, tiny_model_dir, capsys):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(json.dumps({"prompt": "fine"}) + "\n" + json.dumps({"text": "no prompt"}) + "\n")
    code = main(["eval", "--model", str(tiny_model_dir), "--prompts", str(prompts), "--output_dir",
                 str(tmp_path / "e")])
    assert code == 2
    err = capsys.readouterr().err
    assert str(prompts) in err and "row 2" in err and "prompt" in err
    assert main(["eval", "--output_dir", str(tmp_path / "e")]) == 2
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
    argv = ["demo", "--output_dir", str(out), "--model", str(tiny_model_dir), "--rounds", "1",
            "--prompts_per_round", "4", "--heldout_prompts", "3", "--max_new_tokens", "4", "--num_train_epochs", "1",
            "--no_progress"]
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
    from cutalign.cli.eval import prompt_transform as _prompt_transform

    (tmp_path / "coh").mkdir()
    (tmp_path / "coh" / "baseline_metrics.json").write_text(json.dumps({"method": "coh"}))
    (tmp_path / "sft").mkdir()
    (tmp_path / "sft" / "baseline_metrics.json").write_text(json.dumps({"method": "sft-all"}))
    assert _prompt_transform(str(tmp_path / "coh")) is inference_prompt
    assert _prompt_transform(str(tmp_path / "sft")) is None and _prompt_transform("default") is None


def test_baseline_command_offers_every_library_baseline():
    from cutalign.cli.baseline import METHODS
    from cutalign.baselines import METHODS as LIBRARY_METHODS

    assert METHODS == LIBRARY_METHODS


# --- One spelling per flag: --output_dir in every command that writes a folder (annotate writes one file: --export)

OUTPUT_DIR_COMMANDS = {  # the command, its other required arguments, the spellings other commands used to take
    "train": (["--train_data", "data.jsonl"], ["--output-dir", "--out", "--run-dir"]),
    "online": (["--config", "online-rule"], ["--run-dir", "--run_dir", "--output-dir", "--out"]),
    "demo": ([], ["--output-dir", "--out", "--run-dir"]),
    "train-judge": ([], ["--output-dir", "--out", "--run-dir"]),
    "baseline": (["sft-all", "--train_data", "data.jsonl"], ["--output-dir", "--out", "--run-dir"]),
    "eval": (["--model", "default"], ["--out", "--output-dir", "--run-dir"]),
}


@pytest.mark.parametrize("command", OUTPUT_DIR_COMMANDS)
def test_output_dir_is_the_one_spelling_of_the_output_folder(command, capsys):
    required, others = OUTPUT_DIR_COMMANDS[command]
    parsed = COMMANDS[command].parse([*required, "--output_dir", "somewhere"])
    assert [a.output_dir for a in parsed if "output_dir" in vars(a)] == ["somewhere"]
    for spelling in others:
        assert main([command, *required, spelling, "somewhere"]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: unknown option(s) {spelling} somewhere") and err.count("\n") == 1
        if spelling in ("--output-dir", "--out"):
            assert err == f"error: unknown option(s) {spelling} somewhere (did you mean --output_dir?)\n", err


def test_online_output_dir_overrides_the_shipped_configs_run_dir(tmp_path, monkeypatch):
    import cutalign.online.loop

    seen = []
    monkeypatch.setattr(cutalign.online.loop, "run_online", lambda config, progress: seen.append((config, progress)))
    assert main(["online", "--config", "online-rule", "--output_dir", str(tmp_path / "run"), "--rounds", "1",
                 "--no_progress"]) == 0
    (config, progress), = seen
    assert config.output_dir == str(tmp_path / "run") and config.rounds == 1 and progress is False
    assert config.judge.kind == "rule"


# --- A missing model is one line, before any model loads

@pytest.fixture
def no_model_loads(monkeypatch):
    """Any attempt to load a model or tokenizer fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError("a model or tokenizer was loaded")

    for cls in (transformers.AutoModelForCausalLM, transformers.AutoTokenizer):
        monkeypatch.setattr(cls, "from_pretrained", refuse)


def missing_models(tmp_path):
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": str(tmp_path / "gone")}))
    return {
        "a missing directory": (str(tmp_path / "missing-model"), "is not 'default', an existing directory"),
        "a misspelt hub name": ("HuggingFaceTB/SmolLM2-135M-Instrukt", "local Hugging Face cache"),
        "an adapter without its base": (str(adapter), "is a saved adapter; its base model"),
    }


@pytest.mark.parametrize("case", ["a missing directory", "a misspelt hub name", "an adapter without its base"])
def test_missing_model_is_one_line_before_any_model_loads(case, tmp_path, data_file, no_model_loads, capsys):
    model, message = missing_models(tmp_path)[case]
    start = time.monotonic()
    code = main(["train", "--model", model, "--train_data", str(data_file), "--output_dir", str(tmp_path / "o")])
    elapsed = time.monotonic() - start
    err = capsys.readouterr().err
    assert code == 2 and elapsed < 10
    assert err.startswith("error: --model ") and message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("argv", [
    ["baseline", "sft-all", "--train_data", "DATA", "--output_dir", "OUT"],
    ["eval", "--output_dir", "OUT"],
    ["eval", "--compare", "A", "A", "--judge_model", "MODEL", "--output_dir", "OUT"],
    ["train-judge", "--output_dir", "OUT"],
])
def test_every_command_checks_its_model_first(argv, tmp_path, data_file, no_model_loads, capsys):
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps([{"instruction": "Say hi.", "output": "hi", "generator": "x"}]))
    missing = str(tmp_path / "missing-model")
    values = {"DATA": str(data_file), "OUT": str(tmp_path / "o"), "A": str(outputs), "MODEL": missing}
    argv = [values.get(arg, arg) for arg in argv]
    if "--judge_model" not in argv:
        argv += ["--model", missing]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --") and "is not 'default', an existing directory" in err
    assert len(err.splitlines()) == 1


def test_train_checks_the_data_before_the_model(tmp_path, no_model_loads, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "a", "completion": ""}\n')
    code = main(["train", "--model", str(tmp_path / "missing-model"), "--train_data", str(bad), "--output_dir",
                 str(tmp_path / "o")])
    assert code == 2
    assert "bad.jsonl, row 1, field 'completion'" in capsys.readouterr().err


# --- The shared --config helper: YAML under the command line

@dataclass
class Example:
    name: str = field(metadata={"help": "required"})
    count: int = 1
    rate: float = 0.5
    flag: bool = False
    items: list[str] = field(default_factory=lambda: ["a"])
    kwargs: dict | str | None = None
    note: str | None = "default note"


@dataclass
class Positional:
    target: str = field(metadata={"positional": True})


def parse_example(tmp_path, config: dict | None, argv: list[str], types=(Example,)):
    if config is not None:
        (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
        argv = ["--config", str(tmp_path / "c.yaml"), *argv]
    return options.parse(argv, types, prog="example", description="")


def test_yaml_values_are_defaults_the_command_line_overrides(tmp_path):
    # Defaults alone; the required field on the command line.
    (plain,) = parse_example(tmp_path, None, ["--name", "n"])
    assert (plain.count, plain.rate, plain.flag, plain.items, plain.note) == (1, 0.5, False, ["a"], "default note")
    # The YAML supplies the required field and overrides defaults; YAML types are converted like the flags'.
    config = {"name": "from-yaml", "count": 3, "rate": 2, "flag": True, "items": "x", "kwargs": {"dtype": "bf16"},
              "note": None}
    (yaml_only,) = parse_example(tmp_path, config, [])
    assert (yaml_only.name, yaml_only.count, yaml_only.rate, yaml_only.flag) == ("from-yaml", 3, 2.0, True)
    assert isinstance(yaml_only.rate, float) and yaml_only.items == ["x"] and yaml_only.kwargs == {"dtype": "bf16"}
    assert yaml_only.note == "default note"  # null keeps the default
    # The command line beats the YAML, flag by flag.
    (both,) = parse_example(tmp_path, config, ["--count", "7", "--flag", "false", "--items", "p", "q"])
    assert (both.name, both.count, both.rate, both.flag, both.items) == ("from-yaml", 7, 2.0, False, ["p", "q"])
    # A positional argument may come from the YAML too, and the command line still wins.
    assert parse_example(tmp_path, {"target": "t1"}, [], types=(Positional,))[0].target == "t1"
    assert parse_example(tmp_path, {"target": "t1"}, ["t2"], types=(Positional,))[0].target == "t2"


@pytest.mark.parametrize("config,argv,message", [
    ({"nmae": "x"}, [], "c.yaml: unknown option 'nmae' (did you mean name?)"),
    ({"name": "x", "count": "many"}, [], "c.yaml: count: invalid value 'many'"),
    ({"name": "x", "count": [1, 2]}, [], "c.yaml: count: expects a single value"),
    ({"name": "x", "flag": "perhaps"}, [], "c.yaml: flag: invalid value 'perhaps'"),
    ({"name": "x"}, ["--cuont", "2"], "unknown option(s) --cuont 2 (did you mean --count?)"),
    ({"name": "x"}, ["--co", "2"], "unknown option(s) --co 2"),  # no abbreviations
    ({}, [], "the following arguments are required: --name"),
    (["not", "a", "mapping"], [], "c.yaml: the config must be a mapping"),
])
def test_config_helper_errors(tmp_path, config, argv, message):
    with pytest.raises(options.UsageError) as error:
        parse_example(tmp_path, config, argv)
    assert message in str(error.value)


def test_missing_config_file_is_a_usage_error(tmp_path):
    with pytest.raises(options.UsageError, match="nope.yaml: config file not found"):
        options.parse(["--config", str(tmp_path / "nope.yaml")], (Example,), prog="example", description="")


def test_a_shipped_config_of_the_other_command_is_refused_and_a_missing_name_lists_this_commands_configs():
    """Training commands read training configs, `cutalign online` online-loop ones: each names the other's command
    for a shipped config of the wrong kind, and a missing name lists only the configs the command can read."""
    from cutalign.config import config_file
    from cutalign.online.config import load_config

    with pytest.raises(options.UsageError, match="online-rule: the shipped config is an online-loop config; it is "
                       "read by `cutalign online --config online-rule`"):
        options.parse(["--config", "online-rule"], (Example,), prog="example", description="")
    with pytest.raises(options.UsageError, match="reference-mix: the shipped config is a training config; it is "
                       "read by `cutalign train --config reference-mix`"):
        load_config("reference-mix")
    with pytest.raises(options.UsageError) as training:
        config_file("nope", online=False)
    assert str(training.value).endswith("(shipped configs, usable by name: reference-mix)")
    with pytest.raises(options.UsageError) as online:
        config_file("nope", online=True)
    assert "online-rule" in str(online.value) and "paper-online" in str(online.value)
    assert "reference-mix" not in str(online.value)


def test_request_logs_of_the_http_client_only_with_verbose(monkeypatch):
    """httpx logs each request at INFO, one line per judged or generated answer of the online loop: quiet unless
    --verbose asks for debug messages."""
    import logging

    httpx_logger = logging.getLogger("httpx")
    monkeypatch.setattr(httpx_logger, "level", logging.NOTSET)
    for argv, level in ((["eval", "--help"], logging.WARNING), (["--verbose", "eval", "--help"], logging.NOTSET)):
        httpx_logger.setLevel(logging.NOTSET)
        with pytest.raises(SystemExit):
            main(argv)
        assert httpx_logger.level == level, argv

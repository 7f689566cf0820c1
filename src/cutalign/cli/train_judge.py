"""Train an AI judge ((instruction, response) -> judgment) with LoRA and report its agreement with held-out judgments.

    cutalign train-judge --output_dir runs/judge                       # the built-in task, rule-judged
    cutalign train-judge --data judged.jsonl --heldout_data held.jsonl --model DIR --output_dir runs/judge

The prompt asks for a judgment of (instruction, response); the target is the reference judgment, or 'No issues.'
for a good response. The evaluation on held-out judgments reports accuracy, precision and recall of the bad/good
decision, and ROUGE-L of the critiques. Without --data the command builds the data itself: responses of the model
to the built-in task, judged by the rule judge. The trained adapter is a model judge for the online loop
(judge: {kind: model, model: runs/judge}).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import UsageError
from ..tasks import KINDS

SUMMARY = "train an AI judge on judgment data and report its agreement with held-out judgments"


@dataclass
class TrainJudgeArguments:
    """The train-judge command's flags."""

    data: str | None = field(default=None, metadata={
        "help": "judgment data (canonical JSONL/JSON/CSV/Parquet or the reference JSON); default: build it from "
        "the built-in task with the rule judge"})
    heldout_data: str | None = field(default=None, metadata={
        "help": "held-out judgment data for the evaluation (default: --heldout_fraction of --data, or the built-in "
        "task's held-out prompts)"})
    heldout_fraction: float = field(default=0.2, metadata={
        "help": "share of --data held out when --heldout_data is not given"})
    builtin_train: int = field(default=160, metadata={
        "help": "built-in data: training responses to generate and rule-judge"})
    builtin_heldout: int = field(default=48, metadata={"help": "built-in data: held-out responses"})
    kinds: list[str] = field(default_factory=lambda: ["no_commas"], metadata={
        "help": f"built-in data: constraint kinds of the prompts: {', '.join(KINDS)}", "choices": KINDS,
        "metavar": "KIND"})
    max_new_tokens: int = field(default=64, metadata={"help": "longest judgment generated in the evaluation"})
    balance: bool = field(default=False, metadata={
        "help": "repeat the rarer class (good or bad) until both are as many"})

    def __post_init__(self):
        if not 0 < self.heldout_fraction < 1:
            raise UsageError(f"--heldout_fraction must be between 0 and 1, got {self.heldout_fraction}")
        for name in ("builtin_train", "builtin_heldout", "max_new_tokens"):
            if getattr(self, name) < 1:
                raise UsageError(f"--{name} must be >= 1, got {getattr(self, name)}")
        if self.heldout_data is not None and self.data is None:
            raise UsageError("--heldout_data needs --data")


def arguments() -> tuple:
    """The dataclasses the options fill: (ModelConfig, TrainJudgeArguments, CUTConfig), as for cutalign train."""
    from ..config import CUTConfig, ModelConfig

    return ModelConfig, TrainJudgeArguments, CUTConfig


def parse(argv: list[str]) -> tuple:
    """(ModelConfig, TrainJudgeArguments, CUTConfig) from the judge's training recipe, --config FILE and the command
    line, in that order of precedence (lowest first)."""
    from ..judges.training import JUDGE_TRAINING
    from . import options

    return options.parse(argv, arguments(), prog="cutalign train-judge", description=__doc__,
                         defaults=JUDGE_TRAINING)


def run(argv: list[str]) -> int:
    model_config, args, training = parse(argv)

    from .checks import require_model

    require_model(model_config.model)

    from ..judges.training import train_judge_command

    # It reads and checks the data files before it loads the model.
    return train_judge_command(model_config, training, data=args.data, heldout_data=args.heldout_data,
                               heldout_fraction=args.heldout_fraction, builtin_train=args.builtin_train,
                               builtin_heldout=args.builtin_heldout, kinds=args.kinds,
                               max_new_tokens=args.max_new_tokens, balance=args.balance)

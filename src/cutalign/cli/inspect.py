"""Show which response tokens each judgment blames, before training on it: the tokens CUT would flag at step 0.

    cutalign inspect data.jsonl --limit 5
    cutalign inspect data.jsonl --model runs/cut --threshold 1.2 --html inspect.html

For each judged row, r_t = p(y_t|x,j) / p(y_t|x) is computed for every response token with the trainer's own
tokenization, batching and log-probabilities; a token with r_t > threshold (λ) gets CUT's unlikelihood term
(--max_flagged_fraction and --contrast_judgment select tokens as the training options of those names do). The
rows are printed with their flagged tokens highlighted (in color on a terminal, «marked» otherwise), then the share
of response tokens flagged at each of several λ, to pick one. --html writes the same as one self-contained page,
each token's r_t in its tooltip. Use the template, max_length and model of the training run.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

from .data_options import DATA_FORMATS, FORMAT_HELP, SOURCE_HELP, SPLIT_HELP

SUMMARY = "show the tokens each judgment flags (CUT's r_t > λ) and the flagged share at several λ"

# cutalign.inspect's defaults (a test keeps them equal): importing it loads torch, which would slow down --help.
DEFAULT_THRESHOLD = 1.1
DEFAULT_THRESHOLDS = (1.0, 1.05, 1.1, 1.2, 1.5, 2.0, 3.0)
DEFAULT_TEMPLATE = "auto"
DEFAULT_MAX_LENGTH = 1024


@dataclass
class InspectArguments:
    """The inspect command's options."""

    data: str = field(metadata={"positional": True, "help": f"judgment data: {SOURCE_HELP}"})
    model: str = field(default="default", metadata={
        "help": "model to score with: 'default' (the embedded SmolLM2), a directory, a saved adapter, or a hub name "
        "in the local cache"})
    threshold: float = field(default=DEFAULT_THRESHOLD, metadata={
        "help": "λ: a token is flagged when r_t > threshold"})
    thresholds: list[float] = field(default_factory=lambda: list(DEFAULT_THRESHOLDS), metadata={
        "help": "the λ values of the flagged-share table (--threshold is added)"})
    max_flagged_fraction: float = field(default=1.0, metadata={
        "help": "flag at most this share of a row's response tokens, those of the highest r_t (as the training "
        "option of that name)"})
    contrast_judgment: str | None = field(default=None, metadata={
        "help": "a neutral judgment j0: take r_t against p(y_t|x,j0) instead of p(y_t|x) (as the training option "
        "of that name)"})
    limit: int | None = field(default=None, metadata={"help": "inspect only the first N judged rows (default all)"})
    template: str = field(default=DEFAULT_TEMPLATE, metadata={
        "help": "prompt template: auto (chat when the tokenizer has a chat template, else alpaca), chat or alpaca",
        "choices": ("auto", "chat", "alpaca")})
    max_length: int = field(default=DEFAULT_MAX_LENGTH, metadata={
        "help": "maximum tokens per view, as in training (rows whose response alone is longer are skipped)"})
    batch_size: int = field(default=8, metadata={"help": "rows per forward pass"})
    html: str | None = field(default=None, metadata={"help": "also write the rows as one HTML page to this file"})
    no_color: bool = field(default=False, metadata={
        "help": "mark flagged tokens with «» instead of colors (the default when the output is not a terminal)"})
    format: str = field(default="auto", metadata={"help": FORMAT_HELP, "choices": DATA_FORMATS})
    split: str | None = field(default=None, metadata={"help": SPLIT_HELP})

    def __post_init__(self):
        if not self.threshold > 0 or not all(value > 0 for value in self.thresholds):
            raise ValueError("--threshold and --thresholds must be > 0 (ratios of probabilities)")
        from ..config import token_selection_problems  # here: importing it loads transformers (see above)

        problems = token_selection_problems(self.max_flagged_fraction, self.contrast_judgment, flag="--")
        if problems:
            raise ValueError("; ".join(problems))
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"--limit must be >= 1, got {self.limit}")
        if self.batch_size < 1 or self.max_length < 2:
            raise ValueError("--batch_size must be >= 1 and --max_length >= 2")


def arguments() -> tuple:
    return (InspectArguments,)


def parse(argv: list[str]) -> tuple:
    """(InspectArguments,) from the command line and --config FILE."""
    from . import options

    return options.parse(argv, arguments(), prog="cutalign inspect", description=__doc__)


def run(argv: list[str]) -> int:
    (args,) = parse(argv)

    from ..data import load_judgments
    from .checks import require_model

    data = load_judgments(args.data, format=args.format, split=args.split)  # checked before the model loads
    require_model(args.model)

    from ..inspect import (
        flagged_fraction_by_threshold,
        inspect_judgments,
        render_html,
        render_terminal,
        render_threshold_table,
    )
    from ..io import write_text

    rows = inspect_judgments(data, args.model, template=args.template, max_length=args.max_length,
                             limit=args.limit, batch_size=args.batch_size, contrast_judgment=args.contrast_judgment)
    thresholds = sorted({*args.thresholds, args.threshold})
    color = not args.no_color and sys.stdout.isatty()
    cap = args.max_flagged_fraction
    print(render_terminal(rows, args.threshold, color=color, max_flagged_fraction=cap))
    print()
    print(render_threshold_table(flagged_fraction_by_threshold(rows, thresholds, cap), args.threshold))
    if args.html:
        write_text(args.html, render_html(rows, args.threshold, thresholds=thresholds, max_flagged_fraction=cap))
        print(f"wrote {args.html}")
    return 0

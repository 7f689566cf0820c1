"""Evaluation: AlpacaEval records, task accuracy, pairwise win rate, and the general-ability guard."""

from .records import generate_records, read_records
from .metrics import distinct_n, guard_metrics, heldout_logp, task_accuracy
from .pairwise import EndpointPairwiseJudge, ModelJudge, parse_verdict, win_rate

__all__ = [
    "EndpointPairwiseJudge",
    "ModelJudge",
    "distinct_n",
    "generate_records",
    "guard_metrics",
    "heldout_logp",
    "parse_verdict",
    "read_records",
    "task_accuracy",
    "win_rate",
]

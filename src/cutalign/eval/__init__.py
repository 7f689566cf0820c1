"""Evaluation: AlpacaEval records, task accuracy, pairwise win rate, and the general-ability guard."""

from ..judges.pairwise import EndpointPairwiseJudge, ModelJudge, parse_verdict, win_rate
from ..records import generate_records, read_records
from .metrics import distinct_n, guard_metrics, heldout_logp, task_accuracy

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

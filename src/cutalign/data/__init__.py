"""Judgment data: the canonical example schema, loaders (files, dataset directories, hub names, datasets;
converters for public formats), and positive down-sampling."""

from .files import FILE_FORMATS
from .formats import DATA_FORMATS, Loaded, load_judgments, read_judgments
from .schema import (
    FAILED_JUDGMENT_MARKERS,
    POSITIVE_SCORE,
    DataError,
    FailedJudgment,
    count_examples,
    downsample_positives,
    is_failed_judgment,
    is_negative,
    validate_example,
    validate_reference_example,
)

__all__ = [
    "DATA_FORMATS",
    "FAILED_JUDGMENT_MARKERS",
    "FILE_FORMATS",
    "POSITIVE_SCORE",
    "DataError",
    "FailedJudgment",
    "Loaded",
    "count_examples",
    "downsample_positives",
    "is_failed_judgment",
    "is_negative",
    "load_judgments",
    "read_judgments",
    "validate_example",
    "validate_reference_example",
]

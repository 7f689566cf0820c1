"""Judgment data: the canonical example schema, loaders for files and datasets, and positive down-sampling."""

from .formats import FILE_FORMATS, load_judgments
from .schema import (
    POSITIVE_SCORE,
    DataError,
    count_examples,
    downsample_positives,
    is_negative,
    validate_example,
    validate_reference_example,
)

__all__ = [
    "FILE_FORMATS",
    "POSITIVE_SCORE",
    "DataError",
    "count_examples",
    "downsample_positives",
    "is_negative",
    "load_judgments",
    "validate_example",
    "validate_reference_example",
]

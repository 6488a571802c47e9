"""Choosing a pretrained TTM for zero-shot forecasting: the checkpoints shipped in this repository, IBM's published
variants, and the selection rule users expect (longest context that the data fills, shortest horizon that covers
the request, `prediction_filter_length` set to the request)."""

from .architectures import ARCHITECTURES
from .selection import (
    IBM_REVISIONS,
    SHIPPED_DIR,
    Variant,
    local_variants,
    parse_variant,
    select_variant,
)

__all__ = [
    "ARCHITECTURES",
    "IBM_REVISIONS",
    "SHIPPED_DIR",
    "Variant",
    "local_variants",
    "parse_variant",
    "select_variant",
]

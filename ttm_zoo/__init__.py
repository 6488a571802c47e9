"""Choosing a pretrained TTM for zero-shot forecasting: the checkpoints shipped in this repository, IBM's published
variants (every release, as in granite-tsfm 0.3.11), and the selection rules: for r1 and r2 the one users expect
(longest context that the data fills, shortest horizon that covers the request, `prediction_filter_length` set to
the request), for R3 granite-tsfm's `get_model` choice, lite or not."""

from .architectures import ARCHITECTURES
from .checkpoints import IBM_CHECKPOINTS, IBM_REVISIONS, Variant
from .selection import (
    R3_REPOSITORIES,
    SHIPPED_DIR,
    ibm_variants,
    local_variants,
    select_ibm_variant,
    select_r3_variant,
    select_variant,
)

__all__ = [
    "ARCHITECTURES",
    "IBM_CHECKPOINTS",
    "IBM_REVISIONS",
    "R3_REPOSITORIES",
    "SHIPPED_DIR",
    "Variant",
    "ibm_variants",
    "local_variants",
    "select_ibm_variant",
    "select_r3_variant",
    "select_variant",
]

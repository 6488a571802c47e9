"""Small TTM configurations shared by the tests."""

from __future__ import annotations

from typing import Any

from configuration_ttm import TTMConfig


def tiny_config(**overrides: Any) -> TTMConfig:
    """A fast 3-channel TTM: context 32 in 4 patches of 8, horizon 8, two backbone and two decoder layers."""
    settings: dict[str, Any] = dict(
        context_length=32,
        prediction_length=8,
        patch_length=8,
        patch_stride=8,
        num_input_channels=3,
        d_model=16,
        num_layers=2,
        decoder_num_layers=2,
        decoder_d_model=8,
        dropout=0.0,
        head_dropout=0.0,
    )
    settings.update(overrides)
    return TTMConfig(**settings)

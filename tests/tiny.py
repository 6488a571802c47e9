"""Small TTM configurations shared by the tests."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch

from configuration_ttm import TTMConfig
from modeling_ttm import TTMForPrediction

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from tsfm_public.models.tinytimemixer import TinyTimeMixerConfig, TinyTimeMixerForPrediction


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


def small_granite_model(seed: int = 0) -> TinyTimeMixerForPrediction:
    """A small granite-tsfm TTM (IBM's reference implementation): 2 channels, context 64, horizon 16."""
    torch.manual_seed(seed)
    config = TinyTimeMixerConfig(
        context_length=64,
        prediction_length=16,
        patch_length=8,
        patch_stride=8,
        num_input_channels=2,
        d_model=32,
        adaptive_patching_levels=2,
        decoder_mode="mix_channel",
    )
    return TinyTimeMixerForPrediction(config).eval()


def save_tiny_checkpoint(path: Path, **overrides: Any) -> Path:
    """Saves a seeded, randomly initialised one-channel `tiny_config` model to `path` and returns `path`."""
    torch.manual_seed(0)
    TTMForPrediction(tiny_config(**{"num_input_channels": 1, **overrides})).save_pretrained(path)
    return path

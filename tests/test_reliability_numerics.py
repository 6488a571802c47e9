"""Numerics at the edges: constant and near-constant series, huge and tiny magnitudes, all-masked windows.

Forecasts, losses and every weight gradient must be finite in fp32 and under bf16 autocast (CPU).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from tiny import tiny_config

from modeling_ttm import TTMForPrediction

B, L, C, H = 4, 32, 3, 8


def ramp(scale: float) -> Callable[[int], torch.Tensor]:
    return lambda length: scale * torch.sin(torch.arange(length, dtype=torch.float64) / 3).repeat(B, C, 1).mT.float()


def constant(value: float) -> Callable[[int], torch.Tensor]:
    return lambda length: torch.full((B, length, C), value)


SERIES: dict[str, Callable[[int], torch.Tensor]] = {
    "constant": constant(3.0),
    "constant zero": constant(0.0),
    "near-constant": lambda length: 1000.0 + 1e-4 * torch.randn(B, length, C),
    "huge (1e15)": ramp(1e15),
    "negative huge (-1e15 offset)": lambda length: -1e15 + ramp(1e10)(length),
    "tiny (1e-20)": ramp(1e-20),
    "denormal (1e-40)": ramp(1e-40),
}
# Magnitudes whose squared error overflows float32: only the forecast is required to be finite.
FORECAST_ONLY: dict[str, Callable[[int], torch.Tensor]] = {
    "huge (1e30)": ramp(1e30),
    "near float32 max (1e38)": constant(1e38),
    "wide (1e36 oscillation)": ramp(1e36),
}
PRECISIONS = ["fp32", "bf16-autocast"]


@pytest.fixture(scope="module")
def model() -> TTMForPrediction:
    torch.manual_seed(0)
    return TTMForPrediction(tiny_config())


def run(model: TTMForPrediction, precision: str, **inputs: torch.Tensor):
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision != "fp32"):
        return model(**inputs)


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("series", SERIES)
def test_forecast_loss_and_gradients_are_finite(model: TTMForPrediction, series: str, precision: str) -> None:
    torch.manual_seed(1)
    make = SERIES[series]
    model.zero_grad()
    output = run(model, precision, past_values=make(L), future_values=make(H))
    assert output.prediction_outputs.isfinite().all() and output.loss.isfinite()
    output.loss.backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and parameter.grad.isfinite().all(), name


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("series", FORECAST_ONLY)
def test_forecasts_of_extreme_magnitudes_are_finite(model: TTMForPrediction, series: str, precision: str) -> None:
    with torch.no_grad():
        forecast = run(model, precision, past_values=FORECAST_ONLY[series](L)).prediction_outputs
    assert forecast.isfinite().all()


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("masked", ["all past masked", "all past and future masked", "all past NaN"])
def test_all_masked_windows_give_finite_forecasts_and_gradients(
    model: TTMForPrediction, masked: str, precision: str
) -> None:
    past, future = torch.randn(B, L, C), torch.randn(B, H, C)
    inputs = {"past_values": past, "future_values": future, "past_observed_mask": torch.zeros(B, L, C)}
    if masked == "all past and future masked":
        inputs["future_observed_mask"] = torch.zeros(B, H, C)
    if masked == "all past NaN":
        inputs = {"past_values": torch.full((B, L, C), float("nan")), "future_values": future}
    model.zero_grad()
    output = run(model, precision, **inputs)
    assert output.prediction_outputs.isfinite().all() and output.loss.isfinite()
    output.loss.backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and parameter.grad.isfinite().all(), name

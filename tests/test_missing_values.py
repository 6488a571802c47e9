"""Missing values bend the forecast little: NaN and gaps measured on the forecast itself, not on shapes.

The shipped checkpoint (checkpoints/ttm-r2-512-96-offline) and a random-init model of the same architecture forecast
a smooth and a seasonal series of 512 steps, complete and with scattered NaN or gaps; the forecasts must stay within
tolerances stated in units of the series' standard deviation. The tolerances come from measurement (README,
"Missing values and gaps"): before missing values were filled, a single NaN moved the shipped checkpoint's forecast
of the smooth series by up to 110 standard deviations (a median of 3.8), a 20-step gap by 16.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from script_loader import load_script

from modeling_ttm import TTMForPrediction, fill_gaps

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "checkpoints" / "ttm-r2-512-96-offline"
LENGTH = 512
STEPS = np.arange(LENGTH)
SERIES = {
    "smooth": 350 + 3 * np.sin(2 * np.pi * STEPS / 24),  # the series of issue 13: level 350, amplitude 3
    "seasonal": 10
    + 0.01 * STEPS
    + np.sin(2 * np.pi * STEPS / 52)
    + 0.5 * np.sin(2 * np.pi * STEPS / 7)
    + np.random.default_rng(0).normal(0, 0.2, LENGTH),
}
SINGLE_NAN_TOLERANCE = {"shipped": 0.06, "random": 0.015}  # measured: at most 0.037 and 0.006 std
LAST_STEP_TOLERANCE = 0.35  # a NaN at the last step repeats the value before it; measured: at most 0.24 std


@pytest.fixture(scope="module")
def models() -> dict[str, TTMForPrediction]:
    shipped = TTMForPrediction.from_pretrained(SHIPPED).eval()
    torch.manual_seed(0)
    return {"shipped": shipped, "random": TTMForPrediction(shipped.config).eval()}


def forecast(model: TTMForPrediction, values: np.ndarray) -> np.ndarray:
    """Forecasts of a batch of univariate series (batch, time) -> (batch, horizon)."""
    with torch.inference_mode():
        past = torch.as_tensor(np.atleast_2d(values), dtype=torch.float32)[..., None]
        return model(past_values=past).prediction_outputs[..., 0].numpy()


def deviation(model: TTMForPrediction, series: np.ndarray, with_nan: np.ndarray) -> np.ndarray:
    """Largest distance of each forecast from the complete series' forecast, in standard deviations of the series."""
    return np.abs(forecast(model, with_nan) - forecast(model, series)).max(-1) / series.std()


@pytest.mark.parametrize("name", ["shipped", "random"])
@pytest.mark.parametrize("kind", list(SERIES))
def test_a_single_nan_anywhere_barely_moves_the_forecast(models: dict, name: str, kind: str) -> None:
    series = SERIES[kind]
    positions = np.r_[0 : LENGTH - 1 : 3, LENGTH - 2]
    batch = np.repeat(series[None], len(positions), axis=0)
    batch[np.arange(len(positions)), positions] = np.nan
    assert deviation(models[name], series, batch).max() <= SINGLE_NAN_TOLERANCE[name]
    last = series.copy()
    last[-1] = np.nan
    assert deviation(models[name], series, last)[0] <= LAST_STEP_TOLERANCE


@pytest.mark.parametrize(
    ("gap", "tolerance"),
    [(slice(400, 401), 0.02), (slice(400, 420), 0.3), (slice(0, 100), 0.5), (slice(300, 360), 1.0)],
)
def test_issue_series_with_nan_and_gaps_on_the_shipped_checkpoint(models: dict, gap: slice, tolerance: float) -> None:
    """Measured: 0.003 std for the NaN at 400 (5.6 std before NaN were filled), 0.26 for the 20-step gap (15.9
    before, as zeros), 0.26 for the first 100 steps missing, 0.19 for 60 steps in the middle."""
    series = SERIES["smooth"]
    with_gap = series.copy()
    with_gap[gap] = np.nan
    assert deviation(models["shipped"], series, with_gap)[0] <= tolerance


def test_filling_is_what_keeps_the_forecast(models: dict) -> None:
    """The same gap as zeros marked unobserved (granite-tsfm's semantics for masked values) bends the forecast."""
    series = SERIES["smooth"]
    mask = np.ones(LENGTH, dtype=bool)
    mask[400:420] = False
    model = models["shipped"]
    with torch.inference_mode():
        past = torch.as_tensor(np.where(mask, series, 0.0), dtype=torch.float32)[None, :, None]
        zeros = model(past_values=past, past_observed_mask=torch.as_tensor(mask)[None, :, None]).prediction_outputs
    zero_deviation = np.abs(zeros[0, :, 0].numpy() - forecast(model, series)[0]).max() / series.std()
    assert zero_deviation > 5.0  # measured 18.5 (20.9, 21.8 and 15.9 with earlier shipped weights)
    assert deviation(model, series, np.where(mask, series, np.nan))[0] < zero_deviation / 20


@pytest.mark.parametrize(("name", "ratio"), [("shipped", 0.85), ("random", 0.8)])
@pytest.mark.parametrize("kind", list(SERIES))
def test_short_inputs_forecast_close_to_their_full_history(models: dict, name: str, ratio: float, kind: str) -> None:
    """Left padding filled with the first value, against granite-tsfm's zero padding, over inputs of 64 - 384 steps
    (the choice was measured: summed over the four lengths, zero padding moved the shipped checkpoint's forecast by
    5.1 - 90 std, the fill by 2.7 - 3.6 std, 0.70 times the zero padding's at most, though on the seasonal series a
    128-step input padded with zeros moved it less, 0.89 std against 1.19; the random-init model's fill moved it at
    most 0.67 times as much)."""
    model, series = models[name], SERIES[kind]
    full = forecast(model, series)[0]
    filled, zero_padded = [], []
    for length in (64, 128, 256, 384):
        filled.append(np.abs(forecast(model, series[-length:])[0] - full).max() / series.std())
        mask = torch.as_tensor(STEPS >= LENGTH - length)[None, :, None]
        past = torch.as_tensor(np.where(mask[0, :, 0], series, 0.0), dtype=torch.float32)[None, :, None]
        with torch.inference_mode():
            zeros = model(past_values=past, past_observed_mask=mask).prediction_outputs[0, :, 0].numpy()
        zero_padded.append(np.abs(zeros - full).max() / series.std())
    assert max(filled) <= 2.5 and sum(filled) <= ratio * sum(zero_padded), (filled, zero_padded)


@st.composite
def nan_patterns(draw: st.DrawFn) -> dict:
    """k scattered NaN and an optional gap of g steps, all ending at least 8 steps before the end of the context."""
    k = draw(st.integers(0, 25))
    scattered = draw(st.lists(st.integers(0, LENGTH - 9), min_size=k, max_size=k, unique=True))
    g = draw(st.sampled_from([0, 1, 5, 12, 20, 36, 48]))
    start = draw(st.integers(0, LENGTH - 8 - g))
    return {"scattered": scattered, "gap": slice(start, start + g), "k": k, "g": g}


@settings(max_examples=30, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(nan_patterns(), st.sampled_from(list(SERIES)), st.sampled_from(["shipped", "random"]))
def test_nan_patterns_keep_the_forecast_within_a_tolerance_growing_with_what_is_missing(
    models: dict, pattern: dict, kind: str, name: str
) -> None:
    """Tolerance 0.05 + 0.01 k + 0.02 g standard deviations (measured worst: k=25 0.23, g=20 0.41, g=48 0.8)."""
    series = SERIES[kind]
    with_nan = series.copy()
    with_nan[pattern["scattered"]] = np.nan
    with_nan[pattern["gap"]] = np.nan
    tolerance = 0.05 + 0.01 * pattern["k"] + 0.02 * pattern["g"]
    assert deviation(models[name], series, with_nan)[0] <= tolerance


@settings(max_examples=40, deadline=None, database=None, derandomize=True)
@given(
    st.integers(1, 3),
    st.integers(2, 40),
    st.sampled_from([0.05, 0.3, 0.8, 1.0]),
    st.integers(0, 2**16),
    st.sampled_from([1.0, 1e4]),
)
def test_fill_gaps_interpolates_between_observed_neighbours(
    batch: int, length: int, share: float, seed: int, magnitude: float
) -> None:
    """`fill_gaps` equals numpy's linear interpolation (edges: nearest observed value; nothing observed: 0)."""
    rng = np.random.default_rng(seed)
    values = magnitude * rng.normal(size=(batch, length, 2)) + magnitude
    values[rng.random(values.shape) < share] = np.nan
    filled = fill_gaps(torch.from_numpy(values), torch.from_numpy(np.isfinite(values))).numpy()
    for b in range(batch):
        for c in range(2):
            known = np.flatnonzero(np.isfinite(values[b, :, c]))
            expected = np.interp(STEPS[:length], known, values[b, known, c]) if len(known) else np.zeros(length)
            np.testing.assert_allclose(filled[b, :, c], expected, rtol=1e-12, atol=1e-9 * magnitude)


def test_plot_script_draws_the_gap_figure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """scripts/plot_missing_values.py (README's figure), on a synthetic weekly series instead of statsmodels' CO2."""
    plot_script = load_script("plot_missing_values")
    steps = np.arange(700)
    weekly = (340 + 0.03 * steps + 3 * np.sin(2 * np.pi * steps / 52)).astype(np.float32)
    monkeypatch.setattr(plot_script, "co2_weekly", lambda: weekly)
    output = tmp_path / "docs" / "gap.png"
    assert plot_script.main(["--output", str(output)]) == 0
    assert output.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plot_script.plot(output) < 0.5 * weekly[-564:-52].std()  # the gap moves the forecast little

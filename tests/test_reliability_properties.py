"""Property-based tests (hypothesis) of the window collator and the model's scalers.

For random series lengths, channel counts, NaN patterns, split starts, strides, contexts and horizons: shapes and
masks agree, every window lies inside its series (its forecast inside the split), NaN marks exactly the unobserved
past values, and scaling is invertible on the observed values.
"""

from __future__ import annotations

import numpy as np
import torch
from datasets import Dataset
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tiny import tiny_config

from modeling_ttm import SCALED_LIMIT, scale_series
from ttm_data import EvalWindows, ForecastWindowCollator, TrainWindows

SETTINGS = settings(
    max_examples=40, deadline=None, database=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)


@st.composite
def series_sets(draw: st.DrawFn) -> dict:
    channels = draw(st.integers(1, 4))
    exogenous = draw(st.integers(0, channels - 1))
    lengths = draw(st.lists(st.integers(1, 60), min_size=1, max_size=4))
    nan_share = draw(st.sampled_from([0.0, 0.1, 0.5, 1.0]))
    seed = draw(st.integers(0, 2**16))
    horizon = draw(st.integers(1, 8))
    return {
        "channels": channels,
        "exogenous": exogenous,
        "lengths": lengths,
        "split_start": [draw(st.integers(0, length)) for length in lengths],
        "nan_share": nan_share,
        "seed": seed,
        "horizon": horizon,
        "context": draw(st.integers(1, 40)),
        "stride": draw(st.integers(1, 10)),
        "min_past": draw(st.integers(1, 5)),
    }


def dataset_of(case: dict) -> tuple[Dataset, list[np.ndarray]]:
    """Values encode (series, channel, position) exactly: 10000 * series + 1000 * channel + position."""
    rng = np.random.default_rng(case["seed"])
    targets = case["channels"] - case["exogenous"]
    rows = {"target": [], "start": [], "freq": [], "split_start": case["split_start"]}
    if case["exogenous"]:
        rows["feat_dynamic_real"] = []
    series_values = []
    for series, length in enumerate(case["lengths"]):
        values = 10000.0 * series + 1000.0 * np.arange(case["channels"])[:, None] + np.arange(length)[None, :]
        values[rng.random(values.shape) < case["nan_share"]] = np.nan
        series_values.append(values)
        rows["target"].append(values[:targets].astype(np.float32))
        if case["exogenous"]:
            rows["feat_dynamic_real"].append(values[targets:].astype(np.float32))
        rows["start"].append("2024-01-01")
        rows["freq"].append("h")
    return Dataset.from_dict(rows), series_values


def check_batch(batch: dict[str, torch.Tensor], series: np.ndarray, ends: np.ndarray, case: dict, values) -> None:
    n, context, horizon, channels = len(series), case["context"], case["horizon"], case["channels"]
    assert batch["past_values"].shape == batch["past_observed_mask"].shape == (n, context, channels)
    assert batch["future_values"].shape == batch["future_observed_mask"].shape == (n, horizon, channels)
    for name, tensor in batch.items():
        assert tensor.dtype == torch.float32, name
        if name != "past_values":
            assert tensor.isfinite().all(), name
    for part in ("past", "future"):
        mask = batch[f"{part}_observed_mask"]
        assert set(mask.unique().tolist()) <= {0.0, 1.0}
    # Missing past values and padding are NaN (the model fills them), missing future values 0 (out of the loss).
    assert (batch["past_values"].isnan() == (batch["past_observed_mask"] == 0)).all()
    assert (batch["future_values"][batch["future_observed_mask"] == 0] == 0).all()
    window = torch.cat([batch["past_values"], batch["future_values"]], 1).numpy()
    observed = torch.cat([batch["past_observed_mask"], batch["future_observed_mask"]], 1).numpy() == 1
    for i, (s, end) in enumerate(zip(series, ends, strict=True)):
        length, split_start = case["lengths"][s], case["split_start"][s]
        assert end <= length and end - horizon >= max(split_start, case["min_past"])  # inside series and split
        positions = np.arange(end - context - horizon, end)
        inside = positions >= 0
        expected = values[s][:, np.where(inside, positions, 0)].T
        expected_observed = inside[:, None] & ~np.isnan(expected)
        np.testing.assert_array_equal(observed[i], expected_observed)
        np.testing.assert_array_equal(window[i][expected_observed], expected[expected_observed])


@SETTINGS
@given(series_sets())
def test_rolling_windows_are_consistent(case: dict) -> None:
    dataset, values = dataset_of(case)
    windows = EvalWindows(dataset, case["horizon"], stride=case["stride"], min_past=case["min_past"])
    if len(windows) == 0:
        return
    pairs = windows.pairs
    for s in np.unique(pairs[:, 0]):  # each series: stride apart, the last at its end
        ends = pairs[pairs[:, 0] == s, 1]
        assert ends[-1] == case["lengths"][s] and (np.diff(ends) == case["stride"]).all()
    collator = ForecastWindowCollator(case["context"], case["horizon"])
    batch = collator([windows[i] for i in range(len(windows))])
    check_batch(batch, pairs[:, 0], pairs[:, 1], case, values)


@SETTINGS
@given(series_sets())
def test_drawn_training_windows_are_consistent_and_pure_functions_of_the_seed(case: dict) -> None:
    dataset, values = dataset_of(case)
    try:
        windows = TrainWindows(dataset, case["horizon"], min_past=case["min_past"], seed=case["seed"])
    except ValueError as error:  # documented refusal: no series is long enough
        assert "no training window" in str(error)
        return
    collator = ForecastWindowCollator(case["context"], case["horizon"])
    rows = [windows[i] for i in range(min(len(windows), 64))]
    batch = collator(rows)
    series = np.array([row["series"] for row in rows])
    again = collator(rows)
    assert all(batch[name].nan_to_num(-1.0).equal(again[name].nan_to_num(-1.0)) for name in batch)  # same draw
    ends = np.array([draw_end(batch, i, case, values[s], s) for i, s in enumerate(series)])  # from the values
    check_batch(batch, series, ends, case, values)


def draw_end(batch: dict[str, torch.Tensor], i: int, case: dict, values: np.ndarray, series: int) -> int:
    """The end of window i: the valid end of its series whose whole window (context and future) it shows."""
    context, horizon = case["context"], case["horizon"]
    first = max(case["split_start"][series], case["min_past"]) + horizon
    window = torch.cat([batch["past_values"][i], batch["future_values"][i]]).numpy()
    mask = torch.cat([batch["past_observed_mask"][i], batch["future_observed_mask"][i]]).numpy() == 1
    for end in range(first, case["lengths"][series] + 1):
        positions = np.arange(end - context - horizon, end)
        expected = np.where(positions[:, None] >= 0, values[:, np.clip(positions, 0, None)].T, np.nan)
        if np.array_equal(mask, ~np.isnan(expected)) and np.array_equal(window[mask], expected[mask]):
            return end
    raise AssertionError("the drawn window matches no valid window of its series")


@st.composite
def scaler_inputs(draw: st.DrawFn) -> tuple[torch.Tensor, torch.Tensor]:
    batch, length, channels = draw(st.integers(1, 3)), draw(st.integers(1, 40)), draw(st.integers(1, 3))
    generator = torch.Generator().manual_seed(draw(st.integers(0, 2**16)))
    magnitude = draw(st.sampled_from([1e-6, 1.0, 1e3, 1e6]))
    offset = draw(st.sampled_from([0.0, 1.0, -1e4]))
    values = offset + magnitude * torch.randn(batch, length, channels, generator=generator, dtype=torch.float64)
    observed = torch.rand(batch, length, channels, generator=generator) >= draw(st.sampled_from([0.0, 0.3, 0.9]))
    return values.float(), observed


@SETTINGS
@given(scaler_inputs(), st.sampled_from(["std", "mean"]), st.booleans(), st.booleans())
def test_scaling_is_finite_positive_and_invertible(inputs, scaling: str, pass_mask: bool, subtract_last: bool) -> None:
    values, observed = inputs
    config = tiny_config(scaling=scaling, subtract_last=subtract_last)
    scaled, loc, scale = scale_series(config, values, observed if pass_mask else None)
    if subtract_last:  # centred on the last observed value (a series without any keeps the scaler's own loc)
        counted = observed if pass_mask else torch.ones_like(observed)
        for b, c in zip(*torch.nonzero(counted.any(1), as_tuple=True), strict=True):
            last = int(torch.nonzero(counted[b, :, c])[-1])
            assert loc[b, 0, c] == values[b, last, c].double() and scaled[b, last, c].abs() <= 1e-6
    assert scaled.shape == values.shape and loc.shape == scale.shape == (values.shape[0], 1, values.shape[2])
    assert scaled.isfinite().all() and loc.isfinite().all() and (scale > 0).all() and scale.isfinite().all()
    assert (scaled.abs() <= SCALED_LIMIT).all()
    # Invertible on the values that count: unobserved ones may sit at the bound (e.g. the zeros of a padded series).
    restored = scaled.double() * scale.double() + loc.double()
    tolerance = 1e-5 * (values.abs().amax(1, keepdim=True).double() + scale.double())
    counted = observed if pass_mask else torch.ones_like(observed)
    assert ((restored - values.double()).abs() <= tolerance)[counted].all()
    if pass_mask:  # unobserved values do not move the statistics
        shuffled = torch.where(observed, values, values.flip(1) * 7 + 3)
        _, loc_again, scale_again = scale_series(config, shuffled, observed)
        torch.testing.assert_close(loc_again, loc)
        torch.testing.assert_close(scale_again, scale)

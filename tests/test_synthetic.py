"""ttm_data.synthetic: seeded synthetic series streamed into ForecastWindowCollator."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from ttm_data import ForecastWindowCollator, freq_token, parse_freq, seasonal_period
from ttm_data.synthetic import (
    SYNTHETIC_FREQS,
    SyntheticWindows,
    _kernel_series,
    _state_space_series,
    _structural_series,
    convex_mix,
    synthetic_dataset,
    synthetic_series,
)


def test_a_series_is_a_function_of_seed_and_index() -> None:
    first, again = synthetic_series(3, 17), synthetic_series(3, 17)
    np.testing.assert_array_equal(first["target"], again["target"])
    assert (first["start"], first["freq"]) == (again["start"], again["freq"])
    assert not np.array_equal(first["target"], synthetic_series(3, 18)["target"])
    assert not np.array_equal(first["target"], synthetic_series(4, 17)["target"])


def test_series_are_finite_varied_and_of_every_frequency() -> None:
    series = [synthetic_series(0, i, length=300) for i in range(200)]

    assert all(s["target"].shape == (300,) and s["target"].dtype == np.float32 for s in series)
    assert all(np.isfinite(s["target"]).all() and s["target"].std() > 0 for s in series)
    assert {s["freq"] for s in series} == set(SYNTHETIC_FREQS)
    for freq in SYNTHETIC_FREQS:
        parse_freq(freq)
        assert seasonal_period(freq) >= 1
    scales = np.array([np.abs(s["target"]).mean() for s in series])
    assert scales.max() / scales.min() > 100  # many units, not one normalised scale


def last_value_beats_the_mean(family, draws: int = 300) -> float:
    """Share of draws whose next 96 steps are nearer the last of 512 steps than their mean (mean absolute error)."""
    wins = 0
    for index in range(draws):
        values = family(np.random.default_rng([7, index]), [48, 336], 1024)
        context, future = values[:512], values[512:608]
        wins += np.abs(future - context[-1]).mean() < np.abs(future - context.mean()).mean()
    return wins / draws


def test_state_space_series_carry_their_level_forward() -> None:
    # measured: 0.74 state-space, 0.54 kernel, 0.48 structural; the family exists to teach persistence
    persistent = last_value_beats_the_mean(_state_space_series)
    assert persistent > 0.65
    assert persistent > last_value_beats_the_mean(_kernel_series) + 0.1
    assert persistent > last_value_beats_the_mean(_structural_series) + 0.1
    values = _state_space_series(np.random.default_rng(1), [48], 1024)
    assert values.shape == (1024,) and np.isfinite(values).all()


def persistence_of_stream(family_weights: list[float], draws: int = 200) -> float:
    """`last_value_beats_the_mean` over the series of a stream with these family weights."""
    wins = 0
    for index in range(draws):
        values = synthetic_series(7, index, 1024, family_weights)["target"].astype(float)
        context, future = values[:512], values[512:608]
        wins += np.abs(future - context[-1]).mean() < np.abs(future - context.mean()).mean()
    return wins / draws


def test_family_weights_choose_the_families() -> None:
    state_space, kernel = persistence_of_stream([0, 0, 1]), persistence_of_stream([1, 0, 0])
    assert state_space > 0.65 and state_space > kernel + 0.1  # as the families themselves
    assert 0.5 * (state_space + kernel) - 0.1 < persistence_of_stream([1, 0, 1]) < state_space
    with pytest.raises(ValueError, match="family_weights"):
        synthetic_series(0, 0, family_weights=[0, 0, 0])
    with pytest.raises(ValueError, match="family_weights"):
        SyntheticWindows(16, length=96, min_past=16, family_weights=[1, 2])
    windows = SyntheticWindows(16, seed=5, series_per_step=4, windows_per_step=8, length=96, min_past=16,
                               family_weights=[0, 1, 0])  # fmt: skip
    store = windows.windows(2).store  # step 2 holds series 8-11
    np.testing.assert_array_equal(
        store.values[store.offsets[1] : store.offsets[2], 0], synthetic_series(5, 9, 96, [0, 1, 0])["target"]
    )


def test_a_step_holds_consecutive_series() -> None:
    dataset = synthetic_dataset(seed=2, step=3, num_series=4, length=128)
    assert len(dataset) == 4
    np.testing.assert_allclose(dataset[1]["target"], synthetic_series(2, 13, length=128)["target"])


def test_windows_stream_into_the_collator_reproducibly() -> None:
    def batches(start_step: int) -> list[dict[str, torch.Tensor]]:
        windows = SyntheticWindows(16, seed=5, series_per_step=4, windows_per_step=8, length=96, min_past=16,
                                   start_step=start_step)  # fmt: skip
        collator = ForecastWindowCollator(64, 16, return_freq_token=True)
        rows = iter(windows)
        return [collator(list(itertools.islice(rows, 8))) for _ in range(3)]

    first, again, later = batches(0), batches(0), batches(1)
    for batch, repeat in zip(first, again, strict=True):
        for name, value in batch.items():
            torch.testing.assert_close(value, repeat[name], equal_nan=True)  # short windows are NaN-padded
    torch.testing.assert_close(first[1]["past_values"], later[0]["past_values"], equal_nan=True)  # step 1 = batch 2
    batch = first[0]
    assert batch["past_values"].shape == (8, 64, 1) and batch["future_values"].shape == (8, 16, 1)
    observed = batch["past_observed_mask"].bool()
    assert torch.isfinite(batch["past_values"][observed]).all() and batch["future_observed_mask"].all()
    assert batch["past_values"][~observed].isnan().all()  # only the padding of short windows is missing
    assert set(batch["freq_token"].tolist()) <= {freq_token(f) for f in SYNTHETIC_FREQS}


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="length"):
        synthetic_series(0, 0, length=4)
    with pytest.raises(ValueError, match="seed"):
        synthetic_series(-1, 0)
    with pytest.raises(ValueError, match="length"):
        SyntheticWindows(96, length=100, min_past=64)


def test_convex_mix_of_real_series() -> None:
    rng = np.random.default_rng(0)
    wave = np.sin(np.arange(200) / 5)
    same = convex_mix([3 * wave + 7, wave - 2, 10 * wave], rng, length=200)  # one shape in three scales
    np.testing.assert_allclose(same, (wave - wave.mean()) / wave.std(), atol=1e-5)

    series = [rng.normal(size=n) for n in (50, 300, 400)]
    series[1][10] = np.nan
    mix = convex_mix(series, rng, length=120)
    assert mix.shape == (120,) and mix.dtype == np.float32
    assert convex_mix([np.ones(500), np.ones(50)], rng, length=120) is None  # one series is long enough

"""Synthetic series without limit, for pretraining: Gaussian-process kernel compositions and structural series.

Every series is a pure function of `(seed, index)`, so nothing is stored: `synthetic_series(seed, index)` draws it
again, and `SyntheticWindows` streams training rows for `ForecastWindowCollator` buffer by buffer (buffer `step`
holds the series `step * series_per_step ...`). Three families, a third each:

- kernel compositions (as in KernelSynth): one to five kernels drawn from a bank of periodic (periods from the
  frequency's seasons), RBF, linear, rational-quadratic and white-noise kernels, joined by random sums and products,
  sampled as a Gaussian process on a grid of at most 256 points and interpolated to the series length;
- structural series: level + trend (linear, exponential or piecewise) + one or two seasonalities + level shifts +
  spikes + noise (Gaussian or Student-t, optionally a random walk), optionally multiplicative (exp of the sum);
- state-space series: sample paths of additive exponential-smoothing models (the models AutoETS fits), whose level,
  damped slope and seasonal pattern move with every innovation, so that they persist instead of returning to a mean.

Each series gets a frequency of IBM's token table or a calendar frequency (5min ... YS), uniformly, and a family
drawn uniformly or by `family_weights` (in the order of `FAMILIES`).
`convex_mix` makes new series from real ones: a Dirichlet-weighted sum of standardised segments.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from datasets import Dataset, Features, List, Value

from .frequency import seasonal_period
from .windows import TrainWindows

FAMILIES = ("kernel", "structural", "state_space")
SYNTHETIC_FREQS = ("5min", "10min", "15min", "30min", "h", "D", "W", "MS", "QS", "YS")
# Extra periods per frequency (daily and weekly cycles of sub-daily data, a year of daily data).
_EXTRA_PERIODS = {"5min": 2016, "10min": 1008, "15min": 672, "30min": 336, "h": 168, "D": 365, "W": 52}
_GP_POINTS = 256
_FEATURES = Features({"target": List(Value("float32")), "start": Value("timestamp[ns]"), "freq": Value("string")})

Kernel = Callable[[np.ndarray], np.ndarray]  # positions (n,) in [0, 1] -> covariance (n, n)


def _kernel_bank(rng: np.random.Generator, periods: list[int], length: int) -> list[Kernel]:
    """One drawn kernel of every kind; periods are in steps of the series, converted to the [0, 1] grid."""
    period = periods[rng.integers(len(periods))] / length
    scale = rng.choice([0.05, 0.1, 0.3, 1.0])
    smoothness = rng.choice([0.5, 1.0, 2.0])
    offset = rng.uniform(-1, 1)
    alpha = rng.choice([0.1, 1.0, 10.0])

    def distance(t: np.ndarray) -> np.ndarray:
        return np.abs(np.subtract.outer(t, t))

    return [
        lambda t: np.exp(-2 * np.sin(np.pi * distance(t) / period) ** 2 / smoothness**2),
        lambda t: np.exp(-0.5 * (distance(t) / scale) ** 2),
        lambda t: (t[:, None] - offset) * (t[None, :] - offset),
        lambda t: (1 + distance(t) ** 2 / (2 * alpha * scale**2)) ** -alpha,
        lambda t: 0.1 * np.eye(len(t)),
    ]


def _kernel_series(rng: np.random.Generator, periods: list[int], length: int) -> np.ndarray:
    """A Gaussian-process sample of a random composition of kernels, interpolated to `length` points."""
    points = min(length, _GP_POINTS)
    t = np.linspace(0, 1, points)
    # a period needs 4 grid points to survive the interpolation; shorter seasons come from the structural family
    periods = [p for p in periods if p * points >= 4 * length] or [length // 8]
    covariance = None
    for _ in range(rng.integers(1, 6)):
        bank = _kernel_bank(rng, periods, length)
        kernel = bank[rng.choice(len(bank), p=[0.35, 0.2, 0.15, 0.2, 0.1])](t)
        if covariance is None:
            covariance = kernel
        else:
            covariance = covariance + kernel if rng.random() < 0.5 else covariance * kernel
    noise = rng.standard_normal(points)
    try:
        jitter = 1e-6 * max(float(np.abs(np.diag(covariance)).mean()), 1e-12)
        sample = np.linalg.cholesky(covariance + jitter * np.eye(points)) @ noise
    except np.linalg.LinAlgError:  # a near-singular composition: the eigendecomposition is robust
        eigenvalues, vectors = np.linalg.eigh(covariance)
        sample = vectors @ (np.sqrt(np.clip(eigenvalues, 0, None)) * noise)
    return np.interp(np.linspace(0, 1, length), t, sample)


def _structural_series(rng: np.random.Generator, periods: list[int], length: int) -> np.ndarray:
    """Level, trend, seasonalities, level shifts, spikes and noise, optionally multiplicative."""
    t = np.arange(length, dtype=float)
    kind = rng.integers(3)
    if kind == 0:
        trend = rng.normal(0, 1) * t / length
    elif kind == 1:
        trend = np.expm1(rng.normal(0, 1) * t / length)
    else:
        knots = np.sort(rng.integers(0, length, size=3))
        trend = sum(rng.normal(0, 1) * np.clip(t - k, 0, None) / length for k in knots)
    season = np.zeros(length)
    for period in rng.choice(periods, size=min(len(periods), int(rng.integers(1, 3))), replace=False):
        harmonics = rng.integers(1, 4)
        for h in range(1, harmonics + 1):
            season += rng.normal(0, 1 / h) * np.sin(2 * np.pi * h * t / period + rng.uniform(0, 2 * np.pi))
    shifts = np.zeros(length)
    for position in rng.integers(0, length, size=rng.poisson(0.7)):
        shifts[position:] += rng.normal(0, 1)
    noise_scale = rng.choice([0.02, 0.1, 0.3, 0.7])
    noise = rng.standard_t(4, length) if rng.random() < 0.3 else rng.standard_normal(length)
    noise *= noise_scale
    if rng.random() < 0.2:
        noise = np.cumsum(noise) * 0.3
    spikes = np.zeros(length)
    count = rng.poisson(1.0)
    spikes[rng.integers(0, length, size=count)] = rng.normal(0, 4, size=count)
    values = trend + rng.uniform(0.3, 1.5) * season + shifts + noise + spikes
    if rng.random() < 0.2:
        values = np.exp(0.3 * values / max(values.std(), 1e-6))
    return values


def _state_space_series(rng: np.random.Generator, periods: list[int], length: int) -> np.ndarray:
    """A sample path of an additive exponential-smoothing state-space model: the level takes a share `alpha` of every
    innovation (0.05: a noisy slow level, 1: a random walk), a damped slope a share `beta`, the seasonal pattern of
    one of `periods` (60 % of series) a share `gamma`. Innovations are Gaussian or Student-t, optionally AR(1)."""
    alpha = rng.uniform(0.05, 1.0)
    beta = alpha * rng.uniform(0.0, 0.15) if rng.random() < 0.4 else 0.0
    damping = rng.uniform(0.85, 0.99)
    period = int(periods[rng.integers(len(periods))]) if rng.random() < 0.6 else 1
    gamma = (1 - alpha) * rng.uniform(0.0, 0.3) if period > 1 else 0.0
    phase = 2 * np.pi * np.arange(period) / period
    season = sum(rng.normal(0, 1 / h) * np.sin(h * phase + rng.uniform(0, 2 * np.pi)) for h in range(1, 4))
    season = (rng.uniform(0.5, 5.0) * season if period > 1 else np.zeros(1)).tolist()
    shocks = (rng.standard_t(5, length) if rng.random() < 0.3 else rng.standard_normal(length)).tolist()
    memory = rng.uniform(-0.3, 0.9) if rng.random() < 0.5 else 0.0
    level, slope, error = 0.0, rng.normal(0, 0.05), 0.0
    values = np.empty(length)
    for t, shock in enumerate(shocks):
        error = memory * error + shock
        seasonal = season[t % period]
        values[t] = level + damping * slope + seasonal + error
        level += damping * slope + alpha * error
        slope = damping * slope + beta * error
        season[t % period] = seasonal + gamma * error
    return values


def family_probabilities(family_weights: Sequence[float]) -> np.ndarray:
    """`family_weights` (one non-negative weight per family of `FAMILIES`) as probabilities."""
    weights = np.asarray(family_weights, dtype=float)
    if weights.shape != (len(FAMILIES),) or not np.isfinite(weights).all() or (weights < 0).any() or weights.sum() <= 0:
        raise ValueError(
            f"`family_weights` must be {len(FAMILIES)} non-negative weights, not all zero, for {FAMILIES}; "
            f"got {list(family_weights)}"
        )
    return weights / weights.sum()


def synthetic_series(
    seed: int, index: int, length: int = 1024, family_weights: Sequence[float] | None = None
) -> dict[str, Any]:
    """Synthetic series `index` of the stream of `seed`: {"target" float32 (length,), "start", "freq"}.

    `family_weights` weighs the families of `FAMILIES`; None draws them uniformly (a stream of its own: uniform
    weights given explicitly draw other series)."""
    if length < 8:
        raise ValueError(f"`length` must be at least 8, got {length}")
    if seed < 0 or index < 0:
        raise ValueError(f"`seed` and `index` must be non-negative, got {seed} and {index}")
    probabilities = None if family_weights is None else family_probabilities(family_weights)
    rng = np.random.default_rng([seed, index])
    freq = SYNTHETIC_FREQS[rng.integers(len(SYNTHETIC_FREQS))]
    periods = [p for p in (seasonal_period(freq), _EXTRA_PERIODS.get(freq)) if p and 1 < p < length]
    periods = periods or [max(2, length // 8)]
    choice = rng.integers(len(FAMILIES)) if probabilities is None else rng.choice(len(FAMILIES), p=probabilities)
    family = (_kernel_series, _structural_series, _state_space_series)[choice]
    values = family(rng, periods, length)
    values = values * 10 ** rng.uniform(-1, 3) + rng.normal(0, 100)  # arbitrary units and offsets
    start = pd.Timestamp("2000-01-01") + pd.Timedelta(days=int(rng.integers(0, 3650)))
    return {"target": values.astype(np.float32), "start": start.to_datetime64(), "freq": freq}


def convex_mix(series: list[np.ndarray], rng: np.random.Generator, length: int) -> np.ndarray | None:
    """A convex combination (Dirichlet weights) of standardised random `length`-step segments of 2 to 4 of `series`.

    Series shorter than `length` are not used; None when fewer than two are long enough. NaN stays missing.
    """
    long_enough = [np.asarray(s, dtype=float) for s in series if len(s) >= length]
    if len(long_enough) < 2:
        return None
    chosen = rng.choice(len(long_enough), size=min(len(long_enough), int(rng.integers(2, 5))), replace=False)
    weights = rng.dirichlet(np.ones(len(chosen)))
    mix = np.zeros(length)
    for weight, index in zip(weights, chosen, strict=True):
        values = long_enough[index]
        start = int(rng.integers(0, len(values) - length + 1))
        segment = values[start : start + length]
        finite = segment[np.isfinite(segment)]
        scale = finite.std() if finite.size > 1 else 0.0
        mix += weight * (segment - (finite.mean() if finite.size else 0.0)) / (scale if scale > 0 else 1.0)
    return mix.astype(np.float32)


def synthetic_dataset(
    seed: int, step: int, num_series: int, length: int = 1024, family_weights: Sequence[float] | None = None
) -> Dataset:
    """Series `step * num_series` ... `(step + 1) * num_series - 1` of the stream of `seed`, as a dataset."""
    rows = [synthetic_series(seed, step * num_series + i, length, family_weights) for i in range(num_series)]
    return Dataset.from_list(rows, features=_FEATURES)


class SyntheticWindows(torch.utils.data.IterableDataset):
    """Endless `ForecastWindowCollator` rows over synthetic series: buffer `step` holds `series_per_step` series and
    gives `windows_per_step` windows, all a function of (seed, step). Iteration starts at `start_step`;
    `family_weights` as in `synthetic_series`."""

    def __init__(
        self,
        prediction_length: int,
        seed: int = 0,
        series_per_step: int = 32,
        windows_per_step: int = 512,
        length: int = 1024,
        min_past: int = 64,
        start_step: int = 0,
        family_weights: Sequence[float] | None = None,
    ):
        if length < prediction_length + min_past:
            raise ValueError(f"`length` {length} is shorter than prediction_length + min_past")
        if family_weights is not None:
            family_probabilities(family_weights)
        self.prediction_length = prediction_length
        self.seed = seed
        self.series_per_step = series_per_step
        self.windows_per_step = windows_per_step
        self.length = length
        self.min_past = min_past
        self.start_step = start_step
        self.family_weights = family_weights

    def windows(self, step: int) -> TrainWindows:
        """The windows of buffer `step`."""
        return TrainWindows(
            synthetic_dataset(self.seed, step, self.series_per_step, self.length, self.family_weights),
            self.prediction_length,
            self.windows_per_step,
            self.min_past,
            seed=self.seed * 1_000_003 + step,
        )

    def __iter__(self) -> Iterator[dict[str, Any]]:
        step = self.start_step
        while True:
            windows = self.windows(step)
            for index in range(len(windows)):
                yield windows[index]
            step += 1

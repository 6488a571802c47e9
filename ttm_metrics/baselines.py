"""Statistical baselines from statsforecast, fitted on exactly the histories a model forecasts from.

`baseline_forecasts` fits SeasonalNaive, AutoETS, AutoTheta and MSTL on every (window, channel) history and adds
their median ensemble. statsforecast is an optional dependency (`pip install "ttm-hf[baselines]"`), imported only
when baselines are computed.

A fit that raises, or returns a non-finite forecast, is a failure: it is counted per model, and the window falls
back to the project's seasonal-naive forecast (`ttm_metrics.seasonal_naive`) so that every model is scored on the
same windows. The median ensemble is the median of the members that did not fail.
"""

from __future__ import annotations

import multiprocessing
import os
import warnings
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np

from .report import seasonal_naive

BASELINE_MODELS = ("SeasonalNaive", "AutoETS", "AutoTheta", "MSTL")
ENSEMBLE = "MedianEnsemble"
BASELINES = (*BASELINE_MODELS, ENSEMBLE)


@dataclass(frozen=True)
class BaselineForecasts:
    """Forecasts of every baseline: `points[name]` (windows, horizon, channels), `quantiles[name]` (windows,
    levels, horizon, channels) at `quantile_levels`, and `failures[name]` (series whose fit failed)."""

    points: dict[str, np.ndarray]
    quantiles: dict[str, np.ndarray]
    quantile_levels: tuple[float, ...]
    failures: dict[str, int]
    num_series: int


def statsforecast_models(season_length: int) -> dict[str, object]:
    """The statsforecast models of `BASELINE_MODELS` for a season length (imported here: an optional extra)."""
    try:
        from statsforecast.models import MSTL, AutoETS, AutoTheta, SeasonalNaive
    except ImportError as error:
        raise ImportError(
            'statistical baselines need statsforecast: pip install "ttm-hf[baselines]" (or statsforecast)'
        ) from error
    return {
        "SeasonalNaive": SeasonalNaive(season_length=season_length),
        "AutoETS": AutoETS(season_length=season_length),
        "AutoTheta": AutoTheta(season_length=season_length),
        "MSTL": MSTL(season_length=season_length),
    }


def _interval_keys(quantile_levels: Sequence[float]) -> tuple[list[float], list[str]]:
    """statsforecast interval levels (in %) and the output key of every quantile level."""
    intervals, keys = set(), []
    for q in quantile_levels:
        if q == 0.5:
            keys.append("mean")
            continue
        level = round(abs(2 * q - 1) * 100, 6)
        level = int(level) if level == int(level) else level
        intervals.add(level)
        keys.append(f"{'lo' if q < 0.5 else 'hi'}-{level}")
    return sorted(intervals), keys


def _prepare(history: np.ndarray) -> np.ndarray | None:
    """A history without its leading / trailing gaps, inner gaps linearly interpolated; None if under 2 points."""
    observed = np.flatnonzero(np.isfinite(history))
    if observed.size < 2:
        return None
    history = history[observed[0] : observed[-1] + 1]
    positions = np.arange(len(history))
    finite = np.isfinite(history)
    return np.interp(positions, positions[finite], history[finite])


def _fit_chunk(
    histories: list[np.ndarray], horizon: int, season_length: int, quantile_levels: tuple[float, ...]
) -> np.ndarray:
    """(series, models, levels + 1, horizon) forecasts of one chunk: the point, then the quantiles; NaN = failed."""
    models = statsforecast_models(season_length)
    intervals, keys = _interval_keys(quantile_levels)
    result = np.full((len(histories), len(models), len(keys) + 1, horizon), np.nan)
    for i, raw in enumerate(histories):
        history = _prepare(raw)
        if history is None:
            continue
        for j, model in enumerate(models.values()):
            try:
                with warnings.catch_warnings(), np.errstate(all="ignore"):
                    warnings.simplefilter("ignore")
                    output = model.forecast(y=history, h=horizon, level=intervals or None)
                forecast = np.stack([output["mean"], *(output[key] for key in keys)])
            except Exception:  # noqa: BLE001 - any failure of a fit is counted, not raised
                continue
            if np.isfinite(forecast).all():
                result[i, j] = forecast
    return result


def baseline_forecasts(
    contexts: np.ndarray,
    horizon: int,
    season_length: int,
    quantile_levels: Sequence[float] = (0.5,),
    n_jobs: int | None = None,
) -> BaselineForecasts:
    """Fit every baseline on every (window, channel) history of `contexts` and forecast `horizon` steps.

    Args:
        contexts: histories (windows, time, channels), NaN = missing; leading / trailing gaps are dropped and inner
            gaps interpolated before fitting.
        horizon: steps to forecast.
        season_length: the seasonal period m (`ttm_data.seasonal_period` of the data's frequency).
        quantile_levels: levels of the probabilistic forecasts, from statsforecast's prediction intervals
            (0.5 is the point forecast).
        n_jobs: worker processes (default: the CPUs available to this process, at most one per 8 series).
    """
    contexts = np.asarray(contexts, dtype=float)
    if contexts.ndim != 3:
        raise ValueError(f"contexts must have shape (windows, time, channels), got {contexts.shape}")
    if horizon < 1 or season_length < 1:
        raise ValueError(f"horizon and season_length must be >= 1, got {horizon} and {season_length}")
    levels = tuple(float(q) for q in quantile_levels)
    if not levels or not all(0 < q < 1 for q in levels):
        raise ValueError(f"quantile_levels must lie in (0, 1), got {levels}")
    if n_jobs is not None and n_jobs < 1:
        raise ValueError(f"n_jobs must be a positive integer, got {n_jobs}")
    statsforecast_models(season_length)  # fail early, with the install hint, when statsforecast is missing
    windows, _, channels = contexts.shape
    series = list(np.moveaxis(contexts, 2, 1).reshape(windows * channels, -1))
    fitted = _fit_all(series, horizon, season_length, levels, n_jobs)  # (series, models, levels + 1, horizon)

    fallback = seasonal_naive(contexts, horizon, min(season_length, contexts.shape[1]))
    fallback = np.moveaxis(fallback, 2, 1).reshape(windows * channels, 1, horizon)
    failed = ~np.isfinite(fitted[:, :, 0]).all(axis=-1)  # (series, models); a failed fit is all NaN
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # every member failed: NaN, replaced below
        ensemble = np.nanmedian(fitted, axis=1)
    outputs = {name: fitted[:, j] for j, name in enumerate(BASELINE_MODELS)} | {ENSEMBLE: ensemble}
    failures = {name: int(failed[:, j].sum()) for j, name in enumerate(BASELINE_MODELS)}
    failures[ENSEMBLE] = int(failed.all(axis=1).sum())
    points, quantiles = {}, {}
    for name, forecast in outputs.items():
        ok = np.isfinite(forecast).all(axis=(1, 2))
        forecast = np.where(ok[:, None, None], forecast, fallback)  # (series, levels + 1, horizon)
        forecast = forecast.reshape(windows, channels, len(levels) + 1, horizon)
        points[name] = np.moveaxis(forecast[:, :, 0], 1, 2)
        quantiles[name] = np.moveaxis(forecast[:, :, 1:], 1, 3)
    return BaselineForecasts(points, quantiles, levels, failures, windows * channels)


def _fit_all(
    series: list[np.ndarray], horizon: int, season_length: int, levels: tuple[float, ...], n_jobs: int | None
) -> np.ndarray:
    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    workers = n_jobs or available
    workers = max(1, min(workers, len(series) // 8))
    if workers == 1:
        return _fit_chunk(series, horizon, season_length, levels)
    chunks = [list(chunk) for chunk in np.array_split(np.arange(len(series)), workers * 4) if len(chunk)]
    # spawn: a forked copy of a process that has run torch's thread pools can hang
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        parts = pool.map(
            _fit_chunk,
            [[series[i] for i in chunk] for chunk in chunks],
            *zip(*[(horizon, season_length, levels)] * len(chunks), strict=True),
        )
        return np.concatenate(list(parts))

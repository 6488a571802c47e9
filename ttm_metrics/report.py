"""Evaluation reports: model metrics next to those of a seasonal-naive forecast, in original and scaled units."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .loading import METRIC_MODULES, load_metric

if TYPE_CHECKING:
    from .baselines import BaselineForecasts

METRICS = ("mse", "mae", "mase", "smape", "wql")  # wql only for quantile forecasts


def seasonal_naive(contexts: np.ndarray, horizon: int, period: int) -> np.ndarray:
    """Repeat the last season of every history: contexts (windows, time, channels) -> (windows, horizon, channels).

    A missing (NaN) value of the last season is taken from the same phase of the latest earlier season that has one,
    else it is the last observed value of the history.
    """
    contexts = np.asarray(contexts, dtype=float)
    if contexts.ndim != 3:
        raise ValueError(f"contexts must have shape (windows, time, channels), got {contexts.shape}")
    windows, length, channels = contexts.shape
    if period < 1 or length < period:
        raise ValueError(f"seasonal period must be in [1, {length}] (the history length), got {period}")
    seasons = length // period
    recent = contexts[:, length - seasons * period :].reshape(windows, seasons, period, channels)
    last = recent[:, -1].copy()
    for earlier in recent[:, -2::-1].swapaxes(0, 1):  # earlier seasons, latest first
        missing = np.isnan(last)
        last[missing] = earlier[missing]
    missing = np.isnan(last)
    if missing.any():
        observed = ~np.isnan(contexts)
        if not observed.any(axis=1).all():
            window, channel = np.argwhere(~observed.any(axis=1))[0]
            raise ValueError(f"seasonal naive: window {window}, channel {channel} has no observed value in its history")
        latest = length - 1 - np.argmax(observed[:, ::-1], axis=1)  # (windows, channels)
        last_observed = np.take_along_axis(contexts, latest[:, None], axis=1)  # (windows, 1, channels)
        last = np.where(missing, last_observed, last)
    return np.tile(last, (1, -(-horizon // period), 1))[:, :horizon]


def evaluation_report(
    forecasts: np.ndarray,
    actuals: np.ndarray,
    contexts: np.ndarray,
    seasonal_period: int,
    quantile_forecasts: np.ndarray | None = None,
    quantile_levels: Sequence[float] | None = None,
    scaler_mean: np.ndarray | None = None,
    scaler_std: np.ndarray | None = None,
    baselines: BaselineForecasts | None = None,
) -> dict[str, Any]:
    """Score forecasts and the seasonal-naive forecast of the same windows with the `ttm_metrics` modules.

    Args:
        forecasts: point forecasts (windows, horizon, channels).
        actuals: the actual values, same shape; NaN = missing.
        contexts: history before every window (windows, time, channels), at least seasonal_period + 1 steps; it
            gives the seasonal-naive forecast and MASE's in-sample scale. NaN = missing.
        seasonal_period: season length m of the data's frequency (`ttm_data.seasonal_period`: hourly 24, daily 7, ...).
        quantile_forecasts: optional (windows, levels, horizon, channels), as TTM's `quantile_outputs`; adds "wql".
        quantile_levels: the levels of `quantile_forecasts`.
        scaler_mean, scaler_std: optional statistics of a standard scaler fitted on the training data, per channel
            (channels,) or per window and channel (windows, channels) for per-series scalers; adds the metrics in
            scaled units, (value - mean) / std.
        baselines: optional statistical baselines of the same windows (`ttm_metrics.baseline_forecasts`); adds
            the "baselines" section.

    Returns:
        {"seasonal_period", "num_windows", "horizon", "num_channels", "quantile_levels",
         "metrics": {"original": {metric: {"model", "seasonal_naive", "ratio"}}, "scaled": {...}}}.
        ratio = model / seasonal_naive (below 1: the model beats the baseline). Undefined values are None.
        With `baselines`, also "baselines": {"quantile_levels", "num_series", "failures": {name: count},
        "metrics": {"original": {metric: {"model", name: {"value", "model_ratio"}, ...}}}} in the data's
        units; its "wql" scores the model's
        quantiles at the baselines' levels (a point model's forecast is its median, level 0.5).
    """
    forecasts, actuals, contexts = (np.asarray(a, dtype=float) for a in (forecasts, actuals, contexts))
    if forecasts.ndim != 3 or actuals.shape != forecasts.shape:
        raise ValueError(
            f"forecasts and actuals must share a shape (windows, horizon, channels), got {forecasts.shape} and "
            f"{actuals.shape}"
        )
    windows, horizon, channels = forecasts.shape
    if contexts.ndim != 3 or (contexts.shape[0], contexts.shape[2]) != (windows, channels):
        raise ValueError(f"contexts must have shape ({windows}, time, {channels}), got {contexts.shape}")
    if (quantile_forecasts is None) != (quantile_levels is None):
        raise ValueError("pass quantile_forecasts and quantile_levels together")
    if quantile_forecasts is not None:
        quantile_forecasts = np.asarray(quantile_forecasts, dtype=float)
        expected = (windows, len(quantile_levels), horizon, channels)
        if quantile_forecasts.shape != expected:
            raise ValueError(f"quantile_forecasts must have shape {expected}, got {quantile_forecasts.shape}")
    baseline = seasonal_naive(contexts, horizon, seasonal_period)
    baseline_quantiles = None
    if quantile_forecasts is not None:
        baseline_quantiles = np.repeat(baseline[:, None], len(quantile_levels), axis=1)
    levels = None if quantile_levels is None else [float(q) for q in quantile_levels]
    units = {"original": lambda values: values}
    if scaler_mean is not None or scaler_std is not None:
        units["scaled"] = _standard_scaler(scaler_mean, scaler_std, windows, channels)

    modules = {name: load_metric(name) for name in METRIC_MODULES if name != "wql" or levels is not None}
    series = (forecasts, quantile_forecasts, baseline, baseline_quantiles, actuals, contexts)
    metrics = {unit: _compare(modules, *map(scale, series), seasonal_period, levels) for unit, scale in units.items()}
    report = {
        "seasonal_period": seasonal_period,
        "num_windows": windows,
        "horizon": horizon,
        "num_channels": channels,
        "quantile_levels": levels,
        "metrics": metrics,
    }
    if baselines is not None:
        model_quantiles = _at_levels(forecasts, quantile_forecasts, levels, baselines.quantile_levels)
        report["baselines"] = {
            "quantile_levels": list(baselines.quantile_levels),
            "num_series": baselines.num_series,
            "failures": dict(baselines.failures),
            "metrics": {
                "original": _compare_baselines(
                    forecasts, model_quantiles, baselines, actuals, contexts, seasonal_period
                )
            },
        }
    return report


def reuse_baselines(report: dict[str, Any], earlier: dict[str, Any]) -> dict[str, Any]:
    """`report` with the "baselines" section of `earlier`, an `evaluation_report` of the same windows for another
    model: the statsforecast fits depend on the windows alone, so they are not fitted again. The baselines' values
    are kept, the model's values and ratios come from `report`.

    The windows are checked through what both reports measured on them: the season, the shape, and the scores of the
    seasonal-naive forecast. `report`'s quantile levels must be the baselines' (its "wql" is the model's at them).
    """
    section = earlier.get("baselines")
    if section is None:
        raise ValueError("earlier: expected a report with a 'baselines' section (evaluation_report(..., baselines=))")
    for key in ("seasonal_period", "num_windows", "horizon", "num_channels"):
        if report[key] != earlier[key]:
            raise ValueError(f"earlier: not the same windows ({key} {earlier[key]}, this report's {report[key]})")
    metrics = report["metrics"]["original"]
    for metric, values in earlier["metrics"]["original"].items():
        naive, earlier_naive = metrics.get(metric, {}).get("seasonal_naive"), values["seasonal_naive"]
        if metric != "wql" and not _same(naive, earlier_naive):
            raise ValueError(
                f"earlier: not the same windows (seasonal-naive {metric} {earlier_naive}, this report's {naive})"
            )
    levels = section["quantile_levels"]
    if report["quantile_levels"] != levels:
        raise ValueError(
            f"earlier: the baselines' quantile levels {levels} are not the model's {report['quantile_levels']}; fit "
            "the baselines again"
        )
    scores = {}
    for metric, entries in section["metrics"]["original"].items():
        model = metrics[metric]["model"]
        scores[metric] = {"model": model} | {
            name: {"value": entry["value"], "model_ratio": _ratio(model, entry["value"])}
            for name, entry in entries.items()
            if name != "model"
        }
    return report | {"baselines": section | {"metrics": {"original": scores}}}


def _same(value: float | None, other: float | None) -> bool:
    if value is None or other is None:
        return value is other
    return math.isclose(value, other, rel_tol=1e-9, abs_tol=1e-12)


def _at_levels(
    forecasts: np.ndarray,
    quantiles: np.ndarray | None,
    levels: list[float] | None,
    wanted: Sequence[float],
) -> np.ndarray | None:
    """The model's quantile forecasts at the `wanted` levels: its own, or its point forecast as the median."""
    if levels is not None and all(q in levels for q in wanted):
        return quantiles[:, [levels.index(q) for q in wanted]]
    if list(wanted) == [0.5]:
        return forecasts[:, None]
    return None


def _compare_baselines(
    forecasts: np.ndarray,
    quantiles: np.ndarray | None,
    baselines: BaselineForecasts,
    actuals: np.ndarray,
    contexts: np.ndarray,
    period: int,
) -> dict[str, dict[str, Any]]:
    levels = list(baselines.quantile_levels)
    modules = {name: load_metric(name) for name in METRIC_MODULES}
    model = _score(modules, forecasts, quantiles, actuals, contexts, period, levels)
    scores = {
        name: _score(modules, baselines.points[name], baselines.quantiles[name], actuals, contexts, period, levels)
        for name in baselines.points
    }
    return {
        metric: {"model": model.get(metric)}
        | {
            name: {"value": score[metric], "model_ratio": _ratio(model.get(metric), score[metric])}
            for name, score in scores.items()
        }
        for metric in METRICS
        if metric in next(iter(scores.values()))
    }


def format_report(report: dict[str, Any]) -> str:
    """The metrics of `evaluation_report` as a fixed-width text table."""
    lines = [f"{'units':<9} {'metric':<7} {'model':>12} {'seasonal_naive':>15} {'ratio':>8}"]
    for unit, metrics in report["metrics"].items():
        for name, values in metrics.items():
            model, naive, ratio = (_format_number(values[key]) for key in ("model", "seasonal_naive", "ratio"))
            lines.append(f"{unit:<9} {name:<7} {model:>12} {naive:>15} {ratio:>8}")
    if "baselines" in report:
        lines += ["", *format_baselines(report["baselines"])]
    return "\n".join(lines)


def format_baselines(section: dict[str, Any]) -> list[str]:
    """The "baselines" section of a report: every baseline's value and the model's ratio to it."""
    names = list(section["failures"])
    lines = [
        f"statistical baselines on the same windows ({section['num_series']} series; wql at levels "
        f"{', '.join(f'{q:g}' for q in section['quantile_levels'])}); ratio = model / baseline",
        f"{'units':<9} {'metric':<7} {'model':>10} " + " ".join(f"{name:>14}" for name in names),
    ]
    for unit, metrics in section["metrics"].items():
        for metric, values in metrics.items():
            cells = " ".join(f"{_format_number(values[name]['value']):>14}" for name in names)
            lines.append(f"{unit:<9} {metric:<7} {_format_number(values['model']):>10} {cells}")
            ratios = " ".join(f"{_format_number(values[name]['model_ratio']):>14}" for name in names)
            lines.append(f"{'':<9} {'ratio':<7} {'':>10} {ratios}")
    failures = ", ".join(f"{name} {count}" for name, count in section["failures"].items())
    lines.append(f"failed fits (seasonal naive used instead): {failures}")
    return lines


def _format_number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def _standard_scaler(
    mean: np.ndarray | None, std: np.ndarray | None, windows: int, channels: int
) -> Callable[[np.ndarray | None], np.ndarray | None]:
    """(values - mean) / std per channel (and per window for (windows, channels) statistics); passes None through."""
    if mean is None or std is None:
        raise ValueError("pass scaler_mean and scaler_std together")
    mean, std = np.asarray(mean, dtype=float), np.asarray(std, dtype=float)
    if mean.shape not in {(channels,), (windows, channels)} or std.shape != mean.shape:
        raise ValueError(
            f"scaler_mean and scaler_std must both have shape ({channels},) or ({windows}, {channels}), got "
            f"{mean.shape} and {std.shape}"
        )
    if not (np.isfinite(mean).all() and np.isfinite(std).all() and (std > 0).all()):
        raise ValueError("scaler_mean must be finite and scaler_std finite and positive")

    def scale(values: np.ndarray | None) -> np.ndarray | None:
        if values is None:
            return None
        shape = (channels,) if mean.ndim == 1 else (windows, *[1] * (values.ndim - 2), channels)
        return (values - mean.reshape(shape)) / std.reshape(shape)

    return scale


def _compare(
    modules: dict[str, Any],
    forecasts: np.ndarray,
    quantiles: np.ndarray | None,
    baseline: np.ndarray,
    baseline_quantiles: np.ndarray | None,
    actuals: np.ndarray,
    contexts: np.ndarray,
    period: int,
    levels: list[float] | None,
) -> dict[str, dict[str, float | None]]:
    model = _score(modules, forecasts, quantiles, actuals, contexts, period, levels)
    naive = _score(modules, baseline, baseline_quantiles, actuals, contexts, period, levels)
    return {
        name: {"model": model[name], "seasonal_naive": naive[name], "ratio": _ratio(model[name], naive[name])}
        for name in model
    }


def _score(
    modules: dict[str, Any],
    forecasts: np.ndarray,
    quantiles: np.ndarray | None,
    actuals: np.ndarray,
    contexts: np.ndarray,
    period: int,
    levels: list[float] | None,
) -> dict[str, float | None]:
    """Every metric of one forecast; each (window, channel) pair is one example of the metric modules."""
    predictions, references = _per_series(forecasts), _per_series(actuals)
    scores = modules["point"].compute(predictions=predictions, references=references)
    scores |= modules["mase"].compute(
        predictions=predictions, references=references, contexts=_per_series(contexts), seasonal_period=period
    )
    scores |= modules["smape"].compute(predictions=predictions, references=references)
    if quantiles is not None:
        per_series = np.moveaxis(quantiles, 3, 1).reshape(-1, *quantiles.shape[1:3])
        scores["wql"] = modules["wql"].compute(predictions=per_series, references=references, quantile_levels=levels)[
            "wql"
        ]
    return {name: _finite_or_none(scores[name]) for name in METRICS if name in scores}


def _per_series(values: np.ndarray) -> np.ndarray:
    """(windows, time, channels) -> (windows * channels, time)."""
    return np.moveaxis(values, 2, 1).reshape(-1, values.shape[1])


def _finite_or_none(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _ratio(model: float | None, baseline: float | None) -> float | None:
    if model is None or baseline is None or baseline == 0:
        return None
    return model / baseline

"""Weighted quantile loss (WQL) of quantile forecasts and its CRPS approximation, as an offline `evaluate` metric."""

from __future__ import annotations

import datasets
import evaluate
import numpy as np

_DESCRIPTION = """
Weighted quantile loss of level q: wql_q = 2 * sum pinball_q(reference, forecast_q) / sum |reference|, with
pinball_q(y, f) = max(q (y - f), (q - 1) (y - f)) and both sums over every observed step of every series.
The mean of wql_q over the levels approximates the continuous ranked probability score (CRPS) normalised by
sum |reference|; it is what GIFT-Eval reports as CRPS (levels 0.1 ... 0.9). A point forecast is scored by
repeating it at every level. A NaN reference marks a missing value and is left out; forecasts must be finite.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: list of quantile forecasts, one per series, each a list of Q sequences (one per level) as long
        as the series' references.
    references: list of actual values, one sequence of floats per series; NaN = missing.
    quantile_levels: the Q levels, each strictly between 0 and 1, in the order of the predictions.
Returns:
    wql: mean of wql_q over the levels, the CRPS approximation (NaN when sum |reference| is 0).
    wql_per_level: {level: wql_q}.
Examples:
    >>> metric = evaluate.load("ttm_metrics/wql")
    >>> metric.compute(predictions=[[[0.0], [2.0]]], references=[[1.0]], quantile_levels=[0.25, 0.75])
    {'wql': 0.5, 'wql_per_level': {0.25: 0.5, 0.75: 0.5}}
"""


class Wql(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": datasets.Sequence(datasets.Sequence(datasets.Value("float64"))),
                    "references": datasets.Sequence(datasets.Value("float64")),
                }
            ),
        )

    def _compute(self, predictions: list, references: list, quantile_levels: list[float]) -> dict:
        levels = np.asarray(quantile_levels, dtype=float)
        if levels.ndim != 1 or levels.size == 0 or not ((levels > 0) & (levels < 1)).all():
            raise ValueError(f"quantile_levels must be a non-empty list of levels in (0, 1), got {quantile_levels!r}")
        losses = np.zeros(levels.size)
        total = 0.0
        for i, (prediction, reference) in enumerate(zip(predictions, references, strict=True)):
            prediction, reference = np.asarray(prediction, dtype=float), np.asarray(reference, dtype=float)
            if prediction.shape != (levels.size, reference.size):
                raise ValueError(
                    f"example {i}: predictions must have shape (levels={levels.size}, steps={reference.size}), "
                    f"got {prediction.shape}"
                )
            if not np.isfinite(prediction).all():
                raise ValueError(f"example {i}: predictions must be finite")
            observed = ~np.isnan(reference)
            error = reference[observed] - prediction[:, observed]
            losses += np.maximum(levels[:, None] * error, (levels[:, None] - 1) * error).sum(axis=1)
            total += np.abs(reference[observed]).sum()
        per_level = 2 * losses / total if total > 0 else np.full(levels.size, np.nan)
        return {
            "wql": float(per_level.mean()),
            "wql_per_level": {float(q): float(v) for q, v in zip(levels, per_level, strict=True)},
        }

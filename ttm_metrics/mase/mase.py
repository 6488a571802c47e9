"""Mean absolute scaled error (MASE) of point forecasts, as an offline `evaluate` metric."""

from __future__ import annotations

import datasets
import evaluate
import numpy as np

_DESCRIPTION = """
MASE divides each forecast's mean absolute error by the in-sample mean absolute error of the seasonal-naive
forecast on that forecast's history: scale = mean over t of |context[t] - context[t - m]| with m the seasonal
period (GIFT-Eval convention: 5min 288, 10min 144, 15min 96, 30min 48, hourly 24, daily 7, weekly 52, monthly 12,
quarterly 4). The metric is the mean of these ratios over the examples (as in GluonTS / GIFT-Eval).
Each example is one forecast of one series (channel) with its history. NaN marks a missing value: missing
references are left out of the error, pairs with a missing value are left out of the scale. A series with no
scale (a constant history, or no two observed values m steps apart) is left out, as is one with no observed
reference.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: list of forecasts, one sequence of floats per series.
    references: list of actual values, same lengths as `predictions`; NaN = missing.
    contexts: list of histories (values before the forecast start), one per series, longer than seasonal_period.
    seasonal_period: the season length m >= 1 (1 gives the plain naive scale).
Returns:
    mase: mean over the series of MAE / seasonal-naive in-sample MAE (NaN when no series can be scored).
Examples:
    >>> metric = evaluate.load("ttm_metrics/mase")
    >>> metric.compute(predictions=[[2.0]], references=[[1.0]], contexts=[[0.0, 1.0, 0.0, 3.0]], seasonal_period=2)
    {'mase': 1.0}
"""


def seasonal_scale(context: np.ndarray, period: int) -> float:
    """In-sample MAE of the seasonal-naive forecast over the observed pairs of `context`; NaN when it has none."""
    differences = np.abs(context[period:] - context[:-period])
    differences = differences[~np.isnan(differences)]
    return float(differences.mean()) if differences.size else float("nan")


class Mase(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": datasets.Sequence(datasets.Value("float64")),
                    "references": datasets.Sequence(datasets.Value("float64")),
                    "contexts": datasets.Sequence(datasets.Value("float64")),
                }
            ),
        )

    def _compute(self, predictions: list, references: list, contexts: list, seasonal_period: int) -> dict:
        if (
            isinstance(seasonal_period, bool)
            or not isinstance(seasonal_period, int | np.integer)
            or seasonal_period < 1
        ):
            raise ValueError(f"seasonal_period must be a positive integer, got {seasonal_period!r}")
        ratios = []
        for i, (prediction, reference, context) in enumerate(zip(predictions, references, contexts, strict=True)):
            prediction, reference = np.asarray(prediction, dtype=float), np.asarray(reference, dtype=float)
            if prediction.shape != reference.shape:
                raise ValueError(
                    f"example {i}: prediction length {prediction.size} != reference length {reference.size}"
                )
            if not np.isfinite(prediction).all():
                raise ValueError(f"example {i}: predictions must be finite")
            observed = ~np.isnan(reference)
            scale = seasonal_scale(np.asarray(context, dtype=float), seasonal_period)
            if scale > 0 and observed.any():  # False for a NaN scale
                ratios.append(np.abs(prediction[observed] - reference[observed]).mean() / scale)
        return {"mase": float(np.mean(ratios)) if ratios else float("nan")}

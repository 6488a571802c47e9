"""Mean squared error and mean absolute error of point forecasts, as an offline `evaluate` metric."""

from __future__ import annotations

import datasets
import evaluate
import numpy as np

_DESCRIPTION = """
MSE and MAE of point forecasts, averaged over every observed forecast step of every series.
Each example is one forecast of one series (channel): `predictions` and `references` are equally long
sequences of floats. A NaN reference marks a missing value and is left out; predictions must be finite.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: list of forecasts, one sequence of floats per series.
    references: list of actual values, same lengths as `predictions`; NaN = missing.
Returns:
    mse: mean of (prediction - reference)^2 over the observed references (NaN when none is observed).
    mae: mean of |prediction - reference| over the observed references (NaN when none is observed).
Examples:
    >>> metric = evaluate.load("ttm_metrics/point")
    >>> metric.compute(predictions=[[1.0, 2.0]], references=[[2.0, 4.0]])
    {'mse': 2.5, 'mae': 1.5}
"""


def _errors(predictions: list, references: list) -> np.ndarray:
    """Forecast errors of the observed references, concatenated over all examples."""
    errors = []
    for i, (prediction, reference) in enumerate(zip(predictions, references, strict=True)):
        prediction, reference = np.asarray(prediction, dtype=float), np.asarray(reference, dtype=float)
        if prediction.shape != reference.shape:
            raise ValueError(f"example {i}: prediction length {prediction.size} != reference length {reference.size}")
        if not np.isfinite(prediction).all():
            raise ValueError(f"example {i}: predictions must be finite")
        observed = ~np.isnan(reference)
        errors.append(prediction[observed] - reference[observed])
    return np.concatenate(errors) if errors else np.empty(0)


class Point(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": datasets.Sequence(datasets.Value("float64")),
                    "references": datasets.Sequence(datasets.Value("float64")),
                }
            ),
        )

    def _compute(self, predictions: list, references: list) -> dict[str, float]:
        errors = _errors(predictions, references)
        if errors.size == 0:
            return {"mse": float("nan"), "mae": float("nan")}
        return {"mse": float(np.mean(errors**2)), "mae": float(np.mean(np.abs(errors)))}

"""Symmetric mean absolute percentage error (sMAPE) of point forecasts, as an offline `evaluate` metric."""

from __future__ import annotations

import datasets
import evaluate
import numpy as np

_DESCRIPTION = """
sMAPE = mean over the observed forecast steps of 2 |prediction - reference| / (|prediction| + |reference|),
between 0 and 2 (multiply by 100 for the percentage of the M4 competition). A step where both the prediction and
the reference are 0 is a perfect forecast and counts 0. Each example is one forecast of one series (channel).
A NaN reference marks a missing value and is left out; predictions must be finite.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: list of forecasts, one sequence of floats per series.
    references: list of actual values, same lengths as `predictions`; NaN = missing.
Returns:
    smape: mean symmetric absolute percentage error in [0, 2] (NaN when no reference is observed).
Examples:
    >>> metric = evaluate.load("ttm_metrics/smape")
    >>> metric.compute(predictions=[[1.0, 0.0, 0.0]], references=[[3.0, 0.0, 2.0]])
    {'smape': 1.0}
"""


class Smape(evaluate.Metric):
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
        terms = []
        for i, (prediction, reference) in enumerate(zip(predictions, references, strict=True)):
            prediction, reference = np.asarray(prediction, dtype=float), np.asarray(reference, dtype=float)
            if prediction.shape != reference.shape:
                raise ValueError(
                    f"example {i}: prediction length {prediction.size} != reference length {reference.size}"
                )
            if not np.isfinite(prediction).all():
                raise ValueError(f"example {i}: predictions must be finite")
            observed = ~np.isnan(reference)
            prediction, reference = prediction[observed], reference[observed]
            denominator = np.abs(prediction) + np.abs(reference)
            numerator = 2 * np.abs(prediction - reference)
            terms.append(np.divide(numerator, denominator, out=np.zeros_like(numerator), where=denominator > 0))
        terms = np.concatenate(terms) if terms else np.empty(0)
        return {"smape": float(np.mean(terms)) if terms.size else float("nan")}

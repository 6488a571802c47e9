"""Forecast metrics as offline `evaluate` modules, and evaluation reports against a seasonal-naive baseline.

Each metric module is a directory next to this file that `evaluate.load` reads from disk, with no Hub access:

- `point`: MSE and MAE;
- `mase`: mean absolute scaled error (seasonal-naive in-sample scale);
- `smape`: symmetric mean absolute percentage error, in [0, 2];
- `wql`: weighted quantile loss per level and its mean over levels, the CRPS approximation.

`baseline_forecasts` fits statsforecast's SeasonalNaive, AutoETS, AutoTheta, MSTL and their median ensemble on the
same histories (optional extra `baselines`), for `evaluation_report(..., baselines=...)`.
"""

from .baselines import BASELINES, BaselineForecasts, baseline_forecasts
from .loading import METRIC_MODULES, load_metric, metric_path
from .report import METRICS, evaluation_report, format_report, reuse_baselines, seasonal_naive

__all__ = [
    "BASELINES",
    "BaselineForecasts",
    "METRICS",
    "METRIC_MODULES",
    "baseline_forecasts",
    "evaluation_report",
    "format_report",
    "load_metric",
    "metric_path",
    "reuse_baselines",
    "seasonal_naive",
]

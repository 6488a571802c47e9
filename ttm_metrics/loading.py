"""Offline loading of the metric modules that ship inside this package."""

from __future__ import annotations

from pathlib import Path

import evaluate

METRIC_MODULES = ("point", "mase", "smape", "wql")


def metric_path(name: str) -> Path:
    """Directory of the metric module `name`, to pass to `evaluate.load`."""
    if name not in METRIC_MODULES:
        raise ValueError(f"unknown metric module {name!r}; choose from {', '.join(METRIC_MODULES)}")
    return Path(__file__).resolve().parent / name


def load_metric(name: str) -> evaluate.EvaluationModule:
    """Load the metric module `name` ("point", "mase", "smape" or "wql") from this package, without the Hub."""
    return evaluate.load(str(metric_path(name)), keep_in_memory=True)

"""Time-series data for TTM: files to Hub-layout series datasets, chronological splits, forecast windows and the
`Trainer` collator.

```python
from ttm_data import EvalWindows, ForecastWindowCollator, TrainWindows, chronological_split, load_series

splits = chronological_split(load_series("data.csv", target_columns=["load"]), validation_fraction=0.1)
train = TrainWindows(splits["train"], prediction_length=96)
validation = EvalWindows(splits["validation"], prediction_length=96, stride=1)
collator = ForecastWindowCollator.from_config(model.config)  # Trainer(..., data_collator=collator)
```
"""

import importlib

# Public names and their submodules, imported on first use: `ttm_data.cli` (the scripts' argument parsing) must not
# pull in pandas, datasets or torch.
_EXPORTS = {
    "ForecastWindowCollator": "collator",
    **dict.fromkeys(["freq_token", "parse_freq", "seasonal_period"], "frequency"),
    **dict.fromkeys(
        ["LOAD_OPTIONS", "SeriesSchema", "load_series", "read_table", "series_from_frame", "series_schema"], "loading"
    ),
    **dict.fromkeys(
        ["chronological_split", "fewshot_subset", "series_lengths", "slice_series", "split_starts"], "splits"
    ),
    **dict.fromkeys(["EvalWindows", "SeriesStore", "TrainWindows", "extract_windows"], "windows"),
}


def __getattr__(name: str) -> object:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


__all__ = [
    "LOAD_OPTIONS",
    "EvalWindows",
    "ForecastWindowCollator",
    "SeriesSchema",
    "SeriesStore",
    "TrainWindows",
    "chronological_split",
    "extract_windows",
    "fewshot_subset",
    "freq_token",
    "load_series",
    "parse_freq",
    "read_table",
    "seasonal_period",
    "series_from_frame",
    "series_lengths",
    "series_schema",
    "slice_series",
    "split_starts",
]

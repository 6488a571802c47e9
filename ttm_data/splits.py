"""Chronological train / validation / test splits and few-shot subsets of a series dataset.

A split keeps, for every series, the points up to the end of that split, and records in `split_start` the first
position whose value belongs to it: training windows then never see validation or test points, and validation and
test windows may read earlier points as context while their forecast targets lie inside their split. Series keep
their row index across the splits.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from datasets import Dataset, DatasetDict, DatasetInfo, Features, Value

from .frequency import parse_freq

_TIME_AXIS_COLUMNS = ("target", "feat_dynamic_real")


def series_lengths(dataset: Dataset) -> np.ndarray:
    """Number of time steps of every series."""
    targets = dataset.with_format("numpy", columns=["target"])[:]["target"]
    return np.array([np.shape(target)[-1] for target in targets], dtype=np.int64)


def split_starts(dataset: Dataset) -> np.ndarray:
    """First position of every series that belongs to the dataset's split (0 for a dataset that is not a split)."""
    if "split_start" not in dataset.column_names:
        return np.zeros(len(dataset), dtype=np.int64)
    return np.asarray(dataset["split_start"], dtype=np.int64)


def chronological_split(
    dataset: Dataset,
    validation_fraction: float = 0.1,
    test_fraction: float = 0.2,
    validation_start: str | pd.Timestamp | None = None,
    test_start: str | pd.Timestamp | None = None,
) -> DatasetDict:
    """Split every series in time into train / validation / test (a `DatasetDict` with those keys).

    Each boundary comes from a timestamp when given (`validation_start`, `test_start`: the first timestamp of that
    split), else from a fraction of the series' length (the last `test_fraction` of the points are test, the
    `validation_fraction` before them validation). The train rows end where validation starts; the validation rows
    end where test starts and carry `split_start` = that boundary; the test rows hold the whole series.
    """
    for name, value in (("validation_fraction", validation_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= value < 1.0:
            raise ValueError(f"`{name}` must be in [0, 1), got {value!r}.")
    if validation_fraction + test_fraction >= 1.0:
        raise ValueError(
            f"`validation_fraction` + `test_fraction` must be below 1 so that training data remains, got "
            f"{validation_fraction} + {test_fraction}."
        )
    lengths = series_lengths(dataset)
    starts = dataset.with_format(None)["start"]
    freqs = dataset["freq"]
    if test_start is not None:
        test_cut = _positions(starts, freqs, lengths, test_start, "test_start")
    else:
        test_cut = lengths - np.round(lengths * test_fraction).astype(np.int64)
    if validation_start is not None:
        validation_cut = _positions(starts, freqs, lengths, validation_start, "validation_start")
        if test_start is not None and pd.Timestamp(validation_start) > pd.Timestamp(test_start):
            raise ValueError(
                f"`validation_start` ({validation_start}) must not come after `test_start` ({test_start})."
            )
    else:
        validation_cut = test_cut - np.round(lengths * validation_fraction).astype(np.int64)
    validation_cut = np.clip(validation_cut, 0, test_cut)
    zeros = np.zeros_like(lengths)
    return DatasetDict(
        train=slice_series(dataset, zeros, validation_cut, zeros),
        validation=slice_series(dataset, zeros, test_cut, validation_cut),
        test=slice_series(dataset, zeros, lengths, test_cut),
    )


def fewshot_subset(dataset: Dataset, fraction: float, context_length: int) -> Dataset:
    """Keep the last `fraction` of every series' forecast targets, plus `context_length` points of context before.

    The few-shot setting of the TTM paper: finetune on the most recent 5 % or 10 % of the training data.
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"`fewshot_fraction` must be in (0, 1], got {fraction!r}.")
    if fraction == 1.0:
        return dataset
    lengths, first = series_lengths(dataset), split_starts(dataset)
    kept = np.array([math.ceil(fraction * n) for n in lengths - first], dtype=np.int64)
    first_target = lengths - kept
    begin = np.maximum(first_target - context_length, 0)
    return slice_series(dataset, begin, lengths, first_target - begin)


def slice_series(dataset: Dataset, begin: np.ndarray, end: np.ndarray, split_start: np.ndarray) -> Dataset:
    """Rows holding positions [begin, end) of every series (`start` moves along) and the given `split_start`."""
    time_columns = [c for c in _TIME_AXIS_COLUMNS if c in dataset.column_names]
    arrays = dataset.with_format("numpy", columns=time_columns)[:]
    rows = dataset.remove_columns([*time_columns, *(["split_start"] if "split_start" in dataset.column_names else [])])
    rows = rows.with_format(None).to_dict()
    if begin.any():
        rows["start"] = [
            start + int(b) * parse_freq(freq) for start, freq, b in zip(rows["start"], rows["freq"], begin, strict=True)
        ]
    for column in time_columns:
        rows[column] = [a[..., b:e] for a, b, e in zip(arrays[column], begin, end, strict=True)]
    rows["split_start"] = [int(s) for s in split_start]
    features = Features({**dataset.features, "split_start": Value("int64")})
    info = DatasetInfo(description=dataset.info.description, features=Features({c: features[c] for c in features}))
    return Dataset.from_dict({c: rows[c] for c in features}, info=info)


def _positions(
    starts: list, freqs: list[str], lengths: np.ndarray, when: str | pd.Timestamp, argument: str
) -> np.ndarray:
    """For every series, the number of its time steps before `when`."""
    try:
        when = pd.Timestamp(when)
    except ValueError as error:
        raise ValueError(f"`{argument}`: cannot parse {when!r} as a timestamp ({error}).") from None
    positions = []
    for start, freq, length in zip(starts, freqs, lengths, strict=True):
        start = pd.Timestamp(start)
        moment = when
        if start.tz is not None and moment.tz is None:
            moment = moment.tz_localize(start.tz)
        elif start.tz is None and moment.tz is not None:
            raise ValueError(f"`{argument}` ({when}) has a time zone but the series timestamps have none.")
        grid = pd.date_range(start, periods=int(length), freq=parse_freq(freq))
        positions.append(int(grid.searchsorted(moment, side="left")))
    return np.array(positions, dtype=np.int64)

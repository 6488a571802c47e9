"""Forecast windows over series: where they may end, and cutting them out of memory in one vectorised gather.

A window that ends at position `end` of a series forecasts positions `[end - prediction_length, end)` from the
context before it; context positions before the series start are padding (NaN and unobserved, like missing values).
Windows are valid when all their forecast targets lie in the dataset's split (`split_start` onwards) and at least
`min_past` points of context exist.

- `SeriesStore`: all series of a dataset, channels stacked (targets first, then exogenous), in one array.
- `TrainWindows`: a dataset for `Trainer.train_dataset`; each item names a series, drawn in proportion to its number
  of valid windows, and the collator draws the end position afresh every time (like GluonTS's InstanceSplitter).
- `EvalWindows`: the deterministic rolling windows of a split with a stride: (series, end) pairs.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from datasets import Dataset

from .frequency import freq_token, seasonal_period
from .splits import split_starts


@dataclass(frozen=True, eq=False)
class SeriesStore:
    """The series of a dataset in memory: `values` (total steps, channels) float32 with NaN for missing values."""

    values: np.ndarray
    offsets: np.ndarray  # series i occupies values[offsets[i]:offsets[i + 1]]
    split_start: np.ndarray
    freq_tokens: np.ndarray
    seasonal_periods: np.ndarray  # MASE's seasonal period of every series' frequency (`seasonal_period`)
    static_categoricals: np.ndarray | None  # (series, variables) int64 codes
    num_targets: int
    num_exogenous: int

    @classmethod
    def from_dataset(cls, dataset: Dataset) -> SeriesStore:
        """Stack targets and exogenous channels (`feat_dynamic_real`) of every row, time-major."""
        if len(dataset) == 0:
            raise ValueError("the series dataset has no rows")
        columns = [c for c in ("target", "feat_dynamic_real", "feat_static_cat") if c in dataset.column_names]
        rows = dataset.with_format("numpy", columns=columns)[:]
        blocks, num_targets, num_exogenous = [], None, None
        for index, target in enumerate(rows["target"]):
            target = np.asarray(target, dtype=np.float32)
            target = target[None] if target.ndim == 1 else target
            exogenous = np.zeros((0, target.shape[1]), dtype=np.float32)
            if "feat_dynamic_real" in rows:
                exogenous = np.asarray(rows["feat_dynamic_real"][index], dtype=np.float32)
            if num_targets is None:
                num_targets, num_exogenous = len(target), len(exogenous)
            if (len(target), len(exogenous)) != (num_targets, num_exogenous):
                raise ValueError(
                    f"series {index} has {len(target)} target and {len(exogenous)} exogenous channels, series 0 has "
                    f"{num_targets} and {num_exogenous}: every series needs the same channels"
                )
            blocks.append(np.concatenate([target, exogenous]).T)
        lengths = np.array([len(b) for b in blocks], dtype=np.int64)
        tokens = {freq: freq_token(freq) for freq in set(dataset["freq"])}
        periods = {freq: seasonal_period(freq) for freq in tokens}
        static = rows.get("feat_static_cat")
        return cls(
            values=np.ascontiguousarray(np.concatenate(blocks)),
            offsets=np.concatenate([[0], np.cumsum(lengths)]),
            split_start=split_starts(dataset),
            freq_tokens=np.array([tokens[freq] for freq in dataset["freq"]], dtype=np.int64),
            seasonal_periods=np.array([periods[freq] for freq in dataset["freq"]], dtype=np.int64),
            static_categoricals=None if static is None else np.stack(static).astype(np.int64).reshape(len(blocks), -1),
            num_targets=num_targets,
            num_exogenous=num_exogenous,
        )

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    @property
    def num_channels(self) -> int:
        return self.values.shape[1]

    @property
    def prediction_channel_indices(self) -> list[int]:
        """Channel indices of the targets: the first channels."""
        return list(range(self.num_targets))

    @property
    def exogenous_channel_indices(self) -> list[int]:
        """Channel indices of the exogenous variables: after the targets."""
        return list(range(self.num_targets, self.num_channels))

    def first_end(self, prediction_length: int, min_past: int) -> np.ndarray:
        """Smallest valid window end of every series."""
        return np.maximum(self.split_start, min_past) + prediction_length


def extract_windows(
    store: SeriesStore, series: np.ndarray, ends: np.ndarray, context_length: int, prediction_length: int
) -> dict[str, np.ndarray]:
    """Cut the windows ending at `ends` of `series` out of the store, in one gather.

    Returns `past_values` (batch, context_length, channels), `future_values` (batch, prediction_length, channels)
    and their observed masks (1.0 observed, 0.0 missing or padding). Missing past values and padding are NaN, so the
    model fills them as at inference (`modeling_ttm.fill_gaps`); missing future values are 0 (the mask drops them
    from the loss).
    """
    series, ends = np.asarray(series, dtype=np.int64), np.asarray(ends, dtype=np.int64)
    if (ends > store.lengths[series]).any() or (ends < prediction_length).any():
        raise ValueError("window ends must lie in [prediction_length, series length]")
    local = ends[:, None] + np.arange(-(context_length + prediction_length), 0)
    inside = local >= 0
    window = store.values[np.where(inside, store.offsets[series, None] + local, 0)]
    observed = inside[..., None] & ~np.isnan(window)
    past = np.where(observed[:, :context_length], window[:, :context_length], np.float32(np.nan))
    future = np.where(observed[:, context_length:], window[:, context_length:], np.float32(0.0))
    observed = observed.astype(np.float32)
    return {
        "past_values": past,
        "past_observed_mask": observed[:, :context_length],
        "future_values": future,
        "future_observed_mask": observed[:, context_length:],
    }


class TrainWindows(torch.utils.data.Dataset):
    """Training items for `Trainer`: item k names a series; the collator draws a fresh window end for it.

    Series are drawn in proportion to their number of valid windows, so every valid window of the dataset is
    equally likely. An epoch has `windows_per_epoch` items (default: the number of valid windows).

    With a `seed`, the window ends of a batch are a pure function of (seed, epoch, item indices): a run resumed
    from a checkpoint draws exactly the windows of an uninterrupted one (`Trainer` sets the epoch through
    `set_epoch` and restores the sampler order from its seed). Without it they come from torch's global RNG.
    """

    def __init__(
        self,
        dataset: Dataset,
        prediction_length: int,
        windows_per_epoch: int | None = None,
        min_past: int = 1,
        seed: int | None = None,
    ):
        if prediction_length < 1 or min_past < 1:
            raise ValueError(f"`prediction_length` and `min_past` must be >= 1, got {prediction_length}, {min_past}")
        self.store = SeriesStore.from_dataset(dataset)
        self.prediction_length = prediction_length
        self.first_end = self.store.first_end(prediction_length, min_past)
        self.counts = np.maximum(self.store.lengths - self.first_end + 1, 0)
        total = int(self.counts.sum())
        if total == 0:
            raise ValueError(
                f"no training window: every series has fewer than prediction_length + min_past = "
                f"{prediction_length + min_past} points in its split (longest: {int(self.store.lengths.max())})"
            )
        if windows_per_epoch is not None and windows_per_epoch < 1:
            raise ValueError(f"`windows_per_epoch` must be positive, got {windows_per_epoch}")
        self.num_windows = total
        self.windows_per_epoch = windows_per_epoch or total
        self._cumulative = np.cumsum(self.counts)
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Called by the `Trainer`'s data loader at the start of every epoch; keys the seeded draws."""
        self.epoch = epoch

    def __len__(self) -> int:
        return self.windows_per_epoch

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < self.windows_per_epoch:
            raise IndexError(index)
        window = index * self.num_windows // self.windows_per_epoch
        series = int(np.searchsorted(self._cumulative, window, side="right"))
        return {"source": self, "series": series, "end": None, "index": index}

    def sample_ends(self, series: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A uniformly drawn valid window end for each of `series`."""
        return self.first_end[series] + rng.integers(0, self.counts[series])

    def batch_rng(self, indices: np.ndarray, rank: int) -> np.random.Generator | None:
        """The generator of a batch of items with a `seed`: a function of (seed, epoch, rank, indices); else None."""
        if self.seed is None:
            return None
        return np.random.default_rng([self.seed, self.epoch, rank, *indices.tolist()])


class EvalWindows(torch.utils.data.Dataset):
    """Rolling windows over a split, every `stride` steps, the last one ending at the end of each series.

    Iterating yields `(series, end)` pairs (also in `pairs`, an (n, 2) array); indexing gives the row the collator
    reads. `end` is exclusive: the window forecasts positions `[end - prediction_length, end)` of the series row.
    """

    def __init__(self, dataset: Dataset, prediction_length: int, stride: int = 1, min_past: int = 1):
        if prediction_length < 1 or stride < 1 or min_past < 1:
            raise ValueError(
                f"`prediction_length`, `stride` and `min_past` must be >= 1, got {prediction_length}, {stride}, "
                f"{min_past}"
            )
        self.store = SeriesStore.from_dataset(dataset)
        self.prediction_length = prediction_length
        self.stride = stride
        lengths = self.store.lengths
        span = lengths - self.store.first_end(prediction_length, min_past)
        counts = np.where(span >= 0, span // stride + 1, 0)
        series = np.repeat(np.arange(len(lengths)), counts)
        within = np.arange(len(series)) - np.repeat(np.cumsum(counts) - counts, counts)  # 0 = the series' first
        ends = lengths[series] - (counts[series] - 1 - within) * stride
        self.pairs = np.stack([series, ends], axis=1).astype(np.int64)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict:
        series, end = self.pairs[index]
        return {"source": self, "series": int(series), "end": int(end)}

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return ((int(series), int(end)) for series, end in self.pairs)

"""Pretraining data: a stream of corpus series -> training windows (real, synthetic, convex mixes), validation
windows, gap augmentation and per-window standardisation, for `scripts/pretrain.py` and the `Trainer`.

The sampling settings come as one object with the fields of scripts/pretrain.py's `DataArguments` (`Sampling`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
import torch
from datasets import (
    Dataset,
    Features,
    IterableDataset,
    List,
    Value,
    concatenate_datasets,
    interleave_datasets,
    load_dataset,
    load_from_disk,
)
from datasets.distributed import split_dataset_by_node

from .collator import ForecastWindowCollator, process_index
from .frequency import fixed_step, parse_freq
from .splits import chronological_split
from .synthetic import SyntheticWindows, convex_mix, family_probabilities
from .windows import EvalWindows, TrainWindows


class Sampling(Protocol):
    """What the pretraining data needs of the arguments (scripts/pretrain.py's `DataArguments`)."""

    corpus: Sequence[str]
    corpus_weights: Sequence[float] | None
    streaming: bool
    validation_fraction: float
    eval_stride: int | None
    downsample_probability: float
    drift_probability: float
    buffer_series: int
    windows_per_buffer: int
    shuffle_buffer: int
    min_past: int
    synthetic_weight: float
    synthetic_families: Sequence[float] | None
    mix_weight: float
    synthetic_length: int


_BUFFER_FEATURES = Features(
    {"target": List(Value("float32")), "start": Value("timestamp[ns]"), "freq": Value("string")}
)
# Frequencies of IBM's token table that down-sampling may produce, by step.
_COARSER = [("10min", "10min"), ("15min", "15min"), ("30min", "30min"), ("h", "1h"), ("D", "1D"), ("W", "7D")]


def open_corpus(path: str, streaming: bool) -> Dataset | IterableDataset:
    """A corpus as a dataset: save_to_disk directory, directory of parquet files, or Hub dataset id."""
    directory = Path(path)
    if (directory / "dataset_info.json").is_file() or (directory / "state.json").is_file():
        dataset = load_from_disk(path)
        return dataset.to_iterable_dataset(num_shards=min(len(dataset), 16)) if streaming else dataset
    if directory.is_dir():
        files = sorted(str(p) for p in directory.glob("*.parquet"))
        if not files:
            raise ValueError(f"--corpus {path}: no dataset_info.json nor parquet files in the directory")
        return load_dataset("parquet", data_files=files, split="train", streaming=streaming)
    return load_dataset(path, split="train", streaming=streaming)


def coarsen(row: dict[str, Any], rng: np.random.Generator, min_length: int) -> dict[str, Any]:
    """Average a series into a random coarser frequency of the token table that keeps >= min_length points."""
    step = fixed_step(parse_freq(row["freq"]))
    if step is None:
        return row
    target = np.asarray(row["target"], dtype=np.float32)
    choices = [
        (alias, int(pd.Timedelta(span) // step))
        for alias, span in _COARSER
        if pd.Timedelta(span) > step and pd.Timedelta(span) % step == pd.Timedelta(0)
        and len(target) // int(pd.Timedelta(span) // step) >= min_length
    ]  # fmt: skip
    if not choices:
        return row
    alias, factor = choices[rng.integers(len(choices))]
    blocks = target[: len(target) // factor * factor].reshape(-1, factor)
    observed = ~np.isnan(blocks)
    sums = np.where(observed, blocks, 0.0).sum(1)
    counts = observed.sum(1)
    coarse = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan).astype(np.float32)
    return {**row, "target": coarse, "freq": alias}


def add_level_drift(target: np.ndarray, rng: np.random.Generator, span: int) -> np.ndarray:
    """The series plus a wandering level, so that the model learns that a level can move and stay where it went.

    The level is the cumulative sum of increments that are white noise averaged over a window of 1 to 256 steps
    (log-uniform): a random walk up to persistent, smooth trends. It is scaled so that its change over `span` steps
    (a forecast horizon) has a standard deviation of u times the series', u log-uniform in [0.03, 0.6]. Missing
    values stay missing.
    """
    length = len(target)
    width = int(np.exp(rng.uniform(0.0, np.log(256))))
    sums = np.concatenate([[0.0], np.cumsum(rng.standard_normal(length + width - 1))])
    level = np.cumsum((sums[width:] - sums[:-width]) / width)
    lag = min(span, length - 1)
    change = np.std(level[lag:] - level[:-lag]) if lag > 0 else 0.0
    spread = np.nanstd(target) if np.isfinite(target).any() else 0.0
    if change == 0.0 or not spread > 0.0:
        return target
    size = np.exp(rng.uniform(np.log(0.03), np.log(0.6)))
    return (target + level * (size * spread / change)).astype(np.float32)


class CorpusWindows(torch.utils.data.IterableDataset):
    """Endless training rows for the collator: series stream -> buffers -> TrainWindows rows, shuffled."""

    def __init__(self, stream: IterableDataset, prediction_length: int, data_args: Sampling, seed: int):
        self.stream = stream
        self.prediction_length = prediction_length
        self.args = data_args
        self.seed = seed

    def series(self, rng: np.random.Generator) -> Iterator[dict[str, Any]]:
        epoch = 0
        while True:
            self.stream.set_epoch(epoch)
            for row in self.stream:
                target = np.asarray(row["target"], dtype=np.float32)
                target = target[: len(target) - round(len(target) * self.args.validation_fraction)]
                row = {"target": target, "start": row["start"], "freq": row["freq"]}
                if rng.random() < self.args.downsample_probability:
                    row = coarsen(row, rng, self.prediction_length + self.args.min_past)
                if self.args.drift_probability and rng.random() < self.args.drift_probability:
                    row = {**row, "target": add_level_drift(row["target"], rng, self.prediction_length)}
                if len(row["target"]) >= self.prediction_length + self.args.min_past:
                    yield row
            epoch += 1

    def real_buffers(self, rng: np.random.Generator) -> Iterator[list[dict[str, Any]]]:
        buffer: list[dict[str, Any]] = []
        for row in self.series(rng):
            buffer.append(row)
            if len(buffer) == self.args.buffer_series:
                yield buffer
                buffer = []

    def mixes(self, buffer: list[dict[str, Any]], rng: np.random.Generator) -> list[dict[str, Any]]:
        """Convex mixes of the buffer's series (each with the frequency of a random one); the buffer if too short."""
        targets = [row["target"] for row in buffer]
        mixes = []
        for _ in range(len(buffer)):
            mix = convex_mix(targets, rng, self.args.synthetic_length)
            if mix is None:
                return buffer
            mixes.append({**buffer[int(rng.integers(len(buffer)))], "target": mix})
        return mixes

    def windows(self, rows: list[dict[str, Any]], rng: np.random.Generator) -> TrainWindows:
        return TrainWindows(  # seeded from the stream: a resumed run redraws exactly the same windows
            Dataset.from_list(rows, features=_BUFFER_FEATURES),
            self.prediction_length,
            self.args.windows_per_buffer,
            self.args.min_past,
            seed=int(rng.integers(2**62)),
        )

    def __iter__(self) -> Iterator[dict[str, Any]]:
        worker = torch.utils.data.get_worker_info()
        rng = np.random.default_rng([self.seed, process_index(), 0 if worker is None else worker.id])
        synthetic = SyntheticWindows(
            self.prediction_length,
            seed=int(rng.integers(2**31)),
            series_per_step=self.args.buffer_series,
            windows_per_step=self.args.windows_per_buffer,
            length=self.args.synthetic_length,
            min_past=self.args.min_past,
            family_weights=self.args.synthetic_families,
        )
        real = self.real_buffers(rng)
        step = 0
        while True:  # every buffer gives windows_per_buffer windows: the weights are shares of windows
            draw = rng.random()
            if draw < self.args.synthetic_weight:
                windows, step = synthetic.windows(step), step + 1
            elif draw < self.args.synthetic_weight + self.args.mix_weight:
                windows = self.windows(self.mixes(next(real), rng), rng)
            else:
                windows = self.windows(next(real), rng)
            for index in rng.permutation(len(windows)):
                yield windows[int(index)]


@dataclass(frozen=True)
class GapAugmentation:
    """Drops context points and spans of training windows (NaN, unobserved), so the model learns to forecast over gaps.

    The draws are a pure function of (seed, process rank, the windows' TrainWindows seeds, epochs and item indices),
    so a run and its resumption augment the same windows alike. Evaluation windows are never touched.
    """

    point_probability: float = 0.0
    span_probability: float = 0.0
    max_span: int = 32
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("point_probability", "span_probability"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"--drop_{name}: expected a probability in [0, 1], got {getattr(self, name)}")
        if self.max_span < 1:
            raise ValueError(f"--max_drop_span: expected a positive number of steps, got {self.max_span}")

    @property
    def active(self) -> bool:
        return self.point_probability > 0 or self.span_probability > 0

    def rng(self, rows: list[dict[str, Any]]) -> np.random.Generator:
        keys = [key for row in rows for key in (row["source"].seed or 0, row["source"].epoch, row["index"])]
        return np.random.default_rng([self.seed, process_index(), *keys])

    def drops(self, shape: tuple[int, int, int], rng: np.random.Generator) -> np.ndarray:
        """A boolean (batch, time, channels) array: scattered points and at most one span per series and channel."""
        batch, length, channels = shape
        points = rng.random(shape) < self.point_probability
        has_span = rng.random((batch, 1, channels)) < self.span_probability
        span = rng.integers(1, min(self.max_span, length) + 1, (batch, 1, channels))
        start = rng.integers(0, length - span + 1)
        steps = np.arange(length)[None, :, None]
        return points | (has_span & (steps >= start) & (steps < start + span))

    def __call__(self, batch: dict[str, torch.Tensor], rows: list[dict[str, Any]]) -> None:
        """Drops points of `batch` in place; `rows` are its rows in batch order, training rows have no `end`."""
        training = np.array([row["end"] is None for row in rows])
        if not self.active or not training.any():
            return
        drop = self.drops(tuple(batch["past_values"].shape), self.rng([r for r in rows if r["end"] is None]))
        drop = torch.from_numpy(drop & training[:, None, None])
        batch["past_values"] = batch["past_values"].masked_fill(drop, float("nan"))
        batch["past_observed_mask"] = batch["past_observed_mask"].masked_fill(drop, 0.0)


LOSS_SCALES = ("std", "naive", "seasonal")


def mean_absolute_change(values: torch.Tensor, mask: torch.Tensor, lag: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean absolute `lag`-step change of (batch, time, channels) contexts over their observed pairs, and the number
    of those pairs: both (batch, 1, channels)."""
    both = mask[:, lag:] * mask[:, :-lag]
    pairs = both.sum(1, keepdim=True)
    change = ((values[:, lag:] - values[:, :-lag]).abs() * both).sum(1, keepdim=True) / pairs.clamp_min(1)
    return change, pairs


class StandardizingCollator:
    """`ForecastWindowCollator` for batches that mix window sources; scales each window by its context, so that the
    loss weighs every series alike.

    `loss_scale="std"` standardises by the context's mean and standard deviation. `"naive"` divides by the context's
    mean absolute one-step change instead (MASE's scale with lag 1, at least a tenth of the standard deviation), so
    that the loss weighs errors against how much the series moves from step to step: a smooth or persistent series,
    whose next values are close to its last ones, counts more than with `"std"` (up to 10x), and the model is pushed
    to carry its level precisely. `"seasonal"` divides by MASE's own scale: the mean absolute change over the seasonal
    period of the series' frequency (`seasonal_period`; lag 1 where the period is 1, as long as the context, or has
    no observed pair), with the same floor. The model standardises its input itself, so only the loss changes.
    Missing context values stay NaN (the model fills them, as at inference); `augmentation` first drops some more.
    """

    def __init__(
        self, collator: ForecastWindowCollator, augmentation: GapAugmentation | None = None, loss_scale: str = "std"
    ):
        if loss_scale not in LOSS_SCALES:
            raise ValueError(f"`loss_scale` must be one of {LOSS_SCALES}, got {loss_scale!r}")
        self.collator = collator
        self.augmentation = augmentation or GapAugmentation()
        self.loss_scale = loss_scale

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        groups: dict[int, list[dict[str, Any]]] = {}
        for row in rows:
            groups.setdefault(id(row["source"]), []).append(row)
        parts = [self.collator(group) for group in groups.values()]
        batch = {key: torch.cat([part[key] for part in parts]) for key in parts[0]}
        self.augmentation(batch, [row for group in groups.values() for row in group])
        past, mask = batch["past_values"], batch["past_observed_mask"]
        observed = torch.where(mask > 0, past, 0.0)
        count = mask.sum(1, keepdim=True).clamp_min(1)
        mean = observed.sum(1, keepdim=True) / count
        std = ((((observed - mean) * mask) ** 2).sum(1, keepdim=True) / count).sqrt()
        level = observed.abs().sum(1, keepdim=True) / count
        # A (nearly) flat context has no scale: any change after it would be a target of millions of standard
        # deviations. Such windows are left out of the loss; a low spread is floored at 0.1 % of the level.
        flat = std <= 1e-4 * level.clamp_min(1.0)
        spread = std
        if self.loss_scale != "std":
            spread = mean_absolute_change(observed, mask, 1)[0]
            if self.loss_scale == "seasonal":
                ordered = [row for group in groups.values() for row in group]
                lags = np.array([row["source"].store.seasonal_periods[row["series"]] for row in ordered])
                for lag in set(lags[(lags > 1) & (lags < past.shape[1])].tolist()):
                    rows = torch.from_numpy(np.flatnonzero(lags == lag))
                    change, pairs = mean_absolute_change(observed[rows], mask[rows], lag)
                    spread[rows] = torch.where(pairs > 0, change, spread[rows])
            spread = spread.maximum(0.1 * std)
        scale = torch.where(flat, 1.0, spread.maximum(1e-3 * level))
        batch["past_values"] = (past - mean) / scale  # missing values stay NaN
        batch["future_observed_mask"] = batch["future_observed_mask"] * ~flat
        batch["future_values"] = (batch["future_values"] - mean) / scale * batch["future_observed_mask"]
        return batch


def training_stream(data_args: Sampling, seed: int, world_size: int) -> IterableDataset:
    corpora = [open_corpus(path, streaming=True) for path in data_args.corpus]
    corpora = [c.select_columns(["target", "start", "freq"]) for c in corpora]
    if not 0.0 <= data_args.drift_probability <= 1.0:
        raise ValueError(f"--drift_probability: expected a probability in [0, 1], got {data_args.drift_probability}")
    if not 0.0 <= data_args.synthetic_weight <= 1.0:
        raise ValueError(f"--synthetic_weight: expected a share in [0, 1], got {data_args.synthetic_weight}")
    if not 0.0 <= data_args.mix_weight <= 1.0 - data_args.synthetic_weight:
        raise ValueError(f"--mix_weight: expected a share in [0, 1 - --synthetic_weight], got {data_args.mix_weight}")
    if data_args.synthetic_families is not None:
        try:
            family_probabilities(data_args.synthetic_families)
        except ValueError as error:
            raise ValueError(f"--synthetic_families: {error}") from None
    if data_args.synthetic_length < data_args.min_past + 1:
        raise ValueError(f"--synthetic_length: expected more than --min_past {data_args.min_past} steps")
    weights = data_args.corpus_weights
    if weights is not None and len(weights) != len(corpora):
        raise ValueError(f"--corpus_weights: {len(weights)} weights for {len(corpora)} corpora")
    if len(corpora) == 1:
        stream = corpora[0]
    else:
        probabilities = None if weights is None else [w / sum(weights) for w in weights]
        stream = interleave_datasets(corpora, probabilities, seed=seed, stopping_strategy="all_exhausted")
    stream = stream.shuffle(seed=seed, buffer_size=data_args.shuffle_buffer)
    return split_dataset_by_node(stream, rank=process_index(), world_size=world_size)


def validation_windows(data_args: Sampling, prediction_length: int) -> EvalWindows | None:
    if data_args.streaming or data_args.validation_fraction == 0:
        return None
    parts = []
    for path in data_args.corpus:
        corpus = open_corpus(path, streaming=False).select_columns(["target", "start", "freq"])
        parts.append(chronological_split(corpus, data_args.validation_fraction, test_fraction=0.0)["validation"])
    stride = data_args.eval_stride or prediction_length
    return EvalWindows(concatenate_datasets(parts), prediction_length, stride=stride, min_past=data_args.min_past)

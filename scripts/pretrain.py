"""Pretrain a Tiny Time Mixer (TTM) from scratch on corpora of univariate series with the transformers Trainer.

Corpora are datasets in the long-series layout (`target`, `start`, `freq`; see scripts/build_corpus.py): a
`save_to_disk` directory, a directory of parquet shards, or a Hub dataset id. Several corpora are mixed with
--corpus_weights. With --streaming the corpora are read as iterable datasets (larger than memory), sharded per
process under `accelerate launch`. Series are read into buffers of --buffer_series; training windows are drawn from
every buffer through `ttm_data.TrainWindows` and `ForecastWindowCollator`, and each window is standardised by its
context's mean and standard deviation so that the loss weighs every series alike.

Diverse-resolution sampling: with probability --downsample_probability a series is averaged into a coarser
frequency of IBM's frequency-token table (5min -> 10min / 15min / 30min / h, h -> D, D -> W, ...), with the
matching `freq_token` (used by --resolution_prefix_tuning). Gap augmentation: --drop_point_probability and
--drop_span_probability (spans up to --max_drop_span steps) turn context points of training windows into missing
values, seeded like the windows, so the model learns to forecast across gaps (off by default). The last
--validation_fraction of every series is never trained on; without --streaming it is the validation set (rolling
windows, stride --eval_stride).

The model has the architecture of a preset (--architecture r2-512-96 or r2.1-90-30) with optional overrides
(--config_overrides '{"d_model": 128}'). Every TrainingArguments flag works; --resume_from_checkpoint last resumes.
At the end the model, trainer state and loss_curve.png (loss against steps) are written to --output_dir.

Example:
  python scripts/build_corpus.py --output corpus/offline
  python scripts/pretrain.py --corpus corpus/offline --output_dir outputs/pretrain --max_steps 4000
  accelerate launch --num_processes 2 scripts/pretrain.py --corpus corpus/parquet --streaming --max_steps 4000
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib
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
from transformers import HfArgumentParser, Trainer, TrainingArguments, set_seed
from transformers.trainer_utils import get_last_checkpoint

from configuration_ttm import TTMConfig
from modeling_ttm import TTMForPrediction
from ttm_data import EvalWindows, ForecastWindowCollator, TrainWindows, chronological_split, parse_freq
from ttm_data.collator import process_index
from ttm_data.frequency import fixed_step
from ttm_data.synthetic import SyntheticWindows, convex_mix
from ttm_zoo import ARCHITECTURES

matplotlib.use("Agg")
from matplotlib import pyplot as plt  # noqa: E402

logger = logging.getLogger("pretrain")

_BUFFER_FEATURES = Features(
    {"target": List(Value("float32")), "start": Value("timestamp[ns]"), "freq": Value("string")}
)
# Frequencies of IBM's token table that down-sampling may produce, by step.
_COARSER = [("10min", "10min"), ("15min", "15min"), ("30min", "30min"), ("h", "1h"), ("D", "1D"), ("W", "7D")]


@dataclass
class ModelArguments:
    architecture: str = field(default="r2-512-96", metadata={"choices": list(ARCHITECTURES)})
    config_overrides: str | None = field(default=None, metadata={"help": "JSON object of TTMConfig keys."})
    resolution_prefix_tuning: bool = field(default=False, metadata={"help": "Feed the frequency token."})
    quantile_levels: list[float] | None = field(
        default=None, metadata={"help": "Train this project's monotone quantile head (pinball loss), e.g. 0.1 0.5 0.9."}
    )


@dataclass
class DataArguments:
    corpus: list[str] = field(metadata={"help": "save_to_disk dirs, parquet dirs or Hub dataset ids."})
    corpus_weights: list[float] | None = field(default=None, metadata={"help": "Mixing probabilities (default even)."})
    streaming: bool = field(default=False, metadata={"help": "Read the corpora as iterable datasets."})
    validation_fraction: float = field(default=0.1, metadata={"help": "Tail of every series kept out of training."})
    eval_stride: int | None = field(default=None, metadata={"help": "Validation window stride (default: horizon)."})
    downsample_probability: float = field(default=0.3, metadata={"help": "Chance to coarsen a series."})
    buffer_series: int = field(default=64, metadata={"help": "Series per buffer that windows are drawn from."})
    windows_per_buffer: int = field(default=512, metadata={"help": "Windows drawn from every buffer."})
    shuffle_buffer: int = field(default=256, metadata={"help": "Series shuffle buffer of the stream."})
    min_past: int = field(default=64, metadata={"help": "Fewest observed context points of a window."})
    drop_point_probability: float = field(
        default=0.0, metadata={"help": "Augmentation: chance that a context point of a training window goes missing."}
    )
    drop_span_probability: float = field(
        default=0.0, metadata={"help": "Augmentation: chance that a training window gets a gap (a missing span)."}
    )
    max_drop_span: int = field(default=32, metadata={"help": "Longest augmentation gap, in steps."})
    synthetic_weight: float = field(
        default=0.0, metadata={"help": "Share of training windows from synthetic series (ttm_data.synthetic), 0-1."}
    )
    mix_weight: float = field(
        default=0.0, metadata={"help": "Share of training windows from convex mixes of real series (of a buffer)."}
    )
    synthetic_length: int = field(default=1024, metadata={"help": "Length of every synthetic or mixed series."})


_DEFAULTS = {
    "output_dir": "outputs/pretrain",
    "max_steps": 1000,
    "learning_rate": 1e-3,
    "lr_scheduler_type": "cosine",
    "warmup_steps": 100,
    "weight_decay": 0.01,
    "per_device_train_batch_size": 64,
    "per_device_eval_batch_size": 256,
    "logging_steps": 25,
    "eval_strategy": "steps",
    "eval_steps": 250,
    "save_strategy": "steps",
    "save_steps": 250,
    "save_total_limit": 2,
    "remove_unused_columns": False,
    "ignore_data_skip": False,  # a resumed run replays the window stream to where it stopped
    "report_to": "none",
    "dataloader_pin_memory": False,
    "accelerator_config": {"dispatch_batches": False, "split_batches": False},
}


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


class CorpusWindows(torch.utils.data.IterableDataset):
    """Endless training rows for the collator: series stream -> buffers -> TrainWindows rows, shuffled."""

    def __init__(self, stream: IterableDataset, prediction_length: int, data_args: DataArguments, seed: int):
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


class StandardizingCollator:
    """`ForecastWindowCollator` for batches that mix window sources; standardises each window by its context.

    Missing context values stay NaN (the model fills them, as at inference); `augmentation` first drops some more.
    """

    def __init__(self, collator: ForecastWindowCollator, augmentation: GapAugmentation | None = None):
        self.collator = collator
        self.augmentation = augmentation or GapAugmentation()

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
        std = ((((observed - mean) * mask) ** 2).sum(1, keepdim=True) / count).sqrt().clamp_min(1e-5)
        batch["past_values"] = (past - mean) / std  # missing values stay NaN
        batch["future_values"] = (batch["future_values"] - mean) / std * batch["future_observed_mask"]
        return batch


def build_model(model_args: ModelArguments, data_args: DataArguments) -> TTMForPrediction:
    settings = dict(ARCHITECTURES[model_args.architecture], scaling="std", num_input_channels=1)
    settings.update(resolution_prefix_tuning=model_args.resolution_prefix_tuning, frequency_token_vocab_size=10)
    if model_args.quantile_levels:
        settings.update(quantile_levels=model_args.quantile_levels, monotone_quantile_head=True)
    if model_args.config_overrides:
        settings.update(json.loads(model_args.config_overrides))
    return TTMForPrediction(TTMConfig(**settings))


def training_stream(data_args: DataArguments, seed: int, world_size: int) -> IterableDataset:
    corpora = [open_corpus(path, streaming=True) for path in data_args.corpus]
    corpora = [c.select_columns(["target", "start", "freq"]) for c in corpora]
    if not 0.0 <= data_args.synthetic_weight <= 1.0:
        raise ValueError(f"--synthetic_weight: expected a share in [0, 1], got {data_args.synthetic_weight}")
    if not 0.0 <= data_args.mix_weight <= 1.0 - data_args.synthetic_weight:
        raise ValueError(f"--mix_weight: expected a share in [0, 1 - --synthetic_weight], got {data_args.mix_weight}")
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


def validation_windows(data_args: DataArguments, prediction_length: int) -> EvalWindows | None:
    if data_args.streaming or data_args.validation_fraction == 0:
        return None
    parts = []
    for path in data_args.corpus:
        corpus = open_corpus(path, streaming=False).select_columns(["target", "start", "freq"])
        parts.append(chronological_split(corpus, data_args.validation_fraction, test_fraction=0.0)["validation"])
    stride = data_args.eval_stride or prediction_length
    return EvalWindows(concatenate_datasets(parts), prediction_length, stride=stride, min_past=data_args.min_past)


def launch_command() -> str:
    """The command line of this run, with the thread setting when one was given."""
    threads = os.environ.get("OMP_NUM_THREADS")
    return ("" if threads is None else f"OMP_NUM_THREADS={threads} ") + "python " + shlex.join(sys.argv)


def plot_loss_curve(log_history: list[dict[str, Any]], path: Path) -> None:
    train = [(e["step"], e["loss"]) for e in log_history if "loss" in e]
    evals = [(e["step"], e["eval_loss"]) for e in log_history if "eval_loss" in e]
    figure, axis = plt.subplots(figsize=(7, 4))
    if train:
        axis.plot(*zip(*train, strict=True), label="training loss")
    if evals:
        axis.plot(*zip(*evals, strict=True), "o-", label="validation loss")
    axis.set_xlabel("step")
    axis.set_ylabel("loss (standardised windows)")
    axis.set_title("TTM pretraining")
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def main(argv: list[str] | None = None) -> Trainer:
    parser = HfArgumentParser((ModelArguments, DataArguments, TrainingArguments), description=__doc__)
    parser.set_defaults(**_DEFAULTS)
    try:
        model_args, data_args, training_args = parser.parse_args_into_dataclasses(
            args=sys.argv[1:] if argv is None else argv
        )
    except ValueError as error:
        raise SystemExit(f"error: {error}") from None
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    set_seed(training_args.seed)
    started = time.time()
    try:
        model = build_model(model_args, data_args)
        horizon = model.config.forecast_length
        train = CorpusWindows(
            training_stream(data_args, training_args.seed, training_args.world_size), horizon, data_args,
            training_args.seed,
        )  # fmt: skip
        validation = validation_windows(data_args, horizon)
        augmentation = GapAugmentation(
            data_args.drop_point_probability, data_args.drop_span_probability, data_args.max_drop_span,
            training_args.seed,
        )  # fmt: skip
    except (ValueError, FileNotFoundError) as error:
        raise SystemExit(f"error: {error}") from None
    if validation is None:
        training_args.eval_strategy = "no"
    logger.info("model: %s parameters, %s", f"{model.num_parameters():,}", model_args.architecture)
    trainer = Trainer(
        model=model,
        args=training_args,
        train_dataset=train,
        eval_dataset=validation,
        data_collator=StandardizingCollator(ForecastWindowCollator.from_config(model.config), augmentation),
    )
    resume = training_args.resume_from_checkpoint
    if resume == "last":
        resume = get_last_checkpoint(training_args.output_dir)
        if resume is None:
            raise SystemExit(f"error: --resume_from_checkpoint last: no checkpoint in {training_args.output_dir}")
    result = trainer.train(resume_from_checkpoint=resume)
    trainer.save_model()
    trainer.save_state()
    if trainer.is_world_process_zero():
        output = Path(training_args.output_dir)
        plot_loss_curve(trainer.state.log_history, output / "loss_curve.png")
        summary = {**result.metrics, "wall_clock_s": round(time.time() - started, 1), "command": launch_command()}
        (output / "pretrain_results.json").write_text(json.dumps(summary, indent=2) + "\n")
    return trainer


if __name__ == "__main__":
    main()

"""`predict_df`: forecast every series of a pandas DataFrame with a TTM model.

The frame is read by `ttm_data.series_from_frame`, the loader every script uses (timestamp detection, frequency
inference, gaps as NaN, duplicate and order checks, `resample`). The series are then assembled a chunk at a time into
one (series, context, channels) float32 array, left-padded with NaN for short series (the model fills missing values
by interpolation), forecast in batches under `torch.inference_mode`, and written as one long-format frame.
`predict_dataset` does the same for series already loaded (`ttm_data.load_series`), `predict_array` for arrays.

With `distributed=True` under `accelerate launch` (or torchrun, mpirun), accelerate's
`PartialState.split_between_processes` gives every process a contiguous block of the series, each forecasts its block on
its own device (`PartialState.device`), and `accelerate.utils.gather_object` brings the blocks back in process order:
the same rows, in the same order, as one process.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import torch
from datasets import Dataset
from pandas.tseries.offsets import BaseOffset
from tqdm.auto import tqdm

from configuration_ttm import TTMConfig
from modeling_ttm import TTMForPrediction
from ttm_data import freq_token, parse_freq, series_from_frame, series_schema

if TYPE_CHECKING:
    from accelerate import PartialState

TARGET_NAME_COLUMN = "target_name"
POINT_COLUMN = "predictions"


@dataclass
class _Channels:
    """`count` channels of every series, straight from an arrow list column of the dataset: channel c of series i is
    `values[bounds[row] : bounds[row + 1]]` with `row = first[i] + c`."""

    values: np.ndarray
    bounds: np.ndarray
    first: np.ndarray
    count: int

    @classmethod
    def from_column(cls, column: pa.ChunkedArray, count: int, nested: bool) -> _Channels:
        lists = column.combine_chunks()
        first = lists.offsets.to_numpy()[:-1] if nested else np.arange(len(lists))
        rows = lists.values if nested else lists  # one list per channel and series
        values = rows.values.to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
        return cls(values, rows.offsets.to_numpy().astype(np.int64), first.astype(np.int64), count)

    def lengths(self) -> np.ndarray:
        return self.bounds[self.first + 1] - self.bounds[self.first]

    def windows(self, series: np.ndarray, length: int) -> np.ndarray:
        """The last `length` steps of every channel of `series` (n, length, count), left-padded with NaN."""
        steps = np.arange(length)[None, :]
        channels = []
        for channel in range(self.count):
            rows = self.first[series] + channel
            begin, end = self.bounds[rows], self.bounds[rows + 1]
            positions = end[:, None] - length + steps
            taken = self.values[np.maximum(positions, 0)]
            channels.append(np.where(positions >= begin[:, None], taken, np.float32(np.nan)))
        return np.stack(channels, axis=-1)


@dataclass
class _Plan:
    """How the data's channels meet the model: their names, the known-future ones, which channels are reported (and
    where they sit in the model's output), and whether a univariate model reads each target as its own series."""

    channel_names: list[str]
    known: list[int]
    outputs: list[int]
    select: list[int]
    fold: bool
    horizon: int
    needs_future: bool

    @property
    def output_names(self) -> list[str]:
        return self.channel_names if self.fold else [self.channel_names[c] for c in self.outputs]


def predict_df(
    model: TTMForPrediction | str,
    df: pd.DataFrame,
    future_df: pd.DataFrame | None = None,
    *,
    id_column: str | None = None,
    timestamp_column: str | None = None,
    target_columns: Sequence[str] | None = None,
    past_covariate_columns: Sequence[str] | None = None,
    known_covariate_columns: Sequence[str] | None = None,
    static_categorical_columns: Sequence[str] | None = None,
    prediction_length: int | None = None,
    context_length: int | None = None,
    freq: str | None = None,
    resample: bool = False,
    batch_size: int = 256,
    chunk_size: int = 4096,
    progress: bool = False,
    revision: str | None = None,
    distributed: bool = False,
) -> pd.DataFrame:
    """Forecast every series of `df` and return the forecasts as one long-format frame.

    Args:
        model: A `TTMForPrediction`, or a checkpoint directory / Hub id to load one from (`revision`: Hub branch).
        df: Long format (an `id_column` separates the series, which may differ in length) or wide format (no id
            column: one series whose target columns are its channels). Missing values (NaN) and missing timestamps
            are allowed; the model fills them by interpolation. Never modified.
        future_df: Rows at the forecast timestamps (`id_column`, `timestamp_column`, `known_covariate_columns`);
            required with known covariates.
        id_column, timestamp_column, target_columns, freq, resample: As in `ttm_data.load_series`: by default the
            timestamp column is detected, the targets are the other numeric columns, the frequency is inferred.
        past_covariate_columns: Numeric columns observed only in the past.
        known_covariate_columns: Numeric columns known in the future too; their future values come from `future_df`.
        static_categorical_columns: Columns constant within a series, for models with `categorical_vocab_size_list`
            (coded in sorted order of their values, as `ttm_data` codes them).
        prediction_length: Steps to forecast (default: the model's `forecast_length`). Shorter horizons keep the
            first steps, as `prediction_filter_length` does. Longer ones are forecast recursively, with a warning:
            the point forecast (the median of quantile models) is appended to the context and the model forecasts
            again; past covariates are unknown (NaN) there, known ones come from `future_df`. Accuracy degrades past
            the trained horizon, and the quantiles there ignore the uncertainty of the fed-back values.
        context_length: Latest steps fed to the model (default and maximum: the model's `context_length`).
        batch_size: Series per model call.
        chunk_size: Series assembled at a time, which bounds the memory beside the data and the result.
        progress: Show a progress bar over the series (on the main process only when distributed).
        revision: Hub branch when `model` is a Hub id.
        distributed: Under `accelerate launch --num_processes N` (N > 1), split the series between the processes
            (`process_state`): every process reads all of `df`, moves `model` to its device (`PartialState.device`)
            and forecasts a contiguous block of the series; the blocks are gathered (`accelerate.utils.gather_object`)
            so that every process returns the whole forecast, row for row the single-process result. Call it on every
            process. With one process it is the plain call.

    A univariate model forecasts each target column as its own series. A multichannel model reads the channels
    `target_columns + past_covariate_columns + known_covariate_columns` in this order and reports its
    `prediction_channel_indices` (default: the targets). Models with `resolution_prefix_tuning` get the frequency
    token (`ttm_data.freq_token`) of the data's frequency.

    Returns:
        One row per series, target and forecast step, in this order: `id_column` (when given), `timestamp_column`,
        `target_name`, `predictions` (the point forecast) and, for models with a quantile head, one column per level
        of `model.config.forecast_quantiles`, named like "0.1".
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"`df` must be a pandas DataFrame, got {type(df).__name__}")
    model, sizes = _prepare(model, revision, prediction_length, context_length, batch_size, chunk_size)
    config = model.config
    past = _columns("past_covariate_columns", past_covariate_columns, df)
    known = _columns("known_covariate_columns", known_covariate_columns, df)
    static = _columns("static_categorical_columns", static_categorical_columns, df)
    _check_roles(config, past, known, static)
    if known and future_df is None:
        raise ValueError("`future_df` is required with `known_covariate_columns`: their values at the forecast steps")
    dataset = series_from_frame(
        df,
        timestamp_column=timestamp_column,
        id_column=id_column,
        target_columns=None if target_columns is None else _columns("target_columns", target_columns, df),
        exogenous_columns=[*past, *known] or None,
        static_categorical_columns=static or None,
        freq=freq,
        resample=resample,
        source="`df`",
    )
    names = _series_names(dataset.data, df, id_column)
    return _forecast(model, dataset, names, id_column, past, known, future_df, *sizes, progress, distributed)


def predict_dataset(
    model: TTMForPrediction | str,
    dataset: Dataset,
    *,
    prediction_length: int | None = None,
    context_length: int | None = None,
    batch_size: int = 256,
    chunk_size: int = 4096,
    progress: bool = False,
    revision: str | None = None,
    distributed: bool = False,
) -> pd.DataFrame:
    """Forecast every series of a series dataset already loaded by `ttm_data.load_series` (or `series_from_frame`,
    `slice_series`): `predict_df` without the frame, for callers that read files in chunks.

    Its target channels are forecast (static categorical codes reach models that read them); a dataset with
    exogenous channels needs `predict_df`, which says which covariates are known in the future. The arguments are
    those of `predict_df`.

    Returns the frame of `predict_df`, with the dataset's id column (`item_id` as text) and timestamp column.
    """
    if not isinstance(dataset, Dataset):
        raise TypeError(f"`dataset` must be a datasets.Dataset of series, got {type(dataset).__name__}")
    model, sizes = _prepare(model, revision, prediction_length, context_length, batch_size, chunk_size)
    config = model.config
    if len(dataset) == 0:
        raise ValueError("`dataset` holds no series")
    schema = series_schema(dataset)
    if schema.exogenous_columns:
        raise ValueError(
            f"`dataset` has exogenous channels {schema.exogenous_columns}: forecast it with `predict_df` and "
            "`past_covariate_columns` / `known_covariate_columns`"
        )
    _check_roles(config, [], [], schema.static_categorical_columns)
    if "item_id" in dataset.column_names:
        id_column = schema.id_column or "item_id"
        names = np.asarray(dataset["item_id"], dtype=object)
    elif len(dataset) == 1:
        id_column, names = None, np.array([None], dtype=object)
    else:
        raise ValueError("`dataset` holds several series but no `item_id` column to tell them apart")
    return _forecast(model, dataset, names, id_column, [], [], None, *sizes, progress, distributed)


def _forecast(
    model: TTMForPrediction,
    dataset: Dataset,
    names: np.ndarray,
    id_column: str | None,
    past: list[str],
    known: list[str],
    future_df: pd.DataFrame | None,
    horizon: int,
    context: int,
    batch_size: int,
    chunk_size: int,
    progress: bool,
    distributed: bool,
) -> pd.DataFrame:
    """The forecast frame of a loaded series dataset whose series are called `names`."""
    config = model.config
    schema = series_schema(dataset)
    timestamp_column = schema.timestamp_column or "timestamp"
    plan = _plan(config, schema.target_columns, past, known)
    offset = parse_freq(dataset[0]["freq"])
    if horizon > plan.horizon:
        _warn_recursive(horizon, plan.horizon)
    table = dataset.with_format("arrow")[:]  # the rows of the dataset (of its selection, if any)
    targets = len(schema.target_columns)
    groups = [_Channels.from_column(table.column("target"), targets, nested=targets > 1)]
    if past or known:
        groups.append(_Channels.from_column(table.column("feat_dynamic_real"), len(past) + len(known), nested=True))
    categories = None
    if schema.static_categorical_columns:
        codes = table.column("feat_static_cat").combine_chunks()
        categories = codes.values.to_numpy().reshape(len(codes), -1).astype(np.int64)
    timestamps = _forecast_timestamps(table, groups[0].lengths(), offset, horizon)
    future = _future_lookup(future_df, known, id_column, timestamp_column) if known else None
    token = freq_token(offset.freqstr) if config.resolution_prefix_tuning else None

    state = _split_state(distributed, model)
    share = np.arange(len(names)) if state is None else np.arange(len(names))[_share(len(names), state)]
    parts = []
    shown = progress and (state is None or state.is_main_process)
    with tqdm(total=len(share), unit="series", desc="forecasting", disable=not shown) as bar:
        for begin in range(0, len(share), chunk_size):
            series = share[begin : begin + chunk_size]
            inputs = np.concatenate([group.windows(series, context) for group in groups], axis=-1)
            known_future = None if future is None else _future_values(future, names[series], timestamps[series])
            chunk_categories = None if categories is None else categories[series]
            point, quantiles = _rollout(model, plan, inputs, known_future, token, chunk_categories, horizon, batch_size)
            parts.append(_rows(plan, names[series], timestamps[series], point, quantiles))
            bar.update(len(series))
    if state is not None:
        from accelerate.utils import gather_object

        parts = gather_object(parts)  # every process's chunks, in process order
    return _frame(parts, id_column, timestamp_column, config.forecast_quantiles, table)


def predict_array(
    model: TTMForPrediction,
    contexts: np.ndarray,
    prediction_length: int | None = None,
    freq: str | None = None,
    batch_size: int = 256,
    distributed: bool = False,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Forecast contexts already on a grid: the array core of `predict_df`, for callers that hold arrays.

    Args:
        model: A `TTMForPrediction` without known-future inputs (forecast channel mixing needs `predict_df`).
        contexts: (series, time, channels) float array, NaN where missing; the latest `context_length` steps are read.
        prediction_length: Steps to forecast (default: the model's `forecast_length`; longer is recursive, as in
            `predict_df`).
        freq: Frequency alias of the grid, required by models with `resolution_prefix_tuning`.
        batch_size: Series per model call.
        distributed: As in `predict_df`: under `accelerate launch` with N > 1 processes, every process forecasts a
            contiguous block of the contexts on its device and returns all forecasts, gathered in process order.

    Returns the point forecasts (series, horizon, channels) and quantiles (series, levels, horizon, channels) or None.
    A univariate model forecasts every channel as its own series; a multichannel one reads `num_input_channels`
    channels and returns its `prediction_channel_indices` (default: every channel).
    """
    config = model.config
    if not isinstance(contexts, np.ndarray) or contexts.ndim != 3 or not np.issubdtype(contexts.dtype, np.floating):
        raise ValueError("`contexts` must be a float numpy array (series, time, channels)")
    horizon = _positive("prediction_length", prediction_length, config.forecast_length)
    batch_size = _positive("batch_size", batch_size, 1)
    channels = contexts.shape[2]
    if config.num_input_channels > 1 and channels != config.num_input_channels:
        raise ValueError(f"`contexts` has {channels} channels; the model reads {config.num_input_channels}")
    if config.enable_forecast_channel_mixing and config.exogenous_channel_indices:
        raise ValueError("`model` reads known future covariates: use `predict_df` with `known_covariate_columns`")
    if config.resolution_prefix_tuning and freq is None:
        raise ValueError("`freq` is required: the model reads a frequency token (resolution_prefix_tuning)")
    token = freq_token(freq) if config.resolution_prefix_tuning else None
    if config.num_input_channels == 1:
        plan = _Plan([str(c) for c in range(channels)], [], [0], [0], True, config.forecast_length, False)
    else:
        outputs = config.prediction_channel_indices or list(range(channels))
        plan = _Plan([], [], list(outputs), list(range(len(outputs))), False, config.forecast_length, False)
    if horizon > plan.horizon:
        _warn_recursive(horizon, plan.horizon)
    contexts = contexts.astype(np.float32, copy=False)
    state = _split_state(distributed, model)
    if state is None:
        point, quantiles = _rollout(model, plan, contexts, None, token, None, horizon, batch_size)
    else:
        from accelerate.utils import gather_object

        mine = contexts[_share(len(contexts), state)]
        forecast = [_rollout(model, plan, mine, None, token, None, horizon, batch_size)] if len(mine) else []
        parts = gather_object(forecast)  # every process's block, in process order
        point = np.concatenate([part[0] for part in parts])
        quantiles = None if parts[0][1] is None else np.concatenate([part[1] for part in parts])
    return point.transpose(0, 2, 1), None if quantiles is None else quantiles.transpose(0, 2, 3, 1)


def process_state() -> PartialState:
    """accelerate's `PartialState` of this process: the processes `distributed=True` splits the series between.

    Under `accelerate launch` (torchrun, mpirun) the processes join one process group: on their accelerator (NCCL on
    GPUs) when the machine has one, else on CPU (gloo); `ACCELERATE_USE_CPU` (`accelerate launch --cpu`) forces CPU.
    Raises `RuntimeError` when the launcher started more processes than accelerate joins, which would otherwise each
    forecast everything.
    """
    from accelerate import PartialState
    from accelerate.utils import get_int_from_env, parse_flag_from_env

    accelerator = getattr(torch, "accelerator", None)  # torch >= 2.6
    available = accelerator.is_available() if accelerator is not None else torch.cuda.is_available()
    state = PartialState(cpu=parse_flag_from_env("ACCELERATE_USE_CPU") or not available)
    launched = get_int_from_env(["WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE"], 1)
    if state.num_processes != launched:
        raise RuntimeError(
            f"launched as {launched} processes, but accelerate's PartialState joins {state.num_processes} "
            f"({state.distributed_type}): no process group for device {state.device}"
        )
    return state


def _split_state(distributed: bool, model: TTMForPrediction) -> PartialState | None:
    """The process state when the work is split (distributed, several processes), with `model` on this process's
    device; None for a single process, which keeps the model where it is."""
    if not distributed:
        return None
    state = process_state()
    if state.num_processes == 1:
        return None
    model.to(state.device)
    return state


def _share(count: int, state: PartialState) -> slice:
    """This process's contiguous block of `count` items, as accelerate splits them (the first blocks one longer)."""
    with state.split_between_processes(torch.arange(count)) as mine:
        return slice(int(mine[0]), int(mine[-1]) + 1) if len(mine) else slice(count, count)


def _warn_recursive(horizon: int, trained: int) -> None:
    warnings.warn(
        f"`prediction_length` {horizon} goes {horizon - trained} steps past the model's forecast length {trained}: "
        f"forecasting recursively in {math.ceil(horizon / trained)} calls, each feeding the point forecast back as "
        "context; accuracy degrades past the trained horizon",
        UserWarning,
        stacklevel=3,
    )


def _load(model: TTMForPrediction | str, revision: str | None) -> TTMForPrediction:
    if isinstance(model, TTMForPrediction):
        return model.eval()
    if not isinstance(model, str):
        raise TypeError(
            f"`model` must be a TTMForPrediction or a checkpoint directory / Hub id, got {type(model).__name__}"
        )
    try:
        return TTMForPrediction.from_pretrained(model, revision=revision or "main").eval()
    except (OSError, ValueError, KeyError) as error:
        raise ValueError(f"`model`: cannot load a TTM checkpoint from {model!r}: {error}") from None


def _prepare(
    model: TTMForPrediction | str,
    revision: str | None,
    prediction_length: int | None,
    context_length: int | None,
    batch_size: int,
    chunk_size: int,
) -> tuple[TTMForPrediction, tuple[int, int, int, int]]:
    """The model (loaded when given a checkpoint) and the checked horizon, context length, batch size and chunk size
    of a forecast."""
    model = _load(model, revision)
    config = model.config
    horizon = _positive("prediction_length", prediction_length, config.forecast_length)
    context = _positive("context_length", context_length, config.context_length)
    if context > config.context_length:
        raise ValueError(f"`context_length`: {context} exceeds the model's context_length {config.context_length}")
    return model, (horizon, context, _positive("batch_size", batch_size, 1), _positive("chunk_size", chunk_size, 1))


def _positive(argument: str, value: int | None, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"`{argument}` must be a positive integer, got {value!r}")
    return int(value)


def _columns(argument: str, names: Sequence[str] | None, df: pd.DataFrame) -> list[str]:
    """The column names of a list argument, checked against `df`."""
    if names is None:
        return []
    if isinstance(names, str):
        raise TypeError(f"`{argument}` must be a list of column names, got the string {names!r}")
    names = list(names)
    if isinstance(df, pd.DataFrame):
        for name in names:
            if name not in df.columns:
                raise ValueError(f"`{argument}`: no column {name!r} in `df` (columns: {list(df.columns)})")
    return names


def _check_roles(config: TTMConfig, past: list[str], known: list[str], static: list[str]) -> None:
    """Refuses covariates and static columns that the model cannot read, before the data are loaded."""
    if static and config.categorical_vocab_size_list is None:
        raise ValueError(
            "`static_categorical_columns`: the model has no categorical inputs (categorical_vocab_size_list)"
        )
    if not static and config.categorical_vocab_size_list is not None:
        raise ValueError(
            f"`static_categorical_columns`: the model reads {len(config.categorical_vocab_size_list)} static "
            "categorical column(s); name them"
        )
    if config.num_input_channels == 1:
        for argument, columns in (("past_covariate_columns", past), ("known_covariate_columns", known)):
            if columns:
                raise ValueError(f"`{argument}`: the model reads one channel (num_input_channels=1), not covariates")


def _plan(config: TTMConfig, targets: list[str], past: list[str], known: list[str]) -> _Plan:
    """Decides how the columns become the model's channels, and which channels are reported."""
    names = [*targets, *past, *known]
    needs_future = bool(config.enable_forecast_channel_mixing and config.exogenous_channel_indices)
    if config.num_input_channels == 1:
        return _Plan(targets, [], [0], [0], True, config.forecast_length, False)
    if len(names) != config.num_input_channels:
        raise ValueError(
            f"`target_columns`, `past_covariate_columns`, `known_covariate_columns`: the model reads "
            f"{config.num_input_channels} channels, got {len(names)} columns {names}"
        )
    known_channels = list(range(len(targets) + len(past), len(names)))
    unknown = sorted(set(config.exogenous_channel_indices or []) - set(known_channels)) if needs_future else []
    if unknown:
        raise ValueError(
            f"`known_covariate_columns`: the model reads the future of channels {unknown} "
            f"({[names[c] for c in unknown]}); list them last, as known covariates"
        )
    outputs = config.prediction_channel_indices
    if outputs is None:
        outputs = select = list(range(len(targets)))
    else:
        select = list(range(len(outputs)))
    return _Plan(names, known_channels, list(outputs), select, False, config.forecast_length, needs_future)


def _series_names(table: pa.Table, df: pd.DataFrame, id_column: str | None) -> np.ndarray:
    """The id of every series as in `df` (the loader keeps them as text)."""
    if id_column is None:
        return np.array([None], dtype=object)
    originals = pd.unique(df[id_column])
    positions = pd.Index(pd.Series(originals).astype(str)).get_indexer(table.column("item_id").to_numpy())
    return np.asarray(originals)[positions]


def _forecast_timestamps(table: pa.Table, lengths: np.ndarray, offset: BaseOffset, horizon: int) -> np.ndarray:
    """The `horizon` timestamps after every series (series, horizon) as int64 nanoseconds (UTC for zoned times);
    one `date_range` per distinct (start, length), so calendar frequencies work too."""
    starts = pd.DatetimeIndex(table.column("start").to_pandas())
    keys, first, inverse = np.unique(np.stack([starts.asi8, lengths]), axis=1, return_index=True, return_inverse=True)
    grid = np.stack(
        [
            pd.date_range(starts[index], periods=int(length) + horizon, freq=offset)[int(length) :].asi8
            for index, length in zip(first, keys[1], strict=True)
        ]
    )
    return grid[inverse.reshape(-1)]


@dataclass
class _Future:
    index: pd.MultiIndex  # (id as text, timestamp in int64 nanoseconds)
    values: np.ndarray  # rows x known covariates


def _future_lookup(future_df: pd.DataFrame, known: list[str], id_column: str | None, timestamp_column: str) -> _Future:
    if not isinstance(future_df, pd.DataFrame):
        raise TypeError(f"`future_df` must be a pandas DataFrame, got {type(future_df).__name__}")
    for column in [*([id_column] if id_column else []), timestamp_column, *known]:
        if column not in future_df.columns:
            raise ValueError(f"`future_df`: no column {column!r} (columns: {list(future_df.columns)})")
    times = pd.DatetimeIndex(pd.to_datetime(future_df[timestamp_column])).asi8
    ids = future_df[id_column].astype(str).to_numpy() if id_column else np.full(len(future_df), "None")
    index = pd.MultiIndex.from_arrays([ids, times])
    if index.has_duplicates:
        raise ValueError(f"`future_df`: column {timestamp_column!r} repeats a timestamp within a series")
    return _Future(index, future_df[known].to_numpy(dtype=np.float32))


def _future_values(future: _Future, names: np.ndarray, timestamps: np.ndarray) -> np.ndarray:
    """The known covariates at the forecast timestamps (series, horizon, known)."""
    ids = np.repeat(pd.Index(names).astype(str).to_numpy(), timestamps.shape[1])
    positions = future.index.get_indexer(pd.MultiIndex.from_arrays([ids, timestamps.reshape(-1)]))
    if (positions < 0).any():
        row = int(np.argmax(positions < 0))
        raise ValueError(
            f"`future_df` has no row for series {ids[row]!r} at {pd.Timestamp(timestamps.reshape(-1)[row])} (a "
            "forecast timestamp); it needs every forecast step of every series"
        )
    return future.values[positions].reshape(*timestamps.shape, -1)


def _rollout(
    model: TTMForPrediction,
    plan: _Plan,
    inputs: np.ndarray,
    known_future: np.ndarray | None,
    token: int | None,
    categories: np.ndarray | None,
    horizon: int,
    batch_size: int,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Forecast `horizon` steps of contexts (n, length, channels), recursively past the model's horizon.

    Returns the point forecasts (n, reported channels, horizon) and quantiles (n, channels, levels, horizon) or None.
    """
    n, length, channels = inputs.shape
    if plan.fold:
        inputs = inputs.transpose(0, 2, 1).reshape(n * channels, length, 1)
        categories = None if categories is None else np.repeat(categories, channels, axis=0)
    step, steps = plan.horizon, math.ceil(horizon / plan.horizon)
    if known_future is not None and steps * step > horizon:  # the last call reads past the requested horizon
        known_future = np.pad(known_future, ((0, 0), (0, steps * step - horizon), (0, 0)), mode="edge")
    context, points, quantiles = inputs, [], []
    for call in range(steps):
        window = slice(call * step, (call + 1) * step)
        future = None
        if plan.needs_future:
            future = np.zeros((len(context), step, context.shape[2]), dtype=np.float32)
            future[..., plan.known] = known_future[:, window]
        point, quantile = _predict(model, context, token, categories, future, batch_size)
        points.append(point)
        quantiles.append(quantile)
        if call < steps - 1:
            block = np.full((len(context), step, context.shape[2]), np.nan, dtype=np.float32)
            block[..., plan.outputs] = point[..., plan.select]
            if known_future is not None:
                block[..., plan.known] = known_future[:, window]
            context = np.concatenate([context, block], axis=1)[:, -length:]
    point = np.concatenate(points, axis=1)[:, :horizon, plan.select]  # (n', horizon, reported)
    quantile = None
    if quantiles[0] is not None:
        quantile = np.concatenate(quantiles, axis=2)[:, :, :horizon][
            ..., plan.select
        ]  # (n', levels, horizon, reported)
    if plan.fold:
        point = point.reshape(n, channels, horizon)
        quantile = None if quantile is None else quantile.reshape(n, channels, -1, horizon)
    else:
        point = point.transpose(0, 2, 1)
        quantile = None if quantile is None else quantile.transpose(0, 3, 1, 2)
    return point, quantile


def _predict(
    model: TTMForPrediction,
    inputs: np.ndarray,
    token: int | None,
    categories: np.ndarray | None,
    future: np.ndarray | None,
    batch_size: int,
) -> tuple[np.ndarray, np.ndarray | None]:
    """One model call per batch: point forecasts (n, steps, channels) and quantiles (n, levels, steps, channels)."""
    device, points, quantiles = model.device, [], []
    with torch.inference_mode():
        for begin in range(0, len(inputs), batch_size):
            batch = slice(begin, begin + batch_size)
            past = torch.from_numpy(np.ascontiguousarray(inputs[batch])).to(device)
            extra = {}
            if token is not None:
                extra["freq_token"] = torch.full((len(past),), token, dtype=torch.long, device=device)
            if categories is not None:
                extra["static_categorical_values"] = torch.from_numpy(categories[batch]).to(device)
            if future is not None:
                extra["future_values"] = torch.from_numpy(future[batch]).to(device)
            output = model(past_values=past, return_loss=False, return_dict=True, **extra)
            points.append(output.prediction_outputs.float().cpu().numpy())
            if output.quantile_outputs is not None:
                quantiles.append(output.quantile_outputs.float().cpu().numpy())
    return np.concatenate(points), np.concatenate(quantiles) if quantiles else None


def _rows(
    plan: _Plan, names: np.ndarray, timestamps: np.ndarray, point: np.ndarray, quantiles: np.ndarray | None
) -> dict[str, np.ndarray]:
    """The output columns of a chunk, one row per series, reported channel and step (in this order)."""
    n, channels, horizon = point.shape
    rows = {
        "id": np.repeat(names, channels * horizon),
        "timestamp": np.repeat(timestamps[:, None, :], channels, axis=1).reshape(-1),
        "target": np.tile(np.repeat(np.asarray(plan.output_names, dtype=object), horizon), n),
        "point": point.reshape(-1),
    }
    if quantiles is not None:
        rows["quantiles"] = quantiles.transpose(0, 1, 3, 2).reshape(-1, quantiles.shape[2])
    return rows


def _frame(
    parts: list[dict[str, np.ndarray]],
    id_column: str | None,
    timestamp_column: str,
    levels: list[float] | None,
    table: pa.Table,
) -> pd.DataFrame:
    columns = {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}
    zone = table.schema.field("start").type.tz
    times = pd.to_datetime(columns["timestamp"], utc=zone is not None)
    result = {}
    if id_column is not None:
        result[id_column] = columns["id"]
    result[timestamp_column] = times.tz_convert(zone) if zone is not None else times
    result[TARGET_NAME_COLUMN] = columns["target"]
    result[POINT_COLUMN] = columns["point"]
    for index, level in enumerate(levels if "quantiles" in columns else []):
        result[f"{level:g}"] = columns["quantiles"][:, index]
    return pd.DataFrame(result)

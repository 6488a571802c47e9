"""Forecast the series of a CSV / parquet file zero-shot with a pretrained Tiny Time Mixer (TTM).

With no arguments it forecasts a real 30-minute sea surface temperature series that ships in the bokeh-sampledata
wheel (`pip install --no-deps bokeh-sampledata`) with the checkpoint this repository ships (pretrained on an offline
corpus that excludes this series), backtests it on rolling windows against the seasonal-naive forecast, and prints
the zero-shot metrics.

The model is the shipped checkpoint by default, else --model: a local directory, a Hub id (--revision picks the
branch) or IBM's repository, e.g. ibm-granite/granite-timeseries-ttm-r2, whose variant is then chosen like
granite-tsfm does: the longest context the data fills, then the shortest horizon >= --horizon, with the forecast cut
to --horizon (prediction_filter_length).

The file needs a timestamp column (default: the first holding dates) and numeric target columns (default: all but
--id-column); --id-column stacks several series. Rows are sorted by time and rows that share a timestamp are
averaged; empty cells are missing values. The last --context-length rows of each series must be regularly spaced
(or pass --resample FREQ): the forecast timestamps continue their frequency. The input file is only read.

Outputs: the forecast CSV (timestamp, the point forecast per target and, for checkpoints with a quantile head,
columns <target>_q<level>) and a PNG per target next to it (<output>_<target>.png: history, forecast, quantile band
and, with --holdout, the actual values). --holdout forecasts the last --horizon steps of the data instead of the
future and scores them; --backtest scores rolling windows (stride --horizon) against seasonal naive.
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import sys
from pathlib import Path

# Run as `python scripts/forecast.py`, this file's folder comes first on the import path, where scripts/evaluate.py
# would shadow the `evaluate` library that ttm_metrics imports.
if str(Path(__file__).resolve().parent) in sys.path:
    sys.path.remove(str(Path(__file__).resolve().parent))

import matplotlib
import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from configuration_ttm import TTMConfig
from modeling_ttm import TTMForPrediction
from ttm_data import freq_token, read_table, seasonal_period
from ttm_metrics import baseline_forecasts, evaluation_report, format_report
from ttm_zoo import IBM_REVISIONS, local_variants, parse_variant, select_variant

matplotlib.use("Agg")
from matplotlib import pyplot as plt  # noqa: E402


def demo_csv_path() -> Path:
    """The demo series: 30-minute sea surface temperature readings, from the bokeh-sampledata wheel."""
    spec = importlib.util.find_spec("bokeh_sampledata")
    if spec is None or spec.origin is None:
        raise ValueError("--input not given and the demo data is not installed: pip install --no-deps bokeh-sampledata")
    return Path(spec.origin).parent / "_data" / "sea_surface_temperature.csv.gz"


def load_model(
    model: str | None, revision: str | None, data_length: int, horizon: int | None
) -> tuple[TTMForPrediction, str]:
    """The forecasting model and a description: chosen by the selection rule unless --model names one checkpoint."""
    if model is None or (model in IBM_REVISIONS and revision is None):
        if model is None:
            variants, where = local_variants(), "shipped checkpoint"
        else:
            variants, where = [parse_variant(model, r) for r in IBM_REVISIONS[model]], f"{model} variant"
        if not variants:
            raise ValueError("--model: no checkpoint is shipped in checkpoints/; pass --model")
        try:
            variant, filter_length = select_variant(variants, data_length, horizon or 1)
        except ValueError as error:
            raise ValueError(str(error).replace("`horizon`", "--horizon")) from None
        if horizon is None:
            filter_length = None
        model, revision = variant.model, variant.revision
        label = f"{where} {model}" + (f" (revision {revision})" if revision else "")
    else:
        filter_length, label = None, f"checkpoint {model}" + (f" (revision {revision})" if revision else "")
        if not Path(model).is_dir() and "/" not in model:
            raise ValueError(f"--model: {model} is not a directory nor a Hub id")
    overrides = {"prediction_filter_length": filter_length} if filter_length else {}
    try:
        loaded = TTMForPrediction.from_pretrained(model, revision=revision or "main", **overrides)
    except (OSError, ValueError, KeyError) as error:
        raise ValueError(f"--model: cannot load a TTM checkpoint from {model}: {error}") from error
    return loaded.eval(), label


def detect_timestamp_column(frame: pd.DataFrame, id_column: str | None) -> str:
    """The first column (other than the id column) holding dates; else the first column."""
    for column in frame.columns:
        values = frame[column]
        if column == id_column or pd.api.types.is_numeric_dtype(values):
            continue
        if pd.api.types.is_datetime64_any_dtype(values):
            return column
        try:
            pd.to_datetime(values.head(20))
        except (ValueError, TypeError):
            continue
        return column
    return frame.columns[0]


def read_series(
    path: Path,
    timestamp_column: str | None,
    target_columns: list[str] | None,
    id_column: str | None = None,
    resample: str | None = None,
) -> dict[str, pd.DataFrame]:
    """Read the file into frames of float targets indexed by sorted, unique timestamps, one per series."""
    try:
        frame = read_table(path)
    except (ValueError, FileNotFoundError) as error:
        raise ValueError(f"--input: {error}") from error
    columns = list(frame.columns)
    timestamp_column = detect_timestamp_column(frame, id_column) if timestamp_column is None else timestamp_column
    if timestamp_column not in columns:
        raise ValueError(f"--timestamp-column: no column {timestamp_column!r} in {path} (columns: {columns})")
    if id_column is not None and id_column not in columns:
        raise ValueError(f"--id-column: no column {id_column!r} in {path} (columns: {columns})")
    roles = {timestamp_column, id_column}
    targets = [c for c in columns if c not in roles] if target_columns is None else target_columns
    for column in targets:
        if column not in columns:
            raise ValueError(f"--target-columns: no column {column!r} in {path} (columns: {columns})")
        if column in roles or not pd.api.types.is_numeric_dtype(frame[column]):
            raise ValueError(f"--target-columns: column {column!r} of {path} is not numeric")
    if not targets:
        raise ValueError(f"--target-columns: {path} has no column besides the timestamp column")
    try:
        timestamps = pd.to_datetime(frame[timestamp_column])
    except (ValueError, TypeError) as error:
        raise ValueError(
            f"--timestamp-column: cannot parse column {timestamp_column!r} as timestamps: {error}"
        ) from error
    if timestamps.isna().any():
        raise ValueError(f"--timestamp-column: column {timestamp_column!r} has empty timestamps")
    values = frame[targets].astype(float).set_index(timestamps.rename(timestamp_column))
    groups = values.groupby(frame[id_column].astype(str).to_numpy()) if id_column else [("", values)]
    series = {}
    for name, group in groups:
        group = group.groupby(level=0).mean()
        series[name] = group.resample(resample).mean() if resample else group
    return series


def forecast_window(window: pd.DataFrame, horizon: int) -> tuple[pd.DatetimeIndex, str]:
    """The timestamps after a regular window, and its frequency alias."""
    offset = pd.DatetimeIndex(window.index, freq="infer").freq  # pandas.infer_freq, as an offset
    if offset is None:
        raise ValueError(
            f"--input: the {len(window)} timestamps from {window.index[0]} to {window.index[-1]} are not regularly"
            " spaced (need at least 3 at a fixed frequency); pass --resample FREQ or lower --context-length"
        )
    values = window.to_numpy(dtype=np.float32)
    for column, has_inf in zip(window.columns, np.isinf(values).any(axis=0), strict=True):
        if has_inf:
            raise ValueError(f"--input: column {column!r} has infinite values in the context window")
    timestamps = pd.date_range(window.index[-1] + offset, periods=horizon, freq=offset, name=window.index.name)
    return timestamps, offset.freqstr


def predict(
    model: TTMForPrediction, contexts: np.ndarray, freq_tokens: np.ndarray, horizon: int, batch_size: int = 256
) -> tuple[np.ndarray, np.ndarray | None]:
    """Forecast contexts (series, time, channels; NaN = missing) in batches.

    Returns the point forecasts (series, horizon, channels) and the quantile forecasts (series, levels, horizon,
    channels) or None. A univariate checkpoint forecasts every channel as its own series.
    """
    config = model.config
    series, length, channels = contexts.shape
    fold = config.num_input_channels == 1 and channels > 1
    if not fold and channels != config.num_input_channels:
        raise ValueError(f"--target-columns: the checkpoint reads {config.num_input_channels} channels, got {channels}")
    inputs = contexts.transpose(0, 2, 1).reshape(-1, length, 1) if fold else contexts
    tokens = np.repeat(freq_tokens, channels) if fold else freq_tokens
    points, quantiles = [], []
    starts = range(0, len(inputs), batch_size)
    for start in tqdm(starts, desc="forecasting", unit="batch", disable=len(starts) < 4):
        extra = {"freq_token": torch.from_numpy(tokens[start : start + batch_size])}
        with torch.no_grad():
            output = model(
                past_values=torch.from_numpy(inputs[start : start + batch_size]),
                return_loss=False,
                **(extra if config.resolution_prefix_tuning else {}),
            )
        points.append(output.prediction_outputs[:, :horizon].numpy())
        if output.quantile_outputs is not None:
            quantiles.append(output.quantile_outputs[:, :, :horizon].numpy())
    point = np.concatenate(points)
    quantile = np.concatenate(quantiles) if quantiles else None
    if fold:
        point = point.reshape(series, channels, horizon).transpose(0, 2, 1)
        if quantile is not None:
            quantile = quantile.reshape(series, channels, -1, horizon).transpose(0, 2, 3, 1)
    return point, quantile


def context_array(windows: list[pd.DataFrame], context_length: int) -> np.ndarray:
    """The windows as one array (series, context_length, channels), left-padded with NaN (= unobserved)."""
    array = np.full((len(windows), context_length, windows[0].shape[1]), np.nan, dtype=np.float32)
    for index, window in enumerate(windows):
        values = window.to_numpy(dtype=np.float32)[-context_length:]
        array[index, context_length - len(values) :] = values
    return array


def backtest(
    model: TTMForPrediction,
    series: dict[str, pd.DataFrame],
    context_length: int,
    horizon: int,
    freq: str,
    baselines: bool = False,
) -> dict:
    """Zero-shot rolling backtest: windows every `horizon` steps, the last one ending at each series' end.

    The series are first put on the regular `freq` grid (missing steps become NaN). With `baselines`, the report also
    scores statsforecast's baselines on the same contexts (`ttm_metrics.baseline_forecasts`).
    """
    contexts, actuals = [], []
    for frame in series.values():
        values = frame.resample(freq).mean().to_numpy(dtype=np.float32)
        for end in range(len(values), context_length + horizon - 1, -horizon):
            contexts.append(values[end - horizon - context_length : end - horizon])
            actuals.append(values[end - horizon : end])
    if not contexts:
        raise ValueError(f"--backtest: no series has {context_length + horizon} steps")
    contexts_array, actuals_array = np.stack(contexts), np.stack(actuals)
    token = freq_token(freq)
    point, quantile = predict(model, contexts_array, np.full(len(contexts), token), horizon)
    levels = model.config.quantile_levels if quantile is not None else None
    statistical = None
    if baselines:
        statistical = baseline_forecasts(contexts_array, horizon, seasonal_period(freq), levels or (0.5,))
    return evaluation_report(
        point,
        actuals_array,
        contexts_array,
        seasonal_period(freq),
        quantile_forecasts=quantile,
        quantile_levels=levels,
        baselines=statistical,
    )


def result_frame(
    timestamps: pd.DatetimeIndex, names: list[str], point: np.ndarray, quantile: np.ndarray | None, levels: list | None
) -> pd.DataFrame:
    """Forecast table of one series: timestamp, per target the point forecast and its quantile columns."""
    result = pd.DataFrame({timestamps.name: timestamps})
    for channel, name in enumerate(names):
        result[name] = point[:, channel]
        for index, level in enumerate(levels if quantile is not None else []):
            result[f"{name}_q{level:g}"] = quantile[index, :, channel]
    return result


def plot(history: pd.Series, forecast: pd.DataFrame, target: str, actuals: pd.Series | None, path: Path) -> None:
    """History, forecast, quantile band (outermost levels) and actuals of one target."""
    figure, axis = plt.subplots(figsize=(10, 4))
    time = history.index.name
    axis.plot(history.index, history.to_numpy(), color="black", linewidth=1, label="history")
    bands = [c for c in forecast.columns if re.fullmatch(re.escape(target) + r"_q[\d.]+", str(c))]
    if len(bands) >= 2:
        axis.fill_between(
            forecast[time], forecast[bands[0]], forecast[bands[-1]], color="tab:blue", alpha=0.25,
            label=f"{bands[0].rsplit('_q', 1)[1]}-{bands[-1].rsplit('_q', 1)[1]} quantile band",
        )  # fmt: skip
    axis.plot(forecast[time], forecast[target], color="tab:blue", linewidth=1.5, label="forecast")
    if actuals is not None:
        axis.plot(actuals.index, actuals.to_numpy(), color="tab:orange", linewidth=1, label="actual")
    axis.set_title(str(target))
    axis.set_xlabel(str(time))
    axis.grid(alpha=0.3)
    axis.legend(loc="upper left")
    figure.autofmt_xdate()
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Example: python scripts/forecast.py --input data.csv --timestamp-column date "
        "--target-columns load temperature --horizon 24 --output forecast.csv",
    )
    parser.add_argument(
        "--model", metavar="DIR|HUB_ID", help="checkpoint directory or Hub id (default: the shipped checkpoint)"
    )
    parser.add_argument("--revision", help="Hub branch of --model (default: chosen for IBM's repositories)")
    parser.add_argument(
        "--input", metavar="FILE", help="CSV / parquet file (default: the sea surface temperature demo series)"
    )
    parser.add_argument("--timestamp-column", metavar="NAME", help="timestamp column (default: the first with dates)")
    parser.add_argument("--id-column", metavar="NAME", help="column naming the series of each row, for stacked series")
    parser.add_argument(
        "--target-columns", metavar="NAME", nargs="+", help="columns to forecast (default: all other columns)"
    )
    parser.add_argument("--resample", metavar="FREQ", help="average the rows into FREQ periods first (e.g. 5min)")
    parser.add_argument(
        "--context-length",
        type=positive_int,
        metavar="N",
        help="number of latest rows fed to the model (default: the model's)",
    )
    parser.add_argument(
        "--horizon", type=positive_int, metavar="N", help="steps to forecast (default: the model's forecast length)"
    )
    parser.add_argument("--holdout", action="store_true", help="forecast the last --horizon steps and score them")
    parser.add_argument("--backtest", action="store_true", help="score rolling windows (always on for the demo)")
    parser.add_argument("--max-plots", type=int, default=8, metavar="N", help="PNG plots at most (default: 8)")
    parser.add_argument("--output", metavar="CSV", default="forecast.csv", help="where to write (default: %(default)s)")
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    demo = args.input is None
    try:
        input_path = demo_csv_path() if demo else Path(args.input)
        if not input_path.is_file():
            raise ValueError(f"--input: no such file {input_path}")
        output_path = Path(args.output)
        if output_path.exists() and output_path.samefile(input_path):
            raise ValueError(f"--output: refusing to overwrite the input file {input_path}")
        if not output_path.parent.is_dir():
            raise ValueError(f"--output: directory {output_path.parent} does not exist")
        series = read_series(input_path, args.timestamp_column, args.target_columns, args.id_column, args.resample)
        shortest = min(len(frame) for frame in series.values()) - (args.horizon or 0) * args.holdout
        model, label = load_model(args.model, args.revision, args.context_length or shortest, args.horizon)
        config: TTMConfig = model.config
        context_length = args.context_length or config.context_length
        horizon = args.horizon or config.forecast_length
        if context_length > config.context_length:
            raise ValueError(f"--context-length: {context_length} exceeds the model's {config.context_length}")
        if horizon > config.forecast_length:
            raise ValueError(f"--horizon: {horizon} exceeds the model's {config.forecast_length}")
        histories = {name: frame.iloc[:-horizon] if args.holdout else frame for name, frame in series.items()}
        windows = {name: frame.iloc[-context_length:] for name, frame in histories.items()}
        futures = {name: forecast_window(window, horizon) for name, window in windows.items()}
        tokens = np.array([freq_token(freq) for _, freq in futures.values()], dtype=np.int64)
        point, quantile = predict(model, context_array(list(windows.values()), context_length), tokens, horizon)
        report = None
        if demo or args.backtest:
            report = backtest(model, series, config.context_length, horizon, next(iter(futures.values()))[1])
    except ValueError as error:
        parser.error(str(error))

    levels = config.quantile_levels
    frames = []
    for index, (name, (timestamps, _)) in enumerate(futures.items()):
        frame = result_frame(
            timestamps, list(windows[name].columns), point[index], None if quantile is None else quantile[index], levels
        )
        if args.id_column:
            frame.insert(0, args.id_column, name)
        frames.append(frame)
    result = pd.concat(frames, ignore_index=True)
    result.to_csv(output_path, index=False)
    plots = []
    for index, name in enumerate(series):
        for target in windows[name].columns:
            if len(plots) >= args.max_plots:
                break
            stem = "_".join(filter(None, [output_path.stem, name, re.sub(r"[^\w.-]+", "-", str(target)).strip("-")]))
            path = output_path.with_name(f"{stem}.png")
            actuals = series[name][target].iloc[-horizon:] if args.holdout else None
            plot(histories[name][target].iloc[-3 * horizon :], frames[index], target, actuals, path)
            plots.append(path)

    first = next(iter(windows.values()))
    print(f"model:    {label}")
    print(f"input:    {input_path} ({len(series)} series, targets: {', '.join(map(str, first.columns))})")
    print(f"context:  {len(first)} steps, {first.index[0]} .. {first.index[-1]}")
    print(f"forecast: {horizon} steps, {result.iloc[0][first.index.name]} .. {result.iloc[-1][first.index.name]}")
    if args.holdout:
        actual = context_array([frame.iloc[-horizon:] for frame in series.values()], horizon)
        contexts = context_array(list(windows.values()), context_length)
        freq = next(iter(futures.values()))[1]
        holdout = evaluation_report(point, actual, contexts, min(seasonal_period(freq), context_length - 1))
        print("holdout (last --horizon steps):\n" + format_report(holdout))
    if report is not None:
        mase = report["metrics"]["original"]["mase"]
        print(
            f"zero-shot backtest: {report['num_windows']} rolling windows of {horizon} steps, seasonal period "
            f"{report['seasonal_period']}\n" + format_report(report)
        )
        print(f"MASE ratio (model / seasonal naive): {mase['ratio']:.4f}")
    print(f"wrote {output_path} and {len(plots)} plot(s): {', '.join(map(str, plots))}")


if __name__ == "__main__":
    sys.exit(main())

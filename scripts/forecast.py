"""Forecast the next steps of the series in a CSV file with a Tiny Time Mixer (TTM).

With no arguments it forecasts a real 30-minute sea surface temperature series that ships in the
bokeh-sampledata wheel (`pip install --no-deps bokeh-sampledata`), using a randomly initialised model with the
architecture of IBM's r2 512-96 checkpoint. Pass --model DIR to forecast with a trained checkpoint.

The CSV needs a timestamp column and one or more numeric target columns. Rows are sorted by time and rows that
share a timestamp are averaged; empty cells are missing values. The last --context-length rows must be regularly
spaced: the forecast timestamps continue their frequency (pandas.infer_freq). The input file is only read.
"""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from configuration_ttm import TTMConfig
from modeling_ttm import TTMForPrediction


def demo_csv_path() -> Path:
    """The demo series: 30-minute sea surface temperature readings, from the bokeh-sampledata wheel."""
    spec = importlib.util.find_spec("bokeh_sampledata")
    if spec is None or spec.origin is None:
        raise ValueError("--input not given and the demo data is not installed: pip install --no-deps bokeh-sampledata")
    return Path(spec.origin).parent / "_data" / "sea_surface_temperature.csv.gz"


def load_model(model_dir: str | None, num_channels: int, seed: int) -> tuple[TTMForPrediction, str]:
    """Choose the forecasting model: a local checkpoint, or an untrained model with the r2 512-96 architecture."""
    if model_dir is not None:
        if not Path(model_dir).is_dir():
            raise ValueError(f"--model: {model_dir} is not a directory")
        return TTMForPrediction.from_pretrained(model_dir).eval(), f"checkpoint {model_dir}"
    torch.manual_seed(seed)
    config = TTMConfig(
        context_length=512,
        prediction_length=96,
        num_input_channels=num_channels,
        patch_length=64,
        patch_stride=64,
        d_model=192,
        num_layers=2,
        adaptive_patching_levels=3,
        decoder_num_layers=2,
        decoder_d_model=128,
        expansion_factor=2,
        scaling="std",
    )
    label = f"UNTRAINED TTM (random weights, r2 512-96 architecture, seed {seed}): the forecast is not meaningful"
    return TTMForPrediction(config).eval(), label


def read_series(path: Path, timestamp_column: str | None, target_columns: list[str] | None) -> pd.DataFrame:
    """Read the CSV into a frame of float targets indexed by sorted, unique timestamps."""
    try:
        frame = pd.read_csv(path)
    except ValueError as error:
        raise ValueError(f"--input: cannot read {path} as CSV: {error}") from error
    columns = list(frame.columns)
    timestamp_column = columns[0] if timestamp_column is None else timestamp_column
    if timestamp_column not in columns:
        raise ValueError(f"--timestamp-column: no column {timestamp_column!r} in {path} (columns: {columns})")
    targets = [c for c in columns if c != timestamp_column] if target_columns is None else target_columns
    for column in targets:
        if column not in columns:
            raise ValueError(f"--target-columns: no column {column!r} in {path} (columns: {columns})")
        if column == timestamp_column or not pd.api.types.is_numeric_dtype(frame[column]):
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
    return frame[targets].astype(float).groupby(timestamps.rename(timestamp_column)).mean()


def forecast(model: TTMForPrediction, window: pd.DataFrame, horizon: int) -> pd.DataFrame:
    """Forecast `horizon` steps after `window` (regular timestamps, NaN = missing); returns a timestamp column."""
    offset = pd.DatetimeIndex(window.index, freq="infer").freq  # pandas.infer_freq, as an offset
    if offset is None:
        raise ValueError(
            f"--input: the {len(window)} timestamps from {window.index[0]} to {window.index[-1]} are not regularly"
            " spaced (need at least 3 at a fixed frequency); resample the series or lower --context-length"
        )
    values = window.to_numpy(dtype=np.float32)
    for column, has_inf in zip(window.columns, np.isinf(values).any(axis=0), strict=True):
        if has_inf:
            raise ValueError(f"--input: column {column!r} has infinite values in the context window")
    with torch.no_grad():
        prediction = model(past_values=torch.tensor(values)[None]).prediction_outputs[0, :horizon]
    indices = model.config.prediction_channel_indices
    columns = [window.columns[i] for i in indices] if indices else list(window.columns)
    timestamps = pd.date_range(window.index[-1] + offset, periods=horizon, freq=offset)
    result = pd.DataFrame(prediction.numpy(), columns=columns)
    result.insert(0, window.index.name, timestamps)
    return result


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
    parser.add_argument("--model", metavar="DIR", help="checkpoint directory (default: untrained r2 512-96 model)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the untrained default model (default: 0)")
    parser.add_argument(
        "--input", metavar="CSV", help="CSV file to forecast (default: the sea surface temperature demo series)"
    )
    parser.add_argument("--timestamp-column", metavar="NAME", help="timestamp column (default: the first column)")
    parser.add_argument(
        "--target-columns", metavar="NAME", nargs="+", help="columns to forecast (default: all other columns)"
    )
    parser.add_argument(
        "--context-length",
        type=positive_int,
        metavar="N",
        help="number of latest rows fed to the model (default: the model's)",
    )
    parser.add_argument(
        "--horizon", type=positive_int, metavar="N", help="steps to forecast (default: the model's prediction_length)"
    )
    parser.add_argument("--output", metavar="CSV", default="forecast.csv", help="where to write (default: %(default)s)")
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        input_path = demo_csv_path() if args.input is None else Path(args.input)
        if not input_path.is_file():
            raise ValueError(f"--input: no such file {input_path}")
        output_path = Path(args.output)
        if output_path.exists() and output_path.samefile(input_path):
            raise ValueError(f"--output: refusing to overwrite the input file {input_path}")
        if not output_path.parent.is_dir():
            raise ValueError(f"--output: directory {output_path.parent} does not exist")
        series = read_series(input_path, args.timestamp_column, args.target_columns)
        model, label = load_model(args.model, num_channels=series.shape[1], seed=args.seed)
        context_length = args.context_length or model.config.context_length
        horizon = args.horizon or model.config.prediction_length
        if context_length > model.config.context_length:
            raise ValueError(f"--context-length: {context_length} exceeds the model's {model.config.context_length}")
        if horizon > model.config.prediction_length:
            raise ValueError(f"--horizon: {horizon} exceeds the model's {model.config.prediction_length}")
        window = series.iloc[-context_length:]
        result = forecast(model, window, horizon)
    except ValueError as error:
        parser.error(str(error))
    result.to_csv(output_path, index=False)
    print(f"model:    {label}")
    print(f"input:    {input_path} ({len(series)} time steps, targets: {', '.join(map(str, series.columns))})")
    print(f"context:  {len(window)} steps, {window.index[0]} .. {window.index[-1]}")
    print(f"forecast: {horizon} steps, {result.iloc[0, 0]} .. {result.iloc[-1, 0]}")
    print(f"wrote {output_path}")


if __name__ == "__main__":
    main()

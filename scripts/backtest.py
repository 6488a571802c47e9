"""Backtest a TTM checkpoint on a time-series file, zero-shot, against a seasonal-naive baseline.

The file (CSV or parquet, one series or several stacked with an id column) is split in time into train /
validation / test. Rolling windows step through the evaluated split every --stride steps; for each, the model
forecasts --horizon steps from the --context-length steps before it (context may reach back before the split).
The forecasts are scored with the ttm_metrics `evaluate` modules: MSE, MAE, MASE, sMAPE, and the weighted
quantile loss (mean over levels, the CRPS approximation) for quantile models. Every metric is reported for the
model and for the seasonal-naive forecast of the same windows (repeat the last season; the period comes from the
frequency: 5min 288, 15min 96, 30min 48, h 24, D 7, W 52, M 12, ...), with the ratio model / seasonal naive
(below 1: the model is better), in the data's original units and in scaled units: each series' channels
standardised with the mean and standard deviation of its training split. MASE and the seasonal naive read the
last max(context length, seasonal period + 1) steps before each window.

With --baselines, statsforecast's SeasonalNaive, AutoETS, AutoTheta, MSTL and their median ensemble are fitted on
the same context of every window and scored the same way, with the model's ratio to each (`pip install
"ttm-hf[baselines]"`); fits that fail or return non-finite values are counted in the report.

Channels are the target columns, then the exogenous columns, in the order given; they must match the
checkpoint's (num_input_channels, prediction_channel_indices). A single-channel checkpoint, like IBM's
zero-shot models, forecasts every target column as its own series. The input file is only read.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ttm_data.cli import FlagParser, add_series_flags, fraction, positive_int

if TYPE_CHECKING:  # the heavy modules load inside the functions, after the arguments are checked
    import numpy as np

    from modeling_ttm import TTMForPrediction
    from ttm_data import EvalWindows, SeriesStore

DEFAULT_OUTPUT = Path("outputs") / "backtest.json"


def load_model(path: str) -> TTMForPrediction:
    from modeling_ttm import TTMForPrediction

    if not Path(path).is_dir():
        what = "is a file, not a checkpoint directory" if Path(path).exists() else "does not exist"
        raise ValueError(f"--model: directory {path} {what}")
    try:
        return TTMForPrediction.from_pretrained(path).eval()
    except (OSError, ValueError, KeyError) as error:
        raise ValueError(f"--model: cannot load a TTM checkpoint from {path}: {error}") from error


def check_lengths(model: TTMForPrediction, context_length: int | None, horizon: int | None) -> tuple[int, int]:
    """--context-length and --horizon, defaulting to (and bounded by) the checkpoint's."""
    config = model.config
    context_length = context_length or config.context_length
    horizon = horizon or config.forecast_length
    if context_length > config.context_length:
        raise ValueError(f"--context-length: {context_length} exceeds the checkpoint's {config.context_length}")
    if horizon > config.forecast_length:
        raise ValueError(f"--horizon: {horizon} exceeds the checkpoint's forecast length {config.forecast_length}")
    if needs_future_exogenous(model) and horizon != config.forecast_length:
        raise ValueError(
            f"--horizon: the checkpoint mixes in the future of exogenous channels over its whole forecast length; "
            f"use --horizon {config.forecast_length}"
        )
    return context_length, horizon


def needs_future_exogenous(model: TTMForPrediction) -> bool:
    return model.config.enable_forecast_channel_mixing and bool(model.config.exogenous_channel_indices)


def fold_channels(model: TTMForPrediction, store: SeriesStore, channel_names: list[str]) -> bool:
    """Whether each target channel is forecast as its own series; raises when the data's channels do not fit."""
    config = model.config
    if config.num_input_channels == 1 and store.num_exogenous == 0:
        return store.num_targets > 1
    model_targets = config.prediction_channel_indices or list(range(config.num_input_channels))
    if config.num_input_channels != store.num_channels or model_targets != store.prediction_channel_indices:
        raise ValueError(
            f"--target-columns / --exogenous-columns: the checkpoint reads {config.num_input_channels} channels and "
            f"forecasts channels {model_targets}; the data has channels {channel_names} with targets "
            f"{store.prediction_channel_indices} (target columns first, then exogenous columns)"
        )
    return False


def forecast(
    model: TTMForPrediction, windows: EvalWindows, context_length: int, horizon: int, batch_size: int, fold: bool
) -> tuple[np.ndarray, np.ndarray | None]:
    """Point forecasts (windows, horizon, targets) and quantile forecasts (windows, levels, horizon, targets)."""
    import numpy as np
    import torch
    from tqdm.auto import tqdm

    from ttm_data import ForecastWindowCollator

    config = model.config
    collator = ForecastWindowCollator(
        context_length,
        horizon,
        return_freq_token=config.resolution_prefix_tuning,
        return_static_categoricals=config.categorical_vocab_size_list is not None,
    )
    names = ["past_values", "past_observed_mask", "freq_token", "static_categorical_values"]
    if needs_future_exogenous(model):
        names.append("future_values")
    points, quantiles = [], []
    for start in tqdm(range(0, len(windows), batch_size), desc="forecasting", unit="batch", disable=None):
        batch = collator([windows[i] for i in range(start, min(start + batch_size, len(windows)))])
        inputs = {name: batch[name] for name in names if name in batch}
        channels = inputs["past_values"].shape[-1]
        if fold:  # (B, L, C) -> (B * C, L, 1); per-series inputs repeat for each channel
            inputs = {
                name: value.transpose(1, 2).reshape(-1, value.shape[1], 1)
                if name.startswith("past")
                else value.repeat_interleave(channels, dim=0)
                for name, value in inputs.items()
            }
        with torch.no_grad():
            output = model(**inputs, return_loss=False)
        point, quantile = output.prediction_outputs[:, :horizon], output.quantile_outputs
        if quantile is not None:
            quantile = quantile[:, :, :horizon]
        if fold:  # back to (B, ..., C)
            point = point.reshape(-1, channels, horizon).transpose(1, 2)
            if quantile is not None:
                quantile = quantile.reshape(-1, channels, *quantile.shape[1:3]).permute(0, 2, 3, 1)
        points.append(point.numpy())
        if quantile is not None:
            quantiles.append(quantile.numpy())
    return np.concatenate(points), np.concatenate(quantiles) if quantiles else None


def history_and_actuals(windows: EvalWindows, history_length: int, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """The target channels before and inside every window, NaN where missing (or before the series start)."""
    import numpy as np

    from ttm_data import extract_windows

    store = windows.store
    arrays = extract_windows(store, windows.pairs[:, 0], windows.pairs[:, 1], history_length, horizon)
    targets = slice(0, store.num_targets)
    history = np.where(arrays["past_observed_mask"] > 0, arrays["past_values"], np.nan)[..., targets]
    actuals = np.where(arrays["future_observed_mask"] > 0, arrays["future_values"], np.nan)[..., targets]
    return history, actuals


def training_statistics(train: SeriesStore, channel_names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation (series, targets) of every series' training split; a zero deviation becomes 1."""
    import numpy as np

    means, stds = [], []
    for series, (begin, end) in enumerate(zip(train.offsets[:-1], train.offsets[1:], strict=True)):
        values = train.values[begin:end, : train.num_targets].astype(float)
        observed = ~np.isnan(values)
        if not observed.any(axis=0).all():
            channel = channel_names[int(np.argmin(observed.any(axis=0)))]
            raise ValueError(
                f"--test-fraction / --validation-fraction: series {series} has no observed {channel!r} value in its "
                "training split, so the scaled units are undefined; leave more data for training"
            )
        means.append(np.nanmean(values, axis=0))
        stds.append(np.nanstd(values, axis=0))
    std = np.array(stds)
    return np.array(means), np.where(std > 0, std, 1.0)


def backtest(args: argparse.Namespace) -> dict[str, Any]:
    from ttm_data import (
        LOAD_OPTIONS,
        EvalWindows,
        SeriesStore,
        chronological_split,
        load_series,
        seasonal_period,
        series_schema,
    )
    from ttm_metrics import evaluation_report

    model = load_model(args.model)
    context_length, horizon = check_lengths(model, args.context_length, args.horizon)
    dataset = load_series(args.input, **{name: getattr(args, name) for name in LOAD_OPTIONS})
    schema = series_schema(dataset)
    splits = chronological_split(
        dataset, validation_fraction=args.validation_fraction, test_fraction=args.test_fraction
    )
    windows = EvalWindows(splits[args.split], prediction_length=horizon, stride=args.stride)
    if len(windows) == 0:
        raise ValueError(
            f"--{args.split}-fraction: the {args.split} split holds no window of --horizon {horizon} steps; "
            "enlarge the split or shorten the horizon"
        )
    fold = fold_channels(model, windows.store, schema.channel_names)
    freq = dataset["freq"][0]
    period = args.seasonal_period or seasonal_period(freq)
    history, actuals = history_and_actuals(windows, max(context_length, period + 1), horizon)
    points, quantiles = forecast(model, windows, context_length, horizon, args.batch_size, fold)
    mean, std = training_statistics(SeriesStore.from_dataset(splits["train"]), schema.channel_names)
    series = windows.pairs[:, 0]
    baselines = None
    if args.baselines:
        from ttm_metrics import baseline_forecasts

        levels = model.config.forecast_quantiles if quantiles is not None else (0.5,)
        baselines = baseline_forecasts(history[:, -context_length:], horizon, period, levels, args.baseline_jobs)
    report = evaluation_report(
        points,
        actuals,
        history,
        period,
        quantile_forecasts=quantiles,
        quantile_levels=model.config.forecast_quantiles if quantiles is not None else None,
        scaler_mean=mean[series],
        scaler_std=std[series],
        baselines=baselines,
    )
    return {
        "model": args.model,
        "input": args.input,
        "target_columns": schema.target_columns,
        "exogenous_columns": schema.exogenous_columns,
        "num_series": len(dataset),
        "freq": freq,
        "split": args.split,
        "validation_fraction": args.validation_fraction,
        "test_fraction": args.test_fraction,
        "context_length": context_length,
        "stride": args.stride,
        "scaled_units": "(value - mean) / std with each series' per-channel statistics of its training split",
        **report,
    }


def build_parser() -> FlagParser:
    parser = FlagParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Every flag is also accepted with underscores (--timestamp_column). Example: python scripts/backtest.py "
        "--model my-ttm --input data.csv --timestamp-column date --target-columns load temperature --output "
        "outputs/report.json",
    )
    model = parser.add_argument_group("model")
    model.add_argument(
        "--model", metavar="DIR", required=True, help="checkpoint directory (saved by this project or granite-tsfm)"
    )
    model.add_argument(
        "--context-length", type=positive_int, metavar="N", help="context steps fed to the model (default: the model's)"
    )
    model.add_argument(
        "--horizon", type=positive_int, metavar="N", help="steps forecast per window (default: the model's)"
    )
    model.add_argument(
        "--batch-size",
        type=positive_int,
        default=64,
        metavar="N",
        help="windows per forward pass (default: %(default)s)",
    )
    data = parser.add_argument_group("data")
    data.add_argument("--input", metavar="FILE", required=True, help="CSV / TSV (optionally compressed) or parquet")
    add_series_flags(data, covariates=True)
    backtest = parser.add_argument_group("backtest")
    backtest.add_argument(
        "--split", choices=["test", "validation"], default="test", help="the split to evaluate (default: test)"
    )
    backtest.add_argument(
        "--test-fraction",
        type=fraction,
        default=0.2,
        metavar="F",
        help="last part of each series that is test (default: %(default)s)",
    )
    backtest.add_argument(
        "--validation-fraction",
        type=fraction,
        default=0.1,
        metavar="F",
        help="part before the test that is validation (default: %(default)s)",
    )
    backtest.add_argument(
        "--stride", type=positive_int, default=1, metavar="N", help="steps between windows (default: 1)"
    )
    backtest.add_argument(
        "--seasonal-period", type=positive_int, metavar="N", help="season length (default: from the frequency)"
    )
    backtest.add_argument(
        "--baselines",
        action="store_true",
        help="also score statsforecast's SeasonalNaive, AutoETS, AutoTheta, MSTL and their median on the same windows",
    )
    backtest.add_argument(
        "--baseline-jobs",
        type=positive_int,
        metavar="N",
        help="processes fitting the baselines (default: the available CPUs)",
    )
    backtest.add_argument("--output", metavar="JSON", help=f"report file (default: {DEFAULT_OUTPUT})")
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    output = Path(args.output or DEFAULT_OUTPUT)
    try:
        if not Path(args.input).is_file():
            raise ValueError(f"--input: no such file {args.input}")
        if output.exists() and output.resolve() == Path(args.input).resolve():
            raise ValueError(f"--output: refusing to overwrite the input file {args.input}")
        if args.output is not None and not output.parent.is_dir():
            raise ValueError(f"--output: directory {output.parent} does not exist")
        report = backtest(args)
    except ValueError as error:
        parser.error(str(error))
    from ttm_metrics import format_report

    output.parent.mkdir(parents=True, exist_ok=True)  # the default outputs/ folder
    output.write_text(json.dumps(report, indent=2, allow_nan=False) + "\n")
    print(f"model:   {report['model']}")
    print(
        f"data:    {report['input']}: {report['num_series']} series, targets {', '.join(report['target_columns'])}, "
        f"frequency {report['freq']}"
    )
    print(
        f"windows: {report['num_windows']} over the {report['split']} split (stride {report['stride']}), context "
        f"{report['context_length']}, horizon {report['horizon']}, seasonal period {report['seasonal_period']}"
    )
    print(format_report(report))
    print(f"wrote {output}")


if __name__ == "__main__":
    main()

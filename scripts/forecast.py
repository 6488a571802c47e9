"""Forecast the series of a CSV / parquet file zero-shot with a pretrained Tiny Time Mixer (TTM).

With no arguments it forecasts a real 30-minute sea surface temperature series that ships in the bokeh-sampledata
wheel (`pip install --no-deps bokeh-sampledata`) with the checkpoint this repository ships (pretrained on an offline
corpus that excludes this series), backtests it on rolling windows against the seasonal-naive forecast, and prints
the zero-shot metrics.

The model is the shipped checkpoint by default, else --model: a local directory, a Hub id (--revision picks the
branch) or IBM's repository, e.g. ibm-granite/granite-timeseries-ttm-r2, whose variant is then chosen like
granite-tsfm does: the longest context the data fills, then the shortest horizon >= --horizon, with the forecast cut
to --horizon (prediction_filter_length). For ibm-granite/granite-timeseries-ttm-r3 the variant is granite-tsfm's
get_model choice (--use-lite: its lite twin).

The file is read like every script reads it (ttm_data.load_series): a timestamp column (default: the only one
holding dates), numeric target columns (default: all other numeric columns), --id-column for stacked series. The
frequency is inferred (or --freq); empty cells and missing timestamps are missing values (NaN) on that grid, and the
forecast timestamps continue it. Duplicate, unsorted or irregular timestamps are refused unless --resample averages
them into --freq periods. The input file is only read.

Outputs (default: under outputs/): the forecast table, CSV or, for an --output ending in .parquet, parquet
(timestamp, the point forecast per target and, for checkpoints with a quantile head, columns <target>_q<level>) and
a PNG per target next to it (<output>_<target>.png: history, forecast, quantile band and, with --holdout, the actual
values) for the first --max-plots targets. --holdout forecasts the last --horizon steps of the data instead of the
future and scores them; --backtest scores rolling windows (stride --horizon) against seasonal
naive, each forecast reading --context-length steps.

Many series, many processes: `accelerate launch --num_processes N scripts/forecast.py ...` (on a machine without GPUs:
`accelerate launch --multi_gpu --num_processes N`, which starts N CPU processes) splits the series between the N
processes with accelerate (contiguous blocks, in the order the series first appear in the file); each forecasts its
block on its own device, the main process gathers the forecasts and writes the one output file, identical to a single
process's, row for row. Plots, printing and the backtest happen on the main process only.
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

# Run as `python scripts/forecast.py`, this file's folder comes first on the import path, where scripts/evaluate.py
# would shadow the `evaluate` library that ttm_metrics imports.
if str(Path(__file__).resolve().parent) in sys.path:
    sys.path.remove(str(Path(__file__).resolve().parent))

from ttm_data.cli import FlagParser, hub_offline, model_source_error, offline_hint, positive_int  # noqa: E402

if TYPE_CHECKING:  # the heavy modules load inside the functions, after the arguments are checked
    import numpy as np
    import pandas as pd

    from modeling_ttm import TTMForPrediction

DEFAULT_OUTPUT = Path("outputs") / "forecast.csv"


def _ibm_repositories() -> set[str]:
    """IBM's Hub repositories that --model selects a variant of (ttm_zoo's table, read without torch)."""
    from ttm_zoo.checkpoints import IBM_REVISIONS

    return set(IBM_REVISIONS)


def demo_csv_path() -> Path:
    """The demo series: 30-minute sea surface temperature readings, from the bokeh-sampledata wheel."""
    spec = importlib.util.find_spec("bokeh_sampledata")
    if spec is None or spec.origin is None:
        raise ValueError("--input not given and the demo data is not installed: pip install --no-deps bokeh-sampledata")
    return Path(spec.origin).parent / "_data" / "sea_surface_temperature.csv.gz"


def load_model(
    model: str | None, revision: str | None, data_length: int, horizon: int | None, use_lite: bool = False
) -> tuple[TTMForPrediction, str]:
    """The forecasting model and a description: chosen by the selection rule unless --model names one checkpoint
    (for IBM's repositories, ttm_zoo's rule per release; `use_lite` picks R3's lite variants)."""
    from modeling_ttm import TTMForPrediction
    from ttm_zoo import IBM_REVISIONS, R3_REPOSITORIES, local_variants, select_ibm_variant, select_variant

    if use_lite and (model not in R3_REPOSITORIES or revision is not None):
        raise ValueError(f"--use-lite: chooses among the variants of {' or '.join(R3_REPOSITORIES)} (no --revision)")
    if model is None or (model in IBM_REVISIONS and revision is None):
        if model is None and not local_variants():
            raise ValueError("--model: no checkpoint is shipped in checkpoints/; pass --model")
        where = "shipped checkpoint" if model is None else f"{model} variant"
        try:
            if model is None:
                variant, filter_length = select_variant(local_variants(), data_length, horizon or 1)
            else:
                variant, filter_length = select_ibm_variant(model, data_length, horizon or 1, use_lite)
        except ValueError as error:
            raise ValueError(str(error).replace("`horizon`", "--horizon")) from None
        if horizon is None:
            filter_length = None
        model, revision = variant.model, variant.revision
        label = f"{where} {model}" + (f" (revision {revision})" if revision else "")
    else:
        filter_length, label = None, f"checkpoint {model}" + (f" (revision {revision})" if revision else "")
        problem = model_source_error(model)
        if problem:
            raise ValueError(problem)
    offline = not Path(model).is_dir() and hub_offline()
    overrides = {"prediction_filter_length": filter_length} if filter_length else {}
    try:
        loaded = TTMForPrediction.from_pretrained(model, revision=revision or "main", **overrides)
    except (OSError, ValueError, KeyError) as error:
        reason = offline_hint(model) if offline else str(error)
        raise ValueError(f"--model: cannot load a TTM checkpoint from {model}: {reason}") from None
    return loaded.eval(), label


def read_series(
    path: Path,
    timestamp_column: str | None,
    target_columns: list[str] | None,
    id_column: str | None = None,
    freq: str | None = None,
    resample: bool = False,
) -> dict[str, pd.DataFrame]:
    """Read the file with `ttm_data.load_series` into one frame of float targets per series, on its regular grid
    (a missing timestamp is a row of NaN; the index carries the frequency)."""
    import pandas as pd

    from ttm_data import load_series, series_schema

    dataset = load_series(
        path,
        timestamp_column=timestamp_column,
        id_column=id_column,
        target_columns=target_columns,
        freq=freq,
        resample=resample,
    )
    schema = series_schema(dataset)
    series = {}
    for index, row in enumerate(dataset.with_format("numpy")):
        values = row["target"] if row["target"].ndim == 2 else row["target"][None]
        start, step = dataset[index]["start"], dataset[index]["freq"]  # the timestamp with its time zone
        timestamps = pd.date_range(start, periods=values.shape[1], freq=step, name=schema.timestamp_column)
        series[str(row.get("item_id", ""))] = pd.DataFrame(values.T, index=timestamps, columns=schema.target_columns)
    return series


def forecast_window(window: pd.DataFrame, horizon: int) -> tuple[pd.DatetimeIndex, str]:
    """The timestamps after a window on its grid, and the grid's frequency alias."""
    import pandas as pd

    offset = window.index.freq
    timestamps = pd.date_range(window.index[-1] + offset, periods=horizon, freq=offset, name=window.index.name)
    return timestamps, offset.freqstr


def context_array(windows: list[pd.DataFrame], context_length: int) -> np.ndarray:
    """The windows as one array (series, context_length, channels), left-padded with NaN (= unobserved)."""
    import numpy as np

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
    """Zero-shot rolling backtest: windows every `horizon` steps, the last one ending at each series' end; each
    forecast reads the `context_length` steps before its window (missing steps are NaN). With `baselines`, the report
    also scores statsforecast's baselines on the same contexts (`ttm_metrics.baseline_forecasts`)."""
    import numpy as np

    from ttm_data import seasonal_period
    from ttm_forecast import predict_array
    from ttm_metrics import evaluation_report

    contexts, actuals = [], []
    for frame in series.values():
        values = frame.to_numpy(dtype=np.float32)
        for end in range(len(values), context_length + horizon - 1, -horizon):
            contexts.append(values[end - horizon - context_length : end - horizon])
            actuals.append(values[end - horizon : end])
    if not contexts:
        raise ValueError(
            f"--backtest: no series has --context-length + --horizon = {context_length} + {horizon} steps; lower "
            "--context-length or --horizon"
        )
    contexts_array, actuals_array = np.stack(contexts), np.stack(actuals)
    point, quantile = predict_array(model, contexts_array, horizon, freq)
    levels = model.config.forecast_quantiles if quantile is not None else None
    statistical = None
    if baselines:
        from ttm_metrics import baseline_forecasts

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
    timestamps: list[pd.DatetimeIndex],
    names: list[str],
    point: np.ndarray,
    quantile: np.ndarray | None,
    levels: list | None,
    id_column: str | None = None,
    ids: list[str] | None = None,
) -> pd.DataFrame:
    """Forecast table of every series, built at once: [id], timestamp, per target the point forecast (series,
    horizon, targets) and its quantile columns (series, levels, horizon, targets)."""
    import numpy as np
    import pandas as pd

    horizon = point.shape[1]
    columns = {id_column: np.repeat(ids, horizon)} if id_column else {}
    columns[timestamps[0].name] = timestamps[0].append(timestamps[1:]) if len(timestamps) > 1 else timestamps[0]
    for channel, name in enumerate(names):
        columns[name] = point[:, :, channel].reshape(-1)
        for index, level in enumerate(levels if quantile is not None else []):
            columns[f"{name}_q{level:g}"] = quantile[:, index, :, channel].reshape(-1)
    return pd.DataFrame(columns)


def plot(history: pd.Series, forecast: pd.DataFrame, target: str, actuals: pd.Series | None, path: Path) -> None:
    """History, forecast, quantile band (outermost levels) and actuals of one target."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

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


def build_parser() -> FlagParser:
    parser = FlagParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Every flag is also accepted with underscores (--timestamp_column). Example: python scripts/forecast.py "
        "--input data.csv --timestamp-column date --target-columns load temperature --horizon 24 --output "
        "outputs/load.csv",
    )
    parser.add_argument(
        "--model", metavar="DIR|HUB_ID", help="checkpoint directory or Hub id (default: the shipped checkpoint)"
    )
    parser.add_argument("--revision", help="Hub branch of --model (default: chosen for IBM's repositories)")
    parser.add_argument("--use-lite", action="store_true", help="with an IBM R3 repository: choose its lite variants")
    parser.add_argument(
        "--input", metavar="FILE", help="CSV / parquet file (default: the sea surface temperature demo series)"
    )
    parser.add_argument("--timestamp-column", metavar="NAME", help="timestamp column (default: the one with dates)")
    parser.add_argument("--id-column", metavar="NAME", help="column naming the series of each row, for stacked series")
    parser.add_argument(
        "--target-columns", metavar="NAME", nargs="+", help="columns to forecast (default: the numeric columns)"
    )
    parser.add_argument(
        "--freq", metavar="ALIAS", help="pandas frequency alias such as 15min, h, D, MS (default: inferred)"
    )
    parser.add_argument(
        "--resample", action="store_true", help="average irregular or duplicate timestamps into --freq periods"
    )
    parser.add_argument(
        "--context-length",
        type=positive_int,
        metavar="N",
        help="number of latest steps fed to the model, also in --backtest (default: the model's)",
    )
    parser.add_argument(
        "--horizon", type=positive_int, metavar="N", help="steps to forecast (default: the model's forecast length)"
    )
    parser.add_argument("--holdout", action="store_true", help="forecast the last --horizon steps and score them")
    parser.add_argument("--backtest", action="store_true", help="score rolling windows (always on for the demo)")
    parser.add_argument("--max-plots", type=int, default=8, metavar="N", help="PNG plots at most (default: 8)")
    parser.add_argument(
        "--output", metavar="FILE", help=f"CSV, or parquet for a .parquet suffix (default: {DEFAULT_OUTPUT})"
    )
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    demo = args.input is None
    try:
        input_path = demo_csv_path() if demo else Path(args.input)
        if not input_path.is_file():
            raise ValueError(f"--input: no such file {input_path}")
        output_path = Path(args.output or DEFAULT_OUTPUT)
        if output_path.exists() and output_path.samefile(input_path):
            raise ValueError(f"--output: refusing to overwrite the input file {input_path}")
        if args.output is not None and not output_path.parent.is_dir():
            raise ValueError(f"--output: directory {output_path.parent} does not exist")
        if args.model is not None and args.model not in _ibm_repositories():
            problem = model_source_error(args.model)
            if problem:
                raise ValueError(problem)
        from ttm_forecast import predict_array, process_state

        resample = args.resample or demo  # the demo series has one duplicate timestamp
        series = read_series(
            input_path, args.timestamp_column, args.target_columns, args.id_column, args.freq, resample
        )
        shortest = min(len(frame) for frame in series.values()) - (args.horizon or 0) * args.holdout
        model, label = load_model(
            args.model, args.revision, args.context_length or shortest, args.horizon, args.use_lite
        )
        config = model.config
        context_length = args.context_length or config.context_length
        horizon = args.horizon or config.forecast_length
        if context_length > config.context_length:
            raise ValueError(f"--context-length: {context_length} exceeds the model's {config.context_length}")
        if horizon > config.forecast_length:
            raise ValueError(f"--horizon: {horizon} exceeds the model's {config.forecast_length}")
        histories = {name: frame.iloc[:-horizon] if args.holdout else frame for name, frame in series.items()}
        windows = {name: frame.iloc[-context_length:] for name, frame in histories.items()}
        futures = {name: forecast_window(window, horizon) for name, window in windows.items()}
        freq = next(iter(futures.values()))[1]
        contexts = context_array(list(windows.values()), context_length)
        point, quantile = predict_array(model, contexts, horizon, freq, distributed=True)  # split under accelerate
        state = process_state()
        report = None
        if (demo or args.backtest) and state.is_main_process:
            report = backtest(model, series, context_length, horizon, freq)
    except ValueError as error:
        parser.error(str(error))
    if not state.is_main_process:
        return  # the main process writes the output, plots and prints

    from ttm_data import seasonal_period
    from ttm_metrics import evaluation_report, format_report

    targets = list(next(iter(windows.values())).columns)
    timestamps = [timestamps for timestamps, _ in futures.values()]
    result = result_frame(
        timestamps, targets, point, quantile, config.forecast_quantiles, args.id_column, list(futures)
    )
    output_path.parent.mkdir(parents=True, exist_ok=True)  # the default outputs/ folder
    if output_path.suffix.lower() in (".parquet", ".pq"):
        result.to_parquet(output_path, index=False)
    else:
        result.to_csv(output_path, index=False)
    plots = []
    for index, name in enumerate(series):
        for target in windows[name].columns:
            if len(plots) >= args.max_plots:
                break
            stem = "_".join(filter(None, [output_path.stem, name, re.sub(r"[^\w.-]+", "-", str(target)).strip("-")]))
            path = output_path.with_name(f"{stem}.png")
            actuals = series[name][target].iloc[-horizon:] if args.holdout else None
            forecast = result.iloc[index * horizon : (index + 1) * horizon]
            plot(histories[name][target].iloc[-3 * horizon :], forecast, target, actuals, path)
            plots.append(path)

    first = next(iter(windows.values()))
    print(f"model:    {label}")
    print(f"input:    {input_path} ({len(series)} series, targets: {', '.join(map(str, first.columns))})")
    print(f"context:  {len(first)} steps, {first.index[0]} .. {first.index[-1]}")
    if state.num_processes > 1:
        print(f"processes: {state.num_processes}, the series split between them")
    print(f"forecast: {horizon} steps, {result.iloc[0][first.index.name]} .. {result.iloc[-1][first.index.name]}")
    if args.holdout:
        actual = context_array([frame.iloc[-horizon:] for frame in series.values()], horizon)
        contexts = context_array(list(windows.values()), context_length)
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

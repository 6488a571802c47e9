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
them into --freq periods. The input file is only read. The series are forecast by `ttm_forecast.predict_dataset`
(the data path of `predict_df`); --holdout and --backtest cut their windows with `ttm_data.extract_windows`.

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

from ttm_data.cli import FlagParser, add_series_flags, hub_offline, model_source_error, offline_hint, positive_int

if TYPE_CHECKING:  # the heavy modules load inside the functions, after the arguments are checked
    import numpy as np
    import pandas as pd
    from datasets import Dataset

    from modeling_ttm import TTMForPrediction
    from ttm_data import SeriesStore
    from ttm_metrics import BaselineForecasts

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


def backtest(
    model: TTMForPrediction,
    dataset: Dataset,
    context_length: int,
    horizon: int,
    baselines: bool | BaselineForecasts = False,
) -> dict:
    """Zero-shot rolling backtest of a series dataset (`ttm_data.load_series`) on the windows of `backtest_windows`.
    With `baselines`, the report also scores statsforecast's baselines on the same contexts
    (`ttm_metrics.baseline_forecasts`), fitted here or given already fitted on these windows (to score several
    models against one fit)."""
    from ttm_forecast import predict_array
    from ttm_metrics import evaluation_report

    contexts, actuals, period = backtest_windows(dataset, context_length, horizon)
    if len(contexts) == 0:
        raise ValueError(
            f"--backtest: no series has --context-length + --horizon = {context_length} + {horizon} steps; lower "
            "--context-length or --horizon"
        )
    point, quantile = predict_array(model, contexts, horizon, dataset[0]["freq"])
    levels = model.config.forecast_quantiles if quantile is not None else None
    if baselines is True:
        from ttm_metrics import baseline_forecasts

        baselines = baseline_forecasts(contexts, horizon, period, levels or (0.5,))
    return evaluation_report(
        point,
        actuals,
        contexts,
        period,
        quantile_forecasts=quantile,
        quantile_levels=levels,
        baselines=baselines or None,
    )


def backtest_windows(dataset: Dataset, context_length: int, horizon: int) -> tuple[np.ndarray, np.ndarray, int]:
    """The contexts and actuals of the rolling backtest windows, and the seasonal period to score them with.

    Windows start every `horizon` steps, the last one ending at each series' end (`ttm_data.EvalWindows`; a series
    row with `split_start` forecasts from there on); each context is the `context_length` steps before its window
    (missing steps are NaN; a window whose context has no observed value of a channel, inside a long gap, is left
    out). The period is the frequency's, at most `context_length - 1` (the longest lag a shorter context has).
    """
    import numpy as np

    from ttm_data import EvalWindows, seasonal_period

    windows = EvalWindows(dataset, prediction_length=horizon, stride=horizon, min_past=context_length)
    contexts, actuals = context_and_actuals(
        windows.store, windows.pairs[:, 0], windows.pairs[:, 1], context_length, horizon
    )
    observed = np.isfinite(contexts).any(axis=1).all(axis=1)  # windows whose context saw every channel
    period = min(seasonal_period(dataset[0]["freq"]), context_length - 1)
    return contexts[observed], actuals[observed], period


def context_and_actuals(
    store: SeriesStore, series: np.ndarray, ends: np.ndarray, context_length: int, horizon: int
) -> tuple[np.ndarray, np.ndarray]:
    """The `context_length` steps before and the `horizon` steps up to each window end (`ttm_data.extract_windows`),
    NaN where missing or before the series start."""
    import numpy as np

    from ttm_data import extract_windows

    arrays = extract_windows(store, series, ends, context_length, horizon)
    actuals = np.where(arrays["future_observed_mask"] > 0, arrays["future_values"], np.float32(np.nan))
    return arrays["past_values"], actuals


def wide_table(forecast: pd.DataFrame, num_series: int, horizon: int) -> pd.DataFrame:
    """The long table of `ttm_forecast` (a row per series, target and step) as a row per series and step: [id],
    timestamp, and per target the point forecast and the quantiles (<target>_q<level>)."""
    import numpy as np

    from ttm_forecast.predict import POINT_COLUMN, TARGET_NAME_COLUMN

    columns = list(forecast.columns)
    keys = columns[: columns.index(TARGET_NAME_COLUMN)]  # [id,] timestamp
    levels = columns[columns.index(POINT_COLUMN) + 1 :]
    targets = len(forecast) // (num_series * horizon)
    first = (np.arange(num_series)[:, None] * targets * horizon + np.arange(horizon)).reshape(-1)  # rows of target 0
    table = forecast.iloc[first][keys].reset_index(drop=True)
    for index, name in enumerate(forecast[TARGET_NAME_COLUMN].iloc[: targets * horizon : horizon]):
        rows = first + index * horizon
        table[name] = forecast[POINT_COLUMN].to_numpy()[rows]
        for level in levels:
            table[f"{name}_q{level}"] = forecast[level].to_numpy()[rows]
    return table


def series_frame(dataset: Dataset, index: int) -> pd.DataFrame:
    """Series `index` of a dataset as a frame of its targets on its timestamps (for the plots and the summary)."""
    import numpy as np
    import pandas as pd

    from ttm_data import parse_freq, series_schema

    schema = series_schema(dataset)
    target = dataset.with_format("numpy", columns=["target"])[index]["target"]
    values = np.asarray(target, dtype=np.float32).reshape(len(schema.target_columns), -1)
    row = dataset.select_columns(["start", "freq"])[index]  # the start with its time zone
    times = pd.date_range(row["start"], periods=values.shape[1], freq=parse_freq(row["freq"]))
    return pd.DataFrame(values.T, index=times.rename(schema.timestamp_column), columns=schema.target_columns)


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
    add_series_flags(parser)
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
        import numpy as np

        from ttm_data import SeriesStore, load_series, series_lengths, series_schema, slice_series
        from ttm_forecast import predict_dataset, process_state

        resample = args.resample or demo  # the demo series has one duplicate timestamp
        dataset = load_series(
            input_path,
            timestamp_column=args.timestamp_column,
            id_column=args.id_column,
            target_columns=args.target_columns,
            freq=args.freq,
            resample=resample,
        )
        lengths = series_lengths(dataset)
        shortest = int(lengths.min()) - (args.horizon or 0) * args.holdout
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
        history = dataset
        if args.holdout:
            if lengths.min() <= horizon:
                raise ValueError(
                    f"--holdout: a series has {lengths.min()} steps, no more than --horizon {horizon} to hold out"
                )
            zeros = np.zeros_like(lengths)
            history = slice_series(dataset, zeros, lengths - horizon, zeros)
        result = predict_dataset(  # under accelerate launch, the series are split between the processes
            model, history, prediction_length=horizon, context_length=context_length, distributed=True,
            progress=len(history) >= 1000,  # a progress bar over the series of large files (stderr)
        )  # fmt: skip
        state = process_state()
        report = None
        if (demo or args.backtest) and state.is_main_process:
            report = backtest(model, dataset, context_length, horizon)
    except ValueError as error:
        parser.error(str(error))
    if not state.is_main_process:
        return  # the main process writes the output, plots and prints

    from ttm_data import seasonal_period
    from ttm_metrics import evaluation_report, format_report

    table = wide_table(result, len(dataset), horizon)
    output_path.parent.mkdir(parents=True, exist_ok=True)  # the default outputs/ folder
    if output_path.suffix.lower() in (".parquet", ".pq"):
        table.to_parquet(output_path, index=False)
    else:
        table.to_csv(output_path, index=False)
    schema = series_schema(dataset)
    plots, budget = [], max(args.max_plots, 0)
    names = dataset["item_id"] if args.id_column else [""]
    for index, name in enumerate(names[:budget]):  # a plot per target of the first series, --max-plots in all
        if len(plots) == budget:
            break
        frame = series_frame(dataset, index)
        forecast = table.iloc[index * horizon : (index + 1) * horizon]
        for target in frame.columns[: budget - len(plots)]:
            stem = "_".join(filter(None, [output_path.stem, name, re.sub(r"[^\w.-]+", "-", str(target)).strip("-")]))
            path = output_path.with_name(f"{stem}.png")
            values = frame[target]
            actuals = values.iloc[-horizon:] if args.holdout else None
            past = values.iloc[:-horizon] if args.holdout else values
            plot(past.iloc[-3 * horizon :], forecast, target, actuals, path)
            plots.append(path)

    first = series_frame(history, 0).iloc[-context_length:]
    time = schema.timestamp_column
    print(f"model:    {label}")
    print(f"input:    {input_path} ({len(dataset)} series, targets: {', '.join(map(str, schema.target_columns))})")
    print(f"context:  {len(first)} steps, {first.index[0]} .. {first.index[-1]}")
    if state.num_processes > 1:
        print(f"processes: {state.num_processes}, the series split between them")
    print(f"forecast: {horizon} steps, {table.iloc[0][time]} .. {table.iloc[-1][time]}")
    if args.holdout:
        reported = [name for name in schema.target_columns if name in table.columns]  # the model's output channels
        channels = [schema.target_columns.index(name) for name in reported]
        store = SeriesStore.from_dataset(dataset)
        contexts, actuals = context_and_actuals(store, np.arange(len(dataset)), lengths, context_length, horizon)
        point = table[reported].to_numpy().reshape(len(dataset), horizon, len(reported))
        period = min(seasonal_period(dataset[0]["freq"]), context_length - 1)
        holdout = evaluation_report(point, actuals[..., channels], contexts[..., channels], period)
        print("holdout (last --horizon steps):\n" + format_report(holdout))
    if report is not None:
        mase = report["metrics"]["original"]["mase"]
        print(
            f"zero-shot backtest: {report['num_windows']} rolling windows of {horizon} steps, seasonal period "
            f"{report['seasonal_period']}\n" + format_report(report)
        )
        ratio = "n/a" if mase["ratio"] is None else f"{mase['ratio']:.4f}"
        print(f"MASE ratio (model / seasonal naive): {ratio}")
    print(f"wrote {output_path} and {len(plots)} plot(s): {', '.join(map(str, plots))}")


if __name__ == "__main__":
    sys.exit(main())

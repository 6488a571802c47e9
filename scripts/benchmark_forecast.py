"""Benchmark forecasting many series end to end, against what a user would run instead.

For each --series N it writes a long-format parquet file (id, ts, y; N hourly series of --length steps) and runs each
path in a fresh process, so that imports and peak memory count. Every path reads the file and writes a long-format
forecast file (one row per series and step; --output-format parquet or csv), horizon 96:
  api            `ttm_forecast.predict_df` with the shipped checkpoint (point forecast and its quantiles)
  cli            `scripts/forecast.py --input ... --max-plots 0`
  granite        granite-tsfm's `TimeSeriesForecastingPipeline` (explode_forecasts=True) with the same architecture and
                 weights (the shipped checkpoint without its quantile head), fed the last context_length rows of
                 every series (given whole series, it forecasts every window of them)
  seasonal_naive statsforecast's SeasonalNaive (season 24, n_jobs=-1: every core)
  autoets        statsforecast's AutoETS (season 24, n_jobs=-1)
It prints the wall time of the whole process (imports included), series per second, peak resident memory, for `api`
the share of the wall spent in the model's forward, and each path's speed-up over granite-tsfm in the same run.

    python scripts/benchmark_forecast.py --series 2000 20000 --paths api cli granite seasonal_naive autoets
    python scripts/benchmark_forecast.py --series 100000 --paths api
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import runpy
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINT = ROOT / "checkpoints" / "ttm-r2-512-96-offline"
PATHS = ("api", "cli", "granite", "seasonal_naive", "autoets")
HORIZON = 96
SEASON = 24


def write_series(path: Path, num_series: int, length: int) -> None:
    """`num_series` noisy daily sines of `length` hourly steps in long format (seeded)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    steps = np.arange(length)
    values = np.sin(steps * 2 * np.pi / 24)[None] * rng.uniform(1, 5, (num_series, 1))
    values += rng.uniform(0, 100, (num_series, 1)) + rng.normal(0, 0.3, (num_series, length))
    frame = pd.DataFrame(
        {
            "id": np.repeat([f"series_{i}" for i in range(num_series)], length),
            "ts": np.tile(pd.date_range("2024-01-01", periods=length, freq="h").to_numpy(), num_series),
            "y": values.reshape(-1).astype(np.float32),
        }
    )
    frame.to_parquet(path, index=False)


def worker(path: str, data: Path, output: Path) -> None:
    """One measured job in this process; prints its peak resident memory (MiB) and model time (s) as JSON."""
    model_seconds = None
    if path == "api":
        model_seconds = run_api(data, output)
    elif path == "cli":
        arguments = ["--input", str(data), "--id-column", "id", "--timestamp-column", "ts", "--target-columns", "y"]
        sys.argv = ["forecast.py", *arguments, "--max-plots", "0", "--output", str(output)]
        try:
            runpy.run_path(str(ROOT / "scripts" / "forecast.py"), run_name="__main__")
        except SystemExit as done:  # the script ends with sys.exit(main())
            if done.code:
                raise
    elif path == "granite":
        run_granite(data, output)
    else:
        run_statsforecast(path, data, output)
    print(json.dumps({"peak_rss_mib": peak_rss_mib(), "model_seconds": model_seconds}))


def write(frame: object, output: Path) -> None:
    if output.suffix == ".parquet":
        frame.to_parquet(output, index=False)
    else:
        frame.to_csv(output, index=False)


def run_api(data: Path, output: Path) -> float:
    """`predict_df` on the file; returns the seconds spent in the model's forward calls."""
    import pandas as pd

    from modeling_ttm import TTMForPrediction
    from ttm_forecast import predict_df

    model = TTMForPrediction.from_pretrained(CHECKPOINT).eval()
    spent = [0.0]
    model.register_forward_pre_hook(lambda *_: spent.append(-time.perf_counter()))
    model.register_forward_hook(lambda *_: spent.append(time.perf_counter()))
    write(predict_df(model, pd.read_parquet(data), id_column="id", timestamp_column="ts"), output)
    return sum(spent)


def run_granite(data: Path, output: Path) -> None:
    import pandas as pd
    from safetensors.torch import load_file
    from tsfm_public.models.tinytimemixer import TinyTimeMixerConfig, TinyTimeMixerForPrediction
    from tsfm_public.toolkit.time_series_forecasting_pipeline import TimeSeriesForecastingPipeline

    settings = json.loads((CHECKPOINT / "config.json").read_text())
    config = TinyTimeMixerConfig(**{key: settings[key] for key in GRANITE_KEYS})
    model = TinyTimeMixerForPrediction(config).eval()
    weights = {k: v for k, v in load_file(CHECKPOINT / "model.safetensors").items() if "quantile" not in k}
    model.load_state_dict(weights)
    frame = pd.read_parquet(data)
    context = frame.groupby("id", sort=False).tail(config.context_length)
    pipeline = TimeSeriesForecastingPipeline(
        model, timestamp_column="ts", id_columns=["id"], target_columns=["y"], freq="h", batch_size=256,
        device="cpu", explode_forecasts=True,
    )  # fmt: skip
    write(pipeline(context), output)


def run_statsforecast(path: str, data: Path, output: Path) -> None:
    import pandas as pd
    from statsforecast import StatsForecast
    from statsforecast.models import AutoETS, SeasonalNaive

    model = SeasonalNaive(season_length=SEASON) if path == "seasonal_naive" else AutoETS(season_length=SEASON)
    frame = pd.read_parquet(data).rename(columns={"id": "unique_id", "ts": "ds"})
    write(StatsForecast(models=[model], freq="h", n_jobs=-1).forecast(df=frame, h=HORIZON), output)


# The shipped checkpoint's architecture keys, as TinyTimeMixerConfig takes them.
GRANITE_KEYS = (
    "context_length", "prediction_length", "patch_length", "patch_stride", "d_model", "num_layers",
    "adaptive_patching_levels", "decoder_num_layers", "decoder_d_model", "expansion_factor", "scaling",
    "num_input_channels", "mode", "gated_attn", "norm_mlp", "dropout", "head_dropout", "use_positional_encoding",
    "self_attn", "decoder_mode", "resolution_prefix_tuning", "frequency_token_vocab_size",
)  # fmt: skip


def peak_rss_mib() -> float:
    """This process' peak resident memory: VmHWM, which (unlike ru_maxrss) starts afresh at exec, so the parent's
    peak while writing the data does not count."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # not Linux


def measure(path: str, data: Path, output: Path) -> dict:
    """Runs `path` in a fresh process (this checkout first on the import path) and times it."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, __file__, "--worker", path, "--data", str(data), "--output", str(output)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))},
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{path} failed:\n{done.stderr[-3000:]}")
    return {"seconds": seconds, **json.loads(done.stdout.strip().splitlines()[-1])}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--series", type=int, nargs="+", default=[2000, 20000], metavar="N")
    parser.add_argument("--length", type=int, default=700, metavar="STEPS", help="steps per series (default: 700)")
    parser.add_argument("--paths", nargs="+", choices=PATHS, default=["api", "cli", "granite"])
    parser.add_argument("--output-format", choices=["parquet", "csv"], default="parquet", help="(default: parquet)")
    parser.add_argument("--worker", choices=PATHS, help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--output", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker, args.data, args.output)
        return
    if any(n < 1 for n in args.series) or args.length < 2:
        parser.error("--series and --length must be positive (--length at least 2)")
    print("| series | path | wall (s) | series/s | peak RSS (MiB) | model share | granite / path |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for num_series in args.series:
            data = Path(folder) / f"series_{num_series}.parquet"
            write_series(data, num_series, args.length)
            granite = None
            for path in sorted(args.paths, key=lambda p: p != "granite"):  # granite-tsfm first: the reference
                result = measure(path, data, Path(folder) / f"{path}.{args.output_format}")
                granite = result["seconds"] if path == "granite" else granite
                share = "" if result["model_seconds"] is None else f"{result['model_seconds'] / result['seconds']:.0%}"
                ratio = "" if granite is None else f"{granite / result['seconds']:.2f}x"
                print(
                    f"| {num_series:,} | {path} | {result['seconds']:.1f} | {num_series / result['seconds']:,.0f} | "
                    f"{result['peak_rss_mib']:,.0f} | {share} | {ratio} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()

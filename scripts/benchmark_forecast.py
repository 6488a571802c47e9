"""Benchmark forecasting many series end to end: `ttm_forecast.predict_df` against `scripts/forecast.py`.

For each --series N it writes a long-format parquet file (id, ts, y; N hourly series of --length steps) and runs,
each in a fresh process so that imports and peak memory count: `api` (read the file with pandas, `predict_df`, write
the CSV) and `cli` (`scripts/forecast.py --input ... --max-plots 0`, which also writes the CSV). It prints the wall
time of the whole process (imports included), series per second and the process' peak resident memory.

    python scripts/benchmark_forecast.py --series 2000 20000
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
PATHS = ("api", "cli")


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
    """One measured job in this process; prints its peak resident memory (MiB) as JSON."""
    if path == "api":
        import pandas as pd

        from ttm_forecast import predict_df

        result = predict_df(str(CHECKPOINT), pd.read_parquet(data), id_column="id", timestamp_column="ts")
        result.to_csv(output, index=False)
    else:
        arguments = ["--input", str(data), "--id-column", "id", "--timestamp-column", "ts", "--target-columns", "y"]
        sys.argv = ["forecast.py", *arguments, "--max-plots", "0", "--output", str(output)]
        try:
            runpy.run_path(str(ROOT / "scripts" / "forecast.py"), run_name="__main__")
        except SystemExit as done:  # the script ends with sys.exit(main())
            if done.code:
                raise
    print(json.dumps({"peak_rss_mib": peak_rss_mib()}))


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
    parser.add_argument("--paths", nargs="+", choices=PATHS, default=list(PATHS))
    parser.add_argument("--worker", choices=PATHS, help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--output", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker, args.data, args.output)
        return
    if any(n < 1 for n in args.series) or args.length < 2:
        parser.error("--series and --length must be positive (--length at least 2)")
    print("| series | path | wall (s) | series/s | peak RSS (MiB) |\n|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for num_series in args.series:
            data = Path(folder) / f"series_{num_series}.parquet"
            write_series(data, num_series, args.length)
            for path in args.paths:
                result = measure(path, data, Path(folder) / f"{path}.csv")
                print(
                    f"| {num_series:,} | {path} | {result['seconds']:.1f} | {num_series / result['seconds']:,.0f} | "
                    f"{result['peak_rss_mib']:,.0f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()

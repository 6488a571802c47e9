"""Forecasting under `accelerate launch` with two CPU processes: `predict_df` / `predict_array` with
`distributed=True` and scripts/forecast.py split the series between the processes and give back the single-process
result, row for row."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from tiny import tiny_config

from modeling_ttm import TTMForPrediction
from ttm_forecast import predict_array, predict_df

ROOT = Path(__file__).resolve().parents[1]
SERIES = 30


def launch(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess:
    """`accelerate launch` of two CPU processes (`--multi_gpu` is what starts them without GPUs; none are visible)."""
    with socket.socket() as probe:  # a free port for the process group
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [shutil.which("accelerate") or "accelerate", "launch", "--multi_gpu", "--num_processes", "2"]
    command += ["--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    command += ["--main_process_port", str(port), *map(str, args)]
    return subprocess.run(command, cwd=cwd, env=environment(), capture_output=True, text=True, timeout=900)


def environment() -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    return {**env, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny quantile model and 30 hourly series of 12-89 steps (context 32: some are padded), ids out of order,
    different starts, a few missing values, in one long-format CSV."""
    folder = tmp_path_factory.mktemp("distributed")
    torch.manual_seed(0)
    config = tiny_config(num_input_channels=1, monotone_quantile_head=True, quantile_levels=[0.1, 0.5, 0.9])
    TTMForPrediction(config).save_pretrained(folder / "model")
    rng = np.random.default_rng(0)
    frames = []
    for k in range(SERIES):
        length = int(rng.integers(12, 90))
        start = pd.Timestamp("2024-01-01") + pd.Timedelta(hours=int(rng.integers(0, 48)))
        values = np.sin(np.arange(length) / 3 + k) * (k + 1) + rng.normal(size=length)
        values[rng.integers(0, length, size=2)] = np.nan
        times = pd.date_range(start, periods=length, freq="h")
        frames.append(pd.DataFrame({"series": f"s{(k * 7) % SERIES:02d}", "time": times, "y": values}))
    pd.concat(frames).to_csv(folder / "data.csv", index=False)
    np.save(folder / "contexts.npy", rng.normal(size=(23, 32, 1)).astype(np.float32))
    return folder


def assert_same_rows(actual: pd.DataFrame, expected: pd.DataFrame) -> None:
    assert list(actual.columns) == list(expected.columns) and len(actual) == len(expected)
    numbers = expected.select_dtypes("number").columns
    pd.testing.assert_frame_equal(actual.drop(columns=numbers), expected.drop(columns=numbers))  # ids, times, order
    np.testing.assert_allclose(actual[numbers].to_numpy(), expected[numbers].to_numpy(), rtol=0, atol=1e-5)


def test_library_calls_split_the_series_and_gather_them_in_order(case: Path, tmp_path: Path) -> None:
    result = launch(
        ROOT / "tests" / "forecast_probe.py", case / "model", case / "data.csv", case / "contexts.npy", tmp_path,
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-4000:]
    records = [json.loads((tmp_path / f"probe_rank{rank}.json").read_text()) for rank in (0, 1)]
    assert [r["processes"] for r in records] == [2, 2] and [r["device"] for r in records] == ["cpu", "cpu"]
    assert [r["forecast_series"] for r in records] == [{"df": 15, "array": 12}, {"df": 15, "array": 11}]

    model = TTMForPrediction.from_pretrained(case / "model")
    frame = pd.read_csv(case / "data.csv")
    expected = predict_df(model, frame, id_column="series", timestamp_column="time")
    assert list(pd.unique(expected["series"])) == list(pd.unique(frame["series"]))  # the input's series order
    assert [r["returned"] for r in records] == [{"df": len(expected), "array": 23}] * 2
    assert_same_rows(pd.read_parquet(tmp_path / "predict_df.parquet"), expected)
    point, quantiles = predict_array(model, np.load(case / "contexts.npy"))
    gathered = np.load(tmp_path / "predict_array.npz")
    np.testing.assert_allclose(gathered["point"], point, rtol=0, atol=1e-5)
    np.testing.assert_allclose(gathered["quantiles"], quantiles, rtol=0, atol=1e-5)


def test_forecast_script_on_two_processes_writes_the_single_process_file(case: Path, tmp_path: Path) -> None:
    script = ROOT / "scripts" / "forecast.py"
    args = ["--input", case / "data.csv", "--id-column", "series", "--model", case / "model", "--holdout"]
    single = subprocess.run(
        [sys.executable, str(script), *map(str, args), "--max-plots", "3", "--output", "one.parquet"],
        cwd=tmp_path, env=environment(), capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert single.returncode == 0, single.stderr[-4000:]
    result = launch(script, *args, "--max-plots", "3", "--output", "two.parquet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-4000:]

    assert "processes: 2, the series split between them" in result.stdout
    assert result.stdout.count("wrote ") == 1  # one process writes, plots and reports
    assert {p.name for p in tmp_path.glob("two*")} == {"two.parquet", "two_s00_y.png", "two_s07_y.png", "two_s14_y.png"}
    expected = pd.read_parquet(tmp_path / "one.parquet")
    assert len(expected) == SERIES * 8 and list(pd.unique(expected["series"]))[:3] == ["s00", "s07", "s14"]
    assert_same_rows(pd.read_parquet(tmp_path / "two.parquet"), expected)
    report = [out[out.index("holdout") : out.index("wrote ")] for out in (single.stdout, result.stdout)]
    assert report[0] == report[1] and "mase" in report[0]

"""scripts/forecast.py: the demo run and a user CSV end to end (subprocess), and refusals of bad arguments."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from script_loader import load_script
from tiny import tiny_config

from modeling_ttm import TTMForPrediction

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "forecast.py"


def run_forecast(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    command = [sys.executable, str(SCRIPT), *map(str, args)]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def assert_continues(forecast: pd.DataFrame, timestamp_column: str, last: pd.Timestamp, step: str, horizon: int):
    expected = pd.date_range(last + pd.Timedelta(step), periods=horizon, freq=step, name=timestamp_column)
    assert len(forecast) == horizon
    pd.testing.assert_index_equal(pd.DatetimeIndex(pd.to_datetime(forecast[timestamp_column])), expected)


@pytest.fixture
def hourly_csv(tmp_path: Path) -> Path:
    hours = np.arange(300)
    frame = pd.DataFrame(
        {
            "date": pd.date_range("2024-01-01", periods=300, freq="h").strftime("%Y-%m-%d %H:%M:%S"),
            "note": "x",
            "load": 100 + 10 * np.sin(2 * np.pi * hours / 24),
            "temp": 15 + np.cos(2 * np.pi * hours / 24),
        }
    )
    frame.loc[290, "load"] = np.nan  # a missing value inside the context window
    path = tmp_path / "data.csv"
    frame.to_csv(path, index=False)
    return path


def test_demo_run_forecasts_the_sea_surface_temperature_zero_shot(tmp_path: Path) -> None:
    demo = Path(importlib.util.find_spec("bokeh_sampledata").origin).parent / "_data" / "sea_surface_temperature.csv.gz"
    demo_bytes = demo.read_bytes()

    result = run_forecast(cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert "shipped checkpoint" in result.stdout and "ttm-r2-512-96-offline" in result.stdout
    forecast = pd.read_csv(tmp_path / "outputs" / "forecast.csv")  # the demo writes under outputs/
    target = "temperature (celsius)"
    assert list(forecast.columns) == ["time (UTC)", target, *(f"{target}_q{q}" for q in ("0.1", "0.5", "0.9"))]
    last = pd.to_datetime(pd.read_csv(demo)["time (UTC)"]).max()
    assert_continues(forecast, "time (UTC)", last, "30min", horizon=96)  # the r2 512-96 architecture
    values = forecast.drop(columns="time (UTC)").to_numpy()
    assert np.isfinite(values).all()
    assert (np.diff(values[:, 1:], axis=1) >= 0).all()  # quantiles do not cross
    np.testing.assert_allclose(forecast[target], forecast[f"{target}_q0.5"], rtol=1e-5)  # the point is the median
    # The shipped weights beat seasonal naive zero-shot on this held-out series (rolling windows, MASE).
    ratio = float(re.search(r"MASE ratio \(model / seasonal naive\): ([\d.]+)", result.stdout).group(1))
    assert ratio < 1, result.stdout
    assert (tmp_path / "outputs" / "forecast_temperature-celsius.png").stat().st_size > 10_000
    assert {p.name for p in tmp_path.iterdir()} == {"outputs"}
    assert demo.read_bytes() == demo_bytes


def test_user_csv_with_two_targets(tmp_path: Path, hourly_csv: Path) -> None:
    input_bytes = hourly_csv.read_bytes()
    output = tmp_path / "out" / "forecast.csv"
    output.parent.mkdir()

    result = run_forecast(
        "--input", hourly_csv, "--timestamp-column", "date", "--target-columns", "load", "temp",
        "--context-length", "200", "--horizon", "24", "--output", output, cwd=tmp_path,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    forecast = pd.read_csv(output)
    quantiles = [f"{name}_q{q}" for name in ("load", "temp") for q in ("0.1", "0.5", "0.9")]
    assert list(forecast.columns) == ["date", "load", *quantiles[:3], "temp", *quantiles[3:]]
    assert_continues(forecast, "date", pd.Timestamp("2024-01-01") + pd.Timedelta(hours=299), "1h", horizon=24)
    assert np.isfinite(forecast.drop(columns="date").to_numpy()).all()
    assert {p.name for p in output.parent.glob("*.png")} == {"forecast_load.png", "forecast_temp.png"}
    assert hourly_csv.read_bytes() == input_bytes


def test_stacked_series_with_holdout_and_a_model_without_quantiles(tmp_path: Path) -> None:
    TTMForPrediction(tiny_config(num_input_channels=1)).save_pretrained(tmp_path / "model")
    steps = np.arange(120)
    frames = [
        pd.DataFrame({"site": site, "time": pd.date_range("2024-01-01", periods=120, freq="D"), "y": np.sin(steps) + k})
        for k, site in enumerate(["a", "b"])
    ]
    path = tmp_path / "stacked.parquet"
    pd.concat(frames).to_parquet(path)

    result = run_forecast(
        "--input", path, "--id-column", "site", "--model", tmp_path / "model", "--horizon", "4", "--holdout",
        cwd=tmp_path,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    forecast = pd.read_csv(tmp_path / "outputs" / "forecast.csv")
    assert list(forecast.columns) == ["site", "time", "y"]
    assert forecast.groupby("site")["time"].last().tolist() == ["2024-04-29", "2024-04-29"]  # the held-out days
    assert "holdout" in result.stdout and "mase" in result.stdout
    assert {p.name for p in (tmp_path / "outputs").glob("*.png")} == {"forecast_a_y.png", "forecast_b_y.png"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--target-columns", "load", "no_such_column"], "no_such_column"),
        (["--target-columns", "note"], "--target-columns"),  # not numeric
        (["--timestamp-column", "missing_time"], "missing_time"),
        (["--target-columns", "load", "--output", "{input}"], "--output"),
        (["--target-columns", "load", "--output", "{same_file_other_spelling}"], "--output"),
        (["--target-columns", "load", "--horizon", "0"], "--horizon"),
        (["--target-columns", "load", "--horizon", "97"], "--horizon"),  # beyond the model's prediction_length
    ],
)
def test_bad_arguments_fail_with_a_clear_message(
    tmp_path: Path,
    hourly_csv: Path,
    args: list[str],
    message: str,
    capsys: pytest.CaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    input_bytes = hourly_csv.read_bytes()
    (tmp_path / "sub").mkdir()
    paths = {"input": hourly_csv, "same_file_other_spelling": tmp_path / "sub" / ".." / hourly_csv.name}
    args = [arg.format(**paths) for arg in args]
    monkeypatch.chdir(tmp_path)  # the default --output is outputs/forecast.csv

    with pytest.raises(SystemExit) as exit_info:
        load_script("forecast").main(["--input", str(hourly_csv), *args])

    assert exit_info.value.code != 0
    assert message in capsys.readouterr().err
    assert hourly_csv.read_bytes() == input_bytes
    assert not (tmp_path / "outputs").exists()

"""scripts/backtest.py: rolling-window backtests of tiny checkpoints on small CSVs, and refusals of bad arguments."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pytest
import torch
from script_loader import load_script
from tiny import tiny_config

from modeling_ttm import TTMForPrediction
from ttm_data import EvalWindows, load_series

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "backtest.py"
METRICS = {"mse", "mae", "mase", "smape"}


@pytest.fixture(scope="module")
def script() -> ModuleType:
    return load_script("backtest")


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Randomly initialised tiny TTMs (context 32, horizon 8): two channels, one channel, two with quantiles."""
    root = tmp_path_factory.mktemp("checkpoints")
    configs = {
        "two": tiny_config(num_input_channels=2),
        "one": tiny_config(num_input_channels=1),
        "quantile": tiny_config(num_input_channels=2, monotone_quantile_head=True, quantile_levels=[0.1, 0.5, 0.9]),
    }
    torch.manual_seed(0)
    for name, config in configs.items():
        TTMForPrediction(config).save_pretrained(root / name)
    return {name: root / name for name in configs}


@pytest.fixture
def hourly_csv(tmp_path: Path) -> Path:
    """200 hourly rows: `daily` repeats exactly every 24 hours, `load` is noisy; one value is missing."""
    hours = np.arange(200)
    frame = pd.DataFrame(
        {
            "date": pd.date_range("2024-01-01", periods=200, freq="h").strftime("%Y-%m-%d %H:%M:%S"),
            "daily": np.round(10 + 5 * np.sin(2 * np.pi * hours / 24), 6),
            "load": 100 + 10 * np.cos(2 * np.pi * hours / 24) + np.random.default_rng(0).normal(size=200),
        }
    )
    frame.loc[190, "load"] = np.nan
    path = tmp_path / "data.csv"
    frame.to_csv(path, index=False)
    return path


def test_subprocess_run_writes_the_report(tmp_path: Path, hourly_csv: Path, checkpoints: dict[str, Path]) -> None:
    input_bytes = hourly_csv.read_bytes()
    output = tmp_path / "report.json"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    command = [
        sys.executable, SCRIPT, "--model", checkpoints["two"], "--input", hourly_csv, "--timestamp-column", "date",
        "--target-columns", "daily", "load", "--stride", "4", "--output", output,
    ]  # fmt: skip

    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)

    assert result.returncode == 0, result.stderr
    report = json.loads(output.read_text())
    # 40 test steps (20 %), windows of 8 every 4 steps, the last ending at the series end
    assert (report["num_windows"], report["horizon"], report["seasonal_period"]) == (9, 8, 24)
    assert report["target_columns"] == ["daily", "load"] and report["freq"] == "h"
    for unit in ("original", "scaled"):
        assert set(report["metrics"][unit]) == METRICS
        for values in report["metrics"][unit].values():
            assert set(values) == {"model", "seasonal_naive", "ratio"}
            assert values["model"] > 0 and values["seasonal_naive"] > 0
            assert values["ratio"] == pytest.approx(values["model"] / values["seasonal_naive"])
    table = result.stdout.splitlines()
    assert table[-10].split() == ["units", "metric", "model", "seasonal_naive", "ratio"]
    assert table[-1] == f"wrote {output}"
    assert hourly_csv.read_bytes() == input_bytes


def test_seasonal_naive_is_exact_on_a_periodic_series(
    tmp_path: Path, hourly_csv: Path, checkpoints: dict[str, Path], script: ModuleType
) -> None:
    output = tmp_path / "report.json"
    script.main(["--model", str(checkpoints["one"]), "--input", str(hourly_csv), "--target-columns", "daily",
                 "--output", str(output)])  # fmt: skip

    metrics = json.loads(output.read_text())["metrics"]["original"]
    assert metrics["mse"]["seasonal_naive"] == pytest.approx(0.0, abs=1e-10)  # windows line up with their history
    assert metrics["mse"]["ratio"] is None  # undefined, not infinite: the JSON stays standard
    assert metrics["mase"] == {"model": None, "seasonal_naive": None, "ratio": None}  # constant seasonal differences


def test_scaled_units_use_the_training_statistics(
    tmp_path: Path, hourly_csv: Path, checkpoints: dict[str, Path], script: ModuleType
) -> None:
    output = tmp_path / "report.json"
    script.main(["--model", str(checkpoints["one"]), "--input", str(hourly_csv), "--target-columns", "load",
                 "--stride", "8", "--output", str(output)])  # fmt: skip

    metrics = json.loads(output.read_text())["metrics"]
    train = pd.read_csv(hourly_csv)["load"].to_numpy(dtype=np.float32)[:140]  # 70 % of 200 rows: 10 % validation
    for forecaster in ("model", "seasonal_naive"):
        scaled, original = metrics["scaled"]["mse"][forecaster], metrics["original"]["mse"][forecaster]
        assert scaled == pytest.approx(original / np.var(train, dtype=float), rel=1e-5)


def test_quantile_checkpoint_adds_the_weighted_quantile_loss(
    tmp_path: Path, hourly_csv: Path, checkpoints: dict[str, Path], script: ModuleType
) -> None:
    output = tmp_path / "report.json"
    script.main(["--model", str(checkpoints["quantile"]), "--input", str(hourly_csv), "--stride", "8",
                 "--output", str(output)])  # fmt: skip

    report = json.loads(output.read_text())
    assert report["quantile_levels"] == [0.1, 0.5, 0.9]
    for unit in ("original", "scaled"):
        assert set(report["metrics"][unit]) == METRICS | {"wql"}
        assert report["metrics"][unit]["wql"]["ratio"] > 0


def test_single_channel_checkpoint_forecasts_each_target_on_its_own(
    hourly_csv: Path, checkpoints: dict[str, Path], script: ModuleType
) -> None:
    model = script.load_model(str(checkpoints["one"]))
    windows = EvalWindows(load_series(hourly_csv, target_columns=["daily", "load"]), prediction_length=8, stride=50)
    assert script.fold_channels(model, windows.store, ["daily", "load"])

    forecasts, quantiles = script.forecast(model, windows, context_length=32, horizon=8, batch_size=2, fold=True)

    assert quantiles is None and forecasts.shape == (len(windows), 8, 2)
    for channel in range(2):
        past = np.stack([windows.store.values[end - 40 : end - 8, channel] for _, end in windows])
        with torch.no_grad():
            expected = model(past_values=torch.from_numpy(past[..., None])).prediction_outputs[..., 0]
        np.testing.assert_allclose(forecasts[..., channel], expected.numpy(), rtol=1e-5, atol=1e-5)


def test_real_data_backtest(tmp_path: Path, checkpoints: dict[str, Path], script: ModuleType) -> None:
    """The 30-minute sea surface temperature series of bokeh-sampledata (duplicate timestamps: --resample)."""
    data = Path(importlib.util.find_spec("bokeh_sampledata").origin).parent / "_data" / "sea_surface_temperature.csv.gz"
    output = tmp_path / "report.json"
    script.main(["--model", str(checkpoints["one"]), "--input", str(data), "--resample", "--stride", "96",
                 "--split", "validation", "--output", str(output)])  # fmt: skip

    report = json.loads(output.read_text())
    assert (report["freq"], report["seasonal_period"], report["split"]) == ("30min", 48, "validation")
    assert report["num_windows"] == 20  # 10 % of 19,249 steps, windows of 8 every 96 steps
    assert all(v["model"] is not None for unit in report["metrics"].values() for v in unit.values())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "{missing}"], "--model"),
        (["--target-columns", "lod"], "--target-columns: no column 'lod'"),
        (["--exogenous-columns", "price"], "--exogenous-columns: no column 'price'"),
        (["--timestamp-column", "load"], "--timestamp-column"),
        (["--context-length", "33"], "--context-length"),
        (["--horizon", "9"], "--horizon"),
        (["--horizon", "0"], "--horizon"),
        (["--stride", "-1"], "--stride"),
        (["--test-fraction", "0.02"], "--test-fraction"),  # 4 test steps: no window of 8
        (["--test-fraction", "0.5", "--validation-fraction", "0.5"], "--validation-fraction"),
        (["--output", "{input}"], "--output"),
        (["--output", "{missing}/report.json"], "--output"),
    ],
)
def test_bad_arguments_fail_with_a_clear_message(
    tmp_path: Path,
    hourly_csv: Path,
    checkpoints: dict[str, Path],
    script: ModuleType,
    args: list[str],
    message: str,
    capsys: pytest.CaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    input_bytes = hourly_csv.read_bytes()
    monkeypatch.chdir(tmp_path)  # the default --output is outputs/backtest.json
    paths = {"input": hourly_csv, "missing": tmp_path / "missing"}
    defaults = ["--model", str(checkpoints["two"]), "--input", str(hourly_csv), "--target-columns", "daily", "load"]

    with pytest.raises(SystemExit) as exit_info:
        script.main([*defaults, *(arg.format(**paths) for arg in args)])

    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert hourly_csv.read_bytes() == input_bytes
    assert not (tmp_path / "outputs").exists()


def test_channel_mismatch_names_the_column_arguments(
    hourly_csv: Path, checkpoints: dict[str, Path], script: ModuleType, capsys: pytest.CaptureFixture
) -> None:
    with pytest.raises(SystemExit):  # a two-channel checkpoint, one target column
        script.main(["--model", str(checkpoints["two"]), "--input", str(hourly_csv), "--target-columns", "daily"])
    assert "--target-columns / --exogenous-columns: the checkpoint reads 2 channels" in capsys.readouterr().err


def test_statistical_baselines_score_the_same_windows(
    tmp_path: Path, hourly_csv: Path, checkpoints: dict[str, Path], script: ModuleType, capsys: pytest.CaptureFixture
) -> None:
    output = tmp_path / "report.json"
    script.main(["--model", str(checkpoints["quantile"]), "--input", str(hourly_csv), "--stride", "8", "--baselines",
                 "--output", str(output)])  # fmt: skip

    report = json.loads(output.read_text())
    section = report["baselines"]
    assert section["num_series"] == report["num_windows"] * 2 and section["quantile_levels"] == [0.1, 0.5, 0.9]
    assert set(section["failures"]) == {"SeasonalNaive", "AutoETS", "AutoTheta", "MSTL", "MedianEnsemble"}
    mase = section["metrics"]["original"]["mase"]
    assert mase["model"] == pytest.approx(report["metrics"]["original"]["mase"]["model"])
    for name in section["failures"]:
        assert mase[name]["model_ratio"] == pytest.approx(mase["model"] / mase[name]["value"])
    assert "MedianEnsemble" in capsys.readouterr().out

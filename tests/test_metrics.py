"""ttm_metrics: every metric module and the evaluation report against values computed by hand."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from setuptools.config.pyprojecttoml import read_configuration

from ttm_metrics import METRIC_MODULES, evaluation_report, format_report, load_metric, seasonal_naive

ROOT = Path(__file__).resolve().parents[1]
NAN = float("nan")


@pytest.fixture(scope="module")
def point():
    return load_metric("point")


@pytest.fixture(scope="module")
def smape():
    return load_metric("smape")


@pytest.fixture(scope="module")
def mase():
    return load_metric("mase")


@pytest.fixture(scope="module")
def wql():
    return load_metric("wql")


def test_modules_load_without_the_hub(tmp_path: Path) -> None:
    code = (
        "from ttm_metrics import load_metric, METRIC_MODULES\n"
        "for name in METRIC_MODULES:\n"
        "    print(name, type(load_metric(name)).__name__)\n"
        "print(load_metric('point').compute(predictions=[[1.0, 2.0]], references=[[2.0, 4.0]]))\n"
    )
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_HOME": str(tmp_path / "hf"),  # empty cache: nothing to fall back on
        "HF_ENDPOINT": "http://127.0.0.1:9",  # a closed port: any Hub request would fail
        "PYTHONPATH": str(ROOT),
    }
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "point Point",
        "mase Mase",
        "smape Smape",
        "wql Wql",
        str({"mse": 2.5, "mae": 1.5}),
    ]


def test_wheel_ships_the_metric_modules(tmp_path: Path) -> None:
    setuptools_config = read_configuration(ROOT / "pyproject.toml", expand=False)["tool"]["setuptools"]
    source = tmp_path / "source"  # a copy: building in place would write build/ into the working tree
    source.mkdir()
    for name in ["pyproject.toml", "README.md", *(f"{module}.py" for module in setuptools_config["py-modules"])]:
        shutil.copy(ROOT / name, source / name)
    for package in setuptools_config["packages"]:
        shutil.copytree(ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", tmp_path, source]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr

    (wheel,) = tmp_path.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {f"ttm_metrics/{module}/{module}.py" for module in METRIC_MODULES} <= names


def test_unknown_metric_name() -> None:
    with pytest.raises(ValueError, match="'rmse'"):
        load_metric("rmse")


def test_mse_and_mae(point) -> None:
    # errors -1, -2, 0, 4
    result = point.compute(predictions=[[1.0, 2.0], [3.0, 5.0]], references=[[2.0, 4.0], [3.0, 1.0]])
    assert result == pytest.approx({"mse": 21 / 4, "mae": 7 / 4})


def test_mse_and_mae_skip_missing_references(point) -> None:
    # errors -1, 0, 4 (the NaN reference is left out)
    result = point.compute(predictions=[[1.0, 2.0], [3.0, 5.0]], references=[[2.0, NAN], [3.0, 1.0]])
    assert result == pytest.approx({"mse": 17 / 3, "mae": 5 / 3})
    nothing_observed = point.compute(predictions=[[1.0]], references=[[NAN]])
    assert np.isnan(nothing_observed["mse"]) and np.isnan(nothing_observed["mae"])


@pytest.mark.parametrize(
    ("predictions", "references", "message"),
    [([[1.0, NAN]], [[1.0, 2.0]], "finite"), ([[1.0, 2.0]], [[1.0]], "length")],
)
def test_point_metric_rejects_bad_predictions(point, predictions, references, message) -> None:
    with pytest.raises(ValueError, match=message):
        point.compute(predictions=predictions, references=references)


def test_smape_with_zeros(smape) -> None:
    # 2|e| / (|y| + |f|): 4/4, both zero -> 0, 4/2 (zero forecast), 4/2 (opposite signs); NaN left out
    result = smape.compute(predictions=[[1.0, 0.0, 0.0, -1.0, 5.0]], references=[[3.0, 0.0, 2.0, 1.0, NAN]])
    assert result["smape"] == pytest.approx(5 / 4)


def test_smape_bounds(smape) -> None:
    assert smape.compute(predictions=[[2.0, 0.0]], references=[[2.0, 0.0]])["smape"] == 0.0
    assert smape.compute(predictions=[[0.0, 7.0]], references=[[3.0, 0.0]])["smape"] == 2.0


def test_mase_with_a_known_period(mase) -> None:
    # seasonal differences at period 2: |3-1|, |5-2|, |4-3|, |6-5| -> scale 7/4; forecast MAE (1 + 2) / 2
    result = mase.compute(
        predictions=[[4.0, 7.0], [1.0, 1.0]],
        references=[[5.0, 5.0], [2.0, 2.0]],
        contexts=[[1.0, 2.0, 3.0, 5.0, 4.0, 6.0], [0.0, 0.0, 0.0]],  # constant history: no scale, left out
        seasonal_period=2,
    )
    assert result["mase"] == pytest.approx(1.5 / 1.75)


def test_mase_skips_missing_values(mase) -> None:
    # period 1: only the pair (4, 8) is observed -> scale 4; the observed error is |1 - 3|
    result = mase.compute(
        predictions=[[1.0, 0.0]], references=[[3.0, NAN]], contexts=[[2.0, NAN, 4.0, 8.0]], seasonal_period=1
    )
    assert result["mase"] == pytest.approx(0.5)


def test_mase_leaves_out_series_without_a_scale(mase) -> None:
    # no two observed values 2 steps apart in the first history; the second history is constant
    result = mase.compute(
        predictions=[[1.0], [1.0]], references=[[2.0], [2.0]], contexts=[[NAN, 1.0, 3.0], [4.0, 4.0, 4.0]],
        seasonal_period=2,
    )  # fmt: skip
    assert np.isnan(result["mase"])


def test_mase_rejects_a_bad_period(mase) -> None:
    with pytest.raises(ValueError, match="positive integer"):
        mase.compute(predictions=[[1.0]], references=[[1.0]], contexts=[[1.0, 2.0]], seasonal_period=0)


def test_wql_on_three_levels(wql) -> None:
    # pinball sums: q=0.1 errors (1, 1) -> 0.2; q=0.5 errors (0, -1) -> 0.5; q=0.9 errors (-1, -2) -> 0.3
    # sum |y| = 6, so wql_q = 2 * sum / 6
    result = wql.compute(
        predictions=[[[1.0, 3.0], [2.0, 5.0], [3.0, 6.0]]],
        references=[[2.0, 4.0]],
        quantile_levels=[0.1, 0.5, 0.9],
    )
    assert result["wql_per_level"] == pytest.approx({0.1: 1 / 15, 0.5: 1 / 6, 0.9: 1 / 10})
    assert result["wql"] == pytest.approx(1 / 9)


def test_wql_of_a_point_forecast_is_its_weighted_absolute_error(wql) -> None:
    # levels symmetric about 0.5: the mean pinball loss of a point forecast is |e| / 2, so wql = sum |e| / sum |y|
    levels = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
    forecast, actual = [1.0, 4.0, -2.0], [2.0, 2.0, NAN]
    result = wql.compute(predictions=[[forecast] * len(levels)], references=[actual], quantile_levels=levels)
    assert result["wql"] == pytest.approx((1 + 2) / (2 + 2))


@pytest.mark.parametrize(
    ("predictions", "levels", "message"),
    [([[[1.0]]], [1.0], "quantile_levels"), ([[[1.0]]], [0.1, 0.9], "shape"), ([[[NAN]]], [0.5], "finite")],
)
def test_wql_rejects_bad_input(wql, predictions, levels, message) -> None:
    with pytest.raises(ValueError, match=message):
        wql.compute(predictions=predictions, references=[[1.0]], quantile_levels=levels)


def test_seasonal_naive_repeats_the_last_season() -> None:
    contexts = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).reshape(1, 6, 1)
    np.testing.assert_array_equal(seasonal_naive(contexts, horizon=5, period=3)[0, :, 0], [4, 5, 6, 4, 5])
    contexts[0, 4, 0] = NAN  # a missing value in the last season comes from the season before
    np.testing.assert_array_equal(seasonal_naive(contexts, horizon=3, period=3)[0, :, 0], [4, 2, 6])


def test_seasonal_naive_falls_back_to_the_last_observed_value() -> None:
    contexts = np.array([[[NAN, 1.0], [5.0, 2.0], [NAN, 3.0], [7.0, NAN]]])  # channel 0: phase 0 never observed
    np.testing.assert_array_equal(seasonal_naive(contexts, horizon=4, period=2)[0], [[7, 3], [7, 2], [7, 3], [7, 2]])


def test_seasonal_naive_refusals() -> None:
    with pytest.raises(ValueError, match="seasonal period"):
        seasonal_naive(np.ones((1, 2, 1)), horizon=1, period=3)
    with pytest.raises(ValueError, match="window 0, channel 1 has no observed value"):
        seasonal_naive(np.array([[[1.0, NAN], [1.0, NAN]]]), horizon=1, period=2)


def report_inputs() -> dict[str, np.ndarray]:
    """One window of one channel: history (1, 2, 2, 2), period 2 -> seasonal naive (2, 2), in-sample scale 1/2."""
    return {
        "forecasts": np.array([1.0, 2.5]).reshape(1, 2, 1),
        "actuals": np.array([1.0, 3.0]).reshape(1, 2, 1),
        "contexts": np.array([1.0, 2.0, 2.0, 2.0]).reshape(1, 4, 1),
        "seasonal_period": 2,
    }


def entry(model: float, naive: float) -> dict[str, float]:
    return {
        "model": pytest.approx(model),
        "seasonal_naive": pytest.approx(naive),
        "ratio": pytest.approx(model / naive),
    }


def test_report_in_original_and_scaled_units() -> None:
    report = evaluation_report(**report_inputs(), scaler_mean=np.array([1.0]), scaler_std=np.array([2.0]))

    assert report["metrics"]["original"] == {
        "mse": entry((0 + 0.25) / 2, (1 + 1) / 2),
        "mae": entry(0.5 / 2, 1.0),
        "mase": entry(0.25 / 0.5, 1.0 / 0.5),
        "smape": entry((0 + 1 / 5.5) / 2, (2 / 3 + 2 / 5) / 2),
    }
    # scaled: forecasts (0, 0.75), actuals (0, 1), seasonal naive (0.5, 0.5)
    assert report["metrics"]["scaled"] == {
        "mse": entry(0.0625 / 2, 0.25),
        "mae": entry(0.25 / 2, 0.5),
        "mase": entry(0.5, 2.0),  # scale-free
        "smape": entry((0 + 0.5 / 1.75) / 2, (2 + 1 / 1.5) / 2),
    }
    assert (report["num_windows"], report["horizon"], report["num_channels"]) == (1, 2, 1)
    assert report["seasonal_period"] == 2 and report["quantile_levels"] is None


def test_report_with_per_window_scalers() -> None:
    inputs = report_inputs()
    two = {name: np.concatenate([value, value]) for name, value in inputs.items() if name != "seasonal_period"}
    # window 0 scaled as in the test above, window 1 by mean 0 and std 1 (unchanged)
    report = evaluation_report(
        **two, seasonal_period=2, scaler_mean=np.array([[1.0], [0.0]]), scaler_std=np.array([[2.0], [1.0]])
    )
    assert report["metrics"]["scaled"]["mse"] == entry((0.0625 / 2 + 0.25 / 2) / 2, (0.25 + 1) / 2)


def test_report_with_quantiles() -> None:
    inputs = report_inputs()
    levels = [0.1, 0.5, 0.9]
    quantiles = np.repeat(inputs["forecasts"][:, None], 3, axis=1)  # a point forecast at every level

    report = evaluation_report(**inputs, quantile_forecasts=quantiles, quantile_levels=levels)

    assert set(report["metrics"]) == {"original"}
    # wql = sum |e| / sum |y| for point forecasts: model 0.5 / 4, seasonal naive 2 / 4
    assert report["metrics"]["original"]["wql"] == entry(0.5 / 4, 2 / 4)
    assert report["quantile_levels"] == levels


def test_report_undefined_values_are_none() -> None:
    inputs = report_inputs()
    inputs["contexts"] = np.full((1, 4, 1), 3.0)  # constant history: no MASE scale; seasonal naive (3, 3)
    inputs["actuals"] = np.full((1, 2, 1), 3.0)  # the seasonal naive is exact: ratios divide by 0

    metrics = evaluation_report(**inputs)["metrics"]["original"]

    assert metrics["mase"] == {"model": None, "seasonal_naive": None, "ratio": None}
    assert metrics["mse"]["seasonal_naive"] == 0.0 and metrics["mse"]["ratio"] is None
    assert "n/a" in format_report({"metrics": {"original": metrics}})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"actuals": np.ones((1, 3, 1))}, "share a shape"),
        ({"contexts": np.ones((2, 4, 1))}, "contexts must have shape"),
        ({"quantile_levels": [0.5]}, "together"),
        ({"quantile_forecasts": np.ones((1, 2, 2, 1)), "quantile_levels": [0.5]}, "quantile_forecasts must have"),
        ({"scaler_mean": np.zeros(1)}, "together"),
        ({"scaler_mean": np.zeros(1), "scaler_std": np.zeros(1)}, "positive"),
        ({"scaler_mean": np.zeros(2), "scaler_std": np.ones(2)}, "shape"),
        ({"scaler_mean": np.zeros((1, 1)), "scaler_std": np.ones(1)}, "shape"),
    ],
)
def test_report_rejects_inconsistent_input(change: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        evaluation_report(**{**report_inputs(), **change})


def test_format_report_lists_every_metric() -> None:
    table = format_report(evaluation_report(**report_inputs()))
    lines = table.splitlines()
    assert lines[0].split() == ["units", "metric", "model", "seasonal_naive", "ratio"]
    assert [line.split()[:2] for line in lines[1:]] == [["original", name] for name in ("mse", "mae", "mase", "smape")]
    assert lines[1].split()[2:] == ["0.125", "1", "0.125"]

"""scripts/benchmark.py runs end to end: parity check, timings, FLOPs, peak memory, ONNX Runtime and compiled rows."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_benchmark_writes_every_figure_it_was_asked_for(tmp_path):
    out = tmp_path / "bench.json"
    command = [sys.executable, str(ROOT / "scripts" / "benchmark.py"), "--configs", "base", "--figures", "latency"]
    command += ["train", "--repeats", "1", "--warmup", "1", "--onnx", "--compile", "--json", str(out)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=1800, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(out.read_text())
    assert report["failures"] == {} and report["matmul_peak_gflops"] > 0
    rows = {row["figure"]: row for row in report["rows"]}
    assert set(rows) == {"latency", "train"}
    for row in rows.values():
        assert row["config"] == "base" and row["max_abs_diff"] <= 1e-5
        assert row["ours_s"] > 0 and row["granite_s"] > 0 and row["ratio"] == row["granite_s"] / row["ours_s"]
        assert row["flops"] > 0
    assert (rows["latency"]["batch"], rows["latency"]["channels"]) == (1, 1)
    assert rows["train"]["ours_peak_bytes"] > 0 and rows["train"]["granite_peak_bytes"] > 0
    onnx = {row["figure"]: row for row in report["onnx_rows"]}
    assert set(onnx) == {"latency", "inference"}
    assert all(row["max_abs_diff"] <= 1e-4 and row["onnxrt_s"] > 0 for row in onnx.values())
    compiled = {row["figure"]: row for row in report["compiled_rows"]}
    assert set(compiled) == {"latency", "inference"}
    assert all(
        row["max_abs_diff"] <= 1e-5 and row["compiled_s"] > 0 and row["one_off_s"] > 0 for row in compiled.values()
    )
    assert compiled["inference"]["new_graphs_for_2_more_batch_sizes"] == 0  # batch sizes 65 and 69 reuse the graph
    assert "ratio" in result.stdout and "ONNX Runtime" in result.stdout and "torch.compile" in result.stdout


def test_forecast_benchmark_paths_forecast_the_same_job(tmp_path):
    """scripts/benchmark_forecast.py's paths do one job: predict_df and granite-tsfm's pipeline (same weights) give the
    same point forecasts at the same ids and timestamps; statsforecast's SeasonalNaive repeats the last day."""
    import numpy as np
    import pandas as pd
    from script_loader import load_script

    benchmark = load_script("benchmark_forecast")
    data = tmp_path / "series.parquet"
    benchmark.write_series(data, 12, 600)
    model_seconds = benchmark.run_api(data, tmp_path / "api.parquet")
    benchmark.run_granite(data, tmp_path / "granite.parquet")
    benchmark.run_statsforecast("seasonal_naive", data, tmp_path / "naive.parquet")

    ours = pd.read_parquet(tmp_path / "api.parquet")
    granite = pd.read_parquet(tmp_path / "granite.parquet").rename(columns={"y": "granite"})
    assert len(ours) == len(granite) == 12 * benchmark.HORIZON and model_seconds > 0
    joined = ours.merge(granite, on=["id", "ts"], validate="one_to_one")
    assert len(joined) == len(ours)
    np.testing.assert_allclose(joined["predictions"], joined["granite"], atol=1e-4, rtol=1e-5)
    history = pd.read_parquet(data)
    naive = pd.read_parquet(tmp_path / "naive.parquet")
    for name, series in history.groupby("id"):
        last_day = series["y"].to_numpy()[-benchmark.SEASON :]
        expected = np.tile(last_day, benchmark.HORIZON // benchmark.SEASON)
        np.testing.assert_allclose(naive.loc[naive["unique_id"] == name, "SeasonalNaive"], expected, rtol=1e-6)

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

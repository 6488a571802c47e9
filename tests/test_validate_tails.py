"""scripts/validate_tails.py: checkpoints scored on the corpus tails that pretraining leaves out, group by group."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from datasets import Dataset
from script_loader import load_script
from tiny import save_tiny_checkpoint

from modeling_ttm import TTMForPrediction

CONTEXT, HORIZON, PERIOD = 32, 8, 24  # tiny_config's lengths; hourly data has a daily season of 24 steps


def hourly(length: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    steps = np.arange(length)
    return (np.sin(2 * np.pi * steps / PERIOD) + 0.02 * steps + 0.3 * rng.standard_normal(length)).astype(np.float32)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Source "a": one hourly series of 400 steps; "d": one of 200; "b": daily; "c": a 5-minute series too short."""
    rows = [
        ("a", "h", hourly(400, 0)),
        ("d", "h", hourly(200, 1)),
        ("b", "D", hourly(400, 2)),
        ("c", "5min", hourly(36, 3)),
    ]
    path = tmp_path_factory.mktemp("corpus") / "corpus"
    Dataset.from_dict(
        {
            "target": [values.tolist() for _, _, values in rows],
            "start": [pd.Timestamp("2024-01-01")] * len(rows),
            "freq": [freq for _, freq, _ in rows],
            "item_id": [f"{source}/0" for source, _, _ in rows],
            "source": [source for source, _, _ in rows],
            "license": ["MIT"] * len(rows),
        }
    ).save_to_disk(str(path))
    return path


@pytest.fixture(scope="module")
def naive_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkpoint that forecasts the last context value: subtract_last with a zeroed head."""
    path = save_tiny_checkpoint(tmp_path_factory.mktemp("naive") / "naive", subtract_last=True)
    model = TTMForPrediction.from_pretrained(path)
    for parameter in model.head.parameters():
        torch.nn.init.zeros_(parameter)
    model.save_pretrained(path)
    return path


def expected_ratio(values: np.ndarray, split: int) -> tuple[int, float]:
    """Windows and MASE(last value) / MASE(seasonal naive) by hand: windows every HORIZON steps ending at the series'
    end, whose forecast starts at or after `split`; MASE scales each window's MAE by the context's seasonal MAE."""
    ends = range(len(values), split + HORIZON - 1, -HORIZON)
    naive, seasonal = [], []
    for end in ends:
        context, actual = values[end - HORIZON - CONTEXT : end - HORIZON], values[end - HORIZON : end]
        scale = np.abs(context[PERIOD:] - context[:-PERIOD]).mean()
        naive.append(np.abs(actual - context[-1]).mean() / scale)
        seasonal.append(np.abs(actual - context[-PERIOD : -PERIOD + HORIZON]).mean() / scale)
    return len(naive), float(np.mean(naive) / np.mean(seasonal))


def test_tails_are_scored_per_group_against_seasonal_naive(corpus: Path, naive_checkpoint: Path, tmp_path: Path):
    tails = load_script("validate_tails")
    output = tmp_path / "tails.json"
    random = save_tiny_checkpoint(tmp_path / "random")
    argv = ["--corpus", str(corpus), "--checkpoints", f"naive={naive_checkpoint}", f"random={random}"]
    tails.main([*argv, "--validation_fraction", "0.2", "--min_windows", "6", "--output", str(output)])

    result = json.loads(output.read_text())
    assert list(result["groups"]) == ["a (h)", "d (h)"]  # the daily source is not a sub-daily one
    assert result["no_windows"] == ["c (5min)"]  # 36 steps: a tail window would need 32 + 8 steps
    ratios = {}
    for name, length, seed in (("a (h)", 400, 0), ("d (h)", 200, 1)):
        windows, ratio = expected_ratio(hourly(length, seed), split=int(length * 0.8))
        report = result["groups"][name]["reports"]["naive"]
        assert report["num_windows"] == windows == {"a (h)": 10, "d (h)": 5}[name]
        assert report["metrics"]["original"]["mase"]["ratio"] == pytest.approx(ratio, rel=1e-4)
        ratios[name] = ratio
    # "d" has 5 windows, fewer than --min_windows: the geometric mean is "a"'s alone
    assert result["geometric_mean_mase_ratio"]["naive"] == pytest.approx(ratios["a (h)"], rel=1e-4)
    assert result["geometric_mean_mase_ratio"]["random"] != pytest.approx(ratios["a (h)"], rel=1e-2)

    every = tails.main([*argv[:4], "--validation_fraction", "0.2", "--min_windows", "1"])
    assert every["geometric_mean_mase_ratio"]["naive"] == pytest.approx(math.sqrt(ratios["a (h)"] * ratios["d (h)"]))
    assert every["groups"]["a (h)"]["reports"]["naive"]["num_windows"] == 10


def test_table_and_bad_arguments(corpus: Path, naive_checkpoint: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tails = load_script("validate_tails")
    tails.main(["--corpus", str(corpus), "--checkpoints", f"naive={naive_checkpoint}", "--freq", "D"])
    table = capsys.readouterr().out
    assert "| b (D) | 1 | 5 |" in table and "geometric mean (groups of >= 20 windows) |  |  | - |" in table

    with pytest.raises(SystemExit):
        tails.main(["--corpus", str(corpus), "--checkpoints", str(naive_checkpoint)])
    assert "--checkpoints: expected NAME=PATH items" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        tails.main(["--corpus", str(corpus), "--checkpoints", f"naive={naive_checkpoint}", "--freq", "W"])
    assert "--freq: the corpus has no series at W" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        tails.main(["--corpus", str(corpus), "--checkpoints", f"x={corpus}"])
    assert "--checkpoints: cannot load x=" in capsys.readouterr().err


def test_baselines_are_fitted_once_and_shared(corpus: Path, naive_checkpoint: Path, tmp_path: Path) -> None:
    tails = load_script("validate_tails")
    random = save_tiny_checkpoint(tmp_path / "random")
    argv = ["--corpus", str(corpus), "--checkpoints", f"naive={naive_checkpoint}", f"random={random}", "--baselines"]
    result = tails.main([*argv, "--freq", "h", "--validation_fraction", "0.2"])
    for group in result["groups"].values():
        naive, other = (
            group["reports"][label]["baselines"]["metrics"]["original"]["mase"] for label in ("naive", "random")
        )
        for name in ("SeasonalNaive", "AutoETS", "AutoTheta", "MSTL"):
            assert naive[name]["value"] == other[name]["value"]  # the same fits, reused for the second checkpoint
            model = group["reports"]["naive"]["metrics"]["original"]["mase"]["model"]
            assert naive[name]["model_ratio"] == pytest.approx(model / naive[name]["value"])

"""A catalogue of bad inputs for the model, the data loader and collator, and the command-line scripts.

Each case ends in a clear error naming the culprit, or in a documented behaviour whose result is checked: never a
NaN forecast and never an overwritten input. README's "Reliability" section counts these cases.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv
import pyarrow.parquet as pq
import pytest
import torch
from script_loader import load_script
from tiny import tiny_config

from modeling_ttm import TTMForPrediction
from ttm_data import EvalWindows, ForecastWindowCollator, TrainWindows, load_series

ROOT = Path(__file__).resolve().parents[1]
B, L, C, H = 2, 32, 3, 8  # tiny_config(): batch, context, channels, horizon


def forecast_of(model: TTMForPrediction, **inputs: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(**inputs).prediction_outputs


@pytest.fixture(scope="module")
def models() -> dict[str, TTMForPrediction]:
    torch.manual_seed(0)
    return {
        "plain": TTMForPrediction(tiny_config()).eval(),
        "freq": TTMForPrediction(tiny_config(resolution_prefix_tuning=True, frequency_token_vocab_size=5)).eval(),
        "categorical": TTMForPrediction(
            tiny_config(decoder_mode="mix_channel", categorical_vocab_size_list=[3, 2])
        ).eval(),
    }


def past(*shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.randn(*(shape or (B, L, C))).to(dtype)


# (model, inputs, error type, message): each must be refused with a message naming the input.
MODEL_REFUSALS: dict[str, tuple[str, Callable[[], dict], type[Exception], str]] = {
    "2-D past_values": ("plain", lambda: {"past_values": past(L, C)}, ValueError, "must be 3-D"),
    "wrong channel count": ("plain", lambda: {"past_values": past(B, L, 2)}, ValueError, "2 channels"),
    "empty batch": ("plain", lambda: {"past_values": past(0, L, C)}, ValueError, "must not be empty"),
    "empty time axis": ("plain", lambda: {"past_values": past(B, 0, C)}, ValueError, "must not be empty"),
    "integer past_values": ("plain", lambda: {"past_values": past(dtype=torch.int64)}, TypeError, "floating-point"),
    "not a tensor": ("plain", lambda: {"past_values": np.zeros((B, L, C))}, TypeError, "torch.Tensor"),
    "+inf in past_values": (
        "plain",
        lambda: {"past_values": past().index_put_((torch.tensor(0),), torch.tensor(float("inf")))},
        ValueError,
        "contains \\+/-inf",
    ),
    "-inf in future_values": (
        "plain",
        lambda: {"past_values": past(), "future_values": torch.full((B, H, C), -float("inf"))},
        ValueError,
        "`future_values` contains",
    ),
    "future_values too long": (
        "plain",
        lambda: {"past_values": past(), "future_values": past(B, H + 1, C)},
        ValueError,
        "must have 8 time steps",
    ),
    "mask of another shape": (
        "plain",
        lambda: {"past_values": past(), "past_observed_mask": torch.ones(B, L - 1, C)},
        ValueError,
        "`past_observed_mask` must be a tensor of the same shape",
    ),
    "future mask of another shape": (
        "plain",
        lambda: {"past_values": past(), "future_values": past(B, H, C), "future_observed_mask": torch.ones(B, H)},
        ValueError,
        "`future_observed_mask` must be",
    ),
    "missing freq_token": ("freq", lambda: {"past_values": past()}, ValueError, "`freq_token` is required"),
    "freq_token outside the vocabulary": (
        "freq",
        lambda: {"past_values": past(), "freq_token": torch.tensor([1, 5])},
        ValueError,
        "`freq_token` is out of range",
    ),
    "negative freq_token": (
        "freq",
        lambda: {"past_values": past(), "freq_token": torch.tensor([-1, 0])},
        ValueError,
        "`freq_token` is out of range",
    ),
    "fractional freq_token": (
        "freq",
        lambda: {"past_values": past(), "freq_token": torch.tensor([1.5, 2.0])},
        ValueError,
        "whole numbers",
    ),
    "freq_token of another batch size": (
        "freq",
        lambda: {"past_values": past(), "freq_token": torch.tensor([1, 2, 3])},
        ValueError,
        "`freq_token` must be a tensor of shape \\(2,\\)",
    ),
    "missing categoricals": (
        "categorical",
        lambda: {"past_values": past()},
        ValueError,
        "`static_categorical_values` is required",
    ),
    "categorical outside its vocabulary": (
        "categorical",
        lambda: {"past_values": past(), "static_categorical_values": torch.tensor([[0, 2], [1, 1]])},
        ValueError,
        "`static_categorical_values` is out of range",
    ),
    "categoricals of another shape": (
        "categorical",
        lambda: {"past_values": past(), "static_categorical_values": torch.tensor([0, 1])},
        ValueError,
        "`static_categorical_values` must be a tensor of shape \\(2, 2\\)",
    ),
    "boolean categoricals": (
        "categorical",
        lambda: {"past_values": past(), "static_categorical_values": torch.ones(B, 2, dtype=torch.bool)},
        TypeError,
        "integer tensor",
    ),
}


@pytest.mark.parametrize("case", MODEL_REFUSALS)
def test_model_refuses_bad_inputs_clearly(case: str, models: dict[str, TTMForPrediction]) -> None:
    name, inputs, error, message = MODEL_REFUSALS[case]
    with pytest.raises(error, match=message):
        models[name](**inputs())


def nan_everywhere() -> dict:
    return {"past_values": torch.full((B, L, C), float("nan"))}


# Inputs with a documented behaviour (README "Input conventions"): the forecast is finite and has the right shape.
MODEL_ACCEPTS: dict[str, Callable[[], dict]] = {
    "NaN values (missing)": lambda: {"past_values": past().masked_fill(torch.rand(B, L, C) < 0.3, float("nan"))},
    "an all-NaN channel": lambda: {"past_values": past().index_fill_(2, torch.tensor([1]), float("nan"))},
    "an all-NaN window": nan_everywhere,
    "an all-zero observed mask": lambda: {"past_values": past(), "past_observed_mask": torch.zeros(B, L, C)},
    "a shorter context (left-padded)": lambda: {"past_values": past(B, 5, C)},
    "a single time step": lambda: {"past_values": past(B, 1, C)},
    "a longer context (truncated)": lambda: {"past_values": past(B, 3 * L, C)},
    "NaN future values (unobserved targets)": lambda: {
        "past_values": past(),
        "future_values": past(B, H, C).index_fill_(1, torch.tensor([0, 3]), float("nan")),
    },
}


@pytest.mark.parametrize("case", MODEL_ACCEPTS)
def test_model_forecasts_finite_values_for_documented_inputs(case: str, models: dict[str, TTMForPrediction]) -> None:
    inputs = MODEL_ACCEPTS[case]()
    with torch.no_grad():
        output = models["plain"](**inputs)
    assert output.prediction_outputs.shape == (B, H, C)
    assert output.prediction_outputs.isfinite().all()
    if "future_values" in inputs:
        assert output.loss.isfinite()


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
def test_model_casts_other_float_dtypes_to_its_own(dtype: torch.dtype, models: dict) -> None:
    """float64 (numpy's default), float16 and bfloat16 `past_values` are cast to the model's float32."""
    values = past(dtype=dtype)
    expected = forecast_of(models["plain"], past_values=values.float())
    torch.testing.assert_close(forecast_of(models["plain"], past_values=values), expected, rtol=0, atol=0)


# ---------------------------------------------------------------------------------------------------------- loader


def write_csv(tmp_path: Path, frame: pd.DataFrame | str, name: str = "data.csv") -> Path:
    path = tmp_path / name
    if isinstance(frame, str):
        path.write_text(frame)
    else:
        frame.to_csv(path, index=False)
    return path


def hourly(rows: int = 100, **columns: np.ndarray) -> pd.DataFrame:
    values = columns or {"load": np.sin(np.arange(rows) / 5)}
    return pd.DataFrame({"date": pd.date_range("2024-01-01", periods=rows, freq="h"), **values})


def with_rows(frame: pd.DataFrame, order: list[int]) -> pd.DataFrame:
    return frame.iloc[order].reset_index(drop=True)


LOADER_REFUSALS: dict[str, tuple[Callable[[], pd.DataFrame | str], dict, str]] = {
    "missing target column": (hourly, {"target_columns": ["lod"]}, "`target_columns`: no column 'lod'.*did you mean"),
    "missing timestamp column": (hourly, {"timestamp_column": "time"}, "`timestamp_column`: no column 'time'"),
    "non-numeric target": (
        lambda: hourly().assign(load=lambda f: f["load"].astype(object).where(f.index != 7, "12,5")),
        {"target_columns": ["load"]},
        "column 'load' .* is not numeric: row 7 .* holds '12,5'",
    ),
    "no numeric column": (lambda: hourly().assign(load="x"), {}, "`target_columns`: .* has no numeric column"),
    "empty file": (lambda: "", {}, "is empty"),
    "header only": (lambda: "date,load\n", {}, "has no data rows"),
    "one row": (lambda: hourly(1), {}, "cannot infer the frequency from 1 timestamp"),
    "duplicate timestamps": (lambda: with_rows(hourly(), [0, 1, 2, 2, 3]), {}, "appears more than once"),
    "unsorted timestamps": (lambda: with_rows(hourly(), [0, 2, 1, 3, 4]), {}, "not in time order"),
    "irregular timestamps": (
        lambda: hourly().assign(date=lambda f: f["date"] + pd.to_timedelta(np.r_[0, 0, 17, [0] * 97], "min")),
        {"freq": "h"},
        "not on the h grid",
    ),
    "wrong frequency": (hourly, {"freq": "min"}, "would span"),
    "unparseable timestamp": (
        lambda: hourly().assign(date=lambda f: f["date"].astype(str).where(f.index != 3, "yesterday")),
        {"timestamp_column": "date"},
        "`timestamp_column`: cannot parse column 'date'",
    ),
    "infinite value": (
        lambda: hourly().assign(load=lambda f: f["load"].where(f.index != 4, np.inf)),
        {},
        "infinite value in row 4",
    ),
    "value beyond float32": (
        lambda: hourly().assign(load=lambda f: f["load"].where(f.index != 5, 1e39)),
        {},
        "beyond the float32 range",
    ),
    "unsupported file type": (lambda: "date,load\n", {"_name": "data.xlsx"}, "unsupported file type"),
}


@pytest.mark.parametrize("case", LOADER_REFUSALS)
def test_loader_refuses_bad_files_clearly(case: str, tmp_path: Path) -> None:
    make, arguments, message = LOADER_REFUSALS[case]
    arguments = dict(arguments)
    path = write_csv(tmp_path, make(), arguments.pop("_name", "data.csv"))
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(ValueError, match=message):
        load_series(path, **arguments)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


def test_loader_refuses_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_series(tmp_path / "nothing.csv")


def test_extra_non_numeric_columns_are_ignored_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    path = write_csv(tmp_path, hourly().assign(note="text"))
    dataset = load_series(path)
    assert "ignoring non-numeric columns ['note']" in caplog.text
    np.testing.assert_allclose(dataset[0]["target"], np.sin(np.arange(100) / 5), rtol=1e-6)


def test_one_row_with_a_given_frequency_loads_but_yields_no_training_window(tmp_path: Path) -> None:
    dataset = load_series(write_csv(tmp_path, hourly(1)), freq="h")
    assert len(dataset[0]["target"]) == 1
    with pytest.raises(ValueError, match="no training window"):
        TrainWindows(dataset, prediction_length=H)


def collate(dataset, context: int = L) -> dict[str, torch.Tensor]:
    windows = EvalWindows(dataset, prediction_length=H, stride=4)
    return ForecastWindowCollator(context, H)([windows[i] for i in range(len(windows))])


def test_duplicate_and_unsorted_timestamps_resample_into_means(tmp_path: Path) -> None:
    frame = with_rows(hourly(60), [*range(30), 30, 30, *range(59, 30, -1)])
    frame.loc[31, "load"] = frame.loc[30, "load"] + 1.0  # the duplicate of row 30 differs by 1
    dataset = load_series(write_csv(tmp_path, frame), resample=True)
    target = np.asarray(dataset[0]["target"])
    expected = np.sin(np.arange(60) / 5)
    expected[30] += 0.5
    np.testing.assert_allclose(target, expected, rtol=1e-5, atol=1e-6)


def test_an_all_nan_channel_is_unobserved_and_forecasts_stay_finite(tmp_path: Path, models: dict) -> None:
    frame = hourly(100, a=np.sin(np.arange(100) / 5), b=np.full(100, np.nan), c=np.arange(100.0))
    batch = collate(load_series(write_csv(tmp_path, frame), target_columns=["a", "b", "c"]))
    assert batch["past_observed_mask"][..., 1].sum() == 0 and batch["past_values"][..., 1].isnan().all()
    assert (batch["past_values"].isnan() == (batch["past_observed_mask"] == 0)).all()  # NaN: left for the model
    assert all(value.isfinite().all() for name, value in batch.items() if name != "past_values")
    output = models["plain"](**batch)
    assert output.prediction_outputs.isfinite().all() and output.loss.isfinite()


def load_and_forecast(tmp_path: Path, model: TTMForPrediction, **columns: np.ndarray) -> torch.Tensor:
    dataset = load_series(write_csv(tmp_path, hourly(100, **columns)), target_columns=list(columns))
    batch = collate(dataset)
    assert (batch["past_values"].isfinite() == (batch["past_observed_mask"] == 1)).all()  # NaN = padding
    with torch.no_grad():
        output = model(past_values=batch["past_values"], past_observed_mask=batch["past_observed_mask"])
    return output.prediction_outputs


def test_constant_series_forecast_their_constant(tmp_path: Path, models: dict) -> None:
    forecast = load_and_forecast(tmp_path, models["plain"], a=np.full(100, 7.0), b=np.zeros(100), c=np.full(100, -2.5))
    # up to the scaler's floor sqrt(1e-5) times the untrained head's output
    torch.testing.assert_close(forecast, torch.tensor([7.0, 0.0, -2.5]).expand_as(forecast), atol=0.05, rtol=0)


def test_series_near_the_float32_limits_forecast_finite_values(tmp_path: Path, models: dict) -> None:
    """The scaler's statistics are computed in float64, so they do not overflow near the float32 limit.

    (A trend that the forecast extends beyond float32's range, about 3.4e38, cannot be represented: the ramp stays
    two orders of magnitude below it.)
    """
    huge, tiny = np.linspace(-1e36, 1e36, 100), np.full(100, 1e-38)
    forecast = load_and_forecast(tmp_path, models["plain"], a=huge, b=tiny, c=np.full(100, 3e38))
    assert forecast.isfinite().all()


def digest(path: Path) -> str:
    return hashlib.sha256(b"".join(p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file())).hexdigest()


def test_finetune_refuses_unknown_flags_and_outputs_that_overwrite_inputs(
    tiny_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    finetune = load_script("finetune")
    data = write_csv(tmp_path, hourly(300))
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    base = ["--model_name_or_path", str(tiny_checkpoint), "--data_path", str(data)]
    before = digest(tiny_checkpoint), digest(data)
    with pytest.raises(SystemExit) as stop:
        finetune.main([*base, "--output_dir", str(tmp_path / "out"), "--no_such_flag", "1"])
    assert stop.value.code == 2 and "unrecognized arguments: --no_such_flag 1" in capsys.readouterr().err
    for extra, message in (
        (["--output_dir", str(tiny_checkpoint)], "--output_dir: .* would overwrite the input"),
        (["--output_dir", str(data)], "--output_dir: .* would overwrite the input"),
        (["--output_dir", str(blocker / "out")], "--output_dir: cannot create or write"),
    ):
        with pytest.raises(SystemExit, match=message):
            finetune.main(base + extra)
    assert (digest(tiny_checkpoint), digest(data)) == before
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("script", ["forecast", "backtest"])
def test_scripts_refuse_unknown_flags_and_never_overwrite_the_input(
    script: str, tiny_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main = load_script(script).main
    data = write_csv(tmp_path, hourly(300))
    before = digest(data)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    for extra, message in (
        (["--output", str(tmp_path / "out"), "--horizn", "3"], "unrecognized arguments: --horizn"),
        (["--output", str(data)], "refusing to overwrite the input file"),
        (["--output", str(blocker / "out.csv")], "does not exist"),
    ):
        with pytest.raises(SystemExit) as stop:
            main(["--model", str(tiny_checkpoint), "--input", str(data), *extra])
        assert stop.value.code == 2 and message in capsys.readouterr().err
    assert digest(data) == before


def test_forecast_script_gives_finite_forecasts_for_gaps_and_constant_series(tiny_checkpoint: Path, tmp_path: Path):
    main = load_script("forecast").main
    values = np.full(300, 4.0)
    values[-20:-5] = np.nan  # a gap in the context
    data = write_csv(tmp_path, hourly(300, load=values))
    output = tmp_path / "forecast.csv"
    main(["--model", str(tiny_checkpoint), "--input", str(data), "--target-columns", "load", "--output", str(output)])
    forecast = pd.read_csv(output)
    assert len(forecast) == H and np.isfinite(forecast["load"]).all()
    np.testing.assert_allclose(forecast["load"], 4.0, atol=0.01)  # a constant series forecasts its constant


LARGE_LOAD = """
import json, resource, sys, time
import numpy as np
from ttm_data import load_series
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
start = time.perf_counter()
target = np.asarray(load_series(sys.argv[1]).with_format("numpy")[0]["target"])
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"seconds": seconds, "peak": peak, "growth": peak - before, "length": len(target),
                  "probe": target[[0, 123_456, -1]].tolist()}))
"""


@pytest.mark.parametrize(
    ("name", "rows", "max_growth"),
    [("large.parquet", 10_000_000, 800e6), ("large.csv", 5_000_000, 600e6)],
    ids=["10M-row parquet", "5M-row CSV"],
)
def test_a_large_file_streams_in_bounded_memory(tmp_path: Path, name: str, rows: int, max_growth: float) -> None:
    """Minutely rows written a million at a time (parquet: 10M rows in row groups of 1M, 75 MB; CSV: 5M rows, 170 MB),
    loaded in a fresh process that reports how far the load raised its peak RSS above the RSS after the imports
    (about 340 MB, mostly torch).

    `load_series` parses a file a million rows at a time into int64 timestamps and float32 values; it never holds a
    pandas frame of the whole file. Measured on 2 busy cores: parquet 1.3-1.8 s and 420-435 MB of growth (peak RSS
    760 MB; reading the file whole took 6-16 s and 1.25 GB, peak 1.6 GB), CSV about 2 s and 310 MB (whole: 4.4-4.7 s
    and 790 MB). The bounds allow about twice the measured growth, and less than a whole-file read needs.
    """
    path = tmp_path / name
    start = np.datetime64("2000-01-01T00:00", "m")
    schema = pa.schema([("time", pa.timestamp("ns")), ("value", pa.float32())])
    writer = pq.ParquetWriter if name.endswith(".parquet") else pa.csv.CSVWriter
    with writer(path, schema) as out:
        for first in range(0, rows, 1_000_000):
            index = np.arange(first, first + 1_000_000)
            times = (start + index.astype("timedelta64[m]")).astype("datetime64[ns]")
            out.write_table(pa.table({"time": times, "value": (index % 1000).astype(np.float32)}, schema=schema))
    result = subprocess.run(
        [sys.executable, "-c", LARGE_LOAD, str(path)], capture_output=True, text=True, timeout=180, check=True
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["length"] == rows and report["probe"] == [0.0, 456.0, 999.0]
    assert report["growth"] < max_growth, report  # time is printed, not asserted: this box is shared and noisy
    print(f"{name}: loaded in {report['seconds']:.1f} s")

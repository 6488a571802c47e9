"""The scripts' shared command-line dialect (ttm_data.cli): both flag spellings, errors in the user's words, light
imports before the arguments are checked, and forecast.py's data path (gaps on calendar grids, --backtest context)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from script_loader import load_script

from ttm_data.cli import FlagParser, in_user_words, model_source_error

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted(path.stem for path in (ROOT / "scripts").glob("*.py"))
# Scripts whose module imports nothing heavy: torch, transformers, pandas and datasets load after the arguments.
LIGHT = ["backtest", "benchmark", "benchmark_collator", "build_corpus", "convert_granite_checkpoint", "export"]
LIGHT += ["finetune", "forecast", "plot_missing_values", "pretrain", "push_to_hub", "ship_checkpoint"]
HEAVY = ("torch", "transformers", "pandas", "datasets", "matplotlib")


def python(*args: str, cwd: Path = ROOT, env: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def parser() -> FlagParser:
    parser = FlagParser(prog="tool")
    parser.add_argument("--timestamp-column")
    parser.add_argument("--target-columns", nargs="+")
    parser.add_argument("--resample", action="store_true")
    return parser


def test_both_spellings_of_a_flag_are_the_same_flag() -> None:
    for argv in (
        ["--timestamp_column", "day", "--target_columns", "a", "b", "--resample"],
        ["--timestamp-column=day", "--target-columns", "a", "b", "--resample"],
        ["--timestamp_column=day", "--target-columns", "a", "b", "--resample"],
    ):
        args = parser().parse_args(argv)
        assert (args.timestamp_column, args.target_columns, args.resample) == ("day", ["a", "b"], True)
    assert parser().parse_args(["--target-columns", "x_y", "a-b"]).target_columns == ["x_y", "a-b"]  # values kept


def test_errors_name_flags_as_the_user_typed_them(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        parser().parse_args(["--target_columns", "a", "--timestamp_column"])
    assert "argument --timestamp_column: expected one argument" in capsys.readouterr().err
    options = parser()._option_string_actions
    message = "`target_columns`: no column 'lod'; pass `resample=True` or fix `timestamp_column` (`other_thing`)"
    assert in_user_words(message, options, ["--target_columns", "lod"]) == (
        "--target_columns: no column 'lod'; pass --resample or fix --timestamp_column (`other_thing`)"
    )
    assert in_user_words(message, options, ["--target-columns", "lod"]).startswith("--target-columns: no column")
    assert "pass --resample or fix --timestamp-column" in in_user_words(message, options, [])  # the declared form


def test_model_sources_are_checked_before_anything_loads(tmp_path: Path) -> None:
    assert model_source_error(str(tmp_path)) is None
    assert model_source_error("ibm-granite/granite-timeseries-ttm-r2") is None
    assert "directory ./missing-dir does not exist" in model_source_error("./missing-dir")
    assert "checkpoints/ttm-r2-512-96-offline" in model_source_error("./missing-dir")
    assert "not an existing directory nor a Hub id" in model_source_error("my-ttm")
    (tmp_path / "model.bin").write_bytes(b"")
    assert "is a file" in model_source_error(str(tmp_path / "model.bin"), "--model_name_or_path")


@pytest.mark.parametrize("name", LIGHT)
def test_importing_a_script_loads_no_heavy_module(name: str) -> None:
    code = (
        f"import sys; sys.path.insert(0, {str(ROOT / 'tests')!r}); from script_loader import load_script; "
        f"load_script({name!r}); print([m for m in {HEAVY!r} if m in sys.modules])"
    )
    result = python("-c", code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("name", SCRIPTS)
def test_every_script_answers_help(name: str) -> None:
    result = python(str(ROOT / "scripts" / f"{name}.py"), "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage:") and "--help" in result.stdout


@pytest.mark.parametrize("name", ["finetune", "pretrain"])
def test_trainer_scripts_answer_help_and_argument_errors_before_torch_loads(name: str) -> None:
    """finetune.py and pretrain.py parse with HfArgumentParser + TrainingArguments, whose import loads torch; their
    --help and argument errors come from ttm_data.cli's parser of the same flags, before any heavy import."""
    required = {"finetune": ["--data-path", "x.csv"], "pretrain": ["--corpus", "c"]}[name]
    cases = {
        "help": ["--help"],
        "typo": [*required, "--max_stepz", "3"],
        "value": [*required, "--max-steps", "three"],
        "missing": ["--max_steps", "3"],
    }
    code = (
        f"import json, sys; sys.path.insert(0, {str(ROOT / 'tests')!r}); from script_loader import load_script\n"
        f"script = load_script({name!r})\n"
        f"for case in {json.dumps(list(cases.values()))}:\n"
        "    try:\n        script.main(case)\n    except SystemExit as stop:\n        print('exit', stop.code)\n"
        f"print([m for m in {HEAVY!r} if m in sys.modules])"
    )
    result = python("-c", code)
    lines = result.stdout.strip().splitlines()
    assert lines[-1] == "[]", result.stderr  # no heavy module loaded
    assert [line for line in lines if line.startswith("exit")] == ["exit 0", "exit 2", "exit 2", "exit 2"]
    assert "TrainingArguments (transformers)" in result.stdout and "--learning_rate" in result.stdout
    assert "unrecognized arguments: --max_stepz 3" in result.stderr
    assert "argument --max-steps: invalid int value: 'three'" in result.stderr  # as the user spelled it
    assert f"the following arguments are required: --{required[0][2:].replace('-', '_')}\n" in result.stderr  # habit: _


def test_the_quick_parser_has_every_training_argument_with_its_type_and_default() -> None:
    import dataclasses

    from transformers import HfArgumentParser, TrainingArguments

    from ttm_data.cli import add_flags, training_argument_flags

    flags = {flag.name: flag for flag in training_argument_flags()}
    fields = {field.name: field for field in dataclasses.fields(TrainingArguments) if field.init}
    assert set(flags) == set(fields)
    for name, field in fields.items():
        if field.default is not dataclasses.MISSING and flags[name].default is not None:
            assert flags[name].default == field.default, name
    quick = FlagParser()
    add_flags(quick, flags.values())
    for argv in (
        ["--output_dir", "o", "--max_steps", "5", "--learning-rate", "3e-4", "--use_cpu", "--save_total_limit", "2"],
        ["--no_remove_unused_columns", "--eval_strategy", "steps", "--eval_steps", "2", "--fp16", "false"],
        ["--load_best_model_at_end", "True", "--eval_strategy", "epoch", "--save_strategy", "epoch"],
        ["--lr_scheduler_type", "cosine", "--seed", "3", "--dataloader_num_workers", "0", "--label_names", "a", "b"],
    ):
        ours = vars(quick.parse_args(argv))
        (theirs,) = HfArgumentParser(TrainingArguments).parse_args_into_dataclasses(args=argv)
        typed = {key.removeprefix("--").removeprefix("no_").replace("-", "_") for key in argv if key.startswith("--")}
        for key in typed:
            value = getattr(theirs, key)
            assert ours[key] == getattr(value, "value", value), key


@pytest.fixture
def monthly_with_holes(tmp_path: Path) -> Path:
    """Monthly CO2-like data, 10 of 120 months missing."""
    months = pd.date_range("2010-01-01", periods=120, freq="MS")
    values = 350 + 0.1 * np.arange(120) + 3 * np.sin(2 * np.pi * np.arange(120) / 12)
    frame = pd.DataFrame({"month": months, "co2": values}).drop(index=[5, 17, 40, 41, 42, 77, 90, 100, 101, 110])
    path = tmp_path / "co2.csv"
    frame.to_csv(path, index=False)
    return path


def test_forecast_fills_calendar_gaps_and_continues_the_grid(
    tiny_checkpoint: Path, monthly_with_holes: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    output = tmp_path / "co2_forecast.csv"
    load_script("forecast").main(
        ["--input", str(monthly_with_holes), "--model", str(tiny_checkpoint), "--target_columns", "co2"]
        + ["--output", str(output), "--max_plots", "0"]
    )
    forecast = pd.read_csv(output, parse_dates=["month"])
    expected = pd.date_range("2020-01-01", periods=8, freq="MS")  # the tiny checkpoint forecasts 8 steps
    pd.testing.assert_index_equal(pd.DatetimeIndex(forecast["month"]), expected, check_names=False)
    assert np.isfinite(forecast["co2"]).all()
    assert "10 of 120 timestamps on the MS grid are missing (longest gap: 3 steps, 2013-05-01" in caplog.text


def test_forecast_writes_parquet_by_the_output_suffix(
    tiny_checkpoint: Path, monthly_with_holes: Path, tmp_path: Path
) -> None:
    common = ["--input", str(monthly_with_holes), "--model", str(tiny_checkpoint), "--max-plots", "0"]
    for name in ("f.csv", "f.parquet"):
        load_script("forecast").main([*common, "--output", str(tmp_path / name)])
    written = pd.read_parquet(tmp_path / "f.parquet")
    expected = pd.read_csv(tmp_path / "f.csv", parse_dates=["month"])
    assert list(written.columns) == ["month", "co2"] and len(written) == 8
    pd.testing.assert_frame_equal(written, expected, check_dtype=False, check_exact=False, rtol=1e-6)


def test_forecast_backtest_reads_context_length_steps(
    tiny_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """38 daily steps: too short for the checkpoint's 32 + 8, two windows for --context-length 16 + --horizon 8."""
    days = pd.date_range("2024-01-01", periods=38, freq="D")
    path = tmp_path / "short.csv"
    pd.DataFrame({"day": days, "y": np.sin(np.arange(38) / 3)}).to_csv(path, index=False)
    common = ["--input", str(path), "--model", str(tiny_checkpoint), "--backtest", "--output", str(tmp_path / "f.csv")]

    load_script("forecast").main([*common, "--context-length", "16", "--horizon", "8", "--max-plots", "0"])
    assert "zero-shot backtest: 2 rolling windows of 8 steps" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        load_script("forecast").main([*common, "--context_length", "32", "--horizon", "8"])
    assert "--backtest: no series has --context_length + --horizon = 32 + 8 steps" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "./missing-dir"], "--model: directory ./missing-dir does not exist"),
        (["--model", "ibm-granite/granite-timeseries-ttm-r2"], "checkpoints/ttm-r2-512-96-offline"),
        (["--timestamp_column", "nope"], "--timestamp_column: no column 'nope'"),
        (["--target-columns", "nope"], "--target-columns: no column 'nope'"),
        (["--freq", "fortnightly"], "--freq: unknown frequency 'fortnightly'"),
    ],
)
def test_forecast_errors_in_the_users_words(
    monthly_with_holes: Path,
    tmp_path: Path,
    args: list[str],
    message: str,
    capsys: pytest.CaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # as on a machine without network, for this test only
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(SystemExit) as stop:
        load_script("forecast").main(["--input", str(monthly_with_holes), "--output", str(tmp_path / "f.csv"), *args])
    assert stop.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "f.csv").exists()


def test_irregular_timestamps_are_refused_with_the_resample_flag(
    tiny_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    seconds = np.sort(np.random.default_rng(1).uniform(0, 60 * 86_400, 200)).round()
    path = tmp_path / "irregular.csv"
    frame = pd.DataFrame({"t": pd.Timestamp("2024-01-01") + pd.to_timedelta(seconds, unit="s"), "y": np.ones(200)})
    frame.to_csv(path, index=False)
    with pytest.raises(SystemExit):
        load_script("backtest").main(
            ["--model", str(tiny_checkpoint), "--input", str(path), "--output", str(path) + ".json"]
        )
    err = capsys.readouterr().err
    assert "irregular: no frequency fits most of them" in err and "Pass --resample with a --freq" in err


def test_backtest_takes_underscored_flags(tmp_path: Path, monthly_with_holes: Path) -> None:
    from tiny import tiny_config

    from modeling_ttm import TTMForPrediction

    TTMForPrediction(tiny_config(num_input_channels=1)).save_pretrained(tmp_path / "model")
    output = tmp_path / "report.json"
    load_script("backtest").main(
        ["--model", str(tmp_path / "model"), "--input", str(monthly_with_holes), "--timestamp_column", "month"]
        + ["--target_columns", "co2", "--test_fraction", "0.3", "--seasonal_period", "12", "--output", str(output)]
    )
    report = json.loads(output.read_text())
    assert (report["freq"], report["seasonal_period"], report["num_windows"]) == ("MS", 12, 29)


def test_an_unreachable_hub_switches_to_offline_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants

    from ttm_data.cli import hub_offline

    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # the discard port: nothing listens, refused at once
    assert hub_offline(timeout=5) is True
    assert os.environ["HF_HUB_OFFLINE"] == "1" and huggingface_hub.constants.is_offline_mode()

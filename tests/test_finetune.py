"""scripts/finetune.py: arguments, a real finetuning run, resume, refusals before training, two-process accelerate."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file, save_file
from script_loader import load_script
from tiny import tiny_config

from modeling_ttm import TTMForPrediction

ROOT = Path(__file__).resolve().parents[1]
SAMPLEDATA = Path(importlib.util.find_spec("bokeh_sampledata").origin).parent / "_data"
SEA = SAMPLEDATA / "sea_surface_temperature.csv.gz"
# A few fast steps of the tiny model: evaluation on every 16th window, no progress bars in the test log.
FAST = ["--eval_stride", "16", "--per_device_train_batch_size", "16", "--disable_tqdm", "true"]


finetune = load_script("finetune")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def results(directory: Path, split: str) -> dict:
    return json.loads((directory / f"{split}_results.json").read_text())


def test_help_explains_the_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        finetune.main(["--help"])
    assert stop.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for expected in (
        "--data_path DATA_PATH, --data-path DATA_PATH CSV / TSV",
        "--freeze_backbone",
        "--decoder_mode {common_channel,mix_channel}",
        "--fewshot_fraction",
        "--learning_rate LEARNING_RATE",
        "(default: 0.001)",
        "accelerate launch",
    ):
        assert expected in text


def test_json_file_and_command_line_share_the_finetuning_defaults(tmp_path: Path) -> None:
    config = tmp_path / "finetune.json"
    config.write_text(json.dumps({"data_path": "data.csv", "output_dir": str(tmp_path / "out"), "max_steps": 3}))
    from_json = finetune.parse_arguments([str(config)])
    from_cli = finetune.parse_arguments(["--data_path", "data.csv", "--output_dir", str(tmp_path / "out")])
    for model_args, data_args, training_args in (from_json, from_cli):
        assert data_args.data_path == "data.csv" and model_args.freeze_backbone is False
        assert (training_args.eval_strategy, training_args.save_strategy) == ("epoch", "epoch")
        assert training_args.load_best_model_at_end and training_args.metric_for_best_model == "eval_loss"
        assert training_args.learning_rate == 1e-3 and not training_args.remove_unused_columns
    assert from_json[2].max_steps == 3


def test_finetuning_a_real_series_lowers_the_validation_loss(tiny_checkpoint: Path, tmp_path: Path) -> None:
    before = sha256(SEA)
    output = tmp_path / "out"
    trainer = finetune.main(
        ["--model_name_or_path", str(tiny_checkpoint), "--data_path", str(SEA), "--resample"]
        + ["--output_dir", str(output), "--max_steps", "40", "--eval_strategy", "steps", "--save_strategy", "steps"]
        + ["--eval_steps", "20"]
        + ["--save_steps", "20", "--learning_rate", "3e-3", *FAST]
    )
    assert sha256(SEA) == before
    initial, final, test = results(output, "initial_eval"), results(output, "eval"), results(output, "test")
    assert final["eval_loss"] < initial["initial_eval_loss"] and np.isfinite(test["test_loss"])
    assert trainer.state.best_metric == pytest.approx(final["eval_loss"])  # the best checkpoint is what was saved
    assert {"checkpoint-20", "checkpoint-40", "train_results.json", "trainer_state.json"} <= set(os.listdir(output))
    reloaded = TTMForPrediction.from_pretrained(output)
    for name, tensor in trainer.model.state_dict().items():
        torch.testing.assert_close(reloaded.state_dict()[name], tensor)
    data_config = json.loads((output / "data_config.json").read_text())
    assert data_config["freq"] == "30min" and data_config["schema"]["target_columns"] == ["temperature (celsius)"]


def test_exogenous_static_fewshot_and_frozen_backbone(tiny_checkpoint: Path, tmp_path: Path) -> None:
    stocks = pd.read_csv(SAMPLEDATA / "stocks.csv.gz").groupby("Ticker").tail(400)
    stocks["sector"] = np.where(stocks["Ticker"] == "IBM", "hardware", "software")
    path = tmp_path / "stocks.csv"
    stocks.to_csv(path, index=False)
    output = tmp_path / "out"
    trainer = finetune.main(
        ["--model_name_or_path", str(tiny_checkpoint), "--data_path", str(path), "--output_dir", str(output)]
        + ["--id_column", "Ticker", "--target_columns", "Close", "--exogenous_columns", "Volume"]
        + ["--static_categorical_columns", "sector", "--freeze_backbone", "--fewshot_fraction", "0.2"]
        + ["--prediction_length", "4", "--max_steps", "4", "--eval_strategy", "no", "--save_strategy", "no"]
        + ["--load_best_model_at_end", "false", *FAST]
    )
    config = TTMForPrediction.from_pretrained(output).config
    assert (config.num_input_channels, config.prediction_channel_indices, config.exogenous_channel_indices) == (
        2,
        [0],
        [1],
    )
    assert config.enable_forecast_channel_mixing and config.decoder_mode == "mix_channel"
    assert (config.categorical_vocab_size_list, config.prediction_filter_length) == ([2], 4)
    pretrained, finetuned = load_file(tiny_checkpoint / "model.safetensors"), trainer.model.state_dict()
    backbone = [name for name in pretrained if name.startswith("backbone.")]
    assert backbone and all(torch.equal(pretrained[name], finetuned[name]) for name in backbone)
    assert not torch.equal(pretrained["head.base_forecast_block.weight"], finetuned["head.base_forecast_block.weight"])
    assert json.loads((output / "data_config.json").read_text())["schema"]["categories"] == {
        "sector": ["hardware", "software"]
    }
    assert results(output, "test")["test_loss"] > 0


def test_training_resumes_from_a_checkpoint(tiny_checkpoint: Path, tmp_path: Path) -> None:
    def run(max_steps: int, *extra: str) -> finetune.Trainer:
        return finetune.main(
            ["--model_name_or_path", str(tiny_checkpoint), "--data_path", str(SEA), "--resample"]
            + ["--output_dir", str(tmp_path), "--max_steps", str(max_steps), "--save_strategy", "steps"]
            + ["--save_steps", "3", "--eval_strategy", "no", "--load_best_model_at_end", "false"]
            + ["--validation_fraction", "0.02", "--test_fraction", "0", *FAST, *extra]
        )

    run(3)
    weights = tmp_path / "checkpoint-3" / "model.safetensors"
    state = load_file(weights)
    state["head.base_forecast_block.bias"] += 10.0  # a mark that only a resumed run carries on
    save_file(state, weights)
    trainer = run(6, "--resume_from_checkpoint", "last")
    assert trainer.state.global_step == 6
    bias = trainer.model.state_dict()["head.base_forecast_block.bias"]
    torch.testing.assert_close(bias, state["head.base_forecast_block.bias"], atol=0.05, rtol=0)
    assert (tmp_path / "checkpoint-6").is_dir()


def short_csv(tmp_path: Path, rows: int = 300) -> Path:
    frame = pd.DataFrame(
        {"date": pd.date_range("2024-01-01", periods=rows, freq="h"), "temperature": np.sin(np.arange(rows) / 5)}
    )
    path = tmp_path / f"hourly{rows}.csv"
    frame.to_csv(path, index=False)
    return path


def refusals(tmp_path: Path) -> list[tuple[list[str], str]]:
    mixing = tmp_path / "mix-channel-ttm"
    TTMForPrediction(tiny_config(decoder_mode="mix_channel")).save_pretrained(mixing)
    categories = tmp_path / "static-ttm"
    config = tiny_config(num_input_channels=1, decoder_mode="mix_channel", categorical_vocab_size_list=[3])
    TTMForPrediction(config).save_pretrained(categories)
    data = str(short_csv(tmp_path))
    frame = pd.read_csv(data).assign(site=lambda f: np.where(f.index < 150, "a", "b"), id=lambda f: f["site"])
    with_sites = tmp_path / "sites.csv"
    frame.to_csv(with_sites, index=False)
    sites = ["--data_path", str(with_sites), "--id_column", "id", "--static_categorical_columns", "site"]
    return [
        (["--data_path", data, "--target_columns", "temprature"], "--target_columns: no column 'temprature'"),
        (["--data_path", data, "--context_length", "64"], "--context_length: .* reads context_length=32"),
        (["--data_path", data, "--prediction_length", "16"], "--prediction_length: .* at most 8 steps"),
        (["--data_path", str(short_csv(tmp_path, 45))], "fewer than one window of context_length"),
        (["--data_path", data, "--model_name_or_path", str(mixing)], "weights for 3 channels .* the data has 1"),
        (
            ["--data_path", data, "--model_name_or_path", str(tmp_path / "nothing")],
            "--model_name_or_path: directory .*nothing does not exist",
        ),
        ([*sites, "--model_name_or_path", str(categories)], "embedding_layers.0.weight: \\[3, 8\\] vs \\[2, 8\\]"),
        ([*sites, "--decoder_mode", "common_channel"], "--decoder_mode: static categorical columns need"),
        (["--data_path", data, "--remove_unused_columns", "true"], "--remove_unused_columns must be False"),
        (["--data_path", data, "--validation_fraction", "0", "--eval_strategy", "epoch"], "--validation_fraction is 0"),
        (["--data_path", data, "--fewshot_fraction", "0"], "--fewshot_fraction must be in"),
        (["--data_path", data, "--freq", "15minutes"], "--freq: unknown frequency '15minutes'"),
        (["--data_path", data, "--eval_stride", "0"], "--eval_stride must be positive"),
        (["--data_path", str(tmp_path / "missing.csv")], "does not exist"),
        (["--data-path", data, "--target-columns", "temprature"], "--target-columns: no column 'temprature'"),
        (["--data_path", data, "--metric_for_best_model", "mse"], "--metric_for_best_model: .* only the loss"),
        (
            ["--data_path", data, "--eval_strategy", "no", "--save_strategy", "no", "--load_best_model_at_end", "true"],
            "--load_best_model_at_end needs evaluation",
        ),
        (["--data_path", data, "--model_name_or_path", "./missing-dir"], "directory ./missing-dir does not exist"),
    ]


def test_bad_arguments_stop_before_training(tiny_checkpoint: Path, tmp_path: Path) -> None:
    output = tmp_path / "out"
    for arguments, message in refusals(tmp_path):
        argv = ["--model_name_or_path", str(tiny_checkpoint), "--output_dir", str(output), *arguments]
        with pytest.raises(SystemExit, match=message):
            finetune.main(argv)
        assert not output.exists(), f"{arguments} started training"


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (["--eval_strategy", "no"], {"eval": "no", "save": "epoch", "best": False, "files": {"test_results.json"}}),
        (
            ["--validation_fraction", "0"],
            {"eval": "no", "save": "epoch", "best": False, "files": {"test_results.json"}},
        ),
        (["--eval-strategy", "steps", "--eval-steps", "1"], {"eval": "steps", "save": "steps", "best": True}),
        (["--save_strategy", "no"], {"eval": "epoch", "save": "no", "best": False, "files": {"eval_results.json"}}),
    ],
)
def test_trainer_defaults_follow_the_evaluation_and_checkpoint_choices(
    tiny_checkpoint: Path, tmp_path: Path, arguments: list[str], expected: dict
) -> None:
    """Choices the README offers train without further flags: checkpoints follow the evaluation strategy, and the
    best model is kept only when there is evaluation and checkpoints to keep it from (early stopping likewise)."""
    output = tmp_path / "out"
    trainer = finetune.main(
        ["--model_name_or_path", str(tiny_checkpoint), "--data_path", str(short_csv(tmp_path))]
        + ["--output_dir", str(output), "--max_steps", "2", *FAST, *arguments]
    )
    args = trainer.args
    assert (args.eval_strategy, args.save_strategy, args.load_best_model_at_end) == (
        expected["eval"],
        expected["save"],
        expected["best"],
    )
    assert trainer.state.global_step == 2
    assert expected.get("files", set()) | {"train_results.json", "model.safetensors"} <= set(os.listdir(output))
    if expected["save"] == "steps":
        assert (output / "checkpoint-2").is_dir() and trainer.state.best_metric is not None


def test_two_processes_under_accelerate_launch(tiny_checkpoint: Path, tmp_path: Path) -> None:
    output = tmp_path / "out"
    command = [
        shutil.which("accelerate") or "accelerate",
        "launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        str(ROOT / "tests" / "finetune_probe.py"),
        *["--model_name_or_path", str(tiny_checkpoint), "--data_path", str(SEA), "--resample"],
        *["--output_dir", str(output), "--max_steps", "30", "--learning_rate", "3e-3", *FAST],
        *["--eval_strategy", "steps", "--eval_steps", "15", "--save_strategy", "steps", "--save_steps", "15"],
    ]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    env["OMP_NUM_THREADS"] = "1"
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-4000:]
    drawn = [json.loads((output / f"probe_rank{rank}.json").read_text())["ends"] for rank in (0, 1)]
    assert len(drawn[0]) >= 30 * 16 and len(drawn[1]) >= 30 * 16
    assert len(set(drawn[0]) & set(drawn[1])) < len(drawn[0]) / 4  # the processes trained on different windows
    saved = load_file(output / "model.safetensors")
    for rank in (0, 1):
        held = load_file(output / f"probe_rank{rank}.safetensors")
        assert saved.keys() == held.keys() and all(torch.equal(saved[k], held[k]) for k in saved)
    assert results(output, "eval")["eval_loss"] < results(output, "initial_eval")["initial_eval_loss"]
    state = json.loads((output / "trainer_state.json").read_text())
    assert state["global_step"] == 30 and results(output, "train")["train_samples_per_second"] > 0


@pytest.mark.parametrize(
    "r3",
    [
        {"multi_scale": True, "register_tokens": 2, "fft_length": 2, "multi_quantile_head": True},
        {"decompose": True, "residual_context_length": 16, "multi_quantile_head": True, "trend_d_model": 8},
    ],
    ids=["r3_quantiles", "r3_decomposed"],
)
def test_r3_checkpoints_finetune_with_their_own_losses(r3: dict, tmp_path: Path) -> None:
    checkpoint = tmp_path / "r3"
    torch.manual_seed(0)
    TTMForPrediction(tiny_config(num_input_channels=1, **r3)).save_pretrained(checkpoint)
    output = tmp_path / "out"
    trainer = finetune.main(
        ["--model_name_or_path", str(checkpoint), "--data_path", str(SEA), "--resample", "--freeze_backbone"]
        + ["--output_dir", str(output), "--max_steps", "30", "--eval_strategy", "steps", "--eval_steps", "30"]
        + ["--save_strategy", "no", "--load_best_model_at_end", "false", "--learning_rate", "3e-3", *FAST]
    )
    initial, final = results(output, "initial_eval"), results(output, "eval")
    assert final["eval_loss"] < initial["initial_eval_loss"]
    pretrained, finetuned = load_file(checkpoint / "model.safetensors"), trainer.model.state_dict()
    frozen = [name for name in pretrained if ".backbone." in f".{name}"]
    assert frozen and all(torch.equal(pretrained[name], finetuned[name]) for name in frozen)
    reloaded = TTMForPrediction.from_pretrained(output)
    assert reloaded.config.decompose == bool(r3.get("decompose")) and reloaded.config.multi_quantile_head

"""Reliability of long runs: scripts/finetune.py killed with SIGKILL mid-training and mid-save, then resumed.

A wrapper runs the real script in a subprocess and, on request, blocks forever at a chosen training step or inside
the save of a chosen checkpoint (after the weights, optimizer and scheduler are written, before the RNG and trainer
state), so the kill lands exactly there. The resumed run must end with the very weights and per-step losses of an
uninterrupted run with the same seed: the window draws are a function of (seed, epoch, item indices), the sampler
order of (seed, epoch), and the RNG states are restored from the checkpoint.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from datasets import Dataset
from safetensors.torch import load_file
from script_loader import load_script
from tiny import save_tiny_checkpoint
from transformers.trainer_utils import get_last_checkpoint

ROOT = Path(__file__).resolve().parents[1]
# Runs scripts/$SCRIPT; PAUSE_STEP / PAUSE_SAVE make it write PAUSED and block at that step or checkpoint save.
WRAPPER = """
import os, runpy, sys, time
from pathlib import Path
from transformers import Trainer

marker, step, save = Path(os.environ["PAUSED"]), os.environ.get("PAUSE_STEP"), os.environ.get("PAUSE_SAVE")
training_step, save_rng_state = Trainer.training_step, Trainer._save_rng_state

def block():
    marker.write_text("paused")
    time.sleep(600)

def paused_training_step(self, *args, **kwargs):
    if step is not None and self.state.global_step == int(step):
        block()
    return training_step(self, *args, **kwargs)

def paused_save_rng_state(self, output_dir):
    if save is not None and Path(output_dir).name == f"checkpoint-{save}":
        block()
    return save_rng_state(self, output_dir)

Trainer.training_step, Trainer._save_rng_state = paused_training_step, paused_save_rng_state
sys.argv = ["finetune.py", *sys.argv[1:]]
runpy.run_path(os.environ["SCRIPT"], run_name="__main__")
"""
MAX_STEPS, SAVE_STEPS = 12, 4


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A tiny checkpoint and an hourly series with noise (so that the drawn windows matter)."""
    root = tmp_path_factory.mktemp("resume")
    save_tiny_checkpoint(root / "ttm")
    rng = np.random.default_rng(0)
    rows = 1500
    values = np.sin(np.arange(rows) / 7) + 0.3 * rng.standard_normal(rows)
    frame = pd.DataFrame({"date": pd.date_range("2024-01-01", periods=rows, freq="h"), "load": values})
    frame.to_csv(root / "load.csv", index=False)
    return root / "ttm", root / "load.csv"


def arguments(setup: tuple[Path, Path], output: Path, *extra: str) -> list[str]:
    checkpoint, data = setup
    return [
        *["--model_name_or_path", str(checkpoint), "--data_path", str(data), "--output_dir", str(output)],
        *["--max_steps", str(MAX_STEPS), "--save_strategy", "steps", "--save_steps", str(SAVE_STEPS)],
        *["--eval_strategy", "no", "--load_best_model_at_end", "false", "--test_fraction", "0"],
        *["--logging_strategy", "steps", "--logging_steps", "1", "--per_device_train_batch_size", "16"],
        # 3 steps per epoch: the resumed runs restart mid-epoch and cross epoch boundaries
        *["--windows_per_epoch", "40", "--learning_rate", "1e-2", "--seed", "7", "--disable_tqdm", "true", *extra],
    ]


def launch(argv: list[str], tmp_path: Path, script: str = "finetune", **pause: int) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SCRIPT": str(ROOT / "scripts" / f"{script}.py")}
    env["PAUSED"] = str(tmp_path / "paused")
    env.update({f"PAUSE_{name.upper()}": str(value) for name, value in pause.items()})
    log = open(tmp_path / "log.txt", "a")  # noqa: SIM115 - closed with the process
    return subprocess.Popen([sys.executable, "-c", WRAPPER, *argv], env=env, cwd=tmp_path, stdout=log, stderr=log)


def run_and_kill_when_paused(argv: list[str], tmp_path: Path, script: str = "finetune", **pause: int) -> None:
    marker = tmp_path / "paused"
    marker.unlink(missing_ok=True)
    process = launch(argv, tmp_path, script, **pause)
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert process.poll() is None, (tmp_path / "log.txt").read_text()[-3000:]
        assert time.monotonic() < deadline, "the run never reached the pause"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    assert process.wait(timeout=30) == -signal.SIGKILL


def run_to_the_end(argv: list[str], tmp_path: Path, script: str = "finetune") -> None:
    process = launch(argv, tmp_path, script)
    assert process.wait(timeout=240) == 0, (tmp_path / "log.txt").read_text()[-3000:]


def step_losses(output: Path) -> dict[int, float]:
    history = json.loads((output / "trainer_state.json").read_text())["log_history"]
    return {entry["step"]: entry["loss"] for entry in history if "loss" in entry}


def test_killed_mid_training_and_mid_save_the_run_resumes_to_the_uninterrupted_weights(
    setup: tuple[Path, Path], tmp_path: Path
) -> None:
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    run_to_the_end(arguments(setup, reference), tmp_path)

    # 1. SIGKILL at step 6: checkpoint-4 is written, checkpoint-8 is not begun.
    run_and_kill_when_paused(arguments(setup, killed), tmp_path, step=6)
    assert sorted(p.name for p in killed.glob("checkpoint-*")) == ["checkpoint-4"]
    # 2. Resumed, then SIGKILL inside the save of checkpoint-8: weights and optimizer written, trainer state not.
    run_and_kill_when_paused(arguments(setup, killed, "--resume_from_checkpoint", "last"), tmp_path, save=8)
    partial = killed / "checkpoint-8"
    assert (partial / "model.safetensors").is_file() and not (partial / "trainer_state.json").exists()
    assert get_last_checkpoint(str(killed)) == str(partial)  # what Trainer's own detection would resume from
    # 3. Resumed again: the half-written checkpoint-8 is skipped and removed, training continues from step 4.
    run_to_the_end(arguments(setup, killed, "--resume_from_checkpoint", "last"), tmp_path)
    log = (tmp_path / "log.txt").read_text()
    assert f"ignoring {partial}: its save did not finish (removed)" in log

    state = json.loads((killed / "trainer_state.json").read_text())
    assert state["global_step"] == MAX_STEPS
    resumed_losses, reference_losses = step_losses(killed), step_losses(reference)
    assert sorted(resumed_losses) == list(range(1, MAX_STEPS + 1))  # the step count continued, no step twice
    assert resumed_losses == reference_losses  # the same windows, in the same order, from the same weights
    final, expected = load_file(killed / "model.safetensors"), load_file(reference / "model.safetensors")
    assert final.keys() == expected.keys()
    for name, tensor in expected.items():
        assert torch.equal(final[name], tensor), name


def test_resuming_refuses_an_incomplete_checkpoint(setup: tuple[Path, Path], tmp_path: Path) -> None:
    finetune = load_script("finetune")
    output = tmp_path / "out"
    (output / "checkpoint-3").mkdir(parents=True)
    (output / "checkpoint-3" / "trainer_state.json").write_text('{"global_step": 3, "log_hist')  # cut mid-write
    for resume in ("last", str(output / "checkpoint-3")):
        with pytest.raises(SystemExit, match="--resume_from_checkpoint: .*complete checkpoint"):
            finetune.main([*arguments(setup, output), "--resume_from_checkpoint", resume])


def test_pretraining_killed_mid_way_resumes_to_the_uninterrupted_weights(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    series = [(np.sin(np.arange(n) / 4) + rng.normal(0, 0.1, n)).astype(np.float32) for n in (120, 200, 160, 250)]
    start = [pd.Timestamp("2024-01-01")] * len(series)
    Dataset.from_dict({"target": series, "start": start, "freq": ["h"] * len(series)}).save_to_disk(tmp_path / "corpus")
    tiny = {"context_length": 32, "prediction_length": 8, "patch_length": 8, "patch_stride": 8, "d_model": 16}
    tiny |= {"num_layers": 1, "adaptive_patching_levels": 0, "decoder_num_layers": 1, "decoder_d_model": 8}

    def pretrain_arguments(output: Path, *extra: str) -> list[str]:
        return [
            *[
                "--corpus",
                str(tmp_path / "corpus"),
                "--output_dir",
                str(output),
                "--config_overrides",
                json.dumps(tiny),
            ],
            *["--per_device_train_batch_size", "8", "--buffer_series", "2", "--windows_per_buffer", "12"],
            *["--min_past", "8", "--use_cpu", "--seed", "0", "--logging_steps", "1", "--eval_strategy", "no"],
            *["--max_steps", "10", "--save_steps", "4", "--warmup_steps", "0", "--disable_tqdm", "true", *extra],
        ]

    reference, killed = tmp_path / "reference", tmp_path / "killed"
    run_to_the_end(pretrain_arguments(reference), tmp_path, "pretrain")
    run_and_kill_when_paused(pretrain_arguments(killed), tmp_path, "pretrain", step=6)
    assert sorted(p.name for p in killed.glob("checkpoint-*")) == ["checkpoint-4"]
    run_to_the_end(pretrain_arguments(killed, "--resume_from_checkpoint", "last"), tmp_path, "pretrain")
    resumed_losses, reference_losses = step_losses(killed), step_losses(reference)
    assert sorted(resumed_losses) == list(range(1, 11))  # completed; the step count continued from 4
    assert resumed_losses == reference_losses
    final, expected = load_file(killed / "model.safetensors"), load_file(reference / "model.safetensors")
    assert all(torch.equal(final[name], tensor) for name, tensor in expected.items())

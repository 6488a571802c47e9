"""scripts/pretrain.py: a few Trainer steps on tiny corpora (in memory and streamed), resuming, and its data parts."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pytest
import torch
from datasets import Dataset
from safetensors.torch import load_file
from script_loader import load_script

from modeling_ttm import TTMForPrediction
from ttm_data import EvalWindows, ForecastWindowCollator, TrainWindows
from ttm_data.pretraining import (
    CorpusWindows,
    GapAugmentation,
    StandardizingCollator,
    add_level_drift,
    coarsen,
    training_stream,
)
from ttm_data.synthetic import SyntheticWindows

ROOT = Path(__file__).resolve().parents[1]
TINY = json.dumps(
    {"context_length": 32, "prediction_length": 8, "patch_length": 8, "patch_stride": 8, "d_model": 16,
     "num_layers": 1, "adaptive_patching_levels": 0, "decoder_num_layers": 1, "decoder_d_model": 8}
)  # fmt: skip


@pytest.fixture(scope="module")
def pretrain() -> ModuleType:
    return load_script("pretrain")


def corpus(seed: int, series: int = 6, freq: str = "h") -> Dataset:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(80, 300, size=series)
    return Dataset.from_dict(
        {
            "target": [
                (10 * seed + np.sin(np.arange(n) / 4) + rng.normal(0, 0.1, n)).astype(np.float32) for n in lengths
            ],
            "start": [pd.Timestamp("2024-01-01")] * series,
            "freq": [freq] * series,
            "item_id": [f"{seed}-{i}" for i in range(series)],
        }
    )


def run(pretrain: ModuleType, output: Path, *args: str) -> dict:
    common = ["--output_dir", str(output), "--config_overrides", TINY, "--per_device_train_batch_size", "8"]
    common += ["--buffer_series", "4", "--windows_per_buffer", "12", "--min_past", "8", "--use_cpu", "--seed", "0"]
    common += ["--logging_steps", "1", "--save_steps", "2", "--eval_steps", "2", "--warmup_steps", "0"]
    pretrain.main([*common, *args])
    return json.loads((output / "trainer_state.json").read_text())


def test_trains_checkpoints_and_resumes(pretrain: ModuleType, tmp_path: Path) -> None:
    corpus(1).save_to_disk(str(tmp_path / "corpus"))

    gaps = ["--drop_point_probability", "0.05", "--drop_span_probability", "0.5", "--max_drop_span", "8"]
    state = run(pretrain, tmp_path / "run", "--corpus", str(tmp_path / "corpus"), "--max_steps", "4", *gaps)

    assert state["global_step"] == 4
    assert any("eval_loss" in entry for entry in state["log_history"])  # validation: the series' tails
    assert {"checkpoint-2", "checkpoint-4", "model.safetensors", "loss_curve.png"} <= {
        p.name for p in (tmp_path / "run").iterdir()
    }
    resumed = run(
        pretrain, tmp_path / "run", "--corpus", str(tmp_path / "corpus"), "--max_steps", "6",
        "--resume_from_checkpoint", "last", *gaps,
    )  # fmt: skip
    assert resumed["global_step"] == 6
    assert all(np.isfinite(entry["loss"]) for entry in resumed["log_history"] if "loss" in entry)
    steps = [entry["step"] for entry in resumed["log_history"] if "loss" in entry]
    assert steps == [1, 2, 3, 4, 5, 6]  # steps 1-4 come from the checkpoint, 5-6 continue them


def test_the_recorded_command_names_threads_and_launcher(pretrain: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    """pretrain_results.json (and so the model card) records the command that reproduces the run."""
    monkeypatch.setattr("sys.argv", ["scripts/pretrain.py", "--corpus", "my corpus", "--max_steps", "10"])
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    tail = "scripts/pretrain.py --corpus 'my corpus' --max_steps 10"
    assert pretrain.launch_command() == f"OMP_NUM_THREADS=1 python {tail}"
    assert pretrain.launch_command(2) == f"OMP_NUM_THREADS=1 accelerate launch --multi_gpu --num_processes 2 {tail}"
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert pretrain.launch_command() == f"python {tail}"


def test_init_from_continues_a_checkpoint_with_overrides(pretrain: ModuleType, tmp_path: Path) -> None:
    """--init_from starts from a checkpoint's weights and architecture and continues them; an override that adds a
    part (a quantile head) adds its parameters, newly initialised, and keeps every other weight as the start."""
    corpus(2).save_to_disk(str(tmp_path / "corpus"))
    run(pretrain, tmp_path / "first", "--corpus", str(tmp_path / "corpus"), "--max_steps", "2")
    start = load_file(tmp_path / "first" / "model.safetensors")
    head = json.dumps({"monotone_quantile_head": True, "quantile_levels": [0.1, 0.5, 0.9]})
    run(pretrain, tmp_path / "same", "--corpus", str(tmp_path / "corpus"), "--max_steps", "1", "--learning_rate", "0",
        "--init_from", str(tmp_path / "first"), "--config_overrides", head)  # fmt: skip
    same = load_file(tmp_path / "same" / "model.safetensors")
    assert set(same) == set(start) | {"head.quantile_block.weight", "head.quantile_block.bias"}
    assert all(torch.equal(same[name], start[name]) for name in start)  # learning rate 0: the start itself
    state = run(
        pretrain, tmp_path / "second", "--corpus", str(tmp_path / "corpus"), "--max_steps", "2",
        "--init_from", str(tmp_path / "first"), "--config_overrides", head,
    )  # fmt: skip
    assert state["global_step"] == 2
    results = json.loads((tmp_path / "second" / "pretrain_results.json").read_text())
    assert results["init_from"] == str(tmp_path / "first")  # the card of a continued run names its start
    assert "init_from" not in json.loads((tmp_path / "first" / "pretrain_results.json").read_text())
    model = TTMForPrediction.from_pretrained(tmp_path / "second")
    assert model.config.monotone_quantile_head and model.config.context_length == 32  # the first run's architecture
    trained = model.state_dict()
    assert any(not torch.equal(trained[name], start[name]) for name in start)
    with pytest.raises(SystemExit, match="--init_from: the architecture is the checkpoint's; drop --architecture"):
        run(pretrain, tmp_path / "third", "--corpus", str(tmp_path / "corpus"), "--init_from", str(tmp_path / "first"),
            "--architecture", "r2-512-96")  # fmt: skip
    with pytest.raises(SystemExit, match="--init_from"):
        run(pretrain, tmp_path / "third", "--corpus", str(tmp_path / "corpus"), "--init_from", str(tmp_path / "no"))


def test_streams_and_mixes_parquet_corpora_with_prefix_tuning(pretrain: ModuleType, tmp_path: Path) -> None:
    for seed, freq in [(1, "h"), (2, "D")]:
        (tmp_path / f"c{seed}").mkdir()
        corpus(seed, freq=freq).to_parquet(str(tmp_path / f"c{seed}" / "part-0.parquet"))

    state = run(
        pretrain, tmp_path / "run", "--corpus", str(tmp_path / "c1"), str(tmp_path / "c2"),
        "--corpus_weights", "3", "1", "--streaming", "--resolution_prefix_tuning", "--quantile_levels", "0.1", "0.5",
        "0.9", "--max_steps", "3",
    )  # fmt: skip

    assert state["global_step"] == 3
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["resolution_prefix_tuning"] and config["quantile_levels"] == [0.1, 0.5, 0.9]


def test_weights_must_match_the_corpora(pretrain: ModuleType, tmp_path: Path) -> None:
    corpus(1).save_to_disk(str(tmp_path / "corpus"))
    with pytest.raises(SystemExit, match="corpus_weights"):
        run(pretrain, tmp_path / "run", "--corpus", str(tmp_path / "corpus"), "--corpus_weights", "1", "2")


def test_coarsen_averages_into_a_token_frequency(pretrain: ModuleType) -> None:
    row = {"target": np.arange(24 * 40, dtype=np.float32), "start": pd.Timestamp("2024-01-01"), "freq": "h"}
    row["target"][5] = np.nan
    coarse = coarsen(row, np.random.default_rng(0), min_length=30)
    assert coarse["freq"] == "D"  # the only coarser token frequency with >= 30 points
    expected = np.arange(24 * 40, dtype=np.float32).reshape(40, 24).mean(1)
    expected[0] = np.delete(np.arange(24, dtype=np.float32), 5).mean()  # NaN is left out of the mean
    np.testing.assert_allclose(coarse["target"], expected)
    assert coarsen({**row, "freq": "MS"}, np.random.default_rng(0), 30)["freq"] == "MS"


def test_level_drift_moves_the_level_by_a_bounded_share_of_the_spread() -> None:
    target = np.random.default_rng(0).normal(5.0, 2.0, 3000).astype(np.float32)
    target[[10, 2000]] = np.nan
    sizes, smooth = [], []
    for seed in range(40):
        drifted = add_level_drift(target, np.random.default_rng(seed), span=96)
        np.testing.assert_array_equal(drifted, add_level_drift(target, np.random.default_rng(seed), span=96))
        assert drifted.dtype == np.float32 and np.isnan(drifted[[10, 2000]]).all()
        level = np.nan_to_num(drifted - target)
        level[[10, 2000]] = level[[9, 1999]]
        sizes.append(np.std(level[96:] - level[:-96]) / np.nanstd(target))
        steps = np.diff(level)
        smooth.append(np.corrcoef(steps[1:], steps[:-1])[0, 1])  # increments averaged over 1-256 steps
    assert 0.03 - 1e-3 <= min(sizes) and max(sizes) <= 0.6 + 1e-3 and max(sizes) / min(sizes) > 4
    assert min(smooth) < 0.2 and max(smooth) > 0.9  # from a random walk to a smooth trend
    flat = np.full(100, 3.0, dtype=np.float32)
    np.testing.assert_array_equal(add_level_drift(flat, np.random.default_rng(0), span=8), flat)


def test_collator_mixes_buffers_and_standardises_windows(pretrain: ModuleType) -> None:
    windows = [TrainWindows(corpus(seed, series=2), prediction_length=8) for seed in (1, 5)]
    collator = StandardizingCollator(ForecastWindowCollator(32, 8, return_freq_token=True))

    batch = collator([windows[0][0], windows[1][0], windows[0][1]])

    assert batch["past_values"].shape == (3, 32, 1) and batch["freq_token"].tolist() == [7, 7, 7]
    observed = batch["past_observed_mask"].bool()
    for values, mask in zip(batch["past_values"], observed, strict=True):
        assert torch.allclose(values[mask].mean(), torch.tensor(0.0), atol=1e-4)
        assert torch.allclose(values[mask].std(unbiased=False), torch.tensor(1.0), atol=1e-3)


def test_flat_contexts_are_left_out_of_the_loss_and_low_spreads_floored() -> None:
    """A level shift after a flat context would be a target of millions of standard deviations (seen in the corpus's
    validation windows: losses of 1e14): such windows carry no loss; a tiny spread is floored at 0.1 % of the level."""
    flat = np.r_[np.zeros(32), np.full(8, 1243.0)].astype(np.float32)
    calm = np.r_[1000 + 0.3 * np.sin(np.arange(32)), np.full(8, 1001.0)].astype(np.float32)
    last_windows = []
    for target in (flat, calm):
        rows = Dataset.from_dict({"target": [target], "start": [pd.Timestamp("2024-01-01")], "freq": ["h"]})
        windows = EvalWindows(rows, prediction_length=8, stride=8)
        last_windows.append(windows[len(windows) - 1])  # context: the 32 first steps, future: the 8 last
    batch = StandardizingCollator(ForecastWindowCollator(32, 8))(last_windows)
    assert batch["future_observed_mask"][0].sum() == 0 and batch["future_values"][0].abs().max() == 0
    assert batch["future_observed_mask"][1].all()
    shift = torch.full((8, 1), 1.0)  # 1 / (0.1 % of 1000)
    torch.testing.assert_close(batch["future_values"][1], shift, atol=1e-2, rtol=0)


def test_naive_loss_scale_divides_by_the_mean_one_step_change() -> None:
    """loss_scale="naive" scales a window by its context's mean absolute one-step change (MASE's scale at lag 1),
    floored at a tenth of its standard deviation: a jumpy series keeps about its standard deviation, a random walk its
    step size, a single level shift the floor; missing steps are left out of the changes."""
    rng = np.random.default_rng(0)
    walk = np.cumsum(rng.normal(size=40)).astype(np.float32)
    walk[5] = np.nan
    jumpy = rng.normal(size=40).astype(np.float32)
    shift = np.r_[np.zeros(16), np.ones(24)].astype(np.float32)
    windows = []
    for target in (walk, jumpy, shift):
        rows = Dataset.from_dict({"target": [target], "start": [pd.Timestamp("2024-01-01")], "freq": ["h"]})
        evaluated = EvalWindows(rows, prediction_length=8, stride=8)
        windows.append(evaluated[len(evaluated) - 1])
    standard = StandardizingCollator(ForecastWindowCollator(32, 8))(windows)
    naive = StandardizingCollator(ForecastWindowCollator(32, 8), loss_scale="naive")(windows)

    for index, target in enumerate((walk, jumpy, shift)):
        context = target[:32].astype(float)
        steps = np.abs(np.diff(context))
        scale = max(np.nanmean(steps), 0.1 * np.nanstd(context))
        expected = (target[32:] - np.nanmean(context)) / scale
        np.testing.assert_allclose(naive["future_values"][index, :, 0], expected, rtol=1e-4, atol=1e-4)
        ratio = standard["future_values"][index].abs().sum() / naive["future_values"][index].abs().sum()
        assert np.isclose(ratio.item(), scale / np.nanstd(context), rtol=1e-4)
    assert np.nanmean(np.abs(np.diff(shift[:32]))) < 0.1 * np.nanstd(shift[:32])  # the floor applies to the shift
    with pytest.raises(ValueError, match="`loss_scale` must be one of"):
        StandardizingCollator(ForecastWindowCollator(32, 8), loss_scale="mase")


def test_seasonal_loss_scale_divides_by_the_mean_change_over_the_seasonal_period() -> None:
    """loss_scale="seasonal" scales a window by MASE's own scale: the mean absolute change over its frequency's
    seasonal period (2h: 12, D: 7), lag 1 where the period is 1 (YS), not shorter than the context (5min: 288 of 32
    steps) or without an observed pair (an hourly context whose first 24 steps are missing); windows of several
    sources in one batch each keep their own."""
    rng = np.random.default_rng(1)
    cycle = (np.sin(np.arange(40) * 2 * np.pi / 12) + 0.1 * rng.normal(size=40)).astype(np.float32)
    hourly = np.cumsum(rng.normal(size=40)).astype(np.float32)
    hourly[:24] = np.nan
    cases = [("2h", cycle, 12), ("D", cycle, 7), ("YS", cycle, 1), ("5min", cycle, 1), ("h", hourly, 1)]
    windows = []
    for freq, target, _ in cases:
        rows = Dataset.from_dict({"target": [target], "start": [pd.Timestamp("2024-01-01")], "freq": [freq]})
        evaluated = EvalWindows(rows, prediction_length=8, stride=8)
        windows.append(evaluated[len(evaluated) - 1])
    seasonal = StandardizingCollator(ForecastWindowCollator(32, 8), loss_scale="seasonal")(windows[::-1])
    for index, (_, target, lag) in enumerate(cases[::-1]):
        context = target[:32].astype(float)
        scale = max(np.nanmean(np.abs(context[lag:] - context[:-lag])), 0.1 * np.nanstd(context))
        expected = (target[32:] - np.nanmean(context)) / scale
        np.testing.assert_allclose(seasonal["future_values"][index, :, 0], expected, rtol=1e-4, atol=1e-4)
    naive_scale = np.nanmean(np.abs(np.diff(cycle[:32])))
    assert naive_scale > 2 * np.nanmean(np.abs(cycle[12:32] - cycle[:20]))  # lag 12 is the smaller scale here


def test_gap_augmentation_drops_points_and_spans_of_training_windows_only(pretrain: ModuleType) -> None:
    train = TrainWindows(corpus(1, series=3), prediction_length=8, seed=7)
    validation = EvalWindows(corpus(1, series=3), prediction_length=8, stride=8)
    plain = StandardizingCollator(ForecastWindowCollator(32, 8))
    augmentation = GapAugmentation(point_probability=0.1, span_probability=0.5, max_span=6, seed=3)
    augmented = StandardizingCollator(ForecastWindowCollator(32, 8), augmentation)
    rows = [train[i] for i in range(len(train))][:200]

    before, after = plain(rows), augmented(rows)

    dropped = (before["past_observed_mask"] == 1) & (after["past_observed_mask"] == 0)
    assert (after["past_observed_mask"] <= before["past_observed_mask"]).all()  # only drops, never adds
    assert after["past_values"][dropped].isnan().all()  # a dropped point is missing: NaN, unobserved
    assert 0.1 < dropped.float().mean() < 0.25  # scattered 10 % plus spans of up to 6 of 32 steps in half the windows
    runs = [len(run) for row in dropped[..., 0].int().tolist() for run in "".join(map(str, row)).split("0") if run]
    assert max(runs) >= 4  # spans, not only scattered points
    assert torch.equal(after["future_observed_mask"], before["future_observed_mask"])  # every target still scored
    again = augmented(rows)
    assert torch.equal(again["past_observed_mask"], after["past_observed_mask"])  # a pure function of the seeds
    other = StandardizingCollator(ForecastWindowCollator(32, 8), replace(augmentation, seed=4))(rows)
    assert not torch.equal(other["past_observed_mask"], after["past_observed_mask"])
    evaluation = [validation[i] for i in range(len(validation))]
    assert torch.equal(augmented(evaluation)["past_observed_mask"], plain(evaluation)["past_observed_mask"])


def test_gap_augmentation_refuses_bad_settings(pretrain: ModuleType) -> None:
    with pytest.raises(ValueError, match="--drop_point_probability"):
        GapAugmentation(point_probability=1.5)
    with pytest.raises(ValueError, match="--max_drop_span"):
        GapAugmentation(span_probability=0.5, max_span=0)


def window_lengths(pretrain: ModuleType, args: object, count: int) -> np.ndarray:
    """The longest series of the buffer behind each of the first `count` training windows."""
    rows = itertools.islice(iter(CorpusWindows(training_stream(args, 0, 1), 8, args, seed=0)), count)
    return np.array([row["source"].store.lengths.max() for row in rows])


def test_synthetic_windows_are_mixed_in_by_weight(
    pretrain: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus(1).save_to_disk(str(tmp_path / "corpus"))  # series of 80-300 steps, 72-270 after the validation tail
    settings = dict(corpus=[str(tmp_path / "corpus")], buffer_series=2, windows_per_buffer=4, min_past=8)
    settings |= dict(synthetic_length=64)

    mixed = window_lengths(pretrain, pretrain.DataArguments(**settings, synthetic_weight=0.5), 400)
    assert 0.3 < np.mean(mixed == 64) < 0.7  # about half the windows come from 64-step synthetic series
    assert (window_lengths(pretrain, pretrain.DataArguments(**settings, synthetic_weight=0.0), 200) > 64).all()
    assert (window_lengths(pretrain, pretrain.DataArguments(**settings, synthetic_weight=1.0), 200) == 64).all()
    mixed_real = window_lengths(pretrain, pretrain.DataArguments(**settings, mix_weight=1.0), 200)
    assert (mixed_real == 64).all()  # convex mixes of 64-step segments of the corpus' series
    with pytest.raises(ValueError, match="synthetic_weight"):
        training_stream(pretrain.DataArguments(**settings, synthetic_weight=1.5), 0, 1)
    with pytest.raises(ValueError, match="mix_weight"):
        training_stream(pretrain.DataArguments(**settings, synthetic_weight=0.5, mix_weight=0.8), 0, 1)
    with pytest.raises(ValueError, match="--drift_probability"):
        training_stream(pretrain.DataArguments(**settings, drift_probability=2.0), 0, 1)
    with pytest.raises(ValueError, match="--synthetic_families"):
        training_stream(pretrain.DataArguments(**settings, synthetic_families=[1.0, -1.0, 1.0]), 0, 1)
    recorded = []

    class RecordingWindows(SyntheticWindows):
        def windows(self, step: int) -> TrainWindows:
            recorded.append(self.family_weights)
            return super().windows(step)

    monkeypatch.setattr("ttm_data.pretraining.SyntheticWindows", RecordingWindows)
    args = pretrain.DataArguments(**settings, synthetic_weight=1.0, synthetic_families=[0.0, 0.0, 1.0])
    list(itertools.islice(iter(CorpusWindows(training_stream(args, 0, 1), 8, args, seed=0)), 12))
    assert recorded == [[0.0, 0.0, 1.0]] * 3  # 12 windows, 4 per buffer: the weights reach the generator
    monkeypatch.undo()
    originals = [np.asarray(t, dtype=np.float32) for t in corpus(1)["target"]]
    for drift, expected in ((0.0, True), (1.0, False)):
        args = pretrain.DataArguments(**settings, drift_probability=drift, downsample_probability=0.0)
        store = next(iter(CorpusWindows(training_stream(args, 0, 1), 8, args, seed=0)))["source"].store
        for i in range(len(store.lengths)):
            stored = store.values[store.offsets[i] : store.offsets[i + 1], 0]
            prefix = any(np.array_equal(o[: len(stored)], stored) for o in originals)
            assert prefix is expected  # a drifted series is no corpus series' training part

    state = run(pretrain, tmp_path / "run", "--corpus", str(tmp_path / "corpus"), "--synthetic_weight", "0.5",
                "--mix_weight", "0.25", "--synthetic_length", "64", "--synthetic_families", "0", "1", "3",
                "--max_steps", "2")  # fmt: skip
    assert state["global_step"] == 2

"""ttm_metrics.baselines: statsforecast baselines on the model's histories, failure counting, report section."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from script_loader import load_script
from tiny import tiny_config

from modeling_ttm import TTMForPrediction
from ttm_data import series_from_frame
from ttm_hub.model_card import build_model_card, load_evaluation
from ttm_metrics import BASELINES, baseline_forecasts, evaluation_report, format_report, reuse_baselines
from ttm_metrics import baselines as baselines_module

PERIOD, HORIZON = 12, 6


def histories(windows: int = 3, length: int = 72, channels: int = 2) -> np.ndarray:
    """Periodic histories with a little noise (windows, length, channels); channel 0 is exactly periodic."""
    rng = np.random.default_rng(0)
    t = np.arange(length + HORIZON)
    values = np.empty((windows, length + HORIZON, channels))
    for w in range(windows):
        values[w, :, 0] = 10 + 3 * np.sin(2 * np.pi * (t + w) / PERIOD)
        values[w, :, 1] = 50 + t * 0.1 + 2 * np.cos(2 * np.pi * t / PERIOD) + rng.normal(scale=0.3, size=len(t))
    return values


def test_every_baseline_forecasts_every_window_and_channel() -> None:
    values = histories()
    result = baseline_forecasts(values[:, :-HORIZON], HORIZON, PERIOD, quantile_levels=(0.1, 0.5, 0.9), n_jobs=1)

    assert set(result.points) == set(BASELINES) and result.num_series == 6
    assert result.failures == dict.fromkeys(BASELINES, 0)
    for name in BASELINES:
        assert result.points[name].shape == (3, HORIZON, 2)
        assert result.quantiles[name].shape == (3, 3, HORIZON, 2)
        assert np.isfinite(result.points[name]).all()
        low, mid, high = np.moveaxis(result.quantiles[name], 1, 0)
        assert (low <= mid + 1e-9).all() and (mid <= high + 1e-9).all()
        np.testing.assert_allclose(mid, result.points[name])  # level 0.5 is the point forecast
    # an exactly periodic channel: the seasonal naive repeats it
    np.testing.assert_allclose(result.points["SeasonalNaive"][..., 0], values[:, -HORIZON:, 0], atol=1e-9)
    members = np.stack([result.points[name] for name in BASELINES[:-1]])
    np.testing.assert_allclose(result.points["MedianEnsemble"], np.median(members, axis=0))


def test_failed_and_non_finite_fits_are_counted_and_fall_back_to_seasonal_naive(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    values = histories(windows=2)[:, :-HORIZON, :1]
    values[1, :-1] = np.nan  # one observed point: no model can be fitted
    real = baselines_module.statsforecast_models

    class Infinite:
        def forecast(self, y: np.ndarray, h: int, level: list | None = None) -> dict[str, np.ndarray]:
            return {"mean": np.full(h, np.inf)}

    def models(season_length: int) -> dict[str, object]:
        return real(season_length) | {"MSTL": Infinite()}

    monkeypatch.setattr(baselines_module, "statsforecast_models", models)
    result = baseline_forecasts(values, HORIZON, PERIOD, n_jobs=1)

    assert result.failures == {"SeasonalNaive": 1, "AutoETS": 1, "AutoTheta": 1, "MSTL": 2, "MedianEnsemble": 1}
    last_value = values[1, -1, 0]
    for name in BASELINES:
        np.testing.assert_allclose(result.points[name][1, :, 0], last_value)  # the seasonal-naive fallback
    np.testing.assert_allclose(result.points["MSTL"][0, :, 0], values[0, -PERIOD:][:HORIZON, 0])
    members = np.stack([result.points[name][0] for name in ("SeasonalNaive", "AutoETS", "AutoTheta")])
    np.testing.assert_allclose(result.points["MedianEnsemble"][0], np.median(members, axis=0))  # MSTL left out


def test_report_section_has_every_baseline_and_the_model_ratio() -> None:
    values = histories()
    contexts, actuals = values[:, :-HORIZON], values[:, -HORIZON:]
    forecasts = actuals + 0.5
    result = baseline_forecasts(contexts, HORIZON, PERIOD, n_jobs=1)

    report = evaluation_report(forecasts, actuals, contexts, PERIOD, baselines=result)

    section = report["baselines"]
    assert section["quantile_levels"] == [0.5] and section["failures"] == dict.fromkeys(BASELINES, 0)
    mae = section["metrics"]["original"]["mae"]
    assert mae["model"] == pytest.approx(0.5)
    for name in BASELINES:
        expected = np.abs(result.points[name] - actuals).mean()
        assert mae[name]["value"] == pytest.approx(expected)
        assert mae[name]["model_ratio"] == pytest.approx(0.5 / expected)
    # a point forecast is scored as its own median: wql = sum |error| / sum |actual|
    wql = section["metrics"]["original"]["wql"]
    assert wql["model"] == pytest.approx(0.5 * actuals.size / np.abs(actuals).sum())
    assert set(section["metrics"]["original"]) == {"mse", "mae", "mase", "smape", "wql"}
    text = format_report(report)
    assert all(name in text for name in BASELINES) and "failed fits" in text


def test_quantile_model_is_compared_at_its_own_levels() -> None:
    values = histories()
    contexts, actuals = values[:, :-HORIZON], values[:, -HORIZON:]
    levels = [0.1, 0.5, 0.9]
    quantiles = np.stack([actuals - 1, actuals, actuals + 1], axis=1)
    result = baseline_forecasts(contexts, HORIZON, PERIOD, quantile_levels=levels, n_jobs=1)

    report = evaluation_report(actuals, actuals, contexts, PERIOD, quantiles, levels, baselines=result)

    wql = report["baselines"]["metrics"]["original"]["wql"]
    assert wql["model"] == pytest.approx(report["metrics"]["original"]["wql"]["model"])
    assert all(wql[name]["value"] > 0 for name in BASELINES)


def test_bad_arguments_and_a_missing_statsforecast(monkeypatch: pytest.MonkeyPatch) -> None:
    contexts = histories()[:, :-HORIZON]
    with pytest.raises(ValueError, match="contexts"):
        baseline_forecasts(contexts[0], HORIZON, PERIOD)
    with pytest.raises(ValueError, match="quantile_levels"):
        baseline_forecasts(contexts, HORIZON, PERIOD, quantile_levels=(1.5,))
    with pytest.raises(ValueError, match="n_jobs"):
        baseline_forecasts(contexts, HORIZON, PERIOD, n_jobs=0)
    monkeypatch.setitem(sys.modules, "statsforecast.models", None)  # as if not installed
    with pytest.raises(ImportError, match=r"ttm-hf\[baselines\]"):
        baseline_forecasts(contexts, HORIZON, PERIOD)


def test_model_card_shows_the_ratio_to_every_baseline(tmp_path: Path) -> None:
    values = histories()[..., :1]
    contexts, actuals = values[:, :-HORIZON], values[:, -HORIZON:]
    result = baseline_forecasts(contexts, HORIZON, PERIOD, n_jobs=1)
    report = evaluation_report(actuals + 0.5, actuals, contexts, PERIOD, baselines=result)
    report |= {"input": "data/sine.csv", "split": "test", "stride": 1, "context_length": 72, "freq": "h"}
    (tmp_path / "report.json").write_text(json.dumps(report))

    evaluation = load_evaluation(tmp_path / "report.json")
    card = build_model_card(tiny_config(), "me/ttm", evaluation=evaluation)

    mae = next(record for record in evaluation.results if record.metric == "mae")
    ratios = dict(mae.baseline_ratios)
    assert list(ratios) == list(BASELINES)
    assert ratios["AutoETS"] == pytest.approx(
        report["baselines"]["metrics"]["original"]["mae"]["AutoETS"]["model_ratio"]
    )
    assert f"AutoETS {ratios['AutoETS']:.3f}, AutoTheta {ratios['AutoTheta']:.3f}" in card.text


def test_shipping_backtest_tables_the_ratio_to_every_baseline() -> None:
    forecast, ship = load_script("forecast"), load_script("ship_checkpoint")
    torch.manual_seed(0)
    model = TTMForPrediction(tiny_config(num_input_channels=1)).eval()
    hours = pd.date_range("2024-01-01", periods=120, freq="h")
    noise = np.random.default_rng(0).normal(scale=0.2, size=120)
    frame = pd.DataFrame({"time": hours, "load": 10 + np.sin(2 * np.pi * np.arange(120) / 24) + noise})

    report = forecast.backtest(model, series_from_frame(frame), 32, 8, baselines=True)

    section = report["baselines"]
    assert section["num_series"] == report["num_windows"] and section["failures"] == dict.fromkeys(BASELINES, 0)
    table = ship.zero_shot_table({"load": {**report, "freq": "h"}})
    ratios = [section["metrics"]["original"]["mase"][name]["model_ratio"] for name in BASELINES]
    assert "| load | " + " | ".join(f"{r:.3f}" for r in ratios) + " | none |" in table
    assert dict(ship.baseline_ratios(report, "mase")) == dict(zip(BASELINES, ratios, strict=True))


def test_backtest_contexts_shorter_than_a_season_and_inside_long_gaps() -> None:
    """A context shorter than the seasonal period scales MASE (and runs seasonal naive) with the longest lag it has;
    windows whose whole context falls in a gap are left out, not scored against an empty history."""
    forecast = load_script("forecast")
    torch.manual_seed(0)
    model = TTMForPrediction(tiny_config(num_input_channels=1)).eval()
    hours = pd.date_range("2024-01-01", periods=200, freq="h")
    values = 10 + np.sin(2 * np.pi * np.arange(200) / 24)
    values[60:130] = np.nan  # 70 missing hours: the contexts of some windows see nothing
    frame = pd.DataFrame({"time": hours, "load": values})

    report = forecast.backtest(model, series_from_frame(frame), 16, 8, baselines=True)

    assert report["seasonal_period"] == 15  # daily season (24) > context 16
    every_window = forecast.backtest(model, series_from_frame(frame.fillna(10.0)), 16, 8)["num_windows"]
    # windows end every 8 hours from 200 down to 24; the contexts of those ending at 88, 96, ..., 136 (hours e - 24 to
    # e - 9) lie inside the gap
    assert every_window == 23 and report["num_windows"] == 23 - 7
    assert np.isfinite(report["metrics"]["original"]["mase"]["model"])


def test_baselines_of_an_earlier_report_on_the_same_windows_are_reused() -> None:
    """Shipping a new checkpoint reuses the statsforecast scores of the last one (the fits depend on the windows only):
    the result equals a report fitted afresh for the new model, and other windows or levels are refused."""
    values = histories()
    contexts, actuals = values[:, :-HORIZON], values[:, -HORIZON:]
    levels = [0.1, 0.5, 0.9]
    result = baseline_forecasts(contexts, HORIZON, PERIOD, quantile_levels=levels, n_jobs=1)
    old, new = actuals + 0.7, actuals - 0.2
    spread = np.array([-1.0, 0.0, 1.0])[None, :, None, None]
    earlier = evaluation_report(old, actuals, contexts, PERIOD, old[:, None] + spread, levels, baselines=result)
    fresh = evaluation_report(new, actuals, contexts, PERIOD, new[:, None] + spread, levels, baselines=result)
    plain = evaluation_report(new, actuals, contexts, PERIOD, new[:, None] + spread, levels)

    reused = reuse_baselines(plain, earlier)

    assert reused["baselines"] == fresh["baselines"] and reused["metrics"] == plain["metrics"]
    mae = reused["baselines"]["metrics"]["original"]["mae"]
    assert mae["AutoETS"]["model_ratio"] != earlier["baselines"]["metrics"]["original"]["mae"]["AutoETS"]["model_ratio"]
    shifted = evaluation_report(new, actuals, contexts + 1.0, PERIOD, new[:, None] + spread, levels)
    with pytest.raises(ValueError, match="not the same windows"):
        reuse_baselines(shifted, earlier)
    with pytest.raises(ValueError, match="not the same windows"):
        reuse_baselines(evaluation_report(new[:2], actuals[:2], contexts[:2], PERIOD), earlier)
    with pytest.raises(ValueError, match="quantile levels"):
        reuse_baselines(evaluation_report(new, actuals, contexts, PERIOD), earlier)
    with pytest.raises(ValueError, match="'baselines' section"):
        reuse_baselines(plain, plain)


def test_ablation_rows_of_an_earlier_card_are_kept(tmp_path: Path) -> None:
    ship = load_script("ship_checkpoint")
    rows = [["real only", "512", "5000", "46", "0.2092", "0.928", "0.770", "**0.845**"]]
    rows.append(["cut to context 256", "256", "", "", "", "0.868", "0.709", "**0.785**"])
    card = tmp_path / "README.md"
    table = ship.markdown_table(ship.ABLATION_HEADER, rows)
    card.write_text(f"# card\n\n## Ablations\n\nSame seed.\n\n{table}\n\n## Next\n\n| a | b |\n|---|---|\n| 1 | 2 |\n")

    assert ship.recorded_ablation_rows(card) == rows
    assert ship.ablation_table({}, rows) == table
    card.write_text("# card\n\n## Results\n\n| a | b |\n|---|---|\n")
    with pytest.raises(ValueError, match="no ablation table"):
        ship.recorded_ablation_rows(card)


def test_a_continued_run_carries_the_training_of_its_start(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """A run that continued a checkpoint (pretrain.py --init_from) is shipped with the commands and budget of that
    checkpoint's card first; the script refuses to ship it without that card, and refuses the card for a fresh run."""
    ship = load_script("ship_checkpoint")
    card = tmp_path / "README.md"
    card.write_text(
        "# card\n\n## Training procedure\n\nThis checkpoint was produced by:\n\n```bash\npython build.py\n"
        "python pretrain.py --max_steps 9\n```\n\n## Pretraining budget and curve\n\n9 steps in 5 s.\n\n"
        "On one core.\n\n![pretraining loss](loss_curve.png)\n\n## Zero-shot results\n\n| a |\n"
    )
    assert ship.earlier_training(card) == (
        "python build.py\npython pretrain.py --max_steps 9",
        "9 steps in 5 s.\n\nOn one core.",
    )

    two = ship.continued_budget("first", "9 steps in 5 s.", "4 steps in 2 s.")
    assert (
        two == "First, first: 9 steps in 5 s.\n\nThen, continued from the result (`--init_from first`): 4 steps in 2 s."
    )
    three = ship.continued_budget("second", two, "3 steps in 1 s.")
    assert three == two + "\n\nThen, continued from the result (`--init_from second`): 3 steps in 1 s."

    run = tmp_path / "run"
    run.mkdir()
    results = {"command": "python pretrain.py --init_from first", "init_from": "first", "train_runtime": 1.0}
    (run / "pretrain_results.json").write_text(json.dumps(results))
    ship_run = ["--run", str(run), "--corpus", str(tmp_path / "corpus"), "--output", str(tmp_path / "out")]
    with pytest.raises(SystemExit):
        ship.main(ship_run)
    assert (
        "--continued-from: the run started from first (--init_from); give that checkpoint's" in capsys.readouterr().err
    )
    (run / "pretrain_results.json").write_text(json.dumps({**results, "init_from": None}))
    with pytest.raises(SystemExit):
        ship.main([*ship_run, "--continued-from", str(card)])
    assert "the run started from random weights" in capsys.readouterr().err
    card.write_text("# card\n\n## Results\n")
    with pytest.raises(SystemExit):
        ship.main([*ship_run, "--continued-from", str(card)])
    assert "--continued-from: " + f"{card} has no training commands" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()

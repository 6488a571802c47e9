"""ForecastWindowCollator and the window indices: shapes, masks, padding, determinism, randomness, speed."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from datasets import Dataset
from tiny import tiny_config

from modeling_ttm import TTMForPrediction
from ttm_data import EvalWindows, ForecastWindowCollator, SeriesStore, TrainWindows, extract_windows, freq_token

CONTEXT, HORIZON = 32, 8  # tiny_config()
MODEL_KEYS = {"past_values", "past_observed_mask", "future_values", "future_observed_mask"}


def series_dataset(
    lengths: tuple[int, ...] = (60, 20),
    split_start: tuple[int, ...] | None = None,
    missing: tuple[int, int, int] | None = None,
) -> Dataset:
    """Series whose values encode (series, channel, position): target channels 0, 1 and exogenous channel 2.

    `missing` = (series, channel, position) makes that value NaN.
    """
    rows = {"target": [], "feat_dynamic_real": [], "start": [], "freq": [], "feat_static_cat": []}
    for series, length in enumerate(lengths):
        values = 1000 * series + 100 * np.arange(3)[:, None] + np.arange(length)[None, :]
        if missing is not None and missing[0] == series:
            values = values.astype(float)
            values[missing[1:]] = np.nan
        rows["target"].append(values[:2].astype(np.float32))
        rows["feat_dynamic_real"].append(values[2:].astype(np.float32))
        rows["start"].append("2024-01-01")
        rows["freq"].append(["15min", "h"][series % 2])
        rows["feat_static_cat"].append([series % 3])
    if split_start is not None:
        rows["split_start"] = list(split_start)
    return Dataset.from_dict(rows)


def exogenous_config(**overrides):
    return tiny_config(prediction_channel_indices=[0, 1], exogenous_channel_indices=[2], **overrides)


def test_eval_batch_holds_exact_windows_and_only_model_inputs() -> None:
    config = exogenous_config()
    windows = EvalWindows(series_dataset(), HORIZON, stride=5)
    rows = [windows[i] for i in range(len(windows))]
    batch = ForecastWindowCollator.from_config(config)(rows)
    assert set(batch) == MODEL_KEYS
    assert batch["past_values"].shape == (len(rows), CONTEXT, 3) and batch["past_values"].dtype == torch.float32
    assert batch["future_values"].shape == (len(rows), HORIZON, 3)
    for i, (series, end) in enumerate(windows):
        future = 1000 * series + 100 * np.arange(3)[None, :] + np.arange(end - HORIZON, end)[:, None]
        np.testing.assert_array_equal(batch["future_values"][i].numpy(), future)  # targets, then exogenous
        observed_past = min(CONTEXT, end - HORIZON)
        past = batch["past_values"][i, CONTEXT - observed_past :, 0].numpy()
        np.testing.assert_array_equal(past, 1000 * series + np.arange(end - HORIZON - observed_past, end - HORIZON))
    model = TTMForPrediction(config)
    output = model(**batch)  # the batch plugs straight into the model
    assert output.prediction_outputs.shape == (len(rows), HORIZON, 2) and torch.isfinite(output.loss)


def test_short_series_are_left_padded_and_nans_kept_for_the_model() -> None:
    windows = EvalWindows(series_dataset(lengths=(60, 20), missing=(1, 0, 5)), HORIZON)
    rows = [windows[i] for i, (series, end) in enumerate(windows) if (series, end) == (1, 20)]
    batch = ForecastWindowCollator(CONTEXT, HORIZON)(rows)
    past, mask = batch["past_values"][0], batch["past_observed_mask"][0]
    padding = CONTEXT - (20 - HORIZON)  # 12 observed context points, 20 padded
    assert (mask[:padding] == 0).all() and past[:padding].isnan().all()  # padding: NaN, filled by the model
    assert mask[padding + 5, 0] == 0 and past[padding + 5, 0].isnan()  # the NaN: unobserved, left for the model
    assert mask[padding:].sum() == 3 * 12 - 1 and (past.isnan() == (mask == 0)).all()
    assert (batch["future_observed_mask"] == 1).all()


def test_freq_token_and_static_categoricals_when_the_config_needs_them() -> None:
    config = exogenous_config(
        resolution_prefix_tuning=True,
        frequency_token_vocab_size=10,
        categorical_vocab_size_list=[3],
        decoder_mode="mix_channel",
    )
    windows = EvalWindows(series_dataset(), HORIZON, stride=10)
    rows = [windows[i] for i in range(len(windows))]
    batch = ForecastWindowCollator.from_config(config)(rows)
    assert set(batch) == MODEL_KEYS | {"freq_token", "static_categorical_values"}
    series = torch.tensor([row["series"] for row in rows])
    assert batch["freq_token"].tolist() == [[freq_token("15min"), freq_token("h")][s] for s in series]
    assert batch["static_categorical_values"].tolist() == [[s % 3] for s in series.tolist()]
    assert torch.isfinite(TTMForPrediction(config)(**batch).loss)


def test_channel_roles_are_checked_not_guessed() -> None:
    rows = [EvalWindows(series_dataset(), HORIZON)[0]]
    with pytest.raises(ValueError, match="prediction_channel_indices=\\[0, 1\\], exogenous_channel_indices=\\[2\\]"):
        ForecastWindowCollator.from_config(tiny_config())(rows)  # a model that would forecast the exogenous channel
    with pytest.raises(ValueError, match="prediction_length=8"):
        ForecastWindowCollator(CONTEXT, 4)(rows)
    with pytest.raises(ValueError, match="remove_unused_columns=False"):  # what Trainer leaves of rows otherwise
        ForecastWindowCollator(CONTEXT, HORIZON)([{"series": 0, "end": 20}])


def test_eval_windows_are_deterministic_rolling_windows_inside_the_split() -> None:
    dataset = series_dataset(lengths=(60, 20, 5), split_start=(40, 10, 0))
    windows = EvalWindows(dataset, HORIZON, stride=3)
    pairs = list(windows)
    assert pairs == [(s, int(e)) for s, e in windows.pairs] and all(isinstance(v, int) for v in pairs[0])
    for series, length, first in ((0, 60, 40), (1, 20, 10), (2, 5, 0)):
        ends = [end for s, end in pairs if s == series]
        expected = list(range(length, first + HORIZON - 1, -3))[::-1] if length >= max(first, 1) + HORIZON else []
        assert ends == expected  # the last window ends at the series' end; forecasts never start before the split
    collator = ForecastWindowCollator(CONTEXT, HORIZON)
    rows = [windows[i] for i in range(len(windows))]
    first, second = collator(rows), collator(rows)
    assert all(first[key].nan_to_num(-1.0).equal(second[key].nan_to_num(-1.0)) for key in first)
    assert len(EvalWindows(dataset, HORIZON, stride=3)) == len(windows)


def drawn_ends(batch: dict[str, torch.Tensor]) -> list[int]:
    """The window ends of a batch of `series_dataset` windows, read from the last future value of channel 0."""
    return [int(v) % 1000 + 1 for v in batch["future_values"][:, -1, 0]]


def test_training_windows_are_fresh_uniform_and_reproducible() -> None:
    windows = TrainWindows(series_dataset(lengths=(60, 20), split_start=(0, 0)), HORIZON)
    assert windows.counts.tolist() == [60 - HORIZON, 20 - HORIZON] and len(windows) == 64
    assert [windows[i]["series"] for i in range(len(windows))].count(1) == 12  # in proportion to valid windows
    collator = ForecastWindowCollator(CONTEXT, HORIZON)
    rows = [windows[0]] * 2000
    torch.manual_seed(0)
    first, second = drawn_ends(collator(rows)), drawn_ends(collator(rows))
    assert first != second  # every call draws new windows
    assert set(first) == set(range(HORIZON + 1, 61))  # every valid end, and only those
    counts = np.bincount(first, minlength=61)[HORIZON + 1 :]
    assert counts.min() > 10 and counts.max() < 70  # about uniform (expected 38.5 per end)
    torch.manual_seed(0)
    assert drawn_ends(collator(rows)) == first  # reproducible from the torch seed


def test_each_dataloader_worker_and_process_draws_different_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    windows = TrainWindows(series_dataset(lengths=(200,)), HORIZON)
    collator = ForecastWindowCollator(CONTEXT, HORIZON)

    def first_batches() -> list[list[int]]:
        torch.manual_seed(0)
        loader = torch.utils.data.DataLoader(windows, batch_size=16, num_workers=2, collate_fn=collator)
        batches = iter(loader)
        return [drawn_ends(next(batches)) for _ in range(2)]  # batch 0 from worker 0, batch 1 from worker 1

    from_worker_0, from_worker_1 = first_batches()
    assert from_worker_0 != from_worker_1
    assert first_batches() == [from_worker_0, from_worker_1]

    rows = [windows[0]] * 16
    ends = {}
    for rank in ("0", "1"):
        monkeypatch.setenv("RANK", rank)
        torch.manual_seed(0)  # Trainer seeds every process alike
        ends[rank] = drawn_ends(collator(rows))
    assert ends["0"] != ends["1"]


def test_extract_windows_matches_a_per_window_loop() -> None:
    store = SeriesStore.from_dataset(series_dataset(lengths=(60, 20, 9)))
    rng = np.random.default_rng(0)
    series = rng.integers(0, 3, 100)
    ends = rng.integers(HORIZON, store.lengths[series] + 1)
    arrays = extract_windows(store, series, ends, CONTEXT, HORIZON)
    for i, (s, end) in enumerate(zip(series, ends, strict=True)):
        values = store.values[store.offsets[s] : store.offsets[s + 1]]
        window = np.full((CONTEXT + HORIZON, 3), np.nan, dtype=np.float32)  # padding and missing past values: NaN
        available = values[max(0, end - CONTEXT - HORIZON) : end]
        window[len(window) - len(available) :] = available
        np.testing.assert_array_equal(arrays["past_values"][i], window[:CONTEXT])
        np.testing.assert_array_equal(arrays["future_values"][i], np.nan_to_num(window[CONTEXT:]))  # missing: 0
        assert arrays["past_observed_mask"][i, :, 0].sum() == min(CONTEXT, end - HORIZON)
    with pytest.raises(ValueError, match="window ends"):
        extract_windows(store, np.array([2]), np.array([10]), CONTEXT, HORIZON)

"""ttm_forecast.predict_df: a DataFrame of series in, a long-format forecast frame out, equal to the model's own
output on the same tensors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from tiny import save_tiny_checkpoint, tiny_config

from modeling_ttm import TTMForPrediction
from ttm_data import series_from_frame
from ttm_forecast import predict_array, predict_dataset, predict_df

SHIPPED = Path(__file__).resolve().parents[1] / "checkpoints" / "ttm-r2-512-96-offline"


@pytest.fixture(scope="module")
def shipped() -> TTMForPrediction:
    return TTMForPrediction.from_pretrained(SHIPPED).eval()


def series_values(index: int, length: int) -> np.ndarray:
    rng = np.random.default_rng(index)
    steps = np.arange(length)
    return (10 * index + np.sin(steps * 2 * np.pi / 24) * (index + 1) + rng.normal(0, 0.2, length)).astype(np.float32)


def long_frame(lengths: list[int], freq: str = "h", end: str = "2024-03-01") -> pd.DataFrame:
    """Series s0, s1, ... of the given lengths, all ending at `end`, in long format."""
    frames = []
    for index, length in enumerate(lengths):
        times = pd.date_range(end=end, periods=length, freq=freq)
        frames.append(pd.DataFrame({"id": f"s{index}", "ts": times, "y": series_values(index, length)}))
    return pd.concat(frames, ignore_index=True)


def direct(model: TTMForPrediction, contexts: list[np.ndarray], **extra: torch.Tensor) -> tuple[np.ndarray, ...]:
    """The model called by hand, one series at a time: point (series, horizon) and quantiles (series, levels, h)."""
    points, quantiles = [], []
    with torch.no_grad():
        for context in contexts:
            output = model(past_values=torch.from_numpy(context).view(1, -1, 1), return_loss=False, **extra)
            points.append(output.prediction_outputs[0, :, 0].numpy())
            if output.quantile_outputs is not None:
                quantiles.append(output.quantile_outputs[0, :, :, 0].numpy())
    return np.stack(points), np.stack(quantiles) if quantiles else None


def by_series(result: pd.DataFrame, column: str, key: str = "id") -> np.ndarray:
    return np.stack([group[column].to_numpy() for _, group in result.groupby(key, sort=False)])


def test_series_of_different_lengths_equal_the_model_called_directly(shipped: TTMForPrediction) -> None:
    lengths = [700, 512, 130]  # longer than the context, exactly it, shorter (left-padded)
    frame = long_frame(lengths)
    result = predict_df(shipped, frame, id_column="id", timestamp_column="ts", target_columns=["y"])
    levels = [f"{level:g}" for level in shipped.config.forecast_quantiles]
    assert list(result.columns) == ["id", "ts", "target_name", "predictions", *levels]
    assert len(result) == 3 * 96 and (result["target_name"] == "y").all()
    point, quantiles = direct(shipped, [series_values(i, n)[-512:] for i, n in enumerate(lengths)])
    np.testing.assert_allclose(by_series(result, "predictions"), point, rtol=1e-5, atol=1e-5)
    for index, level in enumerate(levels):
        np.testing.assert_allclose(by_series(result, level), quantiles[:, index], rtol=1e-5, atol=1e-5)
    first = result[result["id"] == "s2"]["ts"]
    expected = pd.date_range("2024-03-01 01:00", periods=96, freq="h")
    assert (first.to_numpy() == expected.to_numpy()).all()


def test_quantile_columns_are_monotone(shipped: TTMForPrediction) -> None:
    result = predict_df(shipped, long_frame([300, 200]), id_column="id", timestamp_column="ts")
    assert (result["0.1"] <= result["0.5"]).all() and (result["0.5"] <= result["0.9"]).all()
    assert (result["0.1"] < result["0.9"]).any()


def test_long_and_wide_format_give_the_same_numbers(shipped: TTMForPrediction) -> None:
    long = long_frame([400, 400])
    wide = pd.DataFrame({"ts": long["ts"].iloc[:400].to_numpy(), "s0": long["y"].iloc[:400].to_numpy()})
    wide["s1"] = long["y"].iloc[400:].to_numpy()
    from_long = predict_df(shipped, long, id_column="id", timestamp_column="ts", prediction_length=24)
    from_wide = predict_df(shipped, wide, timestamp_column="ts", prediction_length=24)
    assert "id" not in from_wide.columns and list(from_wide["target_name"].unique()) == ["s0", "s1"]
    for column in ["predictions", "0.1", "0.9"]:
        np.testing.assert_allclose(by_series(from_wide, column, "target_name"), by_series(from_long, column))
    assert (from_wide["ts"].to_numpy() == from_long["ts"].to_numpy()).all()


def test_missing_values_and_missing_timestamps_are_nan_for_the_model(shipped: TTMForPrediction) -> None:
    frame = long_frame([300])
    frame.loc[[10, 200, 201], "y"] = np.nan
    frame = frame.drop(index=[250, 251, 252])  # three missing timestamps
    result = predict_df(shipped, frame, id_column="id", timestamp_column="ts", prediction_length=48)
    context = series_values(0, 300)
    context[[10, 200, 201, 250, 251, 252]] = np.nan
    point, _ = direct(shipped, [context])
    assert np.isfinite(result["predictions"]).all()
    np.testing.assert_allclose(result["predictions"].to_numpy(), point[0, :48], rtol=1e-5, atol=1e-5)


def test_shorter_horizon_is_the_start_of_the_full_one_and_chunks_do_not_matter(shipped: TTMForPrediction) -> None:
    frame = long_frame([200, 260, 320])
    full = predict_df(shipped, frame, id_column="id", timestamp_column="ts")
    short = predict_df(
        shipped, frame, id_column="id", timestamp_column="ts", prediction_length=10, chunk_size=2, batch_size=1
    )
    np.testing.assert_allclose(by_series(short, "predictions"), by_series(full, "predictions")[:, :10], atol=1e-5)


def test_recursive_rollout_equals_two_steps_by_hand_and_warns(shipped: TTMForPrediction) -> None:
    frame = long_frame([600, 150])
    with pytest.warns(UserWarning, match=r"`prediction_length` 192 goes 96 steps past the model's forecast length 96"):
        rolled = predict_df(shipped, frame, id_column="id", timestamp_column="ts", prediction_length=192)
    first = predict_df(shipped, frame, id_column="id", timestamp_column="ts")
    appended = first.rename(columns={"predictions": "y"})[["id", "ts", "y"]]
    extended = pd.concat([frame, appended]).sort_values(["id", "ts"], kind="stable")
    second = predict_df(shipped, extended, id_column="id", timestamp_column="ts")
    by_hand = pd.concat([first, second]).sort_values(["id", "ts"], kind="stable")
    assert len(rolled) == 2 * 192
    assert (rolled["ts"].to_numpy() == by_hand["ts"].to_numpy()).all()
    for column in ["predictions", "0.1", "0.9"]:
        np.testing.assert_allclose(rolled[column].to_numpy(), by_hand[column].to_numpy(), rtol=1e-5, atol=1e-5)


def test_frequency_token_reaches_a_model_with_resolution_prefix_tuning() -> None:
    torch.manual_seed(0)
    model = TTMForPrediction(
        tiny_config(num_input_channels=1, resolution_prefix_tuning=True, frequency_token_vocab_size=10)
    ).eval()
    daily = long_frame([40], freq="D").drop(columns="id")
    result = predict_df(model, daily, timestamp_column="ts")
    context = series_values(0, 40)[-32:]
    daily_token, _ = direct(model, [context], freq_token=torch.tensor([8]))
    hourly_token, _ = direct(model, [context], freq_token=torch.tensor([7]))
    np.testing.assert_allclose(result["predictions"].to_numpy(), daily_token[0], rtol=1e-5, atol=1e-6)
    assert not np.allclose(daily_token, hourly_token)  # the token changes the forecast: the right one was passed
    assert (result["ts"].to_numpy() == pd.date_range("2024-03-02", periods=8, freq="D").to_numpy()).all()


def test_checkpoint_path_and_calendar_frequency(tmp_path: Path) -> None:
    path = save_tiny_checkpoint(tmp_path / "tiny")
    monthly = long_frame([30, 20], freq="MS", end="2024-01-01")
    result = predict_df(str(path), monthly, id_column="id", timestamp_column="ts", target_columns=["y"])
    model = TTMForPrediction.from_pretrained(path).eval()
    point, _ = direct(model, [series_values(0, 30), series_values(1, 20)])
    np.testing.assert_allclose(by_series(result, "predictions"), point, rtol=1e-5, atol=1e-6)
    assert (result["ts"].iloc[:8].to_numpy() == pd.date_range("2024-02-01", periods=8, freq="MS").to_numpy()).all()


def test_known_covariates_feed_forecast_channel_mixing() -> None:
    torch.manual_seed(0)
    config = tiny_config(
        num_input_channels=2,
        prediction_channel_indices=[0],
        exogenous_channel_indices=[1],
        enable_forecast_channel_mixing=True,
    )
    model = TTMForPrediction(config).eval()
    times = pd.date_range("2024-01-01", periods=48, freq="h")
    price = np.cos(np.arange(56) / 3).astype(np.float32)
    frame = pd.DataFrame({"ts": times, "load": series_values(0, 48), "price": price[:48]})
    future = pd.DataFrame({"ts": pd.date_range(times[-1], periods=9, freq="h")[1:], "price": price[48:]})
    result = predict_df(
        model, frame, future, timestamp_column="ts", target_columns=["load"], known_covariate_columns=["price"]
    )
    past = torch.from_numpy(np.stack([series_values(0, 48), price[:48]], axis=-1)[-32:][None])
    future_values = torch.from_numpy(np.stack([np.zeros(8, np.float32), price[48:]], axis=-1)[None])
    with torch.no_grad():
        expected = model(past_values=past, future_values=future_values, return_loss=False).prediction_outputs
    assert list(result["target_name"].unique()) == ["load"]
    np.testing.assert_allclose(result["predictions"].to_numpy(), expected[0, :, 0].numpy(), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="`future_df` is required with `known_covariate_columns`"):
        predict_df(model, frame, timestamp_column="ts", target_columns=["load"], known_covariate_columns=["price"])
    with pytest.raises(ValueError, match="`future_df` has no row"):
        predict_df(
            model, frame, future.iloc[:4], timestamp_column="ts", target_columns=["load"],
            known_covariate_columns=["price"],
        )  # fmt: skip


def test_static_categories_reach_the_model_as_sorted_codes() -> None:
    torch.manual_seed(0)
    config = tiny_config(num_input_channels=1, decoder_mode="mix_channel", categorical_vocab_size_list=[2])
    model = TTMForPrediction(config).eval()
    frame = long_frame([40, 40]).assign(store=lambda f: np.where(f["id"] == "s0", "south", "north"))
    result = predict_df(model, frame, id_column="id", timestamp_column="ts", static_categorical_columns=["store"])
    contexts = [series_values(0, 40)[-32:], series_values(1, 40)[-32:]]
    south, _ = direct(model, contexts[:1], static_categorical_values=torch.tensor([[1]]))
    north, _ = direct(model, contexts[1:], static_categorical_values=torch.tensor([[0]]))
    np.testing.assert_allclose(by_series(result, "predictions"), np.concatenate([south, north]), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="`static_categorical_columns`: the model reads 1 static"):
        predict_df(model, frame, id_column="id", timestamp_column="ts", target_columns=["y"])


def test_predict_dataset_equals_predict_df_on_the_loaded_series(shipped: TTMForPrediction) -> None:
    frame = long_frame([300, 130, 520])
    frame.loc[[7, 250], "y"] = np.nan
    dataset = series_from_frame(frame, id_column="id", timestamp_column="ts")
    expected = predict_df(shipped, frame, id_column="id", timestamp_column="ts", prediction_length=24)
    result = predict_dataset(shipped, dataset, prediction_length=24, batch_size=2)
    pd.testing.assert_frame_equal(result, expected, rtol=1e-5, atol=1e-5)
    selected = predict_dataset(shipped, dataset.select([2, 0]), prediction_length=24, context_length=100)
    assert selected["id"].unique().tolist() == ["s2", "s0"]
    short = predict_df(
        shipped, frame[frame["id"] == "s2"], timestamp_column="ts", prediction_length=24, context_length=100
    )
    np.testing.assert_allclose(selected["predictions"].iloc[:24], short["predictions"], rtol=1e-5, atol=1e-5)
    with_covariate = series_from_frame(frame.assign(x=1.0), id_column="id", timestamp_column="ts", target_columns=["y"],
                                       exogenous_columns=["x"])  # fmt: skip
    with pytest.raises(ValueError, match="`dataset` has exogenous channels"):
        predict_dataset(shipped, with_covariate)
    with pytest.raises(TypeError, match="`dataset` must be a datasets.Dataset"):
        predict_dataset(shipped, frame)


def test_predict_array_folds_channels_of_a_univariate_model(shipped: TTMForPrediction) -> None:
    contexts = np.stack([series_values(0, 300), series_values(1, 300)], axis=-1)[None]  # one series, two channels
    contexts[0, 5, 1] = np.nan
    point, quantiles = predict_array(shipped, contexts, prediction_length=12)
    expected_point, expected_quantiles = direct(shipped, [contexts[0, :, 0].copy(), contexts[0, :, 1].copy()])
    assert point.shape == (1, 12, 2) and quantiles.shape == (1, 3, 12, 2)
    np.testing.assert_allclose(point[0].T, expected_point[:, :12], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(quantiles[0].transpose(2, 0, 1), expected_quantiles[:, :, :12], rtol=1e-5, atol=1e-5)
    tuned = TTMForPrediction(tiny_config(num_input_channels=1, resolution_prefix_tuning=True)).eval()
    with pytest.raises(ValueError, match="`freq` is required"):
        predict_array(tuned, contexts)


@pytest.mark.parametrize(
    ("arguments", "error", "match"),
    [
        ({"target_columns": ["sales"]}, ValueError, "`target_columns`: no column 'sales'"),
        ({"prediction_length": 0}, ValueError, "`prediction_length` must be a positive integer"),
        ({"context_length": 1000}, ValueError, "`context_length`: 1000 exceeds"),
        ({"batch_size": -1}, ValueError, "`batch_size`"),
        ({"past_covariate_columns": ["y"]}, ValueError, "`past_covariate_columns`: the model reads one channel"),
        ({"known_covariate_columns": ["y"]}, ValueError, "`known_covariate_columns`: the model reads one channel"),
        ({"target_columns": "y"}, TypeError, "`target_columns` must be a list"),
        ({"static_categorical_columns": ["store"]}, ValueError, "`static_categorical_columns`: the model has no"),
    ],
)
def test_bad_arguments_name_themselves(shipped: TTMForPrediction, arguments: dict, error: type, match: str) -> None:
    frame = long_frame([100]).assign(store="north")
    options = {"id_column": "id", "timestamp_column": "ts", **arguments}
    with pytest.raises(error, match=match):
        predict_df(shipped, frame, **options)


def test_bad_model_and_frame_are_type_errors(shipped: TTMForPrediction) -> None:
    with pytest.raises(TypeError, match="`model`"):
        predict_df(3, long_frame([100]))
    with pytest.raises(TypeError, match="`df` must be a pandas DataFrame"):
        predict_df(shipped, {"ts": [1, 2]})

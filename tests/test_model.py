"""TTMForPrediction behaviour: inputs, missing values, bad input, quantiles, training, save / load."""

import pytest
import torch
from tiny import tiny_config

from layers_ttm import TTMDropout
from modeling_ttm import TTMForPrediction, TTMForPredictionOutput, TTMModel
from ttm_hub.hub import CODE_FILES


def make_model(**overrides) -> TTMForPrediction:
    torch.manual_seed(0)
    return TTMForPrediction(tiny_config(**overrides)).eval()


def series(batch: int = 4, length: int = 32, channels: int = 3, seed: int = 1) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, length, channels, generator=generator) * 5 + 20


def test_output_shapes_and_fields():
    model = make_model(prediction_channel_indices=[0, 2], prediction_filter_length=5)
    out = model(past_values=series(), output_hidden_states=True)
    assert isinstance(out, TTMForPredictionOutput)
    assert out.prediction_outputs.shape == (4, 5, 2)
    assert out.backbone_hidden_state.shape == (4, 3, 4, 16)
    assert out.decoder_hidden_state.shape == (4, 3, 4, 8)
    assert out.loc.shape == out.scale.shape == (4, 1, 2)
    assert len(out.hidden_states) == 2 + 2  # backbone and decoder layers
    assert out.loss is None and out.quantile_outputs is None
    assert model.main_input_name == "past_values"
    as_tuple = model(past_values=series(), return_dict=False)
    assert torch.equal(as_tuple[0], out.prediction_outputs)


def test_forecast_is_in_input_units():
    model = make_model()
    x = series()
    shifted = model(past_values=x * 100 + 7).prediction_outputs
    torch.testing.assert_close(shifted, model(past_values=x).prediction_outputs * 100 + 7, rtol=1e-4, atol=1e-3)


def test_nan_is_missing_and_filled_by_interpolation():
    model = make_model()
    x = series()
    holes = torch.rand(x.shape, generator=torch.Generator().manual_seed(3)) < 0.2
    holes[0, :5, 0] = holes[1, -4:, 2] = True  # missing at both edges too
    with_nan = model(past_values=x.masked_fill(holes, float("nan")))
    filled = x.clone()  # what the network is fed: interpolation inside, the nearest observed value at the edges
    for b, c in torch.ones(x.shape[0], x.shape[2]).nonzero().tolist():
        kept = (~holes[b, :, c]).nonzero().squeeze(1)
        for t in holes[b, :, c].nonzero().squeeze(1).tolist():
            before, after = kept[kept < t], kept[kept > t]
            if not len(before) or not len(after):
                filled[b, t, c] = x[b, (after if not len(before) else before)[0 if not len(before) else -1], c]
            else:
                t0, t1 = before[-1].item(), after[0].item()
                filled[b, t, c] = x[b, t0, c] + (x[b, t1, c] - x[b, t0, c]) * (t - t0) / (t1 - t0)
    with_mask = model(past_values=filled, past_observed_mask=~holes)
    assert torch.isfinite(with_nan.prediction_outputs).all()
    torch.testing.assert_close(with_nan.prediction_outputs, with_mask.prediction_outputs, rtol=0, atol=1e-5)
    torch.testing.assert_close(with_nan.loc, with_mask.loc)
    torch.testing.assert_close(with_nan.scale, with_mask.scale)


def test_masked_finite_values_are_used_as_given():
    """granite-tsfm's semantics: a finite value marked unobserved leaves the statistics but keeps its value."""
    model = make_model()
    x = series()
    mask = torch.ones_like(x)
    mask[:, 10:14] = 0
    zeros = model(past_values=x.masked_fill(mask == 0, 0.0), past_observed_mask=mask)
    nan = model(past_values=x.masked_fill(mask == 0, float("nan")))
    torch.testing.assert_close(zeros.loc, nan.loc)
    assert (zeros.prediction_outputs - nan.prediction_outputs).abs().max() > 1e-3


def test_short_input_is_left_padded_with_its_first_value_and_masked():
    model = make_model()
    x = series(length=20)
    x[1, :3, 2] = float("nan")  # the padding takes the first observed value
    first = torch.where(x[:, :1].isfinite(), x[:, :1], x[:, 3:4])
    padded = torch.cat([first.expand(4, 12, 3), x.nan_to_num(0.0)], dim=1)
    padded[1, 12:15, 2] = x[1, 3, 2]
    mask = torch.cat([torch.zeros(4, 12, 3), x.isfinite().float()], dim=1)
    short = model(past_values=x).prediction_outputs
    torch.testing.assert_close(short, model(past_values=padded, past_observed_mask=mask).prediction_outputs)


def test_long_input_keeps_the_last_context():
    model = make_model()
    x = series(length=50)
    expected = model(past_values=x[:, -32:]).prediction_outputs
    torch.testing.assert_close(model(past_values=x).prediction_outputs, expected)


@pytest.mark.parametrize("scaling", ["std", "mean", None])
def test_unobserved_series_gets_finite_forecast(scaling):
    model = make_model(scaling=scaling)
    x = series()
    x[0] = float("nan")  # one series entirely missing
    out = model(past_values=x, future_values=series(length=8), future_observed_mask=torch.zeros(4, 8, 3))
    assert torch.isfinite(out.prediction_outputs).all()
    assert out.loss == 0  # nothing observed to score


def test_subtract_last_centres_on_the_last_observed_value():
    """subtract_last (PatchTST's option): the scaler's loc is the last observed value, so a model whose head outputs
    zero (no change) forecasts that value at every step, missing trailing steps skipped; it needs a scaler."""
    model = make_model(subtract_last=True, head_dropout=0.0)
    for parameter in model.head.parameters():
        torch.nn.init.zeros_(parameter)
    x = series()
    mask = torch.ones_like(x)
    mask[1, -3:] = 0  # the last three steps of one series are missing
    out = model(past_values=x, past_observed_mask=mask).prediction_outputs
    last = torch.stack([x[0, -1], x[1, -4], x[2, -1], x[3, -1]])
    torch.testing.assert_close(out, last.unsqueeze(1).expand(-1, 8, -1))
    with pytest.raises(ValueError, match="`subtract_last` .* needs `scaling`"):
        make_model(subtract_last=True, scaling=None)
    decomposed = TTMForPrediction(tiny_config(subtract_last=True, decompose=True))
    assert not decomposed.config.trend_config().subtract_last  # its parts forecast scaled values, unscaled
    assert torch.isfinite(decomposed(past_values=x).prediction_outputs).all()


@pytest.mark.parametrize(
    ("kwargs", "error", "argument"),
    [
        ({"past_values": torch.zeros(32, 3)}, ValueError, "past_values"),
        ({"past_values": torch.zeros(4, 32, 3, dtype=torch.long)}, TypeError, "past_values"),
        ({"past_values": torch.zeros(4, 32, 2)}, ValueError, "num_input_channels"),
        ({"past_values": torch.zeros(4, 32, 3), "past_observed_mask": torch.ones(4, 32, 2)}, ValueError, "mask"),
        ({"past_values": torch.full((4, 32, 3), float("inf"))}, ValueError, "inf"),
        ({"past_values": torch.zeros(4, 32, 3), "future_values": torch.zeros(4, 7, 3)}, ValueError, "future_values"),
        ({"past_values": torch.zeros(4, 32, 3), "future_values": torch.zeros(4, 8, 5)}, ValueError, "future_values"),
        (
            {"past_values": torch.zeros(4, 32, 3), "future_values": torch.full((4, 8, 3), -float("inf"))},
            ValueError,
            "future_values",
        ),
    ],
)
def test_bad_input_raises_clear_errors(kwargs, error, argument):
    with pytest.raises(error, match=argument):
        make_model()(**kwargs)


def test_frequency_token_is_checked():
    model = make_model(resolution_prefix_tuning=True, frequency_token_vocab_size=4)
    x = series()
    with pytest.raises(ValueError, match="freq_token"):
        model(past_values=x)
    with pytest.raises(ValueError, match="freq_token"):
        model(past_values=x, freq_token=torch.tensor([0, 1, 2, 4]))
    with pytest.raises(ValueError, match="freq_token"):
        model(past_values=x, freq_token=torch.tensor([0, 1]))
    tokens = torch.tensor([0, 1, 2, 3])
    with torch.no_grad():
        model.backbone.encoder.freq_mod[0].weight.normal_()
    out = model(past_values=x, freq_token=tokens).prediction_outputs
    other = model(past_values=x, freq_token=tokens.flip(0)).prediction_outputs
    assert not torch.allclose(out, other)  # the token changes the forecast


def test_static_categoricals_are_checked():
    model = make_model(decoder_mode="mix_channel", categorical_vocab_size_list=[2, 5])
    x = series()
    with pytest.raises(ValueError, match="static_categorical_values"):
        model(past_values=x)
    with pytest.raises(ValueError, match="static_categorical_values"):
        model(past_values=x, static_categorical_values=torch.zeros(4, 1, dtype=torch.long))
    with pytest.raises(ValueError, match="static_categorical_values"):
        model(past_values=x, static_categorical_values=torch.tensor([[0, 4], [1, 5], [0, 0], [1, 1]]))
    with pytest.raises(ValueError, match="static_categorical_values"):
        model(past_values=x, static_categorical_values=torch.full((4, 2), 0.5))
    out = model(past_values=x, static_categorical_values=torch.tensor([[0, 4], [1, 3], [0, 0], [1, 1]]))
    assert torch.isfinite(out.prediction_outputs).all()


def test_exogenous_future_is_required_and_used():
    model = make_model(enable_forecast_channel_mixing=True, exogenous_channel_indices=[2], fcm_use_mixer=True)
    x = series()
    with pytest.raises(ValueError, match="future_values"):
        model(past_values=x)
    with pytest.raises(ValueError, match="future_values"):  # exogenous channels need all channels
        model(past_values=x, future_values=series(length=8, channels=2))
    future = series(length=8, seed=5)
    nan_future = future.clone()
    nan_future[0, 0, 2] = float("nan")
    with pytest.raises(ValueError, match="exogenous"):
        model(past_values=x, future_values=nan_future)
    out = model(past_values=x, future_values=future)
    assert out.prediction_outputs.shape == (4, 8, 2)
    changed = future.clone()
    changed[..., 2] += 10
    assert not torch.allclose(out.prediction_outputs, model(past_values=x, future_values=changed).prediction_outputs)


def test_future_mask_and_nan_targets_leave_the_loss():
    model = make_model(loss="mae")
    x, future = series(), series(length=8, seed=7)
    mask = torch.rand(future.shape, generator=torch.Generator().manual_seed(2)) > 0.5
    out = model(past_values=x, future_values=future, future_observed_mask=mask)
    expected = (out.prediction_outputs - future).abs()[mask].mean()
    torch.testing.assert_close(out.loss, expected)
    with_nan = model(past_values=x, future_values=future.masked_fill(~mask, float("nan")))
    torch.testing.assert_close(with_nan.loss, expected)


def test_quantile_head():
    levels = [0.1, 0.25, 0.5, 0.75, 0.9]
    model = make_model(monotone_quantile_head=True, quantile_levels=levels)
    with torch.no_grad():  # large random weights: the quantiles must still never cross
        for parameter in model.head.parameters():
            parameter.normal_(0, 3)
    x, future = series(), series(length=8, seed=9)
    out = model(past_values=x, future_values=future)
    q = out.quantile_outputs
    assert q.shape == (4, 5, 8, 3)
    assert (q.diff(dim=1) >= 0).all()
    torch.testing.assert_close(out.prediction_outputs, q[:, 2])
    tau = torch.tensor(levels)[:, None, None]
    error = future.unsqueeze(1) - q
    torch.testing.assert_close(out.loss, torch.maximum(tau * error, (tau - 1) * error).mean())
    # Without 0.5, the level closest to it is the point forecast.
    other = make_model(monotone_quantile_head=True, quantile_levels=[0.2, 0.45, 0.9])(past_values=x)
    torch.testing.assert_close(other.prediction_outputs, other.quantile_outputs[:, 1])


def sine_batches(steps: int, batch: int = 32, context: int = 32, horizon: int = 8):
    generator = torch.Generator().manual_seed(0)
    t = torch.arange(context + horizon, dtype=torch.float32)
    for _ in range(steps):
        phase = torch.rand(batch, 1, 1, generator=generator) * 6.28
        period = 8 + 8 * torch.rand(batch, 1, 1, generator=generator)
        noise = 0.1 * torch.randn(batch, context + horizon, 1, generator=generator)
        y = 10 + 3 * torch.sin(2 * torch.pi * t[None, :, None] / period + phase) + noise
        yield y[:, :context], y[:, context:]


def test_toy_fit_loss_falls():
    model = make_model(num_input_channels=1)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for past, future in sine_batches(150):
        loss = model(past_values=past, future_values=future).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert sum(losses[-10:]) / 10 < 0.25 * sum(losses[:10]) / 10


def test_quantile_fit_covers_the_noise():
    torch.manual_seed(0)
    model = TTMForPrediction(
        tiny_config(num_input_channels=1, monotone_quantile_head=True, quantile_levels=[0.1, 0.5, 0.9])
    ).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for past, future in sine_batches(200):
        noisy = future + torch.randn(future.shape, generator=torch.Generator().manual_seed(len(past))) * 0.5
        loss = model(past_values=past, future_values=noisy).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    past, future = next(sine_batches(1, batch=256))
    noisy = future + torch.randn(future.shape, generator=torch.Generator().manual_seed(99)) * 0.5
    with torch.no_grad():
        q = model(past_values=past).quantile_outputs
    inside = ((noisy >= q[:, 0]) & (noisy <= q[:, 2])).float().mean().item()
    assert 0.6 < inside < 0.95, inside  # nominal 80 % interval


def test_save_load_round_trip_is_bit_exact(tmp_path):
    model = make_model(
        norm_mlp="BatchNorm", monotone_quantile_head=True, quantile_levels=[0.1, 0.5, 0.9], use_positional_encoding=True
    )
    model.save_pretrained(tmp_path)
    assert {p.name for p in tmp_path.iterdir()} == {"config.json", "model.safetensors", *CODE_FILES}
    loaded = TTMForPrediction.from_pretrained(tmp_path).eval()
    for (name, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    x = series()
    assert torch.equal(model(past_values=x).quantile_outputs, loaded(past_values=x).quantile_outputs)
    backbone = TTMModel.from_pretrained(tmp_path).eval()
    assert torch.equal(backbone(past_values=x).last_hidden_state, model(past_values=x).backbone_hidden_state)


@pytest.mark.parametrize("p", [0.2, 0.5])
def test_dropout_keeps_each_element_with_probability_one_minus_p(p):
    torch.manual_seed(0)
    dropout = TTMDropout(p).train()
    x = torch.ones(400_000, requires_grad=True)
    out = dropout(x)
    kept = out != 0
    # Every lane of the 64-bit draws (four 16-bit uniforms each) must keep 1 - p of its elements: 5 sigma bounds.
    sigma = (p * (1 - p) / (x.numel() / 4)) ** 0.5
    for lane in range(4):
        assert abs(kept.view(-1, 4)[:, lane].float().mean().item() - (1 - p)) < 5 * sigma
    both = (kept[:-1] & kept[1:]).float().mean().item()  # neighbours are independent
    assert abs(both - (1 - p) ** 2) < 5 * (p * (1 - p) / x.numel()) ** 0.5
    scale = 2**16 / round((1 - p) * 2**16)
    assert torch.equal(out[kept], torch.full_like(out[kept], scale))
    assert abs(out.mean().item() - 1) < 5 * sigma * scale  # unbiased
    out.sum().backward()
    assert torch.equal(x.grad, out.detach())  # the gradient passes the same elements, scaled the same


def test_dropout_follows_the_torch_seed_and_mode():
    dropout = TTMDropout(0.3).train()
    x = torch.randn(3, 5, 7)
    torch.manual_seed(1)
    first = dropout(x)
    assert not torch.equal(first, dropout(x))
    torch.manual_seed(1)
    assert torch.equal(first, dropout(x))
    assert dropout.eval()(x) is x
    assert TTMDropout(0.0).train()(x) is x
    assert dropout.train()(x.to(torch.bfloat16)).dtype == torch.bfloat16


def test_inference_without_autograd_matches_inference_with_autograd():
    """Without autograd the mixers work in place; the forecast must not change and the input must not either."""
    model = make_model(monotone_quantile_head=True, quantile_levels=[0.1, 0.5, 0.9], gated_attn=True)
    x = series()
    before = x.clone()
    with_grad = model(past_values=x)
    with torch.inference_mode():
        without = model(past_values=x)
    assert torch.equal(x, before)
    assert torch.equal(with_grad.prediction_outputs, without.prediction_outputs)
    assert torch.equal(with_grad.quantile_outputs, without.quantile_outputs)

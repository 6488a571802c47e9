"""What transformers' common model tests and granite-tsfm users' code expect of the model classes.

transformers' ModelTesterMixin is not part of the installed package, so its three checks that concern TTM are
written here: hidden states inside the autograd graph, `torch.export` of the bare model, and a positional table
that is right without `_init_weights`. Then the calling conventions of granite-tsfm's classes.
"""

import pytest
import torch
from tiny import tiny_config

from modeling_ttm import TTMForPrediction, TTMModel, TTMPositionalEncoding, sincos_positions

R3 = {"multi_scale": True, "register_tokens": 2, "fft_length": 2, "multi_quantile_head": True}


def series(batch: int = 3, length: int = 32, channels: int = 3) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    return torch.randn(batch, length, channels, generator=generator) * 2 + 5


@pytest.mark.parametrize("overrides", [{}, {"adaptive_patching_levels": 2}, R3], ids=["plain", "adaptive", "r3"])
def test_hidden_states_are_part_of_the_autograd_graph(overrides):
    for model in (TTMModel(tiny_config(**overrides)), TTMForPrediction(tiny_config(**overrides))):
        out = model(past_values=series(), output_hidden_states=True)
        last = out.last_hidden_state if isinstance(model, TTMModel) else out.prediction_outputs
        first = out.hidden_states[0]
        (gradient,) = torch.autograd.grad(last.sum(), first)
        assert gradient.shape == first.shape and gradient.abs().sum() > 0
        assert len(out.hidden_states) == model.config.num_layers * max(model.config.adaptive_patching_levels, 1) + (
            0 if isinstance(model, TTMModel) else model.config.decoder_num_layers
        )


@pytest.mark.parametrize(
    "overrides",
    [{}, {"resolution_prefix_tuning": True, **R3}, {"decompose": True, "residual_context_length": 16}],
    ids=["plain", "r3", "decomposed"],
)
def test_bare_model_exports_with_torch_export(overrides):
    model = TTMForPrediction(tiny_config(**overrides)).eval()
    inputs = {"past_values": series()}
    if model.config.resolution_prefix_tuning:
        inputs["freq_token"] = torch.tensor([1, 2, 3])
    program = torch.export.export(model, (), inputs)
    with torch.no_grad():
        expected = model(**inputs).prediction_outputs
    actual = program.module()(**inputs).prediction_outputs
    torch.testing.assert_close(actual, expected, rtol=0, atol=1e-6)


def test_input_checks_stay_in_eager_mode():
    model = TTMForPrediction(tiny_config()).eval()
    bad = series()
    bad[0, 3, 1] = float("inf")
    with pytest.raises(ValueError, match="past_values"):
        model(past_values=bad)


def test_sincos_positions_are_set_without_init_weights():
    config = tiny_config(use_positional_encoding=True, register_tokens=1)
    table = TTMPositionalEncoding(config).position_enc
    assert torch.equal(table, sincos_positions(config.num_patches, config.d_model))
    assert table.abs().sum() > 0


def test_granite_forward_arguments_and_spellings():
    config = tiny_config(adaptive_patching_levels=-1, monotone_quantile_head=True, quantile_levels=[0.1, 0.5, 0.9])
    assert config.adaptive_patching_levels == 0  # granite-tsfm's "off"
    model = TTMForPrediction(config).eval()
    x, y = series(), series(length=8)
    with torch.no_grad():
        by_name = model(past_values=x, future_values=y, metadata=torch.zeros(3))
        # granite-tsfm's positional order: past_values, future_values, past_observed_mask, future_observed_mask,
        # output_hidden_states, return_loss, return_dict, freq_token, static_categorical_values, metadata
        by_position = model(x, y, None, None, False, True, True, None, None, None)
        as_tuple = model(x, y, return_dict=False)
    torch.testing.assert_close(by_position.prediction_outputs, by_name.prediction_outputs)
    # the fields shared with granite-tsfm come first, in its order; the quantiles follow them
    assert list(by_name.keys()) == [
        "loss",
        "prediction_outputs",
        "backbone_hidden_state",
        "decoder_hidden_state",
        "loc",
        "scale",
        "input_data",
        "forecast_groundtruth",
        "quantile_outputs",
    ]
    assert torch.equal(as_tuple[1], by_name.prediction_outputs)
    assert torch.equal(as_tuple[2], by_name.backbone_hidden_state)
    assert torch.equal(as_tuple[list(by_name.keys()).index("quantile_outputs")], by_name.quantile_outputs)
    backbone = TTMModel(config).eval()
    with torch.no_grad():
        positional = backbone(x, None, True, True, None)  # past_values, past_observed_mask, output_hidden_states, ...
    assert positional.hidden_states is not None


def test_granite_keys_are_readable_on_the_config():
    config = tiny_config()
    assert config.num_parallel_samples == 100 and config.distribution_output == "student_t"
    assert config.register_tokens == 0 and config.mq_hidden == 8 and config.trend_d_model is None
    assert config.num_patches == 4


def test_light_mode_returns_only_the_forecasts():
    model = TTMForPrediction(tiny_config(light_mode=True, multi_quantile_head=True)).eval()
    out = model(past_values=series(), future_values=series(length=8))
    assert set(out.keys()) == {"loss", "prediction_outputs", "quantile_outputs"}


def test_decomposed_parts_add_up_to_the_forecast():
    model = TTMForPrediction(tiny_config(decompose=True, residual_context_length=16, multi_quantile_head=True)).eval()
    out = model(past_values=series())
    torch.testing.assert_close(
        out.trend_prediction_outputs + out.residual_prediction_outputs, out.prediction_outputs, rtol=0, atol=1e-5
    )
    assert out.residual_input.shape[1] == 16 and out.trend_input.shape[1] == 32
    quantiles = out.quantile_outputs
    assert quantiles.shape == (3, 9, 8, 3) and bool((quantiles.diff(dim=1) >= 0).all())
    with pytest.raises(ValueError, match="decomposed"):
        TTMModel(model.config)

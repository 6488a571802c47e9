"""TTMConfig: validation, IBM granite-tsfm config compatibility, serialisation."""

import json
import warnings

import pytest
from tiny import tiny_config

from configuration_ttm import TTMConfig, adaptive_patch_factors

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from tsfm_public.models.tinytimemixer import TinyTimeMixerConfig


@pytest.mark.parametrize(
    ("overrides", "argument"),
    [
        ({"context_length": 8}, "context_length"),
        ({"patch_stride": 4}, "patch_stride"),
        ({"prediction_filter_length": 0}, "prediction_filter_length"),
        ({"prediction_filter_length": 9}, "prediction_filter_length"),
        ({"prediction_channel_indices": [0, 3]}, "prediction_channel_indices"),
        ({"prediction_channel_indices": [1, 1]}, "prediction_channel_indices"),
        ({"exogenous_channel_indices": [-1]}, "exogenous_channel_indices"),
        ({"prediction_channel_indices": [0, 1], "exogenous_channel_indices": [1, 2]}, "overlap"),
        ({"categorical_vocab_size_list": [3]}, "decoder_mode"),
        ({"categorical_vocab_size_list": [0], "decoder_mode": "mix_channel"}, "categorical_vocab_size_list"),
        ({"mode": "flatten"}, "mode"),
        ({"decoder_mode": "mixed"}, "decoder_mode"),
        ({"loss": "nll"}, "loss"),
        ({"scaling": "robust"}, "scaling"),
        ({"norm_mlp": "RMSNorm"}, "norm_mlp"),
        ({"positional_encoding_type": "learned"}, "positional_encoding_type"),
        ({"d_model": 0}, "d_model"),
        ({"dropout": 1.5}, "dropout"),
        ({"quantile_levels": [0.5, 0.1]}, "quantile_levels"),
        ({"quantile_levels": [0.0, 0.5]}, "quantile_levels"),
        ({"quantile_levels": [0.1, 0.5, 0.5, 0.9]}, "quantile_levels"),
        ({"multi_quantile_head": True, "quantile_levels": [0.1, 0.4, 0.9]}, "0.5"),
        ({"multi_quantile_head": True, "quantile_levels": [0.1, 0.2, 0.5, 0.9]}, "as many levels below"),
        ({"multi_quantile_head": True, "monotone_quantile_head": True}, "both"),
        ({"multi_quantile_head": True, "mq_cond_path": "mean"}, "mq_cond_path"),
        ({"multi_quantile_head": True, "width_penalty_mode": "area"}, "width_penalty_mode"),
        ({"fft_length": 18}, "fft_length"),
        ({"register_tokens": -1}, "register_tokens"),
        ({"gate_mode": "tanh"}, "gate_mode"),
        ({"gate_groups": 0}, "gate_groups"),
        ({"use_register_context_gating": True}, "use_register_context_gating"),
        ({"masked_context_length": 40}, "masked_context_length"),
        ({"decoder_raw_residual": True, "register_tokens": 1}, "decoder_raw_residual"),
        ({"decompose": True, "residual_context_length": 40}, "residual_context_length"),
        ({"decompose": True, "residual_context_length": 8}, "residual_context_length"),
        ({"decompose": True, "trend_patch_length": 4}, "trend forecaster"),
        ({"self_attn": True, "self_attn_heads": 3}, "self_attn_heads"),
        ({"d_model": 21, "adaptive_patching_levels": 2}, "d_model"),
    ],
)
def test_invalid_arguments_raise_naming_the_argument(overrides, argument):
    with pytest.raises(ValueError, match=argument):
        tiny_config(**overrides)


def test_derived_values():
    config = tiny_config(resolution_prefix_tuning=True, prediction_filter_length=5, exogenous_channel_indices=[1])
    assert config.num_patches == 32 // 8 + 1
    assert config.forecast_length == 5
    assert config.prediction_channel_indices == [0, 2]  # every channel that is not exogenous
    assert config.num_targets == 2
    assert tiny_config(prediction_channel_indices=[2, 0]).prediction_channel_indices == [0, 2]
    assert tiny_config(scaling=True).scaling == "std" and tiny_config(scaling=False).scaling is None
    assert tiny_config(norm_mlp="batchnorm").norm_mlp == "BatchNorm"


def test_adaptive_patch_factors_run_finest_split_first_and_skip_narrow_levels():
    assert adaptive_patch_factors(192, 3) == [4, 2, 1]
    assert adaptive_patch_factors(16, 3) == [1, 2, 1]  # 16 / 4 = 4 is too narrow: that level keeps full patches
    assert adaptive_patch_factors(16, 0) == [1]


def test_granite_config_json_loads(tmp_path):
    granite = TinyTimeMixerConfig(
        context_length=512,
        prediction_length=96,
        patch_length=64,
        patch_stride=64,
        d_model=192,
        adaptive_patching_levels=3,
        num_layers=2,
        decoder_num_layers=2,
        decoder_d_model=128,
        resolution_prefix_tuning=True,
        frequency_token_vocab_size=8,
    )
    granite.check_and_init_preprocessing()  # what granite's models do before saving: adds num_patches etc.
    granite.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["model_type"] == "tinytimemixer" and saved["num_patches"] == 9 and saved["init_processing"]

    config = TTMConfig.from_pretrained(tmp_path)
    assert isinstance(config, TTMConfig) and config.model_type == "ttm"
    assert config.num_patches == 9
    assert (config.context_length, config.patch_length, config.d_model) == (512, 64, 192)
    assert config.resolution_prefix_tuning and config.frequency_token_vocab_size == 8
    # granite's nine levels belong to its multi-quantile head, which is off: no quantile outputs
    assert config.quantile_levels == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
    assert config.forecast_quantiles is None and not config.monotone_quantile_head
    # every granite key stays readable, with granite's value
    for key in ("num_parallel_samples", "multi_scale", "mq_hidden", "trend_d_model", "post_init", "init_linear"):
        assert getattr(config, key) == saved[key], key


def test_granite_r3_config_keeps_its_meaning(tmp_path):
    granite = TinyTimeMixerConfig(
        context_length=90,
        patch_length=16,
        patch_stride=16,
        multi_scale=True,
        register_tokens=2,
        fft_length=2,
        multi_quantile_head=True,
        decompose=True,
        residual_context_length=36,
        trend_d_model=8,
        adaptive_patching_levels=-1,
    )
    granite.save_pretrained(tmp_path)
    config = TTMConfig.from_pretrained(tmp_path)
    assert config.multi_quantile_head and config.forecast_quantiles == granite.quantile_levels
    assert config.decompose and config.residual_config().context_length == 36
    assert config.trend_config().d_model == 8 and config.trend_config().scaling is None
    assert config.adaptive_patching_levels == 0  # granite's negative "off"
    assert config.num_patches == 5 + 2 + 1 + 2 + 2  # patches at 3 scales, then register and frequency tokens


def test_granite_options_that_are_not_implemented_are_refused(tmp_path):
    TinyTimeMixerConfig(use_register_context_gating=True).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="use_register_context_gating"):
        TTMConfig.from_pretrained(tmp_path)


def test_configs_saved_before_the_multi_quantile_head_keep_their_quantile_head(tmp_path):
    config = tiny_config(monotone_quantile_head=True, quantile_levels=[0.1, 0.5, 0.9]).to_dict()
    del config["monotone_quantile_head"]  # as written before the option existed
    (tmp_path / "config.json").write_text(json.dumps(config))
    loaded = TTMConfig.from_pretrained(tmp_path)
    assert loaded.monotone_quantile_head and loaded.forecast_quantiles == [0.1, 0.5, 0.9]


def test_round_trip_and_auto_map(tmp_path):
    config = tiny_config(
        monotone_quantile_head=True,
        quantile_levels=[0.1, 0.5, 0.9],
        categorical_vocab_size_list=[4],
        decoder_mode="mix_channel",
    )
    config.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["model_type"] == "ttm"
    assert saved["auto_map"]["AutoModelForTimeSeriesPrediction"] == "modeling_ttm.TTMForPrediction"
    assert saved["auto_map"]["AutoModel"] == "modeling_ttm.TTMModel"
    loaded = TTMConfig.from_pretrained(tmp_path)
    assert loaded.to_dict() == config.to_dict()

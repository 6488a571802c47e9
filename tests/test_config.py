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
        ({"context_length": 30}, "context_length"),
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
    assert config.quantile_levels is None  # granite's levels belong to its own multi-quantile head, which is off
    for key in ("init_processing", "multi_scale", "mq_hidden", "trend_d_model", "post_init"):
        assert key not in config.to_dict()


def test_granite_options_that_are_not_implemented_are_refused(tmp_path):
    TinyTimeMixerConfig(register_tokens=2).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="register_tokens"):
        TTMConfig.from_pretrained(tmp_path)


def test_round_trip_and_auto_map(tmp_path):
    config = tiny_config(quantile_levels=[0.1, 0.5, 0.9], categorical_vocab_size_list=[4], decoder_mode="mix_channel")
    config.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["model_type"] == "ttm"
    assert saved["auto_map"]["AutoModelForTimeSeriesPrediction"] == "modeling_ttm.TTMForPrediction"
    assert saved["auto_map"]["AutoModel"] == "modeling_ttm.TTMModel"
    loaded = TTMConfig.from_pretrained(tmp_path)
    assert loaded.to_dict() == config.to_dict()

"""Named granite-tsfm reference models for the IBM-parity tests.

Each `ParityCase` is a granite `TinyTimeMixerConfig` plus a description of the inputs to feed it. `save_granite_model`
builds the granite model at a seeded random init, perturbs every tensor (so that identity LayerNorms, fresh BatchNorm
statistics or zero biases cannot hide a mismatch) and saves it with granite's own `save_pretrained`.
"""

from dataclasses import dataclass, field
from pathlib import Path

import torch
from tsfm_public.models.tinytimemixer import TinyTimeMixerConfig, TinyTimeMixerForPrediction
from tsfm_public.models.tinytimemixer.modeling_tinytimemixer import TinyTimeMixerForDecomposedPrediction

BATCH_SIZE = 4

# A small architecture shared by most cases: 4 patches of 8 points, 3 channels.
SMALL = {
    "context_length": 32,
    "patch_length": 8,
    "patch_stride": 8,
    "prediction_length": 12,
    "num_input_channels": 3,
    "d_model": 16,
    "num_layers": 2,
    "expansion_factor": 2,
    "decoder_num_layers": 2,
    "decoder_d_model": 8,
}

# The published r2 512-96 architecture (IBM model card: 805,280 parameters).
R2_512_96 = {
    "context_length": 512,
    "patch_length": 64,
    "patch_stride": 64,
    "prediction_length": 96,
    "num_input_channels": 2,
    "d_model": 192,
    "adaptive_patching_levels": 3,
    "num_layers": 2,
    "decoder_num_layers": 2,
    "decoder_d_model": 128,
    "expansion_factor": 2,
    "scaling": "std",
}

EXOGENOUS = {
    "num_input_channels": 4,
    "prediction_channel_indices": [0, 2],
    "exogenous_channel_indices": [1, 3],
    "enable_forecast_channel_mixing": True,
}


@dataclass(frozen=True)
class ParityCase:
    """A granite configuration and the inputs to compare on.

    past_length: time steps of `past_values` (None: context_length); shorter inputs are left-padded by our model,
        and granite gets the full-length input ours builds (tests/test_parity.py).
    past_mask: "none" (no mask), "ones" (all observed) or "partial" (some zeros; those values are zeroed too).
    nan: put NaN into some past values (granite-tsfm then reads the input our model builds, see test_parity).
    future_mask: pass a `future_observed_mask` with some zeros.
    train: run in train mode (the config must then disable dropout).
    num_parameters: expected parameter count, when a published figure exists.
    """

    name: str
    config: dict = field(default_factory=dict)
    past_length: int | None = None
    past_mask: str = "none"
    future_mask: bool = False
    train: bool = False
    num_parameters: int | None = None
    nan: bool = False


CASES = [
    ParityCase("r2_512_96", R2_512_96, num_parameters=805_280),
    ParityCase("batchnorm_mean_scaling", {**SMALL, "norm_mlp": "BatchNorm", "scaling": "mean"}),
    ParityCase(
        "prefix_tuning_freq_token",
        {
            **SMALL,
            "resolution_prefix_tuning": True,
            "frequency_token_vocab_size": 8,
            "adaptive_patching_levels": 2,
            "decoder_raw_residual": True,
        },
    ),
    ParityCase(
        "mix_channel_static_categoricals",
        {**SMALL, "mode": "mix_channel", "decoder_mode": "mix_channel", "categorical_vocab_size_list": [3, 5]},
    ),
    ParityCase(
        "fcm_exogenous_mixer",
        {**SMALL, **EXOGENOUS, "fcm_use_mixer": True, "fcm_context_length": 2, "fcm_mix_layers": 2},
        future_mask=True,
    ),
    ParityCase(
        "fcm_reconcile_zero_prefill",
        {
            **SMALL,
            "enable_forecast_channel_mixing": True,
            "fcm_prepend_past": False,
            "fcm_gated_attn": False,
            "fcm_context_length": 1,
        },
    ),
    ParityCase("fcm_no_context", {**SMALL, **EXOGENOUS, "fcm_context_length": 0}),
    ParityCase(
        "prediction_filter_length",
        {**SMALL, "prediction_filter_length": 5, "prediction_channel_indices": [0, 2]},
        future_mask=True,
    ),
    ParityCase(
        "prediction_filter_length_fcm",
        {**SMALL, **EXOGENOUS, "prediction_filter_length": 7, "fcm_use_mixer": True},
    ),
    ParityCase("short_input", SMALL, past_length=21, past_mask="ones"),
    ParityCase("short_input_partial_mask", SMALL, past_length=27, past_mask="partial"),
    ParityCase("partial_mask_mean_scaling", {**SMALL, "norm_mlp": "BatchNorm", "scaling": "mean"}, past_mask="partial"),
    ParityCase("long_input_truncated", SMALL, past_length=45),
    ParityCase("mae_loss", {**SMALL, "loss": "mae"}, future_mask=True),
    ParityCase("huber_loss", {**SMALL, "loss": "huber", "huber_delta": 0.5}, future_mask=True),
    ParityCase("pinball_loss", {**SMALL, "loss": "pinball", "quantile": 0.8}, future_mask=True),
    ParityCase(
        "self_attention_sincos_positions",
        {
            **SMALL,
            "self_attn": True,
            "self_attn_heads": 2,
            "use_positional_encoding": True,
            "adaptive_patching_levels": 2,
        },
    ),
    ParityCase(
        "random_positions_no_gating",
        {**SMALL, "use_positional_encoding": True, "positional_encoding_type": "random", "gated_attn": False},
    ),
    ParityCase("no_decoder_no_scaling", {**SMALL, "use_decoder": False, "scaling": None}),
    ParityCase(
        "decoder_adaptive_patching_no_adapter",
        {**SMALL, "decoder_d_model": 16, "decoder_adaptive_patching_levels": 2, "decoder_raw_residual": True},
    ),
    ParityCase(
        "train_batchnorm_mix_channel",
        {
            **SMALL,
            "norm_mlp": "BatchNorm",
            "mode": "mix_channel",
            "decoder_mode": "mix_channel",
            "dropout": 0.0,
            "head_dropout": 0.0,
        },
        past_mask="partial",
        train=True,
    ),
]


# TTM-R3 (granite-tsfm 0.3.11): every option alone, then combinations shaped like IBM's published revisions.
R3_PRETRAINING = {"multi_scale": True, "register_tokens": 2, "fft_length": 2, "multi_quantile_head": True}
DECOMPOSED = {"decompose": True, "residual_context_length": 16}
MQ_FLATTEN = {
    "multi_quantile_head": True,
    "mq_use_decoder_pool": True,
    "mq_cond_path": "flatten",
    "mq_cond_mode": "concat",
    "mq_decoder_d_model": 4,
    "point_extra_weight": 0.5,
    "penalize_large_width_ratio": 0.1,
    "width_penalty_mode": "wis",
}


def _revision(context: int, horizon: int, patch: int, width: int, residual: int | None = None) -> dict:
    """An R3 architecture shaped like IBM's revision `<context>-<horizon>[-dec-<residual>]-r3` (sizes scaled down)."""
    shape = {
        **R3_PRETRAINING,
        "context_length": context,
        "prediction_length": horizon,
        "patch_length": patch,
        "patch_stride": patch,
        "num_input_channels": 2,
        "d_model": width,
        "adaptive_patching_levels": 2,
        "num_layers": 1,
        "decoder_num_layers": 1,
        "decoder_d_model": width // 2,
    }
    if residual is not None:
        shape.update(decompose=True, residual_context_length=residual, trend_d_model=width // 2)
    return shape


R3_CASES = [
    ParityCase("r3_multi_scale", {**SMALL, "multi_scale": True}),
    ParityCase("r3_register_tokens", {**SMALL, "register_tokens": 3}),
    ParityCase("r3_fft_tokens", {**SMALL, "fft_length": 3}),
    ParityCase(
        "r3_fft_one_token_mlp_no_dc",
        {**SMALL, "fft_length": 2, "use_fft_embedding": False, "get_one_freq_emb": True, "fft_ignore_dc": True},
    ),
    ParityCase("r3_base_norm_always", {**SMALL, "enable_base_norm_always": True, "resolution_prefix_tuning": True}),
    ParityCase("r3_gate_sigmoid", {**SMALL, "gate_mode": "sigmoid", "adaptive_patching_levels": 2}),
    ParityCase(
        "r3_gate_group_sigmoid_mix_channel",
        {**SMALL, "gate_mode": "group_sigmoid", "gate_groups": 3, "mode": "mix_channel", **EXOGENOUS},
    ),
    ParityCase("r3_gate_glu_fcm_mixer", {**SMALL, "gate_mode": "glu", **EXOGENOUS, "fcm_use_mixer": True}),
    ParityCase("r3_multi_quantile_head", {**SMALL, "multi_quantile_head": True}),
    ParityCase(
        "r3_mq_pool_add_q50_mean_levels",
        {
            **SMALL,
            "multi_quantile_head": True,
            "mq_use_decoder_pool": True,
            "mq_q50_type": "mean",
            "quantile_levels": [0.05, 0.25, 0.5, 0.75, 0.95],
            "mq_kernel_size": 5,
        },
    ),
    ParityCase("r3_mq_flatten_concat_penalties", {**SMALL, **MQ_FLATTEN}),
    ParityCase(
        "r3_mq_channel_subset_filter",
        {**SMALL, **EXOGENOUS, "multi_quantile_head": True, "prediction_filter_length": 7},
    ),
    ParityCase("r3_decomposed_mse", {**SMALL, **DECOMPOSED}),
    ParityCase(
        "r3_decomposed_trend_overrides_quantiles",
        {
            **SMALL,
            **DECOMPOSED,
            "multi_quantile_head": True,
            "combine_quantiles_via_variance": True,
            "trend_patch_length": 4,
            "trend_patch_stride": 4,
            "trend_d_model": 8,
            "trend_num_layers": 1,
            "trend_register_tokens": 1,
            "trend_loss_weight": 0.5,
            "residual_loss_weight": 2.0,
            "point_extra_weight": 1.0,
        },
    ),
    ParityCase("r3_light_mode", {**SMALL, **R3_PRETRAINING, "light_mode": True}),
    ParityCase("r3_pretraining_options", {**SMALL, **R3_PRETRAINING}),
    ParityCase("r3_512_30_dec_90", _revision(512, 30, 64, 32, residual=90)),
    ParityCase("r3_512_30_dec_90_lite", _revision(512, 30, 64, 16, residual=90)),
    ParityCase("r3_1024_48_dec_512", _revision(1024, 48, 128, 32, residual=512)),
    ParityCase("r3_1024_48_dec_512_lite", _revision(1024, 48, 128, 16, residual=512)),
    ParityCase("r3_2048_96", _revision(2048, 96, 128, 32)),
    ParityCase("r3_2048_96_lite", _revision(2048, 96, 128, 16)),
    ParityCase("r3_2048_720", _revision(2048, 720, 128, 32)),
    ParityCase("r3_2048_720_lite", _revision(2048, 720, 128, 16)),
    ParityCase("r3_short_input_partial_mask", {**SMALL, **R3_PRETRAINING}, past_length=27, past_mask="partial"),
    ParityCase("r3_decomposed_short_nan", {**SMALL, **DECOMPOSED, **R3_PRETRAINING}, past_length=29, nan=True),
    ParityCase("r3_nan", {**SMALL, **R3_PRETRAINING}, nan=True),  # granite ignores future masks with quantile heads
    ParityCase(
        "r3_train_decomposed",
        {**SMALL, **DECOMPOSED, **R3_PRETRAINING, "dropout": 0.0, "head_dropout": 0.0, "norm_mlp": "BatchNorm"},
        train=True,
    ),
]


def granite_class(config: dict) -> type:
    """granite-tsfm's class for a config: decomposed models have a class of their own there."""
    return TinyTimeMixerForDecomposedPrediction if config.get("decompose") else TinyTimeMixerForPrediction


def _perturb(model: torch.nn.Module, generator: torch.Generator) -> None:
    """Add noise to every parameter and randomise BatchNorm running statistics."""
    with torch.no_grad():
        for param in model.parameters():
            param.add_(0.05 * torch.randn(param.shape, generator=generator))
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm1d):
                module.running_mean.copy_(0.2 * torch.randn(module.running_mean.shape, generator=generator))
                module.running_var.copy_(0.5 + torch.rand(module.running_var.shape, generator=generator))
                module.num_batches_tracked.fill_(7)


def save_granite_model(case: ParityCase, directory: Path, seed: int = 0) -> TinyTimeMixerForPrediction:
    """Build the case's granite model at a seeded random init, perturb it and `save_pretrained` it to `directory`."""
    torch.manual_seed(seed)
    model = granite_class(case.config)(TinyTimeMixerConfig(**case.config))
    _perturb(model, torch.Generator().manual_seed(seed + 1))
    model.save_pretrained(directory)
    return model


def build_inputs(case: ParityCase, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random forward kwargs for the case: per-channel offsets and scales, masks, frequency tokens, categoricals."""
    cfg = TinyTimeMixerConfig(**case.config)
    generator = torch.Generator().manual_seed(seed)
    channels = cfg.num_input_channels
    past_length = case.past_length or cfg.context_length
    loc = 4 * torch.rand(channels, generator=generator) - 2
    scale = 0.5 + 2.5 * torch.rand(channels, generator=generator)

    def series(length: int) -> torch.Tensor:
        return loc + scale * torch.randn(BATCH_SIZE, length, channels, generator=generator)

    inputs = {"past_values": series(past_length), "future_values": series(cfg.prediction_length)}
    if case.past_mask != "none":
        mask = torch.ones(BATCH_SIZE, past_length, channels)
        if case.past_mask == "partial":
            mask = (torch.rand(mask.shape, generator=generator) > 0.25).float()
            inputs["past_values"] = inputs["past_values"] * mask
        inputs["past_observed_mask"] = mask
    if case.nan:
        missing = torch.rand(inputs["past_values"].shape, generator=generator) < 0.1
        inputs["past_values"] = inputs["past_values"].masked_fill(missing, float("nan"))
    if case.future_mask:
        shape = inputs["future_values"].shape
        inputs["future_observed_mask"] = (torch.rand(shape, generator=generator) > 0.3).float()
    if cfg.resolution_prefix_tuning:
        inputs["freq_token"] = torch.randint(cfg.frequency_token_vocab_size, (BATCH_SIZE,), generator=generator)
    if cfg.categorical_vocab_size_list:
        inputs["static_categorical_values"] = torch.stack(
            [torch.randint(vocab, (BATCH_SIZE,), generator=generator) for vocab in cfg.categorical_vocab_size_list],
            dim=1,
        )
    return inputs

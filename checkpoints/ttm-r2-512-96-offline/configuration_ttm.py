"""Configuration of the Tiny Time Mixer (TTM) forecaster."""

from __future__ import annotations

from typing import Any

from transformers import PreTrainedConfig

# Keys that configs written by IBM's granite-tsfm carry but that do not change the forward pass of the
# architecture implemented here (derived values, initialisation policy, options of heads not implemented here).
_GRANITE_IGNORED_KEYS = frozenset(
    {
        "init_processing",
        "num_patches",
        "patch_last",
        "post_init",
        "init_linear",
        "init_embed",
        "distribution_output",
        "num_parallel_samples",
        "mask_value",
        "light_mode",
        "point_extra_weight",
        "use_fft_embedding",
        "residual_context_length",
        "forecast_loss_type",
        "trend_loss_weight",
        "residual_loss_weight",
        "joint_loss_weight",
        "combine_quantiles_via_variance",
        "penalize_large_width_ratio",
        "width_penalty_mode",
    }
)
_GRANITE_IGNORED_PREFIXES = ("mq_", "trend_")

# granite-tsfm options that this implementation does not provide, with the value that means "off".
_GRANITE_UNSUPPORTED_OPTIONS = {
    "multi_scale": False,
    "register_tokens": 0,
    "fft_length": 0,
    "multi_quantile_head": False,
    "decompose": False,
    "masked_context_length": None,
    "enable_base_norm_always": False,
    "use_register_context_gating": False,
    "gate_mode": "softmax",
}

_MODES = ("common_channel", "mix_channel")
# Written into every config so that a saved checkpoint loads with `trust_remote_code=True` and nothing installed.
_AUTO_MAP = {
    "AutoConfig": "configuration_ttm.TTMConfig",
    "AutoModel": "modeling_ttm.TTMModel",
    "AutoModelForTimeSeriesPrediction": "modeling_ttm.TTMForPrediction",
}
_LOSSES = ("mse", "mae", "huber", "pinball")
_NORMS = {"layernorm": "LayerNorm", "batchnorm": "BatchNorm"}


def adaptive_patch_factors(width: int, levels: int) -> list[int]:
    """Split factors of the adaptive-patching blocks, in the order they run (coarsest split first).

    Level ``i`` reshapes ``(num_patches, width)`` to ``(num_patches * 2**i, width / 2**i)``. A level whose
    width would be 4 or less runs at the original resolution instead (factor 1). ``levels == 0`` means a
    single block at the original resolution.
    """
    if levels <= 0:
        return [1]
    return [2**i if width // 2**i > 4 else 1 for i in reversed(range(levels))]


class TTMConfig(PreTrainedConfig):
    r"""
    Configuration of a [`TTMModel`] / [`TTMForPrediction`]: a Tiny Time Mixer (arXiv 2401.03955).

    The names and meanings of all arguments match the configs of IBM's published TTM checkpoints, so a
    `config.json` written by granite-tsfm (`model_type` "tinytimemixer") loads into this class; its derived keys
    (`num_patches`, `init_processing`, ...) are dropped, and options of that toolkit that this implementation
    does not provide raise a `ValueError` when switched on.

    Args:
        context_length (`int`, defaults to 64):
            Number of past time steps the model reads. Longer inputs keep their last `context_length` steps; shorter
            inputs are left-padded with zeros that are marked unobserved. Must be a multiple of `patch_length`.
        prediction_length (`int`, defaults to 16):
            Number of future time steps the head forecasts.
        num_input_channels (`int`, defaults to 1):
            Number of channels (variates) of `past_values`: targets and exogenous channels together.
        patch_length (`int`, defaults to 8):
            Length of the non-overlapping patches the context is cut into.
        patch_stride (`int`, defaults to 8):
            Step between patches. Must equal `patch_length` (patches never overlap in TTM).
        d_model (`int`, defaults to 16):
            Width of a patch embedding in the backbone.
        num_layers (`int`, defaults to 3):
            Number of TTM layers per backbone block (per adaptive-patching level when that is on).
        expansion_factor (`int`, defaults to 2):
            Hidden size of every mixer MLP, as a multiple of its input size.
        dropout (`float`, defaults to 0.2):
            Dropout inside the backbone mixer MLPs.
        mode (`str`, defaults to `"common_channel"`):
            `"common_channel"`: channels are processed independently with shared weights. `"mix_channel"`: every
            backbone layer also mixes across channels.
        gated_attn (`bool`, defaults to `True`):
            Whether every mixer multiplies its output by a softmax gate computed from that output.
        norm_mlp (`str`, defaults to `"LayerNorm"`):
            Pre-normalisation of every mixer: `"LayerNorm"` or `"BatchNorm"` (statistics over all batch, channel
            and patch positions).
        norm_eps (`float`, defaults to 1e-5):
            Epsilon of the normalisation layers.
        self_attn (`bool`, defaults to `False`):
            Whether every patch mixer adds multi-head self-attention across patches.
        self_attn_heads (`int`, defaults to 1):
            Number of heads of that self-attention; must divide every mixer width.
        use_positional_encoding (`bool`, defaults to `False`):
            Whether a positional encoding is added to the patch embeddings.
        positional_encoding_type (`str`, defaults to `"sincos"`):
            `"sincos"` (fixed) or `"random"` (learned) positional encoding.
        scaling (`str` or `None`, defaults to `"std"`):
            Per-series, per-channel scaling over observed points: `"std"` (mean / standard deviation), `"mean"`
            (mean absolute value) or `None`. The forecast is scaled back inside the model, so outputs and loss are in
            the units of the input. `True` / `False` are read as `"std"` / `None`.
        loss (`str` or `None`, defaults to `"mse"`):
            Training loss: `"mse"`, `"mae"`, `"huber"` or `"pinball"`; `None` returns no loss. Ignored when
            `quantile_levels` is set.
        quantile (`float`, defaults to 0.5):
            Quantile of the `"pinball"` loss.
        huber_delta (`float`, defaults to 1.0):
            Delta of the `"huber"` loss.
        head_dropout (`float`, defaults to 0.2):
            Dropout in the decoder, before the forecast head and in the forecast channel mixer.
        use_decoder (`bool`, defaults to `True`):
            Whether a decoder (adapter + TTM layers) runs between backbone and head.
        decoder_num_layers (`int`, defaults to 8):
            Number of TTM layers in the decoder.
        decoder_d_model (`int`, defaults to 8):
            Width of the decoder; an adapter projects `d_model` to it when they differ.
        decoder_mode (`str`, defaults to `"common_channel"`):
            Channel mode of the decoder, as `mode`. `"mix_channel"` is how channel correlations are learned when
            finetuning, and is required by static categorical variables.
        decoder_raw_residual (`bool`, defaults to `False`):
            Whether an embedding of the raw (scaled) patches is added to the decoder input.
        decoder_adaptive_patching_levels (`int`, defaults to 0):
            Adaptive patching levels of the decoder, as `adaptive_patching_levels`.
        adaptive_patching_levels (`int`, defaults to 0):
            Number of adaptive-patching levels of the backbone. Level `i` runs `num_layers` layers on patches split
            `2**i` times finer (`d_model / 2**i` wide); the finest split runs first. 0 turns it off.
        resolution_prefix_tuning (`bool`, defaults to `False`):
            Whether a learned embedding of the data's sampling frequency (`freq_token` in the forward call) is
            prepended to the patches as one extra patch.
        frequency_token_vocab_size (`int`, defaults to 5):
            Number of distinct frequency tokens.
        prediction_channel_indices (`list[int]`, *optional*):
            Channels to forecast (the targets); all channels when `None`. Stored sorted: forecasts come out in
            increasing channel order. Defaults to all non-exogenous channels when `exogenous_channel_indices` is set.
        exogenous_channel_indices (`list[int]`, *optional*):
            Channels whose future values are known (passed in `future_values`) and used by the forecast channel
            mixer. Must not overlap `prediction_channel_indices`.
        enable_forecast_channel_mixing (`bool`, defaults to `False`):
            Whether a residual mixer refines the head's forecast using all target channels and the known future of
            the exogenous channels.
        fcm_context_length (`int`, defaults to 1):
            Each forecast step is mixed together with this many neighbouring steps on each side.
        fcm_gated_attn (`bool`, defaults to `True`):
            Whether the forecast channel mixer uses gated attention.
        fcm_use_mixer (`bool`, defaults to `False`):
            Whether the forecast channel mixer runs TTM layers across channels before its output layer.
        fcm_mix_layers (`int`, defaults to 2):
            Number of those TTM layers.
        fcm_prepend_past (`bool`, defaults to `True`):
            Whether the steps before the first forecast step are the last observed values (otherwise zeros).
        fcm_prepend_past_offset (`int`, *optional*):
            When set, those steps are taken this many steps before the end of the context.
        categorical_vocab_size_list (`list[int]`, *optional*):
            Vocabulary size of each static categorical variable (`static_categorical_values` in the forward call).
            Each gets an embedding appended to the decoder's channels; requires `decoder_mode="mix_channel"`.
        prediction_filter_length (`int`, *optional*):
            When set, only the first `prediction_filter_length` forecast steps are returned and scored.
        init_std (`float`, defaults to 0.02):
            Standard deviation of the normal initialisation of linear and embedding weights.
        quantile_levels (`list[float]`, *optional*):
            Quantile levels in (0, 1), strictly increasing. When set, the head also returns `quantile_outputs`,
            monotone in the level by construction, trained with the mean pinball loss over all levels; the level
            closest to 0.5 is `prediction_outputs`. Off by default, so IBM checkpoints are unaffected.

    Example:

    ```python
    >>> from configuration_ttm import TTMConfig
    >>> from modeling_ttm import TTMForPrediction

    >>> config = TTMConfig(context_length=512, prediction_length=96, patch_length=64, patch_stride=64)
    >>> model = TTMForPrediction(config)
    ```"""

    model_type = "ttm"
    attribute_map = {"hidden_size": "d_model", "num_hidden_layers": "num_layers"}

    context_length: int = 64
    prediction_length: int = 16
    num_input_channels: int = 1
    patch_length: int = 8
    patch_stride: int = 8
    d_model: int = 16
    num_layers: int = 3
    expansion_factor: int = 2
    dropout: float = 0.2
    mode: str = "common_channel"
    gated_attn: bool = True
    norm_mlp: str = "LayerNorm"
    norm_eps: float = 1e-5
    self_attn: bool = False
    self_attn_heads: int = 1
    use_positional_encoding: bool = False
    positional_encoding_type: str = "sincos"
    scaling: str | bool | None = "std"
    loss: str | None = "mse"
    quantile: float = 0.5
    huber_delta: float = 1.0
    head_dropout: float = 0.2
    use_decoder: bool = True
    decoder_num_layers: int = 8
    decoder_d_model: int = 8
    decoder_mode: str = "common_channel"
    decoder_raw_residual: bool = False
    decoder_adaptive_patching_levels: int = 0
    adaptive_patching_levels: int = 0
    resolution_prefix_tuning: bool = False
    frequency_token_vocab_size: int = 5
    prediction_channel_indices: list[int] | None = None
    exogenous_channel_indices: list[int] | None = None
    enable_forecast_channel_mixing: bool = False
    fcm_context_length: int = 1
    fcm_gated_attn: bool = True
    fcm_use_mixer: bool = False
    fcm_mix_layers: int = 2
    fcm_prepend_past: bool = True
    fcm_prepend_past_offset: int | None = None
    categorical_vocab_size_list: list[int] | None = None
    prediction_filter_length: int | None = None
    init_std: float = 0.02
    quantile_levels: list[float] | None = None

    def __post_init__(self, **kwargs: Any) -> None:
        kwargs.pop("model_type", None)
        if "multi_quantile_head" in kwargs and not kwargs["multi_quantile_head"]:
            # A granite-tsfm config: its `quantile_levels` only configure its (absent) multi-quantile head.
            self.quantile_levels = None
        for key in list(kwargs):
            if key in _GRANITE_IGNORED_KEYS or key.startswith(_GRANITE_IGNORED_PREFIXES):
                kwargs.pop(key)
            elif key in _GRANITE_UNSUPPORTED_OPTIONS:
                value = kwargs.pop(key)
                if value != _GRANITE_UNSUPPORTED_OPTIONS[key]:
                    raise ValueError(
                        f"`{key}={value!r}` is a granite-tsfm option that TTMConfig does not implement; "
                        f"only `{key}={_GRANITE_UNSUPPORTED_OPTIONS[key]!r}` is supported."
                    )
        self.scaling = {True: "std", False: None, "none": None}.get(self.scaling, self.scaling)
        if isinstance(self.norm_mlp, str) and self.norm_mlp.lower() in _NORMS:
            self.norm_mlp = _NORMS[self.norm_mlp.lower()]
        if self.exogenous_channel_indices is not None and self.prediction_channel_indices is None:
            exogenous = set(self.exogenous_channel_indices)
            self.prediction_channel_indices = [c for c in range(self.num_input_channels) if c not in exogenous]
        for name in ("prediction_channel_indices", "exogenous_channel_indices"):
            if isinstance(getattr(self, name), (list, tuple)):
                setattr(self, name, sorted(getattr(self, name)))
        super().__post_init__(**kwargs)
        self.auto_map = {**_AUTO_MAP, **self.__dict__.get("auto_map", {})}
        self._validate()

    @classmethod
    def get_config_dict(cls, *args: Any, **kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        config_dict, kwargs = super().get_config_dict(*args, **kwargs)
        if config_dict.get("model_type") == "tinytimemixer":  # a granite-tsfm checkpoint: read it as ours
            config_dict["model_type"] = cls.model_type
        return config_dict, kwargs

    @property
    def num_patches(self) -> int:
        """Number of patches the mixers see: the context patches plus the frequency-token patch, if any."""
        return self.context_length // self.patch_length + int(self.resolution_prefix_tuning)

    @property
    def num_targets(self) -> int:
        """Number of forecast channels."""
        indices = self.prediction_channel_indices
        return self.num_input_channels if indices is None else len(indices)

    @property
    def forecast_length(self) -> int:
        """Number of forecast steps returned: `prediction_filter_length` or `prediction_length`."""
        return self.prediction_filter_length or self.prediction_length

    def _validate(self) -> None:
        positive = (
            "context_length",
            "prediction_length",
            "num_input_channels",
            "patch_length",
            "d_model",
            "num_layers",
            "expansion_factor",
            "self_attn_heads",
            "decoder_num_layers",
            "decoder_d_model",
            "frequency_token_vocab_size",
            "fcm_mix_layers",
        )
        for name in positive:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")
        for name in ("adaptive_patching_levels", "decoder_adaptive_patching_levels", "fcm_context_length"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"`{name}` must be a non-negative integer, got {value!r}.")
        for name in ("dropout", "head_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"`{name}` must be in [0, 1), got {getattr(self, name)!r}.")
        if self.patch_stride != self.patch_length:
            raise ValueError(
                f"`patch_stride` ({self.patch_stride}) must equal `patch_length` ({self.patch_length}): "
                "TTM patches do not overlap."
            )
        if self.context_length % self.patch_length:
            raise ValueError(
                f"`context_length` ({self.context_length}) must be a multiple of `patch_length` ({self.patch_length})."
            )
        for name in ("mode", "decoder_mode"):
            if getattr(self, name) not in _MODES:
                raise ValueError(f"`{name}` must be one of {_MODES}, got {getattr(self, name)!r}.")
        if self.loss is not None and self.loss not in _LOSSES:
            raise ValueError(f"`loss` must be one of {_LOSSES} or None, got {self.loss!r}.")
        if self.scaling not in ("std", "mean", None):
            raise ValueError(f"`scaling` must be 'std', 'mean' or None, got {self.scaling!r}.")
        if self.norm_mlp not in _NORMS.values():
            raise ValueError(f"`norm_mlp` must be 'LayerNorm' or 'BatchNorm', got {self.norm_mlp!r}.")
        if self.positional_encoding_type not in ("sincos", "random"):
            raise ValueError(
                f"`positional_encoding_type` must be 'sincos' or 'random', got {self.positional_encoding_type!r}."
            )
        if not 0.0 < self.quantile < 1.0:
            raise ValueError(f"`quantile` must be in (0, 1), got {self.quantile!r}.")
        if self.huber_delta <= 0:
            raise ValueError(f"`huber_delta` must be positive, got {self.huber_delta!r}.")
        if (
            self.prediction_filter_length is not None
            and not 1 <= self.prediction_filter_length <= self.prediction_length
        ):
            raise ValueError(
                f"`prediction_filter_length` must be between 1 and `prediction_length` ({self.prediction_length}), "
                f"got {self.prediction_filter_length!r}."
            )
        self._validate_channels()
        self._validate_widths()
        if self.categorical_vocab_size_list is not None:
            sizes = self.categorical_vocab_size_list
            if not sizes or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in sizes):
                raise ValueError(
                    f"`categorical_vocab_size_list` must be a non-empty list of positive ints, got {sizes!r}."
                )
            if not self.use_decoder or self.decoder_mode != "mix_channel":
                raise ValueError(
                    "static categorical variables (`categorical_vocab_size_list`) need `use_decoder=True` and "
                    f"`decoder_mode='mix_channel'`, got use_decoder={self.use_decoder}, "
                    f"decoder_mode={self.decoder_mode!r}."
                )
        if self.enable_forecast_channel_mixing:
            past_needed = self.fcm_context_length + (self.fcm_prepend_past_offset or 0)
            if self.fcm_prepend_past_offset is not None and self.fcm_prepend_past_offset < 1:
                raise ValueError(f"`fcm_prepend_past_offset` must be None or >= 1, got {self.fcm_prepend_past_offset}.")
            if self.fcm_prepend_past and past_needed > self.context_length:
                raise ValueError(
                    f"`fcm_context_length` + `fcm_prepend_past_offset` ({past_needed}) exceeds `context_length`."
                )
        if self.quantile_levels is not None:
            levels = list(self.quantile_levels)
            if not levels or any(not isinstance(q, (int, float)) or not 0.0 < q < 1.0 for q in levels):
                raise ValueError(f"`quantile_levels` must be a non-empty list of floats in (0, 1), got {levels!r}.")
            if any(b <= a for a, b in zip(levels[:-1], levels[1:], strict=True)):
                raise ValueError(f"`quantile_levels` must be strictly increasing, got {levels!r}.")
            self.quantile_levels = [float(q) for q in levels]

    def _validate_channels(self) -> None:
        n = self.num_input_channels
        for name in ("prediction_channel_indices", "exogenous_channel_indices"):
            indices = getattr(self, name)
            if indices is None:
                continue
            if any(isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < n for i in indices):
                raise ValueError(f"`{name}` must hold channel indices in [0, {n}), got {indices!r}.")
            if len(set(indices)) != len(indices):
                raise ValueError(f"`{name}` contains duplicates: {indices!r}.")
            if not indices and name == "prediction_channel_indices":
                raise ValueError("`prediction_channel_indices` must name at least one channel.")
        if self.prediction_channel_indices is not None and self.exogenous_channel_indices is not None:
            overlap = set(self.prediction_channel_indices) & set(self.exogenous_channel_indices)
            if overlap:
                raise ValueError(
                    f"`prediction_channel_indices` and `exogenous_channel_indices` overlap on {sorted(overlap)}."
                )

    def _validate_widths(self) -> None:
        blocks = [("d_model", self.d_model, self.adaptive_patching_levels)]
        if self.use_decoder:
            blocks.append(("decoder_d_model", self.decoder_d_model, self.decoder_adaptive_patching_levels))
        for name, width, levels in blocks:
            for factor in adaptive_patch_factors(width, levels):
                if width % factor:
                    raise ValueError(f"`{name}` ({width}) must be divisible by {factor} for adaptive patching.")
                if self.self_attn and (width // factor) % self.self_attn_heads:
                    raise ValueError(
                        f"`self_attn_heads` ({self.self_attn_heads}) must divide every mixer width; "
                        f"{name} ({width}) split by {factor} gives {width // factor}."
                    )
        if self.self_attn and self.enable_forecast_channel_mixing and self.fcm_use_mixer:
            fcm_width = 2 * (2 * self.fcm_context_length + 1)
            if fcm_width % self.self_attn_heads:
                raise ValueError(
                    f"`self_attn_heads` ({self.self_attn_heads}) must divide the forecast channel mixer width "
                    f"({fcm_width})."
                )


__all__ = ["TTMConfig"]

"""Configuration of the Tiny Time Mixer (TTM) forecaster."""

from __future__ import annotations

import math
from typing import Any

from transformers import PreTrainedConfig

# Keys of granite-tsfm configs that are derived from other keys; they are recomputed here, never stored.
_GRANITE_DERIVED_KEYS = frozenset({"num_patches"})

# IBM's default quantile levels of the multi-quantile head.
DEFAULT_QUANTILE_LEVELS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)

_MODES = ("common_channel", "mix_channel")
# Written into every config so that a saved checkpoint loads with `trust_remote_code=True` and nothing installed.
_AUTO_MAP = {
    "AutoConfig": "configuration_ttm.TTMConfig",
    "AutoModel": "modeling_ttm.TTMModel",
    "AutoModelForTimeSeriesPrediction": "modeling_ttm.TTMForPrediction",
}
_LOSSES = ("mse", "mae", "huber", "pinball")
_GATE_MODES = ("softmax", "sigmoid", "group_sigmoid", "glu")
# Options that a decomposed model's trend forecaster may override with `trend_<name>`.
_TREND_OPTIONS = (
    "patch_length",
    "patch_stride",
    "d_model",
    "decoder_d_model",
    "num_layers",
    "decoder_num_layers",
    "register_tokens",
    "fft_length",
    "multi_scale",
    "adaptive_patching_levels",
)
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
            inputs are left-padded with zeros that are marked unobserved. Must exceed `patch_length`; when it is not a
            multiple of it, the first `context_length % patch_length` steps enter the scaling but no patch.
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
        subtract_last (`bool`, defaults to `False`):
            Whether the scaler centres every series on its last observed context value instead of its mean (`"std"`)
            or zero (`"mean"`), as PatchTST's `subtract_last`: the model then forecasts the change from the last value,
            so that a forecast of no change is the naive forecast. Needs `scaling`.
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
        TTM-R3 options (IBM's names and defaults; all off by default, so r1 / r2 checkpoints are unaffected):

        multi_scale (`bool`, defaults to `False`):
            Whether the context is also cut into patches after average-pooling it 2, 4, 8, ... times (while a pooled
            series still holds one patch). Each scale has its own patch embedding; the coarsest scale's patches come
            first. Also switches on the base norm (see `enable_base_norm_always`).
        register_tokens (`int`, defaults to 0):
            Number of learned register tokens prepended to the patches of every series and channel.
        fft_length (`int`, defaults to 0):
            Number of frequency tokens prepended to the patches: the indices of the `fft_length` largest-magnitude
            bins of the real FFT of the scaled context are embedded as tokens. At most `context_length // 2 + 1`.
        use_fft_embedding (`bool`, defaults to `True`):
            Whether a frequency index is embedded by a lookup table (`True`) or by a small MLP on the index divided by
            the number of bins (`False`).
        get_one_freq_emb (`bool`, defaults to `False`):
            Whether the `fft_length` frequency embeddings are concatenated and projected to one token instead of
            being `fft_length` tokens. Each embedding is then `d_model // fft_length` wide, clipped to
            [`fft_d_freq_min`, `fft_d_freq_max`].
        fft_ignore_dc (`bool`, defaults to `False`):
            Whether the zero-frequency bin is excluded from the top frequencies.
        fft_d_freq_min (`int`, defaults to 4):
            Lower bound of the width of one frequency embedding when `get_one_freq_emb` is on.
        fft_d_freq_max (`int`, defaults to 64):
            Upper bound of the width of one frequency embedding when `get_one_freq_emb` is on.
        enable_base_norm_always (`bool`, defaults to `False`):
            Whether a LayerNorm over all tokens and features of a series (`num_patches * d_model`) runs before the
            backbone mixer. Always on with `multi_scale`.
        gate_mode (`str`, defaults to `"softmax"`):
            Gate of the gated attention of every mixer: `"softmax"` (over the mixed axis), `"sigmoid"`,
            `"group_sigmoid"` (one sigmoid per group of neighbouring features, from the mean logit of the group) or
            `"glu"` (a gated linear unit: the gate layer's first half, times the sigmoid of its second half).
        gate_groups (`int`, defaults to 8):
            Number of groups of `"group_sigmoid"`; a mixer whose width it does not divide uses its largest divisor
            below that number.
        use_register_context_gating (`bool`, defaults to `False`):
            Reserved by granite-tsfm 0.3.11 for gates conditioned on register tokens; that release never passes the
            context, so no model with it runs there. Must be `False`.
        multi_quantile_head (`bool`, defaults to `False`):
            IBM's multi-quantile head: a small convolutional network on the point forecast (optionally conditioned on
            the decoder output) that returns the median and non-crossing offsets for every level of
            `quantile_levels`, trained with the mean pinball loss. `prediction_outputs` is then the median.
        quantile_levels (`list[float]`, *optional*):
            Levels of the quantile head, strictly increasing in (0, 1); `None` means IBM's nine levels 0.1 ... 0.9.
            The multi-quantile head needs an odd number of levels, symmetric around a level of exactly 0.5. No effect
            without a quantile head.
        mq_hidden (`int`, defaults to 8):
            Hidden channels of the multi-quantile head.
        mq_kernel_size (`int`, defaults to 3):
            Kernel size of its depthwise convolution over the forecast steps.
        mq_eps (`float`, defaults to 1e-6):
            Minimum gap between neighbouring quantile levels.
        mq_use_decoder_pool (`bool`, defaults to `False`):
            Whether the head is conditioned on the decoder output of the target channels.
        mq_cond_path (`str`, defaults to `"pool"`):
            How the decoder output becomes the condition: `"pool"` (mean over patches, then a linear layer) or
            `"flatten"` (a per-patch projection to `mq_decoder_d_model`, flattened, then a linear layer).
        mq_cond_mode (`str`, defaults to `"add"`):
            How the condition joins the hidden channels: `"add"` or `"concat"`.
        mq_decoder_d_model (`int`, defaults to 8):
            Width of the per-patch projection of the `"flatten"` path.
        mq_q50_type (`str`, defaults to `"median"`):
            `"median"`: the median is the point forecast plus a learned offset; any other value: the point forecast.
        mq_use_positional (`bool`, defaults to `False`):
            Carried by IBM's configs; no effect in granite-tsfm 0.3.11 or here.
        point_extra_weight (`float`, defaults to 0.0):
            Weight of an extra mean absolute error of the median, added to the quantile loss.
        penalize_large_width_ratio (`float`, defaults to 0.0):
            Weight of a penalty on the width of the predicted intervals, added to the quantile loss.
        width_penalty_mode (`str`, defaults to `"boundary"`):
            That width: `"boundary"` (highest minus lowest level) or `"wis"` (mean width of the symmetric intervals).
        monotone_quantile_head (`bool`, defaults to `False`):
            This project's quantile head: a linear layer beside the point head predicts non-negative gaps between
            neighbouring levels of `quantile_levels`, accumulated outwards from the point forecast (the level closest
            to 0.5), trained with the mean pinball loss. Not part of IBM's checkpoints.
        decompose (`bool`, defaults to `False`):
            Decomposed prediction: the scaled context is split by a robust smoother into a trend and a residual; a
            trend forecaster (sizes from the `trend_*` options) reads the whole context, a residual forecaster reads
            the last `residual_context_length` steps of the detrended context, and the forecast is their sum. Both
            forecasters share every other option. Outputs also carry the trend and residual forecasts.
        residual_context_length (`int`, *optional*):
            Context of the residual forecaster; more than `patch_length`, at most `context_length`. `None`: the
            whole context.
        trend_patch_length, trend_patch_stride, trend_d_model, trend_decoder_d_model, trend_num_layers,
        trend_decoder_num_layers, trend_register_tokens, trend_fft_length, trend_multi_scale,
        trend_adaptive_patching_levels (*optional*):
            Values of the trend forecaster for the option without the `trend_` prefix; `None` keeps the shared value.
        trend_head_d_model (`int`, *optional*):
            Carried by IBM's configs; no effect in granite-tsfm 0.3.11 or here.
        trend_loss_weight (`float`, defaults to 1.0):
            Weight of the trend loss: the trend forecast against a smoothed trend of context plus future, plus a tenth
            of the same loss on step-to-step differences.
        residual_loss_weight (`float`, defaults to 1.0):
            Weight of the residual loss: the residual forecast against the future minus that trend.
        joint_loss_weight (`float`, defaults to 1.0):
            Weight of the loss of the combined forecast. The three decomposed losses are computed on scaled values.
        forecast_loss_type (`str`, defaults to `"joint"`):
            Recorded by IBM's training scripts; the loss is always the weighted sum of the three losses above.
        combine_quantiles_via_variance (`bool`, defaults to `False`):
            Whether decomposed quantiles combine the trend's and residual's distances from their medians in quadrature
            (instead of adding the quantiles).
        light_mode (`bool`, defaults to `False`):
            Whether outputs keep only the loss, the forecast and the quantiles (hidden states, scaling statistics and
            decomposition parts are dropped).

        Accepted for granite-tsfm compatibility and readable on the config, without effect here:
        `num_parallel_samples`, `distribution_output`, `post_init`, `init_linear`, `init_embed`, `mask_value`,
        `patch_last`, `init_processing`. `masked_context_length` (granite-tsfm's masked prediction) must be `None`.

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
    subtract_last: bool = False
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
    multi_scale: bool = False
    register_tokens: int = 0
    fft_length: int = 0
    use_fft_embedding: bool = True
    get_one_freq_emb: bool = False
    fft_ignore_dc: bool = False
    fft_d_freq_min: int = 4
    fft_d_freq_max: int = 64
    enable_base_norm_always: bool = False
    gate_mode: str = "softmax"
    gate_groups: int = 8
    use_register_context_gating: bool = False
    multi_quantile_head: bool = False
    quantile_levels: list[float] | None = None
    mq_hidden: int = 8
    mq_kernel_size: int = 3
    mq_eps: float = 1e-6
    mq_use_decoder_pool: bool = False
    mq_cond_path: str = "pool"
    mq_cond_mode: str = "add"
    mq_decoder_d_model: int = 8
    mq_q50_type: str = "median"
    mq_use_positional: bool = False
    point_extra_weight: float = 0.0
    penalize_large_width_ratio: float = 0.0
    width_penalty_mode: str = "boundary"
    monotone_quantile_head: bool = False
    decompose: bool = False
    residual_context_length: int | None = None
    trend_patch_length: int | None = None
    trend_patch_stride: int | None = None
    trend_d_model: int | None = None
    trend_decoder_d_model: int | None = None
    trend_num_layers: int | None = None
    trend_decoder_num_layers: int | None = None
    trend_register_tokens: int | None = None
    trend_fft_length: int | None = None
    trend_multi_scale: bool | None = None
    trend_adaptive_patching_levels: int | None = None
    trend_head_d_model: int | None = None
    trend_loss_weight: float = 1.0
    residual_loss_weight: float = 1.0
    joint_loss_weight: float = 1.0
    forecast_loss_type: str = "joint"
    combine_quantiles_via_variance: bool = False
    light_mode: bool = False
    num_parallel_samples: int = 100
    distribution_output: str = "student_t"
    post_init: bool = False
    init_linear: str = "pytorch"
    init_embed: str = "pytorch"
    mask_value: int = 0
    patch_last: bool = True
    init_processing: bool = False
    masked_context_length: int | None = None

    def __post_init__(self, **kwargs: Any) -> None:
        kwargs.pop("model_type", None)
        for key in _GRANITE_DERIVED_KEYS:
            kwargs.pop(key, None)
        self.scaling = {True: "std", False: None, "none": None}.get(self.scaling, self.scaling)
        if isinstance(self.norm_mlp, str) and self.norm_mlp.lower() in _NORMS:
            self.norm_mlp = _NORMS[self.norm_mlp.lower()]
        for name in ("adaptive_patching_levels", "decoder_adaptive_patching_levels", "trend_adaptive_patching_levels"):
            value = getattr(self, name)
            if isinstance(value, int) and not isinstance(value, bool) and value < 0:  # granite-tsfm's "off"
                setattr(self, name, 0)
        if self.exogenous_channel_indices is not None and self.prediction_channel_indices is None:
            exogenous = set(self.exogenous_channel_indices)
            self.prediction_channel_indices = [c for c in range(self.num_input_channels) if c not in exogenous]
        for name in ("prediction_channel_indices", "exogenous_channel_indices"):
            if isinstance(getattr(self, name), (list, tuple)):
                setattr(self, name, sorted(getattr(self, name)))
        if self.quantile_levels is None:
            self.quantile_levels = list(DEFAULT_QUANTILE_LEVELS)
        super().__post_init__(**kwargs)
        self.auto_map = {**_AUTO_MAP, **self.__dict__.get("auto_map", {})}
        self._validate()

    @classmethod
    def get_config_dict(cls, *args: Any, **kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        config_dict, kwargs = super().get_config_dict(*args, **kwargs)
        if config_dict.get("model_type") == "tinytimemixer":  # a granite-tsfm checkpoint: read it as ours
            config_dict["model_type"] = cls.model_type
        elif config_dict.get("quantile_levels") and "monotone_quantile_head" not in config_dict:
            # Written before the multi-quantile head existed, when `quantile_levels` alone switched this head on.
            config_dict["monotone_quantile_head"] = True
        return config_dict, kwargs

    @property
    def num_context_patches(self) -> int:
        """Patches cut from the context: its last `num_context_patches * patch_length` steps."""
        return self.context_length // self.patch_length

    @property
    def num_scales(self) -> int:
        """Number of scales of the patch embedding: 1, or with `multi_scale` every 2**i that leaves a whole patch."""
        return int(math.log2(self.context_length // self.patch_length)) + 1 if self.multi_scale else 1

    @property
    def scale_patch_counts(self) -> list[int]:
        """Patches at every scale, finest first: the patched steps averaged 2**i at a time, cut into whole patches."""
        steps = self.num_context_patches * self.patch_length
        counts = [steps // 2**i // self.patch_length for i in range(self.num_scales)]
        return [count for count in counts if count > 0]

    @property
    def num_extra_tokens(self) -> int:
        """Tokens prepended to the context patches: frequency tokens, register tokens, the resolution prefix."""
        fft_tokens = (1 if self.get_one_freq_emb else self.fft_length) if self.fft_length else 0
        return fft_tokens + self.register_tokens + int(self.resolution_prefix_tuning)

    @property
    def num_patches(self) -> int:
        """Number of tokens the mixers see: the context patches of every scale plus the prepended tokens."""
        return sum(self.scale_patch_counts) + self.num_extra_tokens

    @property
    def forecast_quantiles(self) -> list[float] | None:
        """The levels of `quantile_outputs`: `quantile_levels` when a quantile head is on, else `None`."""
        return self.quantile_levels if (self.multi_quantile_head or self.monotone_quantile_head) else None

    @property
    def median_quantile_index(self) -> int:
        """Index of the point forecast among `quantile_levels`: the level closest to 0.5."""
        levels = self.quantile_levels
        return min(range(len(levels)), key=lambda i: abs(levels[i] - 0.5))

    def trend_config(self) -> TTMConfig:
        """Config of the trend forecaster of a decomposed model: the `trend_*` overrides, no scaling of its own."""
        overrides = {name: getattr(self, f"trend_{name}") for name in _TREND_OPTIONS}
        return self._part_config(**{k: v for k, v in overrides.items() if v is not None})

    def residual_config(self) -> TTMConfig:
        """Config of the residual forecaster of a decomposed model: the residual context, no scaling of its own."""
        return self._part_config(context_length=self.residual_context_length or self.context_length)

    def _part_config(self, **overrides: Any) -> TTMConfig:
        settings = {k: v for k, v in self.to_dict().items() if k not in ("auto_map", "architectures")}
        settings.update(decompose=False, scaling=None, subtract_last=False, residual_context_length=None, **overrides)
        settings.update({f"trend_{name}": None for name in _TREND_OPTIONS})
        return TTMConfig(**settings)

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
        if self.context_length <= self.patch_length:
            raise ValueError(
                f"`context_length` ({self.context_length}) must be greater than `patch_length` ({self.patch_length})."
            )
        for name in ("mode", "decoder_mode"):
            if getattr(self, name) not in _MODES:
                raise ValueError(f"`{name}` must be one of {_MODES}, got {getattr(self, name)!r}.")
        if self.loss is not None and self.loss not in _LOSSES:
            raise ValueError(f"`loss` must be one of {_LOSSES} or None, got {self.loss!r}.")
        if self.scaling not in ("std", "mean", None):
            raise ValueError(f"`scaling` must be 'std', 'mean' or None, got {self.scaling!r}.")
        if self.subtract_last and self.scaling is None:
            raise ValueError(
                "`subtract_last` centres the scaler on the last value; it needs `scaling` 'std' or 'mean'."
            )
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
        self._validate_r3()

    def _validate_r3(self) -> None:
        for name in ("register_tokens", "fft_length", "mq_hidden", "mq_kernel_size", "mq_decoder_d_model"):
            value = getattr(self, name)
            low = 0 if name in ("register_tokens", "fft_length") else 1
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"`{name}` must be an integer >= {low}, got {value!r}.")
        bins = self.context_length // 2 + 1
        if self.fft_length > bins:
            raise ValueError(
                f"`fft_length` ({self.fft_length}) exceeds the {bins} frequency bins of a context of "
                f"{self.context_length} steps."
            )
        if not 1 <= self.fft_d_freq_min <= self.fft_d_freq_max:
            raise ValueError(
                f"`fft_d_freq_min` ({self.fft_d_freq_min}) and `fft_d_freq_max` ({self.fft_d_freq_max}) must satisfy "
                "1 <= min <= max."
            )
        if self.gate_mode not in _GATE_MODES:
            raise ValueError(f"`gate_mode` must be one of {_GATE_MODES}, got {self.gate_mode!r}.")
        if isinstance(self.gate_groups, bool) or not isinstance(self.gate_groups, int) or self.gate_groups < 1:
            raise ValueError(f"`gate_groups` must be a positive integer, got {self.gate_groups!r}.")
        if self.use_register_context_gating:
            raise ValueError(
                "`use_register_context_gating=True` is not supported: granite-tsfm 0.3.11 defines no context for it "
                "and cannot run such a model either."
            )
        if self.masked_context_length is not None:
            raise ValueError(
                f"`masked_context_length={self.masked_context_length!r}` belongs to granite-tsfm's masked prediction, "
                "which TTMConfig does not implement; it must be None."
            )
        if self.decoder_raw_residual and (self.multi_scale or self.register_tokens or self.fft_length):
            raise ValueError(
                "`decoder_raw_residual` needs one decoder token per context patch; it cannot be combined with "
                "`multi_scale`, `register_tokens` or `fft_length`."
            )
        self._validate_quantiles()
        if self.decompose:
            self._validate_decomposition()

    def _validate_quantiles(self) -> None:
        levels = list(self.quantile_levels)
        if not levels or any(isinstance(q, bool) or not isinstance(q, (int, float)) for q in levels):
            raise ValueError(f"`quantile_levels` must be a non-empty list of floats in (0, 1), got {levels!r}.")
        if any(not 0.0 < q < 1.0 for q in levels):
            raise ValueError(f"`quantile_levels` must lie strictly between 0 and 1, got {levels!r}.")
        if any(b <= a for a, b in zip(levels[:-1], levels[1:], strict=True)):
            raise ValueError(f"`quantile_levels` must be strictly increasing (sorted, no duplicates), got {levels!r}.")
        self.quantile_levels = [float(q) for q in levels]
        if self.multi_quantile_head and self.monotone_quantile_head:
            raise ValueError("`multi_quantile_head` and `monotone_quantile_head` cannot both be on: pick one head.")
        if self.multi_quantile_head:
            below = sum(q < 0.5 for q in levels)
            if 0.5 not in self.quantile_levels or below != len(levels) - below - 1:
                raise ValueError(
                    "the multi-quantile head needs `quantile_levels` with 0.5 and as many levels below it as above, "
                    f"got {levels!r}."
                )
            for name, allowed in (("mq_cond_path", ("pool", "flatten")), ("mq_cond_mode", ("add", "concat"))):
                if getattr(self, name) not in allowed:
                    raise ValueError(f"`{name}` must be one of {allowed}, got {getattr(self, name)!r}.")
            if self.width_penalty_mode not in ("boundary", "wis"):
                raise ValueError(f"`width_penalty_mode` must be 'boundary' or 'wis', got {self.width_penalty_mode!r}.")
            if self.penalize_large_width_ratio < 0:
                raise ValueError(f"`penalize_large_width_ratio` must be >= 0, got {self.penalize_large_width_ratio!r}.")
            if self.penalize_large_width_ratio > 0 and len(levels) < 3:
                raise ValueError("`penalize_large_width_ratio` needs at least 3 `quantile_levels`.")

    def _validate_decomposition(self) -> None:
        residual = self.residual_context_length
        if residual is not None:
            if isinstance(residual, bool) or not isinstance(residual, int) or residual <= self.patch_length:
                raise ValueError(
                    f"`residual_context_length` must be an integer > `patch_length` ({self.patch_length}), "
                    f"got {residual!r}."
                )
            if residual > self.context_length:
                raise ValueError(
                    f"`residual_context_length` ({residual}) must not exceed `context_length` ({self.context_length})."
                )
        for name in ("trend_loss_weight", "residual_loss_weight", "joint_loss_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"`{name}` must be >= 0, got {getattr(self, name)!r}.")
        for part, build in (("trend", self.trend_config), ("residual", self.residual_config)):
            try:
                build()
            except ValueError as error:
                raise ValueError(f"the {part} forecaster of this decomposed model is invalid: {error}") from None

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

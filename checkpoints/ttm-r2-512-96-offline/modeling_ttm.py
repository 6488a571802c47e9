"""PyTorch Tiny Time Mixer (TTM): a ~1M-parameter pretrained forecaster for multivariate time series.

Data flow of `TTMForPrediction` (arXiv 2401.03955; r1, r2 and IBM's R3 options):

    past_values (B, L, C) -> fit to context_length, NaN -> unobserved -> scale per series and channel
    -> patches (N, B, C, patch_length) [at several average-pooled scales] -> patch embeddings (N, B, C, d_model)
    -> prepended tokens [frequency tokens | register tokens | resolution prefix] [+ positions] [-> base norm]
    -> backbone TTM layers (adaptive patching) -> decoder (adapter, static categoricals, TTM layers)
    -> head: flatten patches -> Linear -> (B, H, C') [-> forecast channel mixer] [-> quantile head]
    -> scale back -> loss against future_values.

With `decompose`, the scaled context is split into a smooth trend and a residual, two such forecasters (without
scaling of their own) forecast each, and the forecast is their sum.

Inside, activations are patch-major (N patches first); outputs are returned as (B, C, N, width). The mixer blocks
live in `layers_ttm.py`, the heads and losses in `heads_ttm.py`. Parameter names follow IBM's published
checkpoints, so those load without conversion.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoConfig, AutoModel, AutoModelForTimeSeriesPrediction, PreTrainedModel
from transformers import initialization as init
from transformers.models.auto.configuration_auto import CONFIG_MAPPING
from transformers.utils import ModelOutput

try:
    from .configuration_ttm import TTMConfig
    from .heads_ttm import TTMForecastHead, TTMMultiQuantileHead, forecast_loss, point_loss
    from .layers_ttm import MixerSpec, TTMBlock
except ImportError:
    from configuration_ttm import TTMConfig
    from heads_ttm import TTMForecastHead, TTMMultiQuantileHead, forecast_loss, point_loss
    from layers_ttm import MixerSpec, TTMBlock

STD_SCALE_EPS = 1e-5  # added to the variance of the "std" scaler
MEAN_SCALE_MIN = 1e-10  # floor of the "mean" scaler
# Bound of scaled values. Observed values stay far inside it (|z| <= sqrt(context) for "std"); only the zeros of
# unobserved positions in a series far from zero can reach it, instead of overflowing the model's dtype.
SCALED_LIMIT = 1e4


# ----------------------------------------------------------------------------------------------------------------
# Inputs: validation, missing values, context fitting and scaling.


def tracing() -> bool:
    """Whether torch.export is tracing: input checks that read tensor values are skipped in an exported graph, which
    takes the branch-free path. (torch.compile keeps them: it breaks the graph there and still raises.)"""
    return torch.compiler.is_exporting()


def _check_integral(name: str, values: torch.Tensor, upper: torch.Tensor | int, expected: str) -> torch.Tensor:
    """Returns `values` as long after checking they are whole numbers in [0, upper)."""
    if values.is_floating_point():
        if not tracing() and not torch.equal(values, values.round()):
            raise ValueError(f"`{name}` must hold whole numbers ({expected}).")
    elif values.dtype == torch.bool or values.is_complex():
        raise TypeError(f"`{name}` must be an integer tensor ({expected}), got dtype {values.dtype}.")
    values = values.long()
    if not tracing() and (bool((values < 0).any()) or bool((values >= upper).any())):
        raise ValueError(f"`{name}` is out of range: {expected}.")
    return values


def prepare_past(
    config: TTMConfig, past_values: torch.Tensor, past_observed_mask: torch.Tensor | None, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Validates `past_values` and returns (values, observed mask or None when all observed), fitted to the context.

    Values are cast to the model's `dtype`. NaN values count as missing: they become unobserved and are filled by
    `fill_gaps`. Inputs longer than `context_length` keep their last `context_length` steps; shorter ones are
    left-padded with unobserved steps, filled the same way. Finite values that `past_observed_mask` marks unobserved
    keep their value (they only leave the scaling statistics and serve as no fill anchor).
    """
    if not isinstance(past_values, torch.Tensor):
        raise TypeError(f"`past_values` must be a torch.Tensor, got {type(past_values).__name__}.")
    if past_values.dim() != 3:
        raise ValueError(f"`past_values` must be 3-D (batch, time, channels), got shape {tuple(past_values.shape)}.")
    if not past_values.is_floating_point():
        raise TypeError(f"`past_values` must be a floating-point tensor, got dtype {past_values.dtype}.")
    batch, length, channels = past_values.shape
    if channels != config.num_input_channels:
        raise ValueError(
            f"`past_values` has {channels} channels but the model expects num_input_channels="
            f"{config.num_input_channels}."
        )
    if batch == 0 or length == 0:
        raise ValueError(f"`past_values` must not be empty, got shape {tuple(past_values.shape)}.")
    observed = None
    if past_observed_mask is not None:
        if not isinstance(past_observed_mask, torch.Tensor) or past_observed_mask.shape != past_values.shape:
            shape = tuple(past_observed_mask.shape) if isinstance(past_observed_mask, torch.Tensor) else None
            raise ValueError(
                f"`past_observed_mask` must be a tensor of the same shape as `past_values` "
                f"{tuple(past_values.shape)}, got {shape}."
            )
        observed = past_observed_mask != 0
    past_values = past_values.to(dtype)
    finite = torch.isfinite(past_values)
    missing = tracing() or not bool(finite.all())  # an exported graph always takes the general path
    if missing:
        if not tracing() and bool(torch.isinf(past_values).any()):
            raise ValueError(
                f"`past_values` contains +/-inf (or values beyond the range of {dtype}); mark missing values with "
                "NaN or `past_observed_mask`."
            )
        observed = finite if observed is None else observed & finite
    context = config.context_length
    if length > context:
        past_values = past_values[:, -context:]
        observed = None if observed is None else observed[:, -context:]
    elif length < context:
        pad = context - length
        past_values = F.pad(past_values, (0, 0, pad, 0), value=float("nan"))
        if observed is None:
            observed = torch.ones(batch, length, channels, dtype=torch.bool, device=past_values.device)
        observed = F.pad(observed, (0, 0, pad, 0), value=False)
        missing = True
    if missing:
        past_values = fill_gaps(past_values, observed)
    return past_values, observed


def fill_gaps(values: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
    """`values` (batch, time, channels) with every non-finite value replaced by one the mixer copes with.

    A missing value becomes the linear interpolation between the nearest observed steps before and after it (the
    nearest observed value before the first or after the last one; 0 in a series with no observed value), instead of
    a spike of 0 far from the series' level. `observed` (bool, same shape) names the steps to interpolate from and
    must be False wherever a value is not finite; finite values are returned unchanged, observed or not.

    Vectorised and free of data-dependent branches, so the ONNX export traces the same computation. Interpolation
    commutes with the affine scaling, so filling before it equals filling the scaled series.
    """
    steps = torch.arange(values.shape[1], device=values.device).view(1, -1, 1).expand_as(values)
    seen = observed.long().cumsum(1)  # observed steps at or before each step
    total = seen[:, -1:]
    # Observed steps in time order, then the others: a permutation, so the scatter writes every slot once.
    rank = torch.where(observed, seen - 1, total + steps - seen)
    order = torch.zeros_like(rank).scatter(1, rank, steps)
    following = order.gather(1, torch.minimum(seen, (total - 1).clamp_min(0)))
    previous = torch.where(seen > 0, order.gather(1, (seen - 1).clamp_min(0)), following)
    following = torch.where(seen < total, following, previous)
    span = (following - previous).clamp_min(1).to(values.dtype)
    weight = ((steps - previous).to(values.dtype) / span).clamp(0, 1)
    anchors = torch.where(observed, values, 0.0)
    filled = (1 - weight) * anchors.gather(1, previous) + weight * anchors.gather(1, following)
    return torch.where(torch.isfinite(values), values, filled)


def scale_series(
    config: TTMConfig, values: torch.Tensor, observed: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Scales every series and channel over its observed steps; returns (scaled values, loc, scale).

    The statistics are computed in float64, so any magnitude the input's dtype can hold scales without overflow;
    the scaled values come back in the input's dtype, bounded by `SCALED_LIMIT`, loc and scale in float64.
    """
    dtype, values = values.dtype, values.double()
    if config.scaling is None:
        ones = values.new_ones(values.shape[0], 1, values.shape[2])
        return values.to(dtype), torch.zeros_like(ones), ones
    if observed is None:  # every value observed
        if config.scaling == "std":
            loc = values.mean(1, keepdim=True)
            scale = torch.sqrt((values - loc).square().mean(1, keepdim=True) + STD_SCALE_EPS)
        else:
            loc = values.new_zeros(values.shape[0], 1, values.shape[2])
            scale = values.abs().mean(1, keepdim=True).clamp_min(MEAN_SCALE_MIN)
    else:
        weights = observed.to(values.dtype)
        count = weights.sum(1, keepdim=True)
        if config.scaling == "std":
            loc = (values * weights).sum(1, keepdim=True) / count.clamp_min(1)
            variance = ((values - loc) * weights).square().sum(1, keepdim=True) / count.clamp_min(1)
            scale = torch.sqrt(variance + STD_SCALE_EPS)
        else:  # mean absolute value; series without observations take the batch's, per channel
            magnitude = (values * weights).abs().sum(1, keepdim=True)
            batch_scale = magnitude.sum(0) / count.sum(0).clamp_min(1)
            loc = torch.zeros_like(magnitude)
            scale = torch.where(count > 0, magnitude / count.clamp_min(1), batch_scale).clamp_min(MEAN_SCALE_MIN)
    if config.subtract_last:
        steps = torch.arange(values.shape[1], device=values.device).view(1, -1, 1)
        last = steps.expand_as(values) if observed is None else torch.where(observed > 0, steps, -1)
        last = last.amax(1, keepdim=True)  # -1: a series without observations keeps the loc above
        loc = torch.where(last >= 0, values.gather(1, last.clamp_min(0)), loc)
    scaled = ((values - loc) / scale).clamp(-SCALED_LIMIT, SCALED_LIMIT)
    return scaled.to(dtype), loc, scale


# ----------------------------------------------------------------------------------------------------------------
# Backbone, decoder and head.


def sincos_positions(num_patches: int, width: int) -> torch.Tensor:
    """Fixed sin/cos positional table, centred and scaled to a tenth of unit standard deviation."""
    position = torch.arange(num_patches, dtype=torch.float32).unsqueeze(1)
    frequencies = torch.exp(torch.arange(0, width, 2, dtype=torch.float32) * -(math.log(10000.0) / width))
    table = torch.zeros(num_patches, width)
    table[:, 0::2] = torch.sin(position * frequencies)
    table[:, 1::2] = torch.cos(position * frequencies[: width // 2])
    table = table - table.mean()
    return table / (table.std() * 10)


class TTMPositionalEncoding(nn.Module):
    """Adds a positional table to the tokens: learned ("random") or a fixed sin/cos buffer ("sincos")."""

    def __init__(self, config: TTMConfig):
        super().__init__()
        if config.positional_encoding_type == "random":
            self.position_enc = nn.Parameter(torch.zeros(config.num_patches, config.d_model))
        else:
            self.register_buffer("position_enc", sincos_positions(config.num_patches, config.d_model))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.position_enc[:, None, None, :]


class TTMMultiScalePatcher(nn.Module):
    """Patch embeddings of the context at every scale: scale i averages 2**i neighbouring steps, keeps the last
    whole patches and embeds them with its own linear layer. The coarsest scale's tokens come first."""

    def __init__(self, config: TTMConfig):
        super().__init__()
        self.patch_length = config.patch_length
        self.counts = config.scale_patch_counts
        self.projectors = nn.ModuleList(
            nn.Linear(config.patch_length, config.d_model) for _ in range(config.num_scales)
        )

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        """(N, B, C, P) context patches -> (N', B, C, d_model) tokens of every scale."""
        series = patches.permute(1, 2, 0, 3).flatten(2)  # (B, C, N * P)
        tokens = []
        for i, (count, projector) in enumerate(zip(self.counts, self.projectors, strict=False)):
            pooled = F.avg_pool1d(series, 2**i) if i else series
            patches = pooled[..., -count * self.patch_length :].unflatten(-1, (count, self.patch_length))
            tokens.append(projector(patches.permute(2, 0, 1, 3)))
        return torch.cat(tokens[::-1], dim=0)


class TTMRegisterTokens(nn.Module):
    """Learned tokens shared by every series and channel (a parameter holder: `tokens` reads it without module
    hooks, whose autograd bookkeeping fails on a bare parameter view under inference mode)."""

    def __init__(self, config: TTMConfig):
        super().__init__()
        self.patch_tokens = nn.Parameter(torch.randn(config.register_tokens, config.d_model))

    def tokens(self, batch: int, channels: int) -> torch.Tensor:
        return self.patch_tokens[:, None, None, :].expand(-1, batch, channels, -1)


class TTMFrequencyTokens(nn.Module):
    """Tokens of the dominant frequencies: the bins of the `fft_length` largest magnitudes of the real FFT of every
    scaled series and channel, embedded by a table or an MLP on the bin's relative index; with `get_one_freq_emb`
    the embeddings are concatenated and projected to a single token."""

    def __init__(self, config: TTMConfig):
        super().__init__()
        self.k = config.fft_length
        self.bins = config.context_length // 2 + 1
        self.ignore_dc = config.fft_ignore_dc
        self.one_token = config.get_one_freq_emb
        width = config.d_model
        if self.one_token:
            width = min(max(config.d_model // self.k, config.fft_d_freq_min), config.fft_d_freq_max)
        if config.use_fft_embedding:
            self.freq_embedding = nn.Embedding(self.bins, width)
            self.freq_index_mlp = None
        else:
            self.freq_embedding = None
            self.freq_index_mlp = nn.Sequential(nn.Linear(1, width), nn.ReLU(), nn.Linear(width, width))
        self.freq_concat_proj = nn.Linear(self.k * width, config.d_model) if self.one_token else None

    def forward(self, scaled: torch.Tensor) -> torch.Tensor:
        """(B, L, C) scaled context -> (k or 1, B, C, d_model) tokens."""
        magnitude = torch.fft.rfft(scaled, dim=1).abs()  # (B, bins, C)
        if self.ignore_dc:
            magnitude = magnitude.index_fill(1, torch.zeros(1, dtype=torch.long, device=scaled.device), 0.0)
        top = magnitude.topk(self.k, dim=1).indices.permute(1, 0, 2)  # (k, B, C), strongest first
        if self.freq_embedding is not None:
            tokens = self.freq_embedding(top)
        else:
            tokens = self.freq_index_mlp((top.to(scaled.dtype) / self.bins).unsqueeze(-1))
        if self.freq_concat_proj is not None:
            tokens = self.freq_concat_proj(tokens.permute(1, 2, 0, 3).flatten(2)).unsqueeze(0)
        return tokens


class TTMEncoder(nn.Module):
    """Patch embeddings and prepended tokens (positions, base norm), then the backbone mixer."""

    def __init__(self, config: TTMConfig):
        super().__init__()
        self.patch_length = config.patch_length
        if config.multi_scale:
            self.patcher = TTMMultiScalePatcher(config)
        else:
            self.patcher = nn.Linear(config.patch_length, config.d_model)
        if config.resolution_prefix_tuning:
            hidden = (config.patch_length + config.d_model) // 2
            self.freq_mod = nn.Sequential(
                nn.Embedding(config.frequency_token_vocab_size, config.patch_length),
                nn.Linear(config.patch_length, hidden),
                nn.GELU(),
                nn.Linear(hidden, config.d_model),
            )
        else:
            self.freq_mod = None
        self.add_tokens = TTMRegisterTokens(config) if config.register_tokens else None
        self.add_fft_tokens = TTMFrequencyTokens(config) if config.fft_length else None
        self.positional_encoder = TTMPositionalEncoding(config) if config.use_positional_encoding else None
        self.base_norm = None
        if config.multi_scale or config.enable_base_norm_always:
            self.base_norm = nn.LayerNorm(config.num_patches * config.d_model, eps=config.norm_eps)
        self.mlp_mixer_encoder = TTMBlock(MixerSpec.backbone(config))

    def forward(
        self, scaled: torch.Tensor, freq_token: torch.Tensor | None, hidden_states: list[torch.Tensor] | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, L, C) scaled context -> patch-major (hidden state, context patches (L / P, B, C, P))."""
        batch, length, channels = scaled.shape
        patched = scaled[:, length % self.patch_length :]  # whole patches, aligned to the end of the context
        patches = patched.view(batch, -1, self.patch_length, channels).permute(1, 0, 3, 2)  # (N, B, C, P)
        x = self.patcher(patches)
        tokens = []  # prepended in this order: frequency tokens, register tokens, resolution prefix
        if self.add_fft_tokens is not None:
            tokens.append(self.add_fft_tokens(scaled))
        if self.add_tokens is not None:
            tokens.append(self.add_tokens.tokens(batch, channels))
        if self.freq_mod is not None:
            tokens.append(self.freq_mod(freq_token)[None, :, None, :].expand(1, -1, channels, -1))
        if tokens:
            x = torch.cat([*tokens, x], dim=0)
        if self.positional_encoder is not None:
            x = self.positional_encoder(x)
        if self.base_norm is not None:  # one LayerNorm over all tokens and features of a series and channel
            n, _, _, width = x.shape
            weight, bias = self.base_norm.weight.view(n, width), self.base_norm.bias.view(n, width)
            normed = F.layer_norm(x.permute(1, 2, 0, 3), (n, width), weight, bias, self.base_norm.eps)
            x = normed.permute(2, 0, 1, 3).contiguous()
        return self.mlp_mixer_encoder(x, hidden_states), patches


class TTMCategoricalEmbedding(nn.Module):
    """One embedding per static categorical variable, broadcast over patches as extra channels."""

    def __init__(self, config: TTMConfig):
        super().__init__()
        self.embedding_layers = nn.ModuleList(
            nn.Embedding(size, config.decoder_d_model) for size in config.categorical_vocab_size_list
        )

    def forward(self, categories: torch.Tensor, num_patches: int) -> torch.Tensor:
        embedded = torch.stack([emb(categories[:, i]) for i, emb in enumerate(self.embedding_layers)], dim=1)
        return embedded.unsqueeze(0).expand(num_patches, -1, -1, -1)  # (N, B, n_cat, decoder_d_model)


class TTMDecoder(nn.Module):
    """Adapter to decoder_d_model, optional raw-patch residual and categorical channels, then TTM layers."""

    def __init__(self, config: TTMConfig):
        super().__init__()
        self.num_input_channels = config.num_input_channels
        differ = config.d_model != config.decoder_d_model
        self.adapter = nn.Linear(config.d_model, config.decoder_d_model) if differ else None
        raw = config.decoder_raw_residual
        self.decoder_raw_embedding = nn.Linear(config.patch_length, config.decoder_d_model) if raw else None
        categorical = config.categorical_vocab_size_list is not None
        self.decoder_cat_embedding_layer = TTMCategoricalEmbedding(config) if categorical else None
        spec = replace(
            MixerSpec.backbone(config),
            width=config.decoder_d_model,
            num_channels=config.num_input_channels + len(config.categorical_vocab_size_list or ()),
            num_layers=config.decoder_num_layers,
            adaptive_levels=config.decoder_adaptive_patching_levels,
            mix_channels=config.decoder_mode == "mix_channel",
            dropout=config.head_dropout,
        )
        self.decoder_block = TTMBlock(spec)

    def forward(
        self,
        x: torch.Tensor,
        patches: torch.Tensor,
        categories: torch.Tensor | None,
        hidden_states: list[torch.Tensor] | None,
    ) -> torch.Tensor:
        if self.adapter is not None:
            x = self.adapter(x)
        if self.decoder_raw_embedding is not None:
            missing = x.shape[0] - patches.shape[0]  # the frequency-token patch has no raw values
            x = x + self.decoder_raw_embedding(F.pad(patches, (0, 0, 0, 0, 0, 0, missing, 0)))
        if self.decoder_cat_embedding_layer is not None:
            x = torch.cat([x, self.decoder_cat_embedding_layer(categories, x.shape[0])], dim=2)
        x = self.decoder_block(x, hidden_states)
        return x[:, :, : self.num_input_channels]


# ----------------------------------------------------------------------------------------------------------------
# Decomposition into trend and residual.


def gaussian_smooth(x: torch.Tensor, window: int, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Weighted Gaussian moving average of (B, T, C) series over time (reflected at the ends); sigma = window / 4."""
    batch, length, channels = x.shape
    half = window // 2
    offsets = torch.arange(-half, half + 1, device=x.device, dtype=x.dtype)
    kernel = torch.exp(-0.5 * (offsets / (0.25 * window)) ** 2)
    kernel = (kernel / (kernel.sum() + 1e-12)).view(1, 1, window)
    weights = torch.ones_like(x) if weights is None else weights

    def convolve(y: torch.Tensor) -> torch.Tensor:
        rows = y.transpose(1, 2).reshape(batch * channels, 1, length)
        return F.conv1d(F.pad(rows, (half, half), mode="reflect"), kernel)

    return (convolve(x * weights) / (convolve(weights) + 1e-8)).view(batch, channels, length).transpose(1, 2)


def lower_median(x: torch.Tensor) -> torch.Tensor:
    """Median over time (dim 1) of (B, T, C), the lower one for even T, as `torch.median`; computed by sorting, which
    ONNX can express."""
    return x.sort(dim=1).values[:, (x.shape[1] - 1) // 2 :][:, :1]


def robust_trend(x: torch.Tensor, fraction: float = 0.15, iterations: int = 2) -> torch.Tensor:
    """Trend of (B, T, C) series: a Gaussian moving average over about `fraction` of the series, refitted
    `iterations` times with Tukey bisquare weights that discount outlying residuals (a LOWESS-like smoother). Every
    fit is shifted to the mean of its series."""
    length = x.shape[1]
    window = max(5, int(round(fraction * length)))
    window = min(window + 1 - window % 2, length if length % 2 else length - 1)  # odd, at most the length
    mean = x.mean(1, keepdim=True)
    trend = gaussian_smooth(x, window)
    trend = trend - trend.mean(1, keepdim=True) + mean
    for _ in range(iterations):
        residual = x - trend
        centred = residual - lower_median(residual)
        spread = 6.0 * (lower_median(centred.abs()) + 1e-8)
        weights = (1.0 - (centred / spread).square().clamp(0.0, 1.0)).square()
        trend = gaussian_smooth(x, window, weights)
        trend = trend - trend.mean(1, keepdim=True) + mean
    return trend


def combine_quantiles(trend: torch.Tensor, residual: torch.Tensor, median: int, in_quadrature: bool) -> torch.Tensor:
    """Quantiles (B, Q, H, C) of trend plus residual: summed level by level, or (`in_quadrature`) the medians
    summed and the distances from them combined as sqrt(a**2 + b**2) with the sign of a + b."""
    if not in_quadrature:
        return trend + residual
    trend_median, residual_median = trend[:, median : median + 1], residual[:, median : median + 1]
    a, b = trend - trend_median, residual - residual_median
    width = torch.sign(a + b) * torch.sqrt(a.square() + b.square() + 1e-8)
    is_median = torch.arange(trend.shape[1], device=trend.device).view(1, -1, 1, 1) == median
    return trend_median + residual_median + torch.where(is_median, 0.0, width)


# ----------------------------------------------------------------------------------------------------------------
# Hugging Face models.


@dataclass
class TTMModelOutput(ModelOutput):
    """
    Output of [`TTMModel`].

    Args:
        last_hidden_state (`torch.FloatTensor` of shape `(batch_size, num_channels, num_patches, d_model)`):
            Token embeddings after the last backbone layer.
        hidden_states (`tuple(torch.FloatTensor)`, *optional*):
            Output of every backbone layer, `(batch_size, num_channels, num_patches, width)` (at adaptive-patching
            levels: merged back to `d_model`); returned when `output_hidden_states=True`.
        patch_input (`torch.FloatTensor` of shape `(batch_size, num_channels, num_context_patches, patch_length)`):
            The scaled input cut into patches.
        loc (`torch.FloatTensor` of shape `(batch_size, 1, num_channels)`):
            Shift of the per-series scaling.
        scale (`torch.FloatTensor` of shape `(batch_size, 1, num_channels)`):
            Scale of the per-series scaling.
    """

    last_hidden_state: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    patch_input: torch.FloatTensor | None = None
    loc: torch.FloatTensor | None = None
    scale: torch.FloatTensor | None = None


@dataclass
class TTMForPredictionOutput(ModelOutput):
    """
    Output of [`TTMForPrediction`]. The fields granite-tsfm's outputs share come first, in granite-tsfm's order.

    Args:
        loss (`torch.FloatTensor` of shape `()`, *optional*):
            Training loss over the observed future values; returned when `future_values` is given. In the units of
            the input, except for decomposed models, whose three losses are computed on scaled values.
        prediction_outputs (`torch.FloatTensor` of shape `(batch_size, forecast_length, num_targets)`):
            Point forecast (the median when a quantile head is on) in the units of the input.
        backbone_hidden_state (`torch.FloatTensor` of shape `(batch_size, num_channels, num_patches, d_model)`):
            Output of the backbone (not for decomposed models).
        decoder_hidden_state (`torch.FloatTensor` of shape `(batch_size, num_channels, num_patches, decoder_d_model)`):
            Output of the decoder, or of the backbone when `use_decoder=False` (not for decomposed models).
        hidden_states (`tuple(torch.FloatTensor)`, *optional*):
            Output of every backbone and decoder layer; returned when `output_hidden_states=True`.
        loc (`torch.FloatTensor` of shape `(batch_size, 1, num_targets)`):
            Shift of the per-series scaling of the target channels.
        scale (`torch.FloatTensor` of shape `(batch_size, 1, num_targets)`):
            Scale of the per-series scaling of the target channels.
        input_data (`torch.FloatTensor` of shape `(batch_size, context_length, num_input_channels)`):
            The past values as the model read them: fitted to the context, missing values filled.
        forecast_groundtruth (`torch.FloatTensor`, *optional*):
            The future values the loss was computed against, trimmed to the forecast length.
        quantile_outputs (`torch.FloatTensor` of shape `(batch_size, num_quantiles, forecast_length, num_targets)`):
            Forecast of every level of `config.quantile_levels`, non-decreasing along the level axis; returned by
            models with a quantile head.
        trend_prediction_outputs (`torch.FloatTensor` of shape `(batch_size, forecast_length, num_targets)`):
            Decomposed models: the trend forecast, in the units of the input.
        residual_prediction_outputs (`torch.FloatTensor` of shape `(batch_size, forecast_length, num_targets)`):
            Decomposed models: the residual forecast in the units of the input, without the shift: trend plus residual
            forecast is `prediction_outputs`.
        trend_input (`torch.FloatTensor` of shape `(batch_size, context_length, num_targets)`):
            Decomposed models: the trend of the context, in the units of the input.
        residual_input (`torch.FloatTensor` of shape `(batch_size, residual_context_length, num_targets)`):
            Decomposed models: the detrended context read by the residual forecaster (without the shift).
        trend_quantile_outputs (`torch.FloatTensor`, *optional*):
            Decomposed models with a quantile head: quantiles of the trend forecast.
        residual_quantile_outputs (`torch.FloatTensor`, *optional*):
            Decomposed models with a quantile head: quantiles of the residual forecast (without the shift).
    """

    loss: torch.FloatTensor | None = None
    prediction_outputs: torch.FloatTensor | None = None
    backbone_hidden_state: torch.FloatTensor | None = None
    decoder_hidden_state: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    loc: torch.FloatTensor | None = None
    scale: torch.FloatTensor | None = None
    input_data: torch.FloatTensor | None = None
    forecast_groundtruth: torch.FloatTensor | None = None
    quantile_outputs: torch.FloatTensor | None = None
    trend_prediction_outputs: torch.FloatTensor | None = None
    residual_prediction_outputs: torch.FloatTensor | None = None
    trend_input: torch.FloatTensor | None = None
    residual_input: torch.FloatTensor | None = None
    trend_quantile_outputs: torch.FloatTensor | None = None
    residual_quantile_outputs: torch.FloatTensor | None = None


class TTMPreTrainedModel(PreTrainedModel):
    config_class = TTMConfig
    config: TTMConfig
    base_model_prefix = "backbone"
    main_input_name = "past_values"
    input_modalities = ("time",)
    supports_gradient_checkpointing = False

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if isinstance(module, TTMPositionalEncoding):
            if self.config.positional_encoding_type == "sincos":
                init.copy_(module.position_enc, sincos_positions(*module.position_enc.shape))
            else:
                init.normal_(module.position_enc, mean=0.0, std=0.1)
        elif isinstance(module, TTMRegisterTokens):
            init.normal_(module.patch_tokens, mean=0.0, std=1.0)
        elif isinstance(module, nn.InstanceNorm1d) and module.affine:
            init.ones_(module.weight)
            init.zeros_(module.bias)


class TTMModel(TTMPreTrainedModel):
    """The TTM backbone: scaling, patch embeddings, prepended tokens and the mixer. Returns token embeddings."""

    # A TTMForPrediction checkpoint also holds the decoder and heads, which the backbone alone does not use.
    _keys_to_ignore_on_load_unexpected = [r"^decoder\.", r"^head\.", r"^multi_quantile_head_block\."]

    def __init__(self, config: TTMConfig):
        if config.decompose:
            raise ValueError(
                "a decomposed TTM (`decompose=True`) has two backbones, for the trend and the residual: load it with "
                "TTMForPrediction (AutoModelForTimeSeriesPrediction)."
            )
        super().__init__(config)
        self.encoder = TTMEncoder(config)
        self.post_init()

    def forward(
        self,
        past_values: torch.Tensor,
        past_observed_mask: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        freq_token: torch.Tensor | None = None,
    ) -> TTMModelOutput | tuple:
        r"""
        past_values (`torch.FloatTensor` of shape `(batch_size, sequence_length, num_input_channels)`):
            Past values of every channel. NaN marks a missing value. Inputs longer than `context_length` keep their
            last `context_length` steps; shorter ones are left-padded and the padding is marked unobserved.
        past_observed_mask (`torch.Tensor` of the same shape, *optional*):
            Non-zero where a value was observed. Unobserved values do not enter the scaling statistics.
        output_hidden_states (`bool`, *optional*):
            Whether to return the output of every layer.
        return_dict (`bool`, *optional*):
            Whether to return a [`TTMModelOutput`] instead of a tuple.
        freq_token (`torch.LongTensor` of shape `(batch_size,)`, *optional*):
            Frequency token of every series; required with `resolution_prefix_tuning`, ignored otherwise.
        """
        values, observed = prepare_past(self.config, past_values, past_observed_mask, self.dtype)
        freq_token = check_freq_token(self.config, freq_token, values.shape[0])
        hidden_states = [] if (output_hidden_states or self.config.output_hidden_states) else None
        scaled, loc, scale = scale_series(self.config, values, observed)
        hidden, patches = self.encoder(scaled, freq_token, hidden_states)
        output = TTMModelOutput(
            last_hidden_state=batch_major(hidden),
            hidden_states=None if hidden_states is None else tuple(hidden_states),
            patch_input=batch_major(patches),
            loc=loc.to(values.dtype),
            scale=scale.to(values.dtype),
        )
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        return output if return_dict else output.to_tuple()


def batch_major(x: torch.Tensor) -> torch.Tensor:
    """A view of patch-major activations (N, B, C, W) as (B, C, N, W), the layout of the model outputs."""
    return x.permute(1, 2, 0, 3)


def check_freq_token(config: TTMConfig, freq_token: torch.Tensor | None, batch: int) -> torch.Tensor | None:
    """The frequency tokens as a long tensor of shape (batch,); None when the model does not use them."""
    if not config.resolution_prefix_tuning:
        return None
    vocab = config.frequency_token_vocab_size
    expected = f"a tensor of shape ({batch},) with integers in [0, {vocab})"
    if freq_token is None:
        raise ValueError(f"`freq_token` is required by a model with resolution_prefix_tuning: pass {expected}.")
    if not isinstance(freq_token, torch.Tensor) or freq_token.reshape(-1).shape != (batch,):
        shape = tuple(freq_token.shape) if isinstance(freq_token, torch.Tensor) else type(freq_token).__name__
        raise ValueError(f"`freq_token` must be {expected}, got {shape}.")
    return _check_integral("freq_token", freq_token.reshape(-1), vocab, expected)


def check_static_categoricals(config: TTMConfig, values: torch.Tensor | None, batch: int) -> torch.Tensor | None:
    """The static categorical values as a long tensor (batch, n_cat); None when the model has none."""
    sizes = config.categorical_vocab_size_list
    if sizes is None:
        return None
    expected = f"a tensor of shape ({batch}, {len(sizes)}) with column i in [0, categorical_vocab_size_list[i])"
    if values is None:
        raise ValueError(f"`static_categorical_values` is required by this model: pass {expected}.")
    if not isinstance(values, torch.Tensor) or values.shape != (batch, len(sizes)):
        shape = tuple(values.shape) if isinstance(values, torch.Tensor) else type(values).__name__
        raise ValueError(f"`static_categorical_values` must be {expected}, got {shape}.")
    upper = torch.tensor(sizes, device=values.device)
    return _check_integral("static_categorical_values", values, upper, expected)


def prepare_future(
    config: TTMConfig,
    future_values: torch.Tensor | None,
    future_observed_mask: torch.Tensor | None,
    batch: int,
    dtype: torch.dtype,
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Checks the future values and mask, casts the values to `dtype` and trims both to the forecast length."""
    needs_exogenous = config.enable_forecast_channel_mixing and bool(config.exogenous_channel_indices)
    horizon = config.forecast_length
    if future_values is None:
        if needs_exogenous:
            raise ValueError(
                "`future_values` is required: forecast channel mixing reads the known future of the exogenous "
                f"channels {config.exogenous_channel_indices}; pass (batch, {horizon}, {config.num_input_channels})."
            )
        return None, None
    if not isinstance(future_values, torch.Tensor) or not future_values.is_floating_point():
        raise TypeError("`future_values` must be a floating-point torch.Tensor.")
    channels = (config.num_input_channels,) if needs_exogenous else {config.num_input_channels, config.num_targets}
    lengths = {horizon, config.prediction_length}
    if future_values.dim() != 3 or future_values.shape[0] != batch or future_values.shape[2] not in channels:
        raise ValueError(
            f"`future_values` must have shape (batch={batch}, time, channels) with channels in {sorted(channels)}, "
            f"got {tuple(future_values.shape)}."
        )
    if future_values.shape[1] not in lengths:
        raise ValueError(
            f"`future_values` must have {' or '.join(map(str, sorted(lengths)))} time steps, got "
            f"{future_values.shape[1]}."
        )
    future_values = future_values.to(dtype)
    if not tracing() and bool(torch.isinf(future_values).any()):
        raise ValueError(
            f"`future_values` contains +/-inf (or values beyond the range of {dtype}); mark missing values with NaN "
            "or `future_observed_mask`."
        )
    exogenous = future_values[:, :horizon, config.exogenous_channel_indices or []]
    if needs_exogenous and not tracing() and bool(exogenous.isnan().any()):
        raise ValueError("`future_values` has NaN in exogenous channels, whose future must be known.")
    if future_observed_mask is not None:
        if not isinstance(future_observed_mask, torch.Tensor) or future_observed_mask.shape != future_values.shape:
            raise ValueError(
                f"`future_observed_mask` must be a tensor of the same shape as `future_values` "
                f"{tuple(future_values.shape)}."
            )
        future_observed_mask = future_observed_mask[:, :horizon]
    return future_values[:, :horizon], future_observed_mask


def to_input_units(
    x: torch.Tensor | None, loc: torch.Tensor, scale: torch.Tensor, dtype: torch.dtype, shift: bool = True
) -> torch.Tensor | None:
    """Scaled forecasts (B, [Q,] H, C) back to input units with float64 (B, 1, C) statistics; `shift=False` for
    parts of a sum (residuals), which take the scale but not the shift."""
    if x is None:
        return None
    if x.dim() == 4:  # quantiles carry a level axis
        loc, scale = loc.unsqueeze(1), scale.unsqueeze(1)
    return (x * scale + loc if shift else x * scale).to(dtype)


@dataclass
class Forecast:
    """One forecaster's outputs in scaled units: point forecast (B, H, C'), quantiles (B, Q, H, C') or None, and the
    patch-major backbone and decoder outputs."""

    point: torch.Tensor
    quantiles: torch.Tensor | None
    hidden: torch.Tensor
    decoded: torch.Tensor


class TTMForPrediction(TTMPreTrainedModel):
    """TTM forecaster: point forecasts and quantiles in the units of the input, for every TTM release.

    Holds a backbone, a decoder and heads; a decomposed model (`decompose=True`) holds a trend and a residual
    forecaster of this same class instead, built from `config.trend_config()` and `config.residual_config()`.
    """

    def __init__(self, config: TTMConfig):
        super().__init__(config)
        if config.decompose:
            self.trend_forecaster = TTMForPrediction(config.trend_config())
            self.residual_forecaster = TTMForPrediction(config.residual_config())
        else:
            self.backbone = TTMModel(config)
            self.decoder = TTMDecoder(config) if config.use_decoder else None
            self.head = TTMForecastHead(config)
            use_mq = config.multi_quantile_head
            self.multi_quantile_head_block = TTMMultiQuantileHead(config) if use_mq else None
        self.post_init()

    def forward(
        self,
        past_values: torch.Tensor,
        future_values: torch.Tensor | None = None,
        past_observed_mask: torch.Tensor | None = None,
        future_observed_mask: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_loss: bool = True,
        return_dict: bool | None = None,
        freq_token: torch.Tensor | None = None,
        static_categorical_values: torch.Tensor | None = None,
        metadata: torch.Tensor | None = None,
    ) -> TTMForPredictionOutput | tuple:
        r"""
        past_values (`torch.FloatTensor` of shape `(batch_size, sequence_length, num_input_channels)`):
            Past values of every channel. NaN marks a missing value; +/-inf raises. Inputs longer than
            `context_length` keep their last `context_length` steps; shorter ones are left-padded and the padding is
            marked unobserved.
        future_values (`torch.FloatTensor` of shape `(batch_size, horizon, channels)`, *optional*):
            Values to score the forecast against; horizon is `prediction_length` or `prediction_filter_length`, and
            channels are all `num_input_channels` channels or only the target channels.
            Required with forecast channel mixing over exogenous channels, whose future values it reads (pass any
            value, e.g. 0, for the target channels then). NaN marks a missing target value.
        past_observed_mask (`torch.Tensor` of the shape of `past_values`, *optional*):
            Non-zero where a value was observed.
        future_observed_mask (`torch.Tensor` of the shape of `future_values`, *optional*):
            Non-zero where a future value was observed; the loss averages over observed values only.
        output_hidden_states (`bool`, *optional*):
            Whether to return the output of every backbone and decoder layer.
        return_loss (`bool`, defaults to `True`):
            Whether to compute the loss when `future_values` is given.
        return_dict (`bool`, *optional*):
            Whether to return a [`TTMForPredictionOutput`] instead of a tuple.
        freq_token (`torch.LongTensor` of shape `(batch_size,)`, *optional*):
            Frequency token of every series; required with `resolution_prefix_tuning`, ignored otherwise.
        static_categorical_values (`torch.LongTensor` of shape `(batch_size, num_categorical)`, *optional*):
            Category of every static categorical variable; required with `categorical_vocab_size_list`, ignored
            otherwise.
        metadata (*optional*):
            Accepted for granite-tsfm compatibility (its custom trainers pass it); not used.

        Example:

        ```python
        >>> import torch
        >>> from configuration_ttm import TTMConfig
        >>> from modeling_ttm import TTMForPrediction

        >>> model = TTMForPrediction(TTMConfig(context_length=64, prediction_length=16, num_input_channels=2))
        >>> out = model(past_values=torch.randn(4, 64, 2))
        >>> out.prediction_outputs.shape
        torch.Size([4, 16, 2])
        ```"""
        config = self.config
        values, observed = prepare_past(config, past_values, past_observed_mask, self.dtype)
        batch = values.shape[0]
        freq_token = check_freq_token(config, freq_token, batch)
        categories = check_static_categoricals(config, static_categorical_values, batch)
        future_values, future_observed_mask = prepare_future(
            config, future_values, future_observed_mask, batch, values.dtype
        )
        scaled, loc, scale = scale_series(config, values, observed)
        if config.prediction_channel_indices is not None:
            loc, scale = loc[..., config.prediction_channel_indices], scale[..., config.prediction_channel_indices]
        target, target_observed = None, None
        if future_values is not None and return_loss:
            target, target_observed = future_values, future_observed_mask
            if target.shape[-1] != config.num_targets:
                target = target[..., config.prediction_channel_indices]
                if target_observed is not None:
                    target_observed = target_observed[..., config.prediction_channel_indices]

        def unscale(x: torch.Tensor | None, shift: bool = True) -> torch.Tensor | None:
            return to_input_units(x, loc, scale, values.dtype, shift)

        inputs = (freq_token, categories, future_values)
        if config.decompose:
            fields = self.decomposed(scaled, inputs, target, target_observed, loc, scale, values.dtype)
        else:
            hidden_states = [] if (output_hidden_states or config.output_hidden_states) else None
            result = self.forecast(values, scaled, *inputs, hidden_states)
            prediction, quantiles = unscale(result.point), unscale(result.quantiles)
            use_loss = target is not None and (config.loss is not None or quantiles is not None)
            fields = {
                "loss": forecast_loss(config, prediction, quantiles, target, target_observed) if use_loss else None,
                "prediction_outputs": prediction,
                "backbone_hidden_state": batch_major(result.hidden),
                "decoder_hidden_state": batch_major(result.decoded),
                "hidden_states": None if hidden_states is None else tuple(hidden_states),
                "quantile_outputs": quantiles,
            }
        if config.light_mode:
            fields = {name: fields[name] for name in ("loss", "prediction_outputs", "quantile_outputs")}
        else:
            fields.update(loc=loc.to(values.dtype), scale=scale.to(values.dtype), input_data=values)
            fields["forecast_groundtruth"] = target
        output = TTMForPredictionOutput(**fields)  # the fields come out in the class's order
        return_dict = return_dict if return_dict is not None else config.return_dict
        return output if return_dict else output.to_tuple()

    def forecast(
        self,
        values: torch.Tensor,
        scaled: torch.Tensor,
        freq_token: torch.Tensor | None,
        categories: torch.Tensor | None,
        future_values: torch.Tensor | None,
        hidden_states: list[torch.Tensor] | None = None,
    ) -> Forecast:
        """Backbone, decoder and heads on a scaled context (B, L, C); the forecast channel mixer reads `values`."""
        hidden, patches = self.backbone.encoder(scaled, freq_token, hidden_states)
        decoded = hidden if self.decoder is None else self.decoder(hidden, patches, categories, hidden_states)
        point, quantiles = self.head(decoded, values, future_values)
        if self.multi_quantile_head_block is not None:
            quantiles = self.multi_quantile_head_block(point, decoded)
            point = quantiles[:, self.config.median_quantile_index]
        return Forecast(point, quantiles, hidden, decoded)

    def decomposed(
        self,
        scaled: torch.Tensor,
        inputs: tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None],
        target: torch.Tensor | None,
        target_observed: torch.Tensor | None,
        loc: torch.Tensor,
        scale: torch.Tensor,
        dtype: torch.dtype,
    ) -> dict[str, torch.Tensor | None]:
        """Output fields of a decomposed model: the trend forecaster reads the scaled context, the residual forecaster
        the last `residual_context_length` steps of the context minus its trend; the forecast is their sum."""
        config = self.config
        with torch.no_grad():
            trend = robust_trend(scaled)
        length = self.residual_forecaster.config.context_length
        residual = scaled[:, -length:] - trend[:, -length:]
        trend_part = self.trend_forecaster.forecast(scaled, scaled, *inputs)
        residual_part = self.residual_forecaster.forecast(residual, residual, *inputs)
        point = trend_part.point + residual_part.point
        quantiles = None
        if trend_part.quantiles is not None:
            quantiles = combine_quantiles(
                trend_part.quantiles,
                residual_part.quantiles,
                config.median_quantile_index,
                config.combine_quantiles_via_variance,
            )
        targets = config.prediction_channel_indices
        if targets is not None:
            scaled, trend, residual = scaled[..., targets], trend[..., targets], residual[..., targets]
        loss = None
        if target is not None and (config.loss is not None or quantiles is not None):
            future = (target - loc) / scale  # NaN stays NaN
            loss = self.decomposed_loss(
                scaled, future.to(dtype), target_observed, (point, quantiles), trend_part, residual_part
            )

        def unscale(x: torch.Tensor | None, shift: bool = True) -> torch.Tensor | None:
            return to_input_units(x, loc, scale, dtype, shift)

        return {
            "loss": loss,
            "prediction_outputs": unscale(point),
            "quantile_outputs": unscale(quantiles),
            "trend_prediction_outputs": unscale(trend_part.point),
            "residual_prediction_outputs": unscale(residual_part.point, shift=False),
            "trend_input": unscale(trend),
            "residual_input": unscale(residual, shift=False),
            "trend_quantile_outputs": unscale(trend_part.quantiles),
            "residual_quantile_outputs": unscale(residual_part.quantiles, shift=False),
        }

    def decomposed_loss(
        self,
        scaled: torch.Tensor,
        future: torch.Tensor,
        future_observed: torch.Tensor | None,
        combined: tuple[torch.Tensor, torch.Tensor | None],
        trend_part: Forecast,
        residual_part: Forecast,
    ) -> torch.Tensor:
        """Weighted sum of the joint, trend and residual losses, on scaled values. The trend target is the trend of
        the context followed by the future; the residual target is the future minus that trend."""
        config = self.config
        point, quantiles = combined
        kept = ~future.isnan()
        if future_observed is not None:
            kept = kept & (future_observed != 0)
        future = torch.where(kept, future, 0.0)  # missing targets: the series mean, for the trend target only
        with torch.no_grad():
            trend_target = robust_trend(torch.cat([scaled, future], dim=1))[:, -future.shape[1] :]
        joint = forecast_loss(config, point, quantiles, future, kept)
        trend = forecast_loss(config, trend_part.point, trend_part.quantiles, trend_target, kept)
        step_kept = kept[:, 1:] & kept[:, :-1]
        steps = trend_part.point.diff(dim=1), trend_target.diff(dim=1)
        if quantiles is None:
            step_loss = point_loss(config, *steps)
        else:
            step_loss = (steps[0] - steps[1]).abs()
        trend = trend + 0.1 * torch.where(step_kept, step_loss, 0.0).sum() / step_kept.sum().clamp_min(1)
        residual_target = future - trend_target
        residual = forecast_loss(config, residual_part.point, residual_part.quantiles, residual_target, kept)
        return (
            config.joint_loss_weight * joint + config.trend_loss_weight * trend + config.residual_loss_weight * residual
        )


TTMConfig.register_for_auto_class()
TTMModel.register_for_auto_class("AutoModel")
TTMForPrediction.register_for_auto_class("AutoModelForTimeSeriesPrediction")
if TTMConfig.model_type not in CONFIG_MAPPING:
    AutoConfig.register(TTMConfig.model_type, TTMConfig)
    AutoModel.register(TTMConfig, TTMModel)
    AutoModelForTimeSeriesPrediction.register(TTMConfig, TTMForPrediction)

__all__ = ["TTMPreTrainedModel", "TTMModel", "TTMForPrediction", "TTMModelOutput", "TTMForPredictionOutput"]

"""PyTorch Tiny Time Mixer (TTM): a ~1M-parameter pretrained forecaster for multivariate time series.

Data flow of `TTMForPrediction` (arXiv 2401.03955):

    past_values (B, L, C) -> fit to context_length, NaN -> unobserved -> scale per series and channel
    -> patches (N, B, C, patch_length) -> patcher (N, B, C, d_model) [+ frequency-token patch]
    -> backbone TTM layers (adaptive patching) -> decoder (adapter, static categoricals, TTM layers)
    -> head: flatten patches -> Linear -> (B, H, C') [-> forecast channel mixer] [+ quantile offsets]
    -> scale back -> loss against future_values.

Inside, activations are patch-major (N patches first); outputs are returned as (B, C, N, width) views.

Every TTM layer is a stack of pre-norm residual MLP mixers: across channels (mix_channel mode), across patches,
across features. Parameter names follow IBM's published checkpoints, so those load without conversion.
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
    from .configuration_ttm import TTMConfig, adaptive_patch_factors
except ImportError:
    from configuration_ttm import TTMConfig, adaptive_patch_factors

STD_SCALE_EPS = 1e-5  # added to the variance of the "std" scaler
MEAN_SCALE_MIN = 1e-10  # floor of the "mean" scaler
# Bound of scaled values. Observed values stay far inside it (|z| <= sqrt(context) for "std"); only the zeros of
# unobserved positions in a series far from zero can reach it, instead of overflowing the model's dtype.
SCALED_LIMIT = 1e4
# PyTorch's CPU softmax is several times slower over a last axis shorter than this than over the same values
# viewed transposed (measured 5.3 ms vs 0.6 ms for 258k values in rows of 6).
NARROW_SOFTMAX = 32


# ----------------------------------------------------------------------------------------------------------------
# Mixer building blocks. Activations are patch-major, (patches, batch, channels, width), throughout the mixers:
# mixing across patches is then one matrix product from the left over a contiguous tensor, with no transposes.


@dataclass(frozen=True)
class MixerSpec:
    """Shape and options of one stack of TTM layers (backbone, decoder or forecast channel mixer)."""

    num_patches: int
    width: int
    num_channels: int
    num_layers: int
    adaptive_levels: int
    mix_channels: bool
    expansion_factor: int
    dropout: float
    gated_attn: bool
    batch_norm: bool
    norm_eps: float
    self_attn: bool
    self_attn_heads: int

    @classmethod
    def backbone(cls, config: TTMConfig) -> MixerSpec:
        return cls(
            num_patches=config.num_patches,
            width=config.d_model,
            num_channels=config.num_input_channels,
            num_layers=config.num_layers,
            adaptive_levels=config.adaptive_patching_levels,
            mix_channels=config.mode == "mix_channel",
            expansion_factor=config.expansion_factor,
            dropout=config.dropout,
            gated_attn=config.gated_attn,
            batch_norm=config.norm_mlp == "BatchNorm",
            norm_eps=config.norm_eps,
            self_attn=config.self_attn,
            self_attn_heads=config.self_attn_heads,
        )

    def at_level(self, factor: int) -> MixerSpec:
        """The spec seen by the layers of an adaptive-patching level that splits every patch `factor` times."""
        return replace(self, num_patches=self.num_patches * factor, width=self.width // factor)


class TTMNorm(nn.Module):
    """Pre-normalisation of a mixer: LayerNorm over features, or BatchNorm over all other positions."""

    def __init__(self, spec: MixerSpec):
        super().__init__()
        if spec.batch_norm:
            self.norm = TTMBatchNorm(spec.width, spec.norm_eps)
        else:
            self.norm = nn.LayerNorm(spec.width, eps=spec.norm_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x)


class TTMBatchNorm(nn.Module):
    """BatchNorm1d over the last axis, with statistics over every (batch, channel, patch) position."""

    def __init__(self, width: int, eps: float):
        super().__init__()
        self.batchnorm = nn.BatchNorm1d(width, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.batchnorm(x.reshape(-1, x.shape[-1])).reshape(x.shape)


class TTMDropout(nn.Module):
    """Dropout whose CPU random numbers are 16-bit uniforms cut from bulk 64-bit draws.

    PyTorch's CPU dropout draws one double per element, which costs more than all other elementwise work of a
    training step. Here an element is kept when its 16-bit uniform falls below `round((1 - p) * 2**16)`, and kept
    values are scaled by the inverse of that probability, so outputs stay unbiased; `p` acts rounded to a
    multiple of 2**-16. Other devices use `F.dropout`.
    """

    def __init__(self, p: float):
        super().__init__()
        self.p = p
        kept = round((1.0 - p) * 2**16)
        self.threshold = kept - 2**15  # int16 draws are uniform on [-2**15, 2**15)
        self.scale = 2**16 / kept if kept else 0.0

    def extra_repr(self) -> str:
        return f"p={self.p}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.threshold >= 2**15:
            return x
        if x.device.type != "cpu":
            return F.dropout(x, self.p, training=True)
        bits = torch.empty((x.numel() + 3) // 4, dtype=torch.int64).random_(-(2**63), None)
        noise = torch.empty(x.shape, dtype=x.dtype)
        torch.lt(bits.view(torch.int16)[: x.numel()].view(x.shape), self.threshold, out=noise)  # 1 = kept
        return x * noise.mul_(self.scale)


def gelu(x: torch.Tensor) -> torch.Tensor:
    """Exact GELU; in place when autograd is off, which saves allocating the widest activation of a mixer."""
    return F.gelu(x) if torch.is_grad_enabled() else torch._C._nn.gelu_(x)  # the binding F.elu_ and F.hardtanh_ use too


def linear_rows(x: torch.Tensor, layer: nn.Linear) -> torch.Tensor:
    """`layer` applied along the first axis of a 2-D tensor: (in_features, K) -> (out_features, K)."""
    return torch.addmm(layer.bias.unsqueeze(1), layer.weight, x)


class TTMMLP(nn.Module):
    """Linear -> GELU -> dropout -> Linear -> dropout, over the last axis or (`over_rows`) the first axis."""

    def __init__(self, size: int, spec: MixerSpec, over_rows: bool = False):
        super().__init__()
        self.fc1 = nn.Linear(size, size * spec.expansion_factor)
        self.fc2 = nn.Linear(size * spec.expansion_factor, size)
        self.dropout = TTMDropout(spec.dropout)
        self.over_rows = over_rows

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.over_rows:
            return self.dropout(linear_rows(self.dropout(gelu(linear_rows(x, self.fc1))), self.fc2))
        return self.dropout(self.fc2(self.dropout(gelu(self.fc1(x)))))


class TTMGatedAttention(nn.Module):
    """Multiplies the input by a softmax gate over its last axis or (`over_rows`) its first axis."""

    def __init__(self, size: int, over_rows: bool = False):
        super().__init__()
        self.attn_layer = nn.Linear(size, size)
        self.over_rows = over_rows

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.over_rows:
            gate = linear_rows(x, self.attn_layer).softmax(dim=0)
        elif x.shape[-1] < NARROW_SOFTMAX:  # the same softmax, computed over the transposed view
            return x * self.attn_layer(x).transpose(-1, -2).softmax(dim=-2).transpose(-1, -2)
        else:
            gate = self.attn_layer(x).softmax(dim=-1)
        return x * gate if torch.is_grad_enabled() else gate.mul_(x)


class TTMSelfAttention(nn.Module):
    """Multi-head self-attention across the patches of every series and channel."""

    def __init__(self, spec: MixerSpec):
        super().__init__()
        self.num_heads = spec.self_attn_heads
        self.dropout = spec.dropout
        self.q_proj = nn.Linear(spec.width, spec.width)
        self.k_proj = nn.Linear(spec.width, spec.width)
        self.v_proj = nn.Linear(spec.width, spec.width)
        self.out_proj = nn.Linear(spec.width, spec.width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, b, c, w = x.shape
        x = x.permute(1, 2, 0, 3).reshape(b * c, n, w)  # one sequence of patches per series and channel

        def heads(t: torch.Tensor) -> torch.Tensor:  # (B * C, N, W) -> (B * C, heads, N, W / heads)
            return t.unflatten(-1, (self.num_heads, -1)).transpose(1, 2)

        q, k, v = heads(self.q_proj(x)), heads(self.k_proj(x)), heads(self.v_proj(x))
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)
        out = self.out_proj(out.transpose(1, 2).flatten(-2))  # (B * C, N, W)
        return out.view(b, c, n, w).permute(2, 0, 1, 3)


class TTMPatchMixer(nn.Module):
    """Mixes information across patches (time), shared over channels and features."""

    def __init__(self, spec: MixerSpec):
        super().__init__()
        self.norm = TTMNorm(spec)
        self.mlp = TTMMLP(spec.num_patches, spec, over_rows=True)
        self.gating_block = TTMGatedAttention(spec.num_patches, over_rows=True) if spec.gated_attn else None
        if spec.self_attn:
            self.self_attn_layer = TTMSelfAttention(spec)
            self.norm_attn = TTMNorm(spec)
        else:
            self.self_attn_layer = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        normed = self.norm(x)
        y = self.mlp(normed.reshape(x.shape[0], -1))  # (N, B * C * W)
        if self.gating_block is not None:
            y = self.gating_block(y)
        y = y.view(x.shape)
        if self.self_attn_layer is not None:
            y = self.norm_attn(y + self.self_attn_layer(normed))
        return y.add_(x)


class TTMFeatureMixer(nn.Module):
    """Mixes the features within every patch."""

    def __init__(self, spec: MixerSpec):
        super().__init__()
        self.norm = TTMNorm(spec)
        self.mlp = TTMMLP(spec.width, spec)
        self.gating_block = TTMGatedAttention(spec.width) if spec.gated_attn else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.mlp(self.norm(x))
        if self.gating_block is not None:
            y = self.gating_block(y)
        return y.add_(x)


class TTMChannelMixer(nn.Module):
    """Mixes information across channels (mix_channel mode); the gate comes before the MLP here."""

    def __init__(self, spec: MixerSpec):
        super().__init__()
        self.norm = TTMNorm(spec)
        self.mlp = TTMMLP(spec.num_channels, spec, over_rows=True)
        self.gating_block = TTMGatedAttention(spec.num_channels, over_rows=True) if spec.gated_attn else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, b, c, w = x.shape
        y = self.norm(x).permute(2, 0, 1, 3).reshape(c, -1)  # one row per channel: (C, N * B * W)
        if self.gating_block is not None:
            y = self.gating_block(y)
        return x + self.mlp(y).view(c, n, b, w).permute(1, 2, 0, 3)


class TTMLayer(nn.Module):
    """One TTM layer: [channel mixer] -> patch mixer (when there is more than one patch) -> feature mixer."""

    def __init__(self, spec: MixerSpec):
        super().__init__()
        self.channel_feature_mixer = TTMChannelMixer(spec) if spec.mix_channels else None
        self.patch_mixer = TTMPatchMixer(spec) if spec.num_patches > 1 else None
        self.feature_mixer = TTMFeatureMixer(spec)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channel_feature_mixer is not None:
            x = self.channel_feature_mixer(x)
        if self.patch_mixer is not None:
            x = self.patch_mixer(x)
        return self.feature_mixer(x)


class TTMAdaptivePatchingLevel(nn.Module):
    """TTM layers that run on patches split `factor` times finer: (N, W) -> (N * factor, W / factor) and back."""

    def __init__(self, spec: MixerSpec, factor: int):
        super().__init__()
        self.factor = factor
        self.mixer_layers = nn.ModuleList(TTMLayer(spec.at_level(factor)) for _ in range(spec.num_layers))

    def forward(self, x: torch.Tensor, hidden_states: list[torch.Tensor] | None) -> torch.Tensor:
        x = self.split(x)
        for layer in self.mixer_layers:
            x = layer(x)
            if hidden_states is not None:
                hidden_states.append(self.merge(x))
        return self.merge(x)

    def split(self, x: torch.Tensor) -> torch.Tensor:
        """(N, B, C, W) -> (N * f, B, C, W / f): patch n becomes patches n * f ... n * f + f - 1."""
        n, b, c, w = x.shape
        return x.view(n, b, c, self.factor, w // self.factor).permute(0, 3, 1, 2, 4).reshape(n * self.factor, b, c, -1)

    def merge(self, x: torch.Tensor) -> torch.Tensor:
        """The inverse of `split`."""
        n, b, c, w = x.shape
        return x.view(n // self.factor, self.factor, b, c, w).permute(0, 2, 3, 1, 4).reshape(n // self.factor, b, c, -1)


class TTMBlock(nn.Module):
    """A stack of TTM layers; with adaptive patching, one stack per level, the finest split first."""

    def __init__(self, spec: MixerSpec):
        super().__init__()
        self.adaptive = spec.adaptive_levels > 0
        if self.adaptive:
            factors = adaptive_patch_factors(spec.width, spec.adaptive_levels)
            self.mixers = nn.ModuleList(TTMAdaptivePatchingLevel(spec, f) for f in factors)
        else:
            self.mixers = nn.ModuleList(TTMLayer(spec) for _ in range(spec.num_layers))

    def forward(self, x: torch.Tensor, hidden_states: list[torch.Tensor] | None = None) -> torch.Tensor:
        for mixer in self.mixers:
            if self.adaptive:
                x = mixer(x, hidden_states)
            else:
                x = mixer(x)
                if hidden_states is not None:
                    hidden_states.append(x)
        return x


# ----------------------------------------------------------------------------------------------------------------
# Inputs: validation, missing values, context fitting and scaling.


def _check_integral(name: str, values: torch.Tensor, upper: torch.Tensor | int, expected: str) -> torch.Tensor:
    """Returns `values` as long after checking they are whole numbers in [0, upper)."""
    if values.is_floating_point():
        if not torch.equal(values, values.round()):
            raise ValueError(f"`{name}` must hold whole numbers ({expected}).")
    elif values.dtype == torch.bool or values.is_complex():
        raise TypeError(f"`{name}` must be an integer tensor ({expected}), got dtype {values.dtype}.")
    values = values.long()
    if bool((values < 0).any()) or bool((values >= upper).any()):
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
    missing = not bool(finite.all())
    if missing:
        if bool(torch.isinf(past_values).any()):
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
    """Adds a positional table to the patches: learned ("random") or a fixed sin/cos buffer ("sincos")."""

    def __init__(self, config: TTMConfig):
        super().__init__()
        table = torch.zeros(config.num_patches, config.d_model)
        if config.positional_encoding_type == "random":
            self.position_enc = nn.Parameter(table)
        else:
            self.register_buffer("position_enc", table)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.position_enc[:, None, None, :]


class TTMEncoder(nn.Module):
    """Patch embedding, optional frequency-token patch and positional encoding, then the backbone mixer."""

    def __init__(self, config: TTMConfig):
        super().__init__()
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
        self.positional_encoder = TTMPositionalEncoding(config) if config.use_positional_encoding else None
        self.mlp_mixer_encoder = TTMBlock(MixerSpec.backbone(config))

    def forward(
        self, patches: torch.Tensor, freq_token: torch.Tensor | None, hidden_states: list[torch.Tensor] | None
    ) -> torch.Tensor:
        x = self.patcher(patches)  # (N, B, C, d_model)
        if self.freq_mod is not None:
            prefix = self.freq_mod(freq_token)[None, :, None, :].expand(1, -1, x.shape[2], -1)
            x = torch.cat([prefix, x], dim=0)
        if self.positional_encoder is not None:
            x = self.positional_encoder(x)
        return self.mlp_mixer_encoder(x, hidden_states)


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


class TTMForecastChannelMixer(nn.Module):
    """Residual refinement of the forecast that mixes target channels with the known future of exogenous ones.

    Every forecast step is seen together with `fcm_context_length` neighbours on each side (the last context
    values, or zeros, before the first step; zeros after the last).
    """

    def __init__(self, config: TTMConfig):
        super().__init__()
        self.targets = config.prediction_channel_indices or list(range(config.num_input_channels))
        self.exogenous = config.exogenous_channel_indices or []
        self.horizon = config.forecast_length
        self.context = config.fcm_context_length
        self.prepend_past = config.fcm_prepend_past
        offset = config.fcm_prepend_past_offset or 0
        self.past_steps = slice(-(offset + self.context), -offset if offset else None)
        channels = len(self.targets) + len(self.exogenous)
        window = 2 * self.context + 1
        if config.fcm_use_mixer:
            spec = replace(
                MixerSpec.backbone(config),
                num_patches=channels,
                width=2 * window,
                num_channels=self.horizon,
                num_layers=config.fcm_mix_layers,
                adaptive_levels=0,
                mix_channels=False,
                dropout=config.head_dropout,
                gated_attn=config.fcm_gated_attn,
            )
            self.fcm_embedding = nn.Linear(window, 2 * window)
            self.exog_mixer = TTMBlock(spec)
            window = 2 * window
        else:
            self.exog_mixer = None
        self.fcm_gating_block = TTMGatedAttention(channels * window) if config.fcm_gated_attn else None
        self.mlp = nn.Linear(channels * window, len(self.targets))

    def forward(
        self, forecast: torch.Tensor, past_values: torch.Tensor, future_values: torch.Tensor | None
    ) -> torch.Tensor:
        x = forecast
        if self.exogenous:
            x = torch.cat([forecast, future_values[:, : self.horizon, self.exogenous]], dim=-1)
        if self.context > 0:
            if self.prepend_past:
                before = past_values[:, self.past_steps][..., self.targets + self.exogenous]
            else:
                before = x.new_zeros(x.shape[0], self.context, x.shape[2])
            x = F.pad(torch.cat([before, x], dim=1), (0, 0, 0, self.context))
            x = x.unfold(1, 2 * self.context + 1, 1)  # (B, H, channels, window)
            if self.exog_mixer is not None:  # mixes across channels: they take the place of patches
                x = self.exog_mixer(self.fcm_embedding(x).permute(2, 0, 1, 3)).permute(1, 2, 0, 3)
            x = x.flatten(2)
        if self.fcm_gating_block is not None:
            x = self.fcm_gating_block(x)
        return forecast + self.mlp(x)


def linear_over_patches(x: torch.Tensor, layer: nn.Linear) -> torch.Tensor:
    """`layer` applied to the patches of every series flattened in (patch, feature) order: (N, B, C, D) -> (B, C, out).

    Computed as a sum of per-patch products, so the flattened, batch-major copy of `x` is never materialised.
    """
    n, b, c, d = x.shape
    weight = layer.weight.view(-1, n, d).permute(1, 2, 0)  # (N, D, out)
    return (torch.bmm(x.reshape(n, b * c, d), weight).sum(0) + layer.bias).view(b, c, -1)


class TTMForecastHead(nn.Module):
    """Flattens the patches of every target channel into the forecast; optionally adds quantile offsets."""

    def __init__(self, config: TTMConfig):
        super().__init__()
        self.targets = config.prediction_channel_indices
        self.horizon = config.forecast_length
        width = config.decoder_d_model if config.use_decoder else config.d_model
        features = config.num_patches * width
        self.dropout_layer = TTMDropout(config.head_dropout)
        self.base_forecast_block = nn.Linear(features, config.prediction_length)
        use_fcm = config.enable_forecast_channel_mixing
        self.fcm_block = TTMForecastChannelMixer(config) if use_fcm else None
        levels = config.quantile_levels or []
        self.median_index = min(range(len(levels)), key=lambda i: abs(levels[i] - 0.5)) if levels else 0
        self.num_offsets = max(len(levels) - 1, 0)
        self.quantile_block = nn.Linear(features, self.num_offsets * config.prediction_length) if levels else None

    def forward(
        self, x: torch.Tensor, past_values: torch.Tensor, future_values: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.targets is not None:
            x = x[:, :, self.targets]
        x = self.dropout_layer(x)
        forecast = linear_over_patches(x, self.base_forecast_block).transpose(1, 2)[:, : self.horizon]  # (B, H', C')
        if self.fcm_block is not None:
            forecast = self.fcm_block(forecast, past_values, future_values)
        if self.quantile_block is None:
            return forecast, None
        # Non-negative gaps between neighbouring levels, accumulated outwards from the median: never crossing.
        gaps = F.softplus(linear_over_patches(x, self.quantile_block).unflatten(-1, (self.num_offsets, -1)))
        gaps = gaps[..., : self.horizon].permute(0, 2, 3, 1)  # (B, Q-1, H', C')
        m = self.median_index
        below = gaps[:, :m].flip(1).cumsum(1).flip(1)
        above = gaps[:, m:].cumsum(1)
        median = forecast.unsqueeze(1)
        return forecast, torch.cat([median - below, median, median + above], dim=1)


# ----------------------------------------------------------------------------------------------------------------
# Hugging Face models.


@dataclass
class TTMModelOutput(ModelOutput):
    """
    Output of [`TTMModel`].

    Args:
        last_hidden_state (`torch.FloatTensor` of shape `(batch_size, num_channels, num_patches, d_model)`):
            Patch embeddings after the last backbone layer.
        hidden_states (`tuple(torch.FloatTensor)`, *optional*):
            Output of every backbone layer, each reshaped to `(batch_size, num_channels, num_patches, d_model)`;
            returned when `output_hidden_states=True`.
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
    Output of [`TTMForPrediction`].

    Args:
        loss (`torch.FloatTensor` of shape `()`, *optional*):
            Training loss in the units of the input, over the observed future values; returned when `future_values`
            is given.
        prediction_outputs (`torch.FloatTensor` of shape `(batch_size, forecast_length, num_targets)`):
            Point forecast (the median level when `quantile_levels` is set) in the units of the input.
        quantile_outputs (`torch.FloatTensor`, *optional*):
            Shape `(batch_size, num_quantiles, forecast_length, num_targets)`.
            Forecast of every level of `config.quantile_levels`, non-decreasing along the level axis.
        backbone_hidden_state (`torch.FloatTensor` of shape `(batch_size, num_channels, num_patches, d_model)`):
            Output of the backbone.
        decoder_hidden_state (`torch.FloatTensor` of shape `(batch_size, num_channels, num_patches, decoder_d_model)`):
            Output of the decoder (the backbone output when `use_decoder=False`).
        hidden_states (`tuple(torch.FloatTensor)`, *optional*):
            Output of every backbone and decoder layer; returned when `output_hidden_states=True`.
        loc (`torch.FloatTensor` of shape `(batch_size, 1, num_targets)`):
            Shift of the per-series scaling of the target channels.
        scale (`torch.FloatTensor` of shape `(batch_size, 1, num_targets)`):
            Scale of the per-series scaling of the target channels.
    """

    loss: torch.FloatTensor | None = None
    prediction_outputs: torch.FloatTensor | None = None
    quantile_outputs: torch.FloatTensor | None = None
    backbone_hidden_state: torch.FloatTensor | None = None
    decoder_hidden_state: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    loc: torch.FloatTensor | None = None
    scale: torch.FloatTensor | None = None


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


class TTMModel(TTMPreTrainedModel):
    """The TTM backbone: scaling, patching and the adaptive-patching mixer. Returns patch embeddings."""

    # A TTMForPrediction checkpoint also holds the decoder and head, which the backbone alone does not use.
    _keys_to_ignore_on_load_unexpected = [r"^decoder\.", r"^head\."]

    def __init__(self, config: TTMConfig):
        super().__init__(config)
        self.encoder = TTMEncoder(config)
        self.post_init()

    def forward(
        self,
        past_values: torch.Tensor,
        past_observed_mask: torch.Tensor | None = None,
        freq_token: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> TTMModelOutput | tuple:
        r"""
        past_values (`torch.FloatTensor` of shape `(batch_size, sequence_length, num_input_channels)`):
            Past values of every channel. NaN marks a missing value. Inputs longer than `context_length` keep their
            last `context_length` steps; shorter ones are left-padded and the padding is marked unobserved.
        past_observed_mask (`torch.Tensor` of the same shape, *optional*):
            Non-zero where a value was observed. Unobserved values do not enter the scaling statistics.
        freq_token (`torch.LongTensor` of shape `(batch_size,)`, *optional*):
            Frequency token of every series; required with `resolution_prefix_tuning`, ignored otherwise.
        output_hidden_states (`bool`, *optional*):
            Whether to return the output of every layer.
        return_dict (`bool`, *optional*):
            Whether to return a [`TTMModelOutput`] instead of a tuple.
        """
        values, observed = prepare_past(self.config, past_values, past_observed_mask, self.dtype)
        freq_token = check_freq_token(self.config, freq_token, values.shape[0])
        hidden_states = [] if (output_hidden_states or self.config.output_hidden_states) else None
        hidden, patches, loc, scale = self.encode(values, observed, freq_token, hidden_states)
        output = TTMModelOutput(
            last_hidden_state=batch_major(hidden),
            hidden_states=None if hidden_states is None else tuple(map(batch_major, hidden_states)),
            patch_input=batch_major(patches),
            loc=loc.to(values.dtype),
            scale=scale.to(values.dtype),
        )
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        return output if return_dict else output.to_tuple()

    def encode(
        self,
        values: torch.Tensor,
        observed: torch.Tensor | None,
        freq_token: torch.Tensor | None,
        hidden_states: list[torch.Tensor] | None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Backbone forward on inputs checked and fitted by `prepare_past`.

        Returns patch-major (hidden state, scaled patches) and the (loc, scale) of the scaling; appends the output
        of every layer to `hidden_states` when it is a list.
        """
        scaled, loc, scale = scale_series(self.config, values, observed)
        batch, _, channels = scaled.shape
        patches = scaled.view(batch, -1, self.config.patch_length, channels).permute(1, 0, 3, 2)  # (N, B, C, P)
        return self.encoder(patches, freq_token, hidden_states), patches, loc, scale


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
    if bool(torch.isinf(future_values).any()):
        raise ValueError(
            f"`future_values` contains +/-inf (or values beyond the range of {dtype}); mark missing values with NaN "
            "or `future_observed_mask`."
        )
    if needs_exogenous and bool(future_values[:, :horizon, config.exogenous_channel_indices].isnan().any()):
        raise ValueError("`future_values` has NaN in exogenous channels, whose future must be known.")
    if future_observed_mask is not None:
        if not isinstance(future_observed_mask, torch.Tensor) or future_observed_mask.shape != future_values.shape:
            raise ValueError(
                f"`future_observed_mask` must be a tensor of the same shape as `future_values` "
                f"{tuple(future_values.shape)}."
            )
        future_observed_mask = future_observed_mask[:, :horizon]
    return future_values[:, :horizon], future_observed_mask


def forecast_loss(
    config: TTMConfig,
    forecast: torch.Tensor,
    quantiles: torch.Tensor | None,
    target: torch.Tensor,
    observed: torch.Tensor | None,
) -> torch.Tensor:
    """Mean loss over the observed target values (NaN targets count as unobserved)."""
    missing = target.isnan()
    if observed is not None:
        missing = missing | (observed == 0)
    target = torch.where(missing, 0.0, target)
    if quantiles is not None:
        levels = torch.tensor(config.quantile_levels, dtype=target.dtype, device=target.device)[:, None, None]
        error = target.unsqueeze(1) - quantiles
        elementwise = torch.maximum(levels * error, (levels - 1) * error).mean(1)
    elif config.loss == "mse":
        elementwise = F.mse_loss(forecast, target, reduction="none")
    elif config.loss == "mae":
        elementwise = F.l1_loss(forecast, target, reduction="none")
    elif config.loss == "huber":
        elementwise = F.huber_loss(forecast, target, reduction="none", delta=config.huber_delta)
    else:  # pinball
        error = target - forecast
        elementwise = torch.maximum(config.quantile * error, (config.quantile - 1) * error)
    if not bool(missing.any()):
        return elementwise.mean()
    kept = ~missing
    return torch.where(kept, elementwise, 0.0).sum() / kept.sum().clamp_min(1)


class TTMForPrediction(TTMPreTrainedModel):
    """TTM backbone, decoder and forecast head: point forecasts (and quantiles) in the units of the input."""

    def __init__(self, config: TTMConfig):
        super().__init__(config)
        self.backbone = TTMModel(config)
        self.decoder = TTMDecoder(config) if config.use_decoder else None
        self.head = TTMForecastHead(config)
        self.post_init()

    def forward(
        self,
        past_values: torch.Tensor,
        future_values: torch.Tensor | None = None,
        past_observed_mask: torch.Tensor | None = None,
        future_observed_mask: torch.Tensor | None = None,
        freq_token: torch.Tensor | None = None,
        static_categorical_values: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_loss: bool = True,
        return_dict: bool | None = None,
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
        freq_token (`torch.LongTensor` of shape `(batch_size,)`, *optional*):
            Frequency token of every series; required with `resolution_prefix_tuning`, ignored otherwise.
        static_categorical_values (`torch.LongTensor` of shape `(batch_size, num_categorical)`, *optional*):
            Category of every static categorical variable; required with `categorical_vocab_size_list`, ignored
            otherwise.
        output_hidden_states (`bool`, *optional*):
            Whether to return the output of every backbone and decoder layer.
        return_loss (`bool`, defaults to `True`):
            Whether to compute the loss when `future_values` is given.
        return_dict (`bool`, *optional*):
            Whether to return a [`TTMForPredictionOutput`] instead of a tuple.

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
        hidden_states = [] if (output_hidden_states or config.output_hidden_states) else None

        hidden, patches, loc, scale = self.backbone.encode(values, observed, freq_token, hidden_states)
        decoded = hidden if self.decoder is None else self.decoder(hidden, patches, categories, hidden_states)
        forecast, quantiles = self.head(decoded, values, future_values)

        if config.prediction_channel_indices is not None:
            loc, scale = loc[..., config.prediction_channel_indices], scale[..., config.prediction_channel_indices]
        forecast = (forecast * scale + loc).to(values.dtype)  # in float64: scale and loc may be huge
        if quantiles is not None:
            quantiles = (quantiles * scale.unsqueeze(1) + loc.unsqueeze(1)).to(values.dtype)
        loc, scale = loc.to(values.dtype), scale.to(values.dtype)

        loss = None
        if future_values is not None and return_loss and (config.loss is not None or quantiles is not None):
            target, target_observed = future_values, future_observed_mask
            if target.shape[-1] != config.num_targets:
                target = target[..., config.prediction_channel_indices]
                if target_observed is not None:
                    target_observed = target_observed[..., config.prediction_channel_indices]
            loss = forecast_loss(config, forecast, quantiles, target, target_observed)

        output = TTMForPredictionOutput(
            loss=loss,
            prediction_outputs=forecast,
            quantile_outputs=quantiles,
            backbone_hidden_state=batch_major(hidden),
            decoder_hidden_state=batch_major(decoded),
            hidden_states=None if hidden_states is None else tuple(map(batch_major, hidden_states)),
            loc=loc,
            scale=scale,
        )
        return_dict = return_dict if return_dict is not None else config.return_dict
        return output if return_dict else output.to_tuple()


TTMConfig.register_for_auto_class()
TTMModel.register_for_auto_class("AutoModel")
TTMForPrediction.register_for_auto_class("AutoModelForTimeSeriesPrediction")
if TTMConfig.model_type not in CONFIG_MAPPING:
    AutoConfig.register(TTMConfig.model_type, TTMConfig)
    AutoModel.register(TTMConfig, TTMModel)
    AutoModelForTimeSeriesPrediction.register(TTMConfig, TTMForPrediction)

__all__ = ["TTMPreTrainedModel", "TTMModel", "TTMForPrediction", "TTMModelOutput", "TTMForPredictionOutput"]

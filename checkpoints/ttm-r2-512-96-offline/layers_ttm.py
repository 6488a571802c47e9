"""Mixer building blocks of the Tiny Time Mixer: norms, MLPs, gates, self-attention and TTM layers.

Activations are patch-major, (patches, batch, channels, width), throughout the mixers: mixing across patches is then
one matrix product from the left over a contiguous tensor, with no transposes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

try:
    from .configuration_ttm import TTMConfig, adaptive_patch_factors
except ImportError:
    from configuration_ttm import TTMConfig, adaptive_patch_factors

# PyTorch's CPU softmax is several times slower over a last axis shorter than this than over the same values
# viewed transposed (measured 5.3 ms vs 0.6 ms for 258k values in rows of 6).
NARROW_SOFTMAX = 32


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
    gate_mode: str
    gate_groups: int
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
            gate_mode=config.gate_mode,
            gate_groups=config.gate_groups,
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


def gate_groups(size: int, requested: int) -> int:
    """Number of groups of a "group_sigmoid" gate over `size` features: `requested`, or its largest divisor of size."""
    return next(g for g in range(min(requested, size), 0, -1) if size % g == 0)


class TTMGatedAttention(nn.Module):
    """Gates its input with a learned function of itself, over its last axis or (`over_rows`) its first axis.

    Modes (`gate_mode`): "softmax" over the gated axis, "sigmoid", "group_sigmoid" (one sigmoid per group of
    neighbouring features, from the group's mean logit) and "glu" (the first half of the gate layer's output times
    the sigmoid of its second half; the input only enters through the layer).
    """

    def __init__(self, size: int, mode: str = "softmax", groups: int = 1, over_rows: bool = False):
        super().__init__()
        self.mode = mode
        self.groups = gate_groups(size, groups)
        self.attn_layer = nn.Linear(size, 2 * size if mode == "glu" else size)
        self.over_rows = over_rows

    @classmethod
    def of(cls, size: int, spec: MixerSpec, over_rows: bool = False) -> TTMGatedAttention:
        return cls(size, spec.gate_mode, spec.gate_groups, over_rows)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        axis = 0 if self.over_rows else x.dim() - 1
        if self.mode == "softmax" and not self.over_rows and x.shape[-1] < NARROW_SOFTMAX:
            # the same softmax, computed over the transposed view
            return x * self.attn_layer(x).transpose(-1, -2).softmax(dim=-2).transpose(-1, -2)
        logits = linear_rows(x, self.attn_layer) if self.over_rows else self.attn_layer(x)
        if self.mode == "glu":
            value, gate = logits.chunk(2, dim=axis)
            return value * gate.sigmoid()
        if self.mode == "softmax":
            gate = logits.softmax(dim=axis)
        elif self.mode == "sigmoid":
            gate = logits.sigmoid()
        else:  # group_sigmoid
            grouped = logits.unflatten(axis, (self.groups, -1))
            gate = grouped.mean(axis + 1, keepdim=True).sigmoid().expand(grouped.shape).flatten(axis, axis + 1)
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
        self.gating_block = TTMGatedAttention.of(spec.num_patches, spec, over_rows=True) if spec.gated_attn else None
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
        self.gating_block = TTMGatedAttention.of(spec.width, spec) if spec.gated_attn else None

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
        self.gating_block = TTMGatedAttention.of(spec.num_channels, spec, over_rows=True) if spec.gated_attn else None

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


def record(x: torch.Tensor, hidden_states: list[torch.Tensor] | None) -> torch.Tensor:
    """Appends `x` to `hidden_states` in the output layout (B, C, N, W) and returns the patch-major view of that very
    tensor, so that the rest of the forward pass reads from it: a recorded hidden state is part of the autograd graph.
    """
    if hidden_states is None:
        return x
    hidden_states.append(x.permute(1, 2, 0, 3))
    return hidden_states[-1].permute(2, 0, 1, 3)


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
                x = self.split(record(self.merge(x), hidden_states))
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
                x = record(mixer(x), hidden_states)
        return x

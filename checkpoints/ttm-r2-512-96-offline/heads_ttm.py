"""Forecast heads of the Tiny Time Mixer: the point head, forecast channel mixing, the quantile heads, the losses.

Heads read the decoder output patch-major, (patches, batch, channels, width), and return forecasts batch-major,
(batch, steps, channels), in the scaled units of the model; the caller scales them back.
"""

from __future__ import annotations

from dataclasses import replace

import torch
import torch.nn.functional as F
from torch import nn

try:
    from .configuration_ttm import TTMConfig
    from .layers_ttm import MixerSpec, TTMBlock, TTMDropout, TTMGatedAttention
except ImportError:
    from configuration_ttm import TTMConfig
    from layers_ttm import MixerSpec, TTMBlock, TTMDropout, TTMGatedAttention


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
        gate = TTMGatedAttention(channels * window, config.gate_mode, config.gate_groups)
        self.fcm_gating_block = gate if config.fcm_gated_attn else None
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
    """Flattens the patches of every target channel into the forecast; with `monotone_quantile_head`, also quantiles."""

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
        levels = config.quantile_levels if config.monotone_quantile_head else []
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


class TTMMultiQuantileHead(nn.Module):
    """IBM's multi-quantile head: quantiles of every forecast step from the point forecast of the target channels.

    Per series and channel the point forecast runs through a depthwise convolution over the steps, an instance norm,
    a pointwise convolution to `mq_hidden` channels and GELU (optionally joined by a condition computed from the
    decoder output), then a pointwise convolution to one median offset and `k` gaps below and above it for the
    `2k + 1` levels. Softplus gaps (at least `mq_eps`) accumulated outwards from the median never cross.
    """

    def __init__(self, config: TTMConfig):
        super().__init__()
        self.targets = config.prediction_channel_indices
        self.num_quantiles = len(config.quantile_levels)
        self.k = self.num_quantiles // 2
        self.eps = config.mq_eps
        self.median_offset = config.mq_q50_type == "median"
        self.dw = nn.Conv1d(1, 1, kernel_size=config.mq_kernel_size, padding=config.mq_kernel_size // 2)
        self.inorm = nn.InstanceNorm1d(1, affine=True)
        self.pw1 = nn.Conv1d(1, config.mq_hidden, kernel_size=1)
        self.cond_path = config.mq_cond_path if config.mq_use_decoder_pool else None
        decoder_width = config.decoder_d_model if config.use_decoder else config.d_model
        if self.cond_path == "pool":
            self.dec_proj = nn.Linear(decoder_width, config.mq_hidden)
        elif self.cond_path == "flatten":
            self.dec_tok_proj = nn.Linear(decoder_width, config.mq_decoder_d_model)
            self.dec_flat_to_hidden = nn.Linear(config.num_patches * config.mq_decoder_d_model, config.mq_hidden)
        self.concat = self.cond_path is not None and config.mq_cond_mode == "concat"
        self.pw2 = nn.Conv1d(config.mq_hidden * (2 if self.concat else 1), self.num_quantiles, kernel_size=1)

    def forward(self, forecast: torch.Tensor, decoded: torch.Tensor) -> torch.Tensor:
        """(B, H, C') point forecast and (N, B, C, D) decoder output -> (B, Q, H, C') quantiles, levels ascending."""
        b, h, c = forecast.shape
        series = forecast.transpose(1, 2).reshape(b * c, 1, h)
        hidden = F.gelu(self.pw1(self.inorm(self.dw(series))))  # (B * C', mq_hidden, H)
        if self.cond_path is not None:
            if self.targets is not None:
                decoded = decoded[:, :, self.targets]
            if self.cond_path == "pool":
                cond = self.dec_proj(decoded.mean(0))  # (B, C', mq_hidden)
            else:
                cond = linear_over_patches(self.dec_tok_proj(decoded), self.dec_flat_to_hidden)
            cond = cond.reshape(b * c, -1, 1).expand(-1, -1, h)
            hidden = torch.cat([hidden, cond], dim=1) if self.concat else hidden + cond
        out = self.pw2(hidden).view(b, c, self.num_quantiles, h)
        median = series.view(b, c, 1, h) + (out[:, :, :1] if self.median_offset else 0)
        gaps = F.softplus(out[:, :, 1:]) + self.eps
        below = gaps[:, :, : self.k].cumsum(2).flip(2)
        above = gaps[:, :, self.k :].cumsum(2)
        return torch.cat([median - below, median, median + above], dim=2).permute(0, 2, 3, 1)


# ----------------------------------------------------------------------------------------------------------------
# Losses. Every loss averages over the target values that are observed: not NaN and not masked out.


def masked_mean(values: torch.Tensor, kept: torch.Tensor) -> torch.Tensor:
    """Mean of `values` (B, H, C) over the positions where `kept` is true."""
    return torch.where(kept, values, 0.0).sum() / kept.sum().clamp_min(1)


def pinball(quantiles: torch.Tensor, target: torch.Tensor, levels: list[float]) -> torch.Tensor:
    """Pinball loss of (B, Q, H, C) quantiles against (B, H, C) targets, averaged over the levels: (B, H, C)."""
    tau = torch.tensor(levels, dtype=quantiles.dtype, device=quantiles.device)[:, None, None]
    error = target.unsqueeze(1) - quantiles
    return torch.maximum(tau * error, (tau - 1) * error).mean(1)


def point_loss(config: TTMConfig, forecast: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Elementwise `config.loss` of a point forecast: (B, H, C)."""
    if config.loss == "mse":
        return F.mse_loss(forecast, target, reduction="none")
    if config.loss == "mae":
        return F.l1_loss(forecast, target, reduction="none")
    if config.loss == "huber":
        return F.huber_loss(forecast, target, reduction="none", delta=config.huber_delta)
    error = target - forecast  # pinball
    return torch.maximum(config.quantile * error, (config.quantile - 1) * error)


def interval_width_penalty(config: TTMConfig, quantiles: torch.Tensor, kept: torch.Tensor) -> torch.Tensor:
    """Mean width of the predicted intervals: outermost levels ("boundary") or every symmetric pair ("wis")."""
    pairs = 1 if config.width_penalty_mode == "boundary" else quantiles.shape[1] // 2
    widths = torch.stack([quantiles[:, -1 - i] - quantiles[:, i] for i in range(pairs)]).mean(0)
    return masked_mean(widths, kept)


def forecast_loss(
    config: TTMConfig,
    forecast: torch.Tensor,
    quantiles: torch.Tensor | None,
    target: torch.Tensor,
    observed: torch.Tensor | None,
) -> torch.Tensor:
    """The training loss of one forecast, averaged over the observed targets (NaN targets count as unobserved).

    Quantile heads are scored with the pinball loss over their levels; IBM's head adds `point_extra_weight` times the
    absolute error of the median and `penalize_large_width_ratio` times the interval width.
    """
    kept = ~target.isnan()
    if observed is not None:
        kept = kept & (observed != 0)
    target = torch.where(kept, target, 0.0)
    if quantiles is None:
        return masked_mean(point_loss(config, forecast, target), kept)
    loss = masked_mean(pinball(quantiles, target, config.quantile_levels), kept)
    if config.multi_quantile_head:
        if config.point_extra_weight:
            loss = loss + config.point_extra_weight * masked_mean((forecast - target).abs(), kept)
        if config.penalize_large_width_ratio:
            loss = loss + config.penalize_large_width_ratio * interval_width_penalty(config, quantiles, kept)
    return loss

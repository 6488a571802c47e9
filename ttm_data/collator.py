"""`ForecastWindowCollator`: rows of `TrainWindows` / `EvalWindows` in, `TTMForPrediction` inputs out."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .windows import extract_windows

if TYPE_CHECKING:
    from configuration_ttm import TTMConfig


def process_index() -> int:
    """Rank of this process in distributed training (0 when not distributed)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank()
    return int(os.environ.get("RANK", "0"))


def window_rng() -> np.random.Generator:
    """A fresh generator for one batch, drawn from torch's global RNG and mixed with the process rank.

    `Trainer` seeds torch in every process (with the same seed), and every DataLoader worker's torch RNG is seeded
    differently, so the draws are reproducible from the Trainer's seed, advance from call to call, and differ between
    workers and, through the rank, between processes.
    """
    entropy = int(torch.randint(0, 2**62, (1,)).item())
    return np.random.default_rng([entropy, process_index()])


class ForecastWindowCollator:
    """Turns window rows into `past_values`, `future_values`, their observed masks and the optional model inputs.

    Use as `Trainer(data_collator=ForecastWindowCollator.from_config(model.config), ...)` with `TrainWindows` as
    training data and `EvalWindows` as evaluation data. Rows whose `end` is None (training) get a window end drawn
    uniformly from their series' valid ends at every call (keyed by the item indices when `TrainWindows` has a `seed`);
    rows with an `end` (evaluation) are cut exactly there.

    The output holds only model inputs, so `remove_unused_columns=False` is safe: `past_values` (batch,
    context_length, channels), `future_values` (batch, prediction_length, channels) with all channels (targets first,
    then exogenous, whose future is known), `past_observed_mask` / `future_observed_mask` (1.0 observed, 0.0 missing
    or padding; missing past values and padding are NaN, which the model fills as at inference, missing future
    values 0), and when asked `freq_token` (batch,) and
    `static_categorical_values` (batch, variables).
    """

    def __init__(
        self,
        context_length: int,
        prediction_length: int,
        return_freq_token: bool = False,
        return_static_categoricals: bool = False,
        channel_roles: tuple[list[int], list[int]] | None = None,
    ):
        self.context_length = context_length
        self.prediction_length = prediction_length
        self.return_freq_token = return_freq_token
        self.return_static_categoricals = return_static_categoricals
        self.channel_roles = channel_roles

    @classmethod
    def from_config(cls, config: TTMConfig) -> ForecastWindowCollator:
        """The collator a model needs: its context, forecast length, channel roles and optional inputs."""
        targets = config.prediction_channel_indices or list(range(config.num_input_channels))
        return cls(
            context_length=config.context_length,
            prediction_length=config.forecast_length,
            return_freq_token=config.resolution_prefix_tuning,
            return_static_categoricals=config.categorical_vocab_size_list is not None,
            channel_roles=(list(targets), list(config.exogenous_channel_indices or [])),
        )

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        if not rows or "source" not in rows[0]:
            raise ValueError(
                "the collator reads rows of TrainWindows / EvalWindows; with Trainer, pass remove_unused_columns=False "
                "so that their keys reach the collator"
            )
        source = rows[0]["source"]
        if any(row["source"] is not source for row in rows):
            raise ValueError("a batch mixes rows of different window datasets")
        if source.prediction_length != self.prediction_length:
            raise ValueError(
                f"the windows were built for prediction_length={source.prediction_length}, the collator cuts "
                f"{self.prediction_length}; build both with the model's forecast length"
            )
        store = source.store
        self._check_channels(store.prediction_channel_indices, store.exogenous_channel_indices)
        series = np.fromiter((row["series"] for row in rows), dtype=np.int64, count=len(rows))
        ends = np.fromiter((-1 if row["end"] is None else row["end"] for row in rows), dtype=np.int64, count=len(rows))
        drawn = ends < 0
        if drawn.any():
            indices = np.fromiter((row.get("index", -1) for row in rows), dtype=np.int64, count=len(rows))
            rng = source.batch_rng(indices, process_index())
            ends[drawn] = source.sample_ends(series[drawn], window_rng() if rng is None else rng)
        arrays = extract_windows(store, series, ends, self.context_length, self.prediction_length)
        batch = {name: torch.from_numpy(array) for name, array in arrays.items()}
        if self.return_freq_token:
            batch["freq_token"] = torch.from_numpy(store.freq_tokens[series])
        if self.return_static_categoricals:
            if store.static_categoricals is None:
                raise ValueError("the model needs static categorical values but the series have no `feat_static_cat`")
            batch["static_categorical_values"] = torch.from_numpy(store.static_categoricals[series])
        return batch

    def _check_channels(self, targets: list[int], exogenous: list[int]) -> None:
        if self.channel_roles is None or self.channel_roles == (targets, exogenous):
            return
        raise ValueError(
            f"the model forecasts channels {self.channel_roles[0]} with exogenous channels {self.channel_roles[1]}, "
            f"but the data has target channels {targets} and exogenous channels {exogenous}: build the model config "
            f"with num_input_channels={len(targets) + len(exogenous)}, prediction_channel_indices={targets}, "
            f"exogenous_channel_indices={exogenous or None}"
        )

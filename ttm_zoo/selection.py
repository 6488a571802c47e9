"""The checkpoint selection rule of REFERENCE.md §5, as a pure function over variants."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

# Checkpoints pretrained by this project on the offline corpus (scripts/pretrain.py), one directory each.
SHIPPED_DIR = Path(__file__).resolve().parents[1] / "checkpoints"

# IBM's published variants: one branch per variant of each Hub repository (REFERENCE.md §5).
IBM_REVISIONS = {
    "ibm-granite/granite-timeseries-ttm-r1": ["main", "1024-96-r1"],
    "ibm-granite/granite-timeseries-ttm-r2": [
        "main",
        *(f"{c}-{h}-r2" for c in (512, 1024, 1536) for h in (96, 192, 336, 720) if (c, h) != (512, 96)),
        *(f"{c}-{h}-ft-r2.1" for c, h in ((52, 16), (90, 30), (180, 60), (360, 60), (512, 48), (512, 96))),
        *(f"{c}-{h}-ft-l1-r2.1" for c, h in ((52, 16), (90, 30), (180, 60), (360, 60), (512, 48), (512, 96))),
    ],
}
_MAIN = {"ibm-granite/granite-timeseries-ttm-r1": "512-96-r1", "ibm-granite/granite-timeseries-ttm-r2": "512-96-r2"}
_VARIANT = re.compile(r"^(?P<context>\d+)-(?P<horizon>\d+)(?P<ft>-ft)?(?P<l1>-l1)?(?:-(?P<release>r[\d.]+))?$")


@dataclass(frozen=True)
class Variant:
    """A checkpoint: where it is (local directory or Hub id), its revision, context length and horizon."""

    model: str
    revision: str | None
    context_length: int
    prediction_length: int
    needs_freq_token: bool = False
    l1_loss: bool = False


def parse_variant(model: str, revision: str) -> Variant:
    """The variant named by an IBM branch ("1024-192-r2", "90-30-ft-l1-r2.1", "main" of a known repository)."""
    name = _MAIN.get(model, revision) if revision == "main" else revision
    match = _VARIANT.match(name)
    if match is None:
        raise ValueError(f"`revision`: {revision!r} is not a <context>-<horizon>[-ft][-l1]-<release> branch name")
    return Variant(model, revision, int(match["context"]), int(match["horizon"]), bool(match["ft"]), bool(match["l1"]))


def local_variants(root: str | Path = SHIPPED_DIR) -> list[Variant]:
    """The checkpoints in the subdirectories of `root` (those with a config.json)."""
    variants = []
    for config_path in sorted(Path(root).glob("*/config.json")):
        config = json.loads(config_path.read_text())
        variants.append(Variant(str(config_path.parent), None, config["context_length"], config["prediction_length"]))
    return variants


def select_variant(
    variants: list[Variant], data_length: int, horizon: int, allow_freq_token: bool = False
) -> tuple[Variant, int | None]:
    """The variant to forecast `horizon` steps of a series with `data_length` observed steps, and the
    `prediction_filter_length` to set (None when the variant's horizon is exactly the request).

    The rule: the longest context length <= data_length (the shortest context when the data is shorter than every
    one, which then pads), then among variants of that context the shortest horizon >= the request. Variants
    that need a frequency token (IBM's "-ft") are skipped unless `allow_freq_token`; plain variants come before L1
    ("-l1") ones. Raises ValueError when no variant forecasts that far.
    """
    if data_length < 1 or horizon < 1:
        raise ValueError(f"`data_length` and `horizon` must be positive, got {data_length}, {horizon}")
    usable = [v for v in variants if allow_freq_token or not v.needs_freq_token]
    usable = [v for v in usable if v.prediction_length >= horizon]
    if not usable:
        longest = max((v.prediction_length for v in variants), default=0)
        raise ValueError(f"`horizon`: no checkpoint forecasts {horizon} steps (the longest horizon is {longest})")
    fitting = [v.context_length for v in usable if v.context_length <= data_length]
    context = max(fitting) if fitting else min(v.context_length for v in usable)
    candidates = [v for v in usable if v.context_length == context]
    choice = min(candidates, key=lambda v: (v.prediction_length, v.l1_loss))
    return choice, horizon if horizon < choice.prediction_length else None

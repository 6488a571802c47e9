"""The checkpoint selection rules of REFERENCE.md §5, as pure functions over variants.

r1, r2, r2.1 and the research r2 repository use the rule users rely on: the longest context the data fills, then
the shortest horizon that covers the request, with `prediction_filter_length` set to the request. R3 follows
granite-tsfm 0.3.11's `get_model` with its defaults (no frequency hint): the R2 choice for the same request is mapped
to a known R3 variant where IBM defines one, otherwise the R3 variant with the shortest horizon >= the request and
then the longest context <= the data is taken; `use_lite` picks the lite twin.
"""

from __future__ import annotations

import json
from pathlib import Path

from .checkpoints import IBM_CHECKPOINTS, R2, R3, RESEARCH_R3, Variant

# Checkpoints pretrained by this project on the offline corpus (scripts/pretrain.py), one directory each.
SHIPPED_DIR = Path(__file__).resolve().parents[1] / "checkpoints"

R3_REPOSITORIES = (R3, RESEARCH_R3)


def local_variants(root: str | Path = SHIPPED_DIR) -> list[Variant]:
    """The checkpoints in the subdirectories of `root` (those with a config.json)."""
    variants = []
    for config_path in sorted(Path(root).glob("*/config.json")):
        config = json.loads(config_path.read_text())
        variants.append(Variant(str(config_path.parent), None, config["context_length"], config["prediction_length"]))
    return variants


def ibm_variants(model: str) -> list[Variant]:
    """The published variants of one of IBM's repositories (e.g. "ibm-granite/granite-timeseries-ttm-r2")."""
    variants = [v for v in IBM_CHECKPOINTS if v.model == model]
    if not variants:
        known = sorted({v.model for v in IBM_CHECKPOINTS})
        raise ValueError(f"`model`: {model!r} is not one of IBM's TTM repositories {known}")
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
    _check_request(data_length, horizon)
    usable = [v for v in variants if allow_freq_token or not v.needs_freq_token]
    usable = [v for v in usable if v.prediction_length >= horizon]
    if not usable:
        longest = max((v.prediction_length for v in variants), default=0)
        raise ValueError(f"`horizon`: no checkpoint forecasts {horizon} steps (the longest horizon is {longest})")
    fitting = [v.context_length for v in usable if v.context_length <= data_length]
    context = max(fitting) if fitting else min(v.context_length for v in usable)
    candidates = [v for v in usable if v.context_length == context]
    choice = min(candidates, key=lambda v: (v.prediction_length, v.l1_loss))
    return choice, _filter_length(choice, horizon)


def select_r3_variant(model: str, data_length: int, horizon: int, use_lite: bool = False) -> Variant:
    """The R3 variant of `model` (ibm-granite/granite-timeseries-ttm-r3 or ibm-research/ttm-r3) that granite-tsfm's
    `get_model` picks for a context of `data_length` steps and a `horizon`-step request, its lite twin with
    `use_lite`. Raises ValueError when no R3 variant has a context <= data_length and a horizon >= the request.
    """
    _check_request(data_length, horizon)
    if model not in R3_REPOSITORIES:
        raise ValueError(f"`model`: {model!r} is not an R3 repository {list(R3_REPOSITORIES)}")
    variants = [v for v in ibm_variants(model) if v.lite == use_lite]
    base = _r2_choice(data_length, horizon)
    known = None if base is None else _known_r3_shape(base, data_length, horizon)
    if known is not None:
        return next(v for v in variants if (v.context_length, v.prediction_length) == known)
    fitting = [v for v in variants if v.context_length <= data_length and v.prediction_length >= horizon]
    if not fitting:
        raise ValueError(
            f"`horizon`: no R3 checkpoint forecasts {horizon} steps from a context of at most {data_length} steps "
            f"(R3 contexts start at {min(v.context_length for v in variants)}, horizons reach "
            f"{max(v.prediction_length for v in variants)})"
        )
    return min(fitting, key=lambda v: (v.prediction_length, -v.context_length))


def select_ibm_variant(
    model: str, data_length: int, horizon: int, use_lite: bool = False, allow_freq_token: bool = False
) -> tuple[Variant, int | None]:
    """The variant of IBM's repository `model` for the request and the `prediction_filter_length` to set: R3 by
    `select_r3_variant`, the other releases by `select_variant` (`use_lite` is refused there: only R3 has lite
    variants)."""
    if model in R3_REPOSITORIES:
        choice = select_r3_variant(model, data_length, horizon, use_lite)
        return choice, _filter_length(choice, horizon)
    if use_lite:
        raise ValueError(f"`use_lite`: only the R3 repositories {list(R3_REPOSITORIES)} have lite variants")
    return select_variant(ibm_variants(model), data_length, horizon, allow_freq_token)


def _check_request(data_length: int, horizon: int) -> None:
    if data_length < 1 or horizon < 1:
        raise ValueError(f"`data_length` and `horizon` must be positive, got {data_length}, {horizon}")


def _filter_length(choice: Variant, horizon: int) -> int | None:
    return horizon if horizon < choice.prediction_length else None


def _r2_choice(data_length: int, horizon: int) -> Variant | None:
    """granite-tsfm's R2 choice that the R3 rule starts from: among r2 and r2.1 variants (frequency-token ones
    included) with a context <= data_length and a horizon >= the request, the longest context, then the shortest
    horizon, then table order. None where granite-tsfm finds none (it then falls back to the direct R3 rule)."""
    fitting = [v for v in ibm_variants(R2) if v.context_length <= data_length and v.prediction_length >= horizon]
    return min(fitting, key=lambda v: (-v.context_length, v.prediction_length), default=None)


def _known_r3_shape(base: Variant, data_length: int, horizon: int) -> tuple[int, int] | None:
    """The (context, horizon) of the R3 variant IBM maps an R2 choice to, or None where there is no mapping:
    long data goes to the 2048 models; the short daily models (52-16, 90-30) and 512-48 to the decomposed ones."""
    if data_length > 2500:
        return 2048, 96 if horizon <= 96 else 720
    shape = (base.context_length, base.prediction_length)
    if shape in ((52, 16), (90, 30)) and data_length <= 512:
        return (156, 16) if shape == (52, 16) else (512, 30)
    if shape in ((52, 16), (90, 30), (512, 48)):
        return (768, 48) if data_length < 756 else (1024, 48)
    if shape in ((1536, 96), (1536, 720)):
        return 2048, base.prediction_length
    return None

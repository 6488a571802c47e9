"""ttm_zoo: the zero-shot checkpoint selection rule over IBM's branch names and local checkpoints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ttm_zoo import IBM_REVISIONS, Variant, local_variants, parse_variant, select_variant

R2 = "ibm-granite/granite-timeseries-ttm-r2"
IBM = [parse_variant(R2, revision) for revision in IBM_REVISIONS[R2]]


@pytest.mark.parametrize(
    ("data_length", "horizon", "revision", "filter_length"),
    [
        (5000, 96, "1536-96-r2", None),  # longest context the data fills
        (1100, 96, "1024-96-r2", None),
        (1100, 100, "1024-192-r2", 100),  # shortest horizon >= the request, cut to the request
        (600, 24, "main", 24),  # 512-96 (the main branch) beats 512-48-ft: -ft needs a frequency token
        (512, 720, "512-720-r2", None),
        (200, 30, "main", 30),  # shorter than every plain context: the shortest one, left-padded
    ],
)
def test_ibm_selection_rule(data_length: int, horizon: int, revision: str, filter_length: int | None) -> None:
    variant, cut = select_variant(IBM, data_length, horizon)
    assert (variant.model, variant.revision, cut) == (R2, revision, filter_length)


@pytest.mark.parametrize(
    ("data_length", "horizon", "revision"),
    [(100, 30, "90-30-ft-r2.1"), (400, 40, "360-60-ft-r2.1"), (60, 10, "52-16-ft-r2.1"), (600, 48, "512-48-ft-r2.1")],
)
def test_frequency_token_variants_when_allowed(data_length: int, horizon: int, revision: str) -> None:
    variant, _ = select_variant(IBM, data_length, horizon, allow_freq_token=True)
    assert variant.revision == revision  # and the plain variant comes before its -l1 twin


def test_parse_variant_reads_branch_names() -> None:
    assert parse_variant(R2, "90-30-ft-l1-r2.1") == Variant(R2, "90-30-ft-l1-r2.1", 90, 30, True, True)
    assert parse_variant(R2, "main") == Variant(R2, "main", 512, 96)
    with pytest.raises(ValueError, match="revision"):
        parse_variant(R2, "latest")


def test_no_variant_forecasts_that_far() -> None:
    with pytest.raises(ValueError, match="720"):
        select_variant(IBM, 5000, 721)


def test_local_variants_read_the_configs(tmp_path: Path) -> None:
    for name, context, horizon in [("a", 512, 96), ("b", 90, 30)]:
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text(
            json.dumps({"context_length": context, "prediction_length": horizon})
        )
    variants = local_variants(tmp_path)
    assert select_variant(variants, 100, 20) == (Variant(str(tmp_path / "b"), None, 90, 30), 20)
    assert select_variant(variants, 1000, 96) == (Variant(str(tmp_path / "a"), None, 512, 96), None)

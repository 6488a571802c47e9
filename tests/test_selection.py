"""ttm_zoo: IBM's table of published checkpoints and the zero-shot selection rules, checked against granite-tsfm
0.3.11 (its list of revisions and its `get_model` choice, which reads that list and downloads nothing when asked
for the revision only)."""

from __future__ import annotations

import importlib
import json
from importlib import resources
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from script_loader import load_script

from modeling_ttm import TTMForPrediction
from ttm_zoo import (
    IBM_CHECKPOINTS,
    IBM_REVISIONS,
    R3_REPOSITORIES,
    Variant,
    ibm_variants,
    local_variants,
    select_ibm_variant,
    select_r3_variant,
    select_variant,
)

R1 = "ibm-granite/granite-timeseries-ttm-r1"
R2 = "ibm-granite/granite-timeseries-ttm-r2"
R3 = "ibm-granite/granite-timeseries-ttm-r3"
IBM = ibm_variants(R2)
CONTEXTS = [30, 52, 60, 90, 100, 156, 180, 200, 400, 512, 600, 755, 756, 760, 800, 1024, 1100, 1536, 1600, 2048]
CONTEXTS += [2100, 2500, 2501, 2600, 3072, 4000]
HORIZONS = [1, 16, 17, 20, 30, 31, 48, 49, 60, 61, 96, 97, 100, 192, 336, 337, 400, 720, 721]


def granite_table() -> list[dict[str, Any]]:
    """Every entry of granite-tsfm's ttm.yaml, in its order, with its key."""
    text = resources.files("tsfm_public.resources.model_paths_config").joinpath("ttm.yaml").read_text()
    return [{"key": key, **entry} for section in yaml.safe_load(text).values() for key, entry in section.items()]


@pytest.fixture(scope="module")
def granite_get_model() -> ModuleType:
    """granite-tsfm's get_model module, reading its table once instead of on every call, and quiet."""
    module = importlib.import_module("tsfm_public.toolkit.get_model")
    parsed: dict[str, Any] = {}

    def safe_load(stream: Any) -> Any:
        text = stream.read()
        if text not in parsed:
            parsed[text] = yaml.safe_load(text)
        return parsed[text]

    patch = pytest.MonkeyPatch()
    patch.setattr(module, "yaml", type("CachedYaml", (), {"safe_load": staticmethod(safe_load)}))
    patch.setattr(module.LOGGER, "disabled", True)
    yield module
    patch.undo()


def granite_choice(module: ModuleType, model: str, data_length: int, horizon: int, **options: Any) -> str | None:
    """The variant name granite-tsfm's get_model picks (None where it finds none)."""
    try:
        return module.get_model(
            model, context_length=data_length, prediction_length=horizon, return_model_key=True, **options
        )
    except ValueError:
        return None


def test_table_matches_granite_entry_by_entry() -> None:
    expected = [
        (e["model_card"], e["key"], e["revision"], e["release"], e["context_length"], e["prediction_length"])
        + (e.get("residual_context_length"),)
        for e in granite_table()
    ]
    ours = [
        (v.model, v.name, v.revision, v.release, v.context_length, v.prediction_length, v.residual_context_length)
        for v in IBM_CHECKPOINTS
    ]
    assert ours == expected
    assert len(ours) == 120 and sum(v.lite for v in IBM_CHECKPOINTS) == 42


def test_r1_1024_96_lives_on_branch_1024_96_v1() -> None:
    assert IBM_REVISIONS[R1] == ["main", "1024_96_v1"]
    variant, cut = select_ibm_variant(R1, 2000, 48)
    assert (variant.revision, variant.name, cut) == ("1024_96_v1", "1024-96-r1", 48)


def test_variant_flags_follow_the_names() -> None:
    by_name = {(v.model, v.name): v for v in IBM_CHECKPOINTS}
    assert by_name[R2, "90-30-ft-l1-r2.1"] == Variant(R2, "90-30-ft-l1-r2.1", 90, 30, True, True, "r2.1")
    lite = by_name["ibm-research/ttm-r3", "512-30-dec-90-lite-r3"]
    assert lite.lite and lite.decomposed and lite.residual_context_length == 90 and not lite.needs_freq_token
    assert not by_name[R3, "2048-720-r3"].decomposed
    assert by_name["ibm-research/ttm-research-r2", "512-96-ft-r2"].revision == "main"
    with pytest.raises(ValueError, match="`model`"):
        ibm_variants("ibm-granite/granite-timeseries-ttm-r9")


@pytest.mark.parametrize("model", R3_REPOSITORIES)
@pytest.mark.parametrize("use_lite", [False, True])
def test_r3_choice_is_granite_get_model_choice(granite_get_model: ModuleType, model: str, use_lite: bool) -> None:
    found = 0
    for data_length in CONTEXTS:
        for horizon in HORIZONS:
            expected = granite_choice(granite_get_model, model, data_length, horizon, use_lite=use_lite)
            if expected is None:
                with pytest.raises(ValueError, match="`horizon`"):
                    select_r3_variant(model, data_length, horizon, use_lite)
                continue
            found += 1
            variant = select_r3_variant(model, data_length, horizon, use_lite)
            assert (variant.name, variant.model, variant.lite) == (expected, model, use_lite), (data_length, horizon)
    assert found > 300  # most requests have an answer; the rest (horizon > 720, context < 52) raise on both sides


@pytest.mark.parametrize(
    ("data_length", "horizon", "use_lite", "revision", "cut"),
    [
        (100, 30, False, "512-30-dec-90-r3", None),  # from r2.1's 90-30: IBM's mapping, the context is padded
        (100, 20, True, "512-30-dec-90-lite-r3", 20),
        (600, 24, False, "768-48-dec-512-r3", 24),  # from r2.1's 512-48
        (1600, 96, False, "2048-96-r3", None),  # from r2's 1536-96
        (3000, 100, True, "2048-720-lite-r3", 100),  # long data: the 2048 models
        (1100, 96, False, "1024-96-r3", None),  # no mapping: shortest horizon, then longest context
        (1100, 200, False, "512-336-dec-512-r3", 200),
    ],
)
def test_r3_examples(data_length: int, horizon: int, use_lite: bool, revision: str, cut: int | None) -> None:
    variant, filter_length = select_ibm_variant(R3, data_length, horizon, use_lite=use_lite)
    assert (variant.revision, filter_length) == (revision, cut)


@pytest.mark.parametrize(("data_length", "horizon"), [(40, 16), (60, 20), (5000, 721)])
def test_r3_refuses_requests_no_variant_serves(data_length: int, horizon: int) -> None:
    with pytest.raises(ValueError, match="`horizon`: no R3 checkpoint forecasts"):
        select_r3_variant(R3, data_length, horizon)


@pytest.mark.parametrize("model", [R1, R2, "ibm-research/ttm-research-r2"])
def test_r1_r2_choice_is_granite_get_model_choice(granite_get_model: ModuleType, model: str) -> None:
    """With frequency-token variants allowed, the r1/r2 rule is granite-tsfm's wherever granite-tsfm finds a variant;
    where it finds none, ours raises too or picks a longer context (the input is then left-padded)."""
    longest = max(v.prediction_length for v in ibm_variants(model))
    for data_length in CONTEXTS:
        for horizon in HORIZONS:
            expected = granite_choice(granite_get_model, model, data_length, horizon)
            try:
                variant, cut = select_ibm_variant(model, data_length, horizon, allow_freq_token=True)
            except ValueError:
                assert expected is None and horizon > longest
                continue
            if expected is None:
                assert variant.context_length > data_length, (data_length, horizon)
            else:
                assert variant.name == expected, (data_length, horizon)
                assert cut == (horizon if horizon < variant.prediction_length else None)


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
    [
        (100, 30, "90-30-ft-r2.1"),
        (400, 40, "360-60-ft-l1-r2.1"),
        (60, 10, "52-16-ft-r2.1"),
        (600, 48, "512-48-ft-r2.1"),
    ],
)
def test_frequency_token_variants_when_allowed(data_length: int, horizon: int, revision: str) -> None:
    variant, _ = select_variant(IBM, data_length, horizon, allow_freq_token=True)
    assert variant.revision == revision  # the plain variant before its -l1 twin; 360-60 is published as -l1 only


def test_lite_is_refused_outside_r3() -> None:
    with pytest.raises(ValueError, match="`use_lite`"):
        select_ibm_variant(R2, 1000, 96, use_lite=True)


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


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch, tiny_checkpoint: Path) -> list[tuple[str, str, dict]]:
    """Every TTMForPrediction.from_pretrained call (source, revision, overrides), answered with a tiny checkpoint."""
    calls: list[tuple[str, str, dict]] = []
    load = TTMForPrediction.from_pretrained.__func__

    def record(cls: type, source: str, revision: str = "main", **overrides: Any) -> TTMForPrediction:
        calls.append((source, revision, {k: v for k, v in overrides.items() if k == "prediction_filter_length"}))
        return load(cls, tiny_checkpoint)

    monkeypatch.setattr(TTMForPrediction, "from_pretrained", classmethod(record))
    return calls


def test_forecast_script_chooses_the_r3_variant(loads: list) -> None:
    forecast = load_script("forecast")
    args = forecast.build_parser().parse_args(["--model", R3, "--use-lite", "--horizon", "20"])
    _, label = forecast.load_model(args.model, args.revision, 100, args.horizon, args.use_lite)
    assert loads == [(R3, "512-30-dec-90-lite-r3", {"prediction_filter_length": 20})]
    assert "512-30-dec-90-lite-r3" in label
    with pytest.raises(ValueError, match="--use-lite"):
        forecast.load_model(R2, None, 100, 20, use_lite=True)
    with pytest.raises(ValueError, match="--horizon"):
        forecast.load_model(R3, None, 40, 16)


def test_finetune_script_chooses_the_variant(tmp_path: Path) -> None:
    finetune = load_script("finetune")

    def revision(*flags: str, longest_train: int = 700) -> str:
        arguments = ["--data_path", "data.csv", "--output_dir", str(tmp_path), *flags]
        return finetune.choose_revision(finetune.parse_arguments(arguments)[0], longest_train)

    assert revision("--model_name_or_path", R3, "--prediction_length", "24") == "768-48-dec-512-r3"  # data: 676
    lite = ("--use_lite", "--context_length", "1100")
    assert revision("--model_name_or_path", R3, "--prediction_length", "96", *lite) == "1024-96-lite-r3"
    assert revision("--model_name_or_path", R1, "--prediction_length", "96", longest_train=1200) == "1024_96_v1"
    assert revision("--model_name_or_path", R2) == "main"  # no horizon given: the default branch, as before
    assert revision("--model_name_or_path", R2, "--revision", "1024-96-r2") == "1024-96-r2"
    assert revision("--model_name_or_path", str(tmp_path)) == "main"
    for flags, message in [
        (["--model_name_or_path", R3], "`prediction_length`"),
        (["--model_name_or_path", R3, "--prediction_length", "800"], "`prediction_length`: no R3"),
        (["--model_name_or_path", R2, "--prediction_length", "96", "--use_lite"], "`use_lite`"),
    ]:
        with pytest.raises(ValueError, match=message):
            revision(*flags)

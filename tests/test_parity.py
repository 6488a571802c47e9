"""Parity with IBM granite-tsfm: checkpoints saved by `TinyTimeMixerForPrediction` (and, for decomposed R3 models,
`TinyTimeMixerForDecomposedPrediction`) load into `TTMForPrediction` and reproduce granite's outputs, losses and
gradients (fp32)."""

import copy
from pathlib import Path

import pytest
import torch
from granite_cases import CASES, R3_CASES, ParityCase, build_inputs, save_granite_model
from tsfm_public.models.tinytimemixer import TinyTimeMixerForPrediction

from modeling_ttm import TTMForPrediction, prepare_past

OUTPUT_ATOL = 1e-5
GRAD_ATOL = 1e-4


ALL_CASES = CASES + R3_CASES
# Outputs that granite-tsfm's decomposed model shifts by the scaling's loc although they are parts of a sum; ours
# are not shifted (trend + residual = forecast), so the comparison adds loc back.
SHIFTED_PARTS = ("residual_prediction_outputs", "residual_input", "residual_quantile_outputs")


@pytest.fixture(scope="module", params=ALL_CASES, ids=[case.name for case in ALL_CASES])
def saved_case(request, tmp_path_factory) -> tuple[ParityCase, TinyTimeMixerForPrediction, Path]:
    case = request.param
    directory = tmp_path_factory.mktemp(case.name)
    return case, save_granite_model(case, directory), directory


def _assert_close(actual: torch.Tensor, expected: torch.Tensor, atol: float, name: str) -> None:
    torch.testing.assert_close(actual, expected, atol=atol, rtol=0, msg=lambda message: f"{name}: {message}")


def _load_pair(saved_case) -> tuple[ParityCase, TinyTimeMixerForPrediction, TTMForPrediction]:
    """A private copy of the granite model and ours loaded from granite's checkpoint, both in the case's mode."""
    case, granite, directory = saved_case
    granite = copy.deepcopy(granite).train(case.train)
    ours = TTMForPrediction.from_pretrained(directory).train(case.train)
    return case, granite, ours


def test_checkpoint_loads_every_tensor(saved_case):
    case, granite, directory = saved_case
    ours, info = TTMForPrediction.from_pretrained(directory, output_loading_info=True)

    assert not info["missing_keys"]
    assert not info["unexpected_keys"]
    assert not info["mismatched_keys"]
    assert not info["error_msgs"]
    theirs = granite.state_dict()
    mine = ours.state_dict()
    assert sorted(mine) == sorted(theirs)
    for name, tensor in theirs.items():
        assert torch.equal(mine[name], tensor), name
    if case.num_parameters is not None:
        assert granite.num_parameters() == case.num_parameters
        assert ours.num_parameters() == case.num_parameters


def _full_length(ours: TTMForPrediction, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The inputs with `past_values` as our model fits them to the context, for granite.

    Our model fills the left padding of a short input (granite pads with zeros); given the filled, full-length input
    and its mask, granite runs the same network on the same numbers, so the comparison stays exact.
    """
    values, observed = prepare_past(ours.config, inputs["past_values"], inputs.get("past_observed_mask"), ours.dtype)
    mask = {} if observed is None else {"past_observed_mask": observed.float()}
    return {**inputs, "past_values": values, **mask}


def test_forward_matches_granite(saved_case):
    case, granite, ours = _load_pair(saved_case)
    inputs = build_inputs(case)

    with torch.no_grad():
        expected = granite(**_full_length(ours, inputs))
        actual = ours(**inputs)

    compared = 0
    for field, value in expected.items():
        if field in ("input_data", "forecast_groundtruth") or value is None or isinstance(value, (list, tuple)):
            continue
        mine = getattr(actual, field)
        if field in SHIFTED_PARTS:
            mine = mine + (actual.loc.unsqueeze(1) if mine.dim() == 4 else actual.loc)
        _assert_close(mine, value, OUTPUT_ATOL, field)
        compared += 1
    assert compared >= (3 if case.config.get("light_mode") else 6)
    assert (actual.quantile_outputs is None) == (expected.get("quantile_outputs") is None)
    if case.train:
        for name, buffer in granite.named_buffers():
            _assert_close(ours.get_buffer(name), buffer, OUTPUT_ATOL, name)


def test_gradients_match_granite(saved_case):
    case, granite, ours = _load_pair(saved_case)
    inputs = build_inputs(case)

    granite(**_full_length(ours, inputs)).loss.backward()
    ours(**inputs).loss.backward()

    expected = {name: param.grad for name, param in granite.named_parameters() if param.grad is not None}
    actual = {name: param.grad for name, param in ours.named_parameters() if param.grad is not None}
    assert sorted(actual) == sorted(expected)
    assert any(grad.abs().max() > 0 for grad in expected.values())
    for name, grad in expected.items():
        _assert_close(actual[name], grad, GRAD_ATOL, name)

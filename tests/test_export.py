"""ONNX export (scripts/export.py): ONNX Runtime agrees with TTMForPrediction.forward at two batch sizes."""

from __future__ import annotations

from pathlib import Path

import onnxruntime as ort
import pytest
import torch
from script_loader import load_script
from tiny import tiny_config

from configuration_ttm import TTMConfig
from modeling_ttm import TTMForPrediction
from ttm_zoo import ARCHITECTURES

export = load_script("export")

R2_512_96 = dict(ARCHITECTURES["r2-512-96"], num_input_channels=2)


def exported(config: TTMConfig, path: Path, observed_mask: bool = False) -> TTMForPrediction:
    torch.manual_seed(0)
    model = TTMForPrediction(config).eval()
    export.export_onnx(model, path, observed_mask=observed_mask)
    return model


def graph_names(path: Path) -> tuple[list[str], list[str]]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return [i.name for i in session.get_inputs()], [o.name for o in session.get_outputs()]


def test_cli_exports_a_checkpoint_with_parity(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    checkpoint = tmp_path / "checkpoint"
    TTMForPrediction(tiny_config()).save_pretrained(checkpoint)
    output = tmp_path / "model.onnx"
    assert export.main([str(checkpoint), str(output), "--batch-size-for-tracing", "3"]) == 0
    printed = capsys.readouterr().out
    diff = float(printed.split("max abs diff ")[1].split()[0])
    assert diff <= export.PARITY_TOLERANCE
    assert graph_names(output) == (["past_values"], ["prediction_outputs"])


def test_cli_refuses_to_overwrite_the_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    TTMForPrediction(tiny_config()).save_pretrained(tmp_path)
    weights = tmp_path / "model.safetensors"
    before = weights.read_bytes()
    with pytest.raises(SystemExit):
        export.main([str(tmp_path), str(weights)])
    assert "refusing to overwrite" in capsys.readouterr().err
    assert weights.read_bytes() == before


def test_r2_512_96_architecture(tmp_path: Path) -> None:
    path = tmp_path / "r2.onnx"
    model = exported(TTMConfig(**R2_512_96), path)
    assert export.onnx_parity(model, path, batch_sizes=(1, 5)) <= export.PARITY_TOLERANCE


def test_quantile_outputs(tmp_path: Path) -> None:
    path = tmp_path / "quantiles.onnx"
    model = exported(tiny_config(monotone_quantile_head=True, quantile_levels=[0.1, 0.5, 0.9]), path)
    assert graph_names(path)[1] == ["prediction_outputs", "quantile_outputs"]
    assert export.onnx_parity(model, path, batch_sizes=(1, 5)) <= export.PARITY_TOLERANCE


def test_freq_token_and_observed_mask_inputs(tmp_path: Path) -> None:
    path = tmp_path / "freq.onnx"
    config = tiny_config(resolution_prefix_tuning=True, frequency_token_vocab_size=5, self_attn=True)
    model = exported(config, path, observed_mask=True)
    assert graph_names(path)[0] == ["past_values", "past_observed_mask", "freq_token"]
    diff = export.onnx_parity(model, path, batch_sizes=(1, 5), observed_mask=True)
    assert diff <= export.PARITY_TOLERANCE


@pytest.mark.parametrize(
    "r3",
    [
        {"multi_scale": True, "register_tokens": 2, "fft_length": 2, "multi_quantile_head": True},
        {"decompose": True, "residual_context_length": 20, "multi_quantile_head": True, "gate_mode": "glu"},
    ],
    ids=["r3", "r3_decomposed"],
)
def test_r3_models(tmp_path: Path, r3: dict) -> None:
    path = tmp_path / "r3.onnx"
    model = exported(tiny_config(**r3), path)
    assert graph_names(path)[1] == ["prediction_outputs", "quantile_outputs"]
    assert export.onnx_parity(model, path, batch_sizes=(1, 5)) <= export.PARITY_TOLERANCE


def test_graph_fills_gaps_and_nan_padding_like_the_model(tmp_path: Path) -> None:
    """The graph's own NaN handling is the model's: a gap and NaN left padding give the short series' forecast."""
    path = tmp_path / "gaps.onnx"
    config = tiny_config()
    model = exported(config, path)
    generator = torch.Generator().manual_seed(1)
    short = 50 + torch.randn(3, config.context_length - 9, config.num_input_channels, generator=generator)
    short[:, 5:12] = float("nan")  # a gap
    short[1, -2:, 0] = float("nan")  # missing at the end
    padded = torch.cat([torch.full((3, 9, config.num_input_channels), float("nan")), short], dim=1)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (actual,) = session.run(None, {"past_values": padded.numpy()})
    with torch.inference_mode():
        expected = model(past_values=short).prediction_outputs
        zero_filled = model(past_values=padded.nan_to_num(0.0), past_observed_mask=padded.isfinite()).prediction_outputs
    torch.testing.assert_close(torch.from_numpy(actual), expected, rtol=0, atol=1e-4)
    # The fill matters: raw zeros move even this random-init model's forecast by far more than the tolerance.
    assert (expected - zero_filled).abs().max() > 100 * 1e-4

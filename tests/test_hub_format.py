"""Auto classes, remote code without this project installed, and conversion of granite-tsfm checkpoints."""

import json
import os
import subprocess
import sys
from pathlib import Path

import torch
from granite_cases import R3_CASES, save_granite_model
from tiny import small_granite_model, tiny_config
from transformers import AutoConfig, AutoModel, AutoModelForTimeSeriesPrediction

from configuration_ttm import TTMConfig
from modeling_ttm import TTMForPrediction, TTMModel
from ttm_hub.hub import CODE_FILES

ROOT = Path(__file__).resolve().parent.parent

# Runs in a fresh interpreter in which this project cannot be imported: its modules are blocked and its directory
# is removed from sys.path, so only the code files saved next to the weights can serve the model.
REMOTE_LOAD = """
import sys
root = sys.argv[1]
sys.path = [p for p in sys.path if p not in ("", ".", root)]
for name in ("modeling_ttm", "configuration_ttm", "layers_ttm", "heads_ttm"):
    sys.modules[name] = None
import torch
from transformers import AutoModel, AutoModelForTimeSeriesPrediction
model = AutoModelForTimeSeriesPrediction.from_pretrained(sys.argv[2], trust_remote_code=True).eval()
assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
inputs = torch.load(sys.argv[3], weights_only=True)
with torch.no_grad():
    out = model(**inputs)
saved = {"prediction": out.prediction_outputs, "quantiles": out.quantile_outputs}
if not model.config.decompose:  # a decomposed model has two backbones and no AutoModel
    backbone = AutoModel.from_pretrained(sys.argv[2], trust_remote_code=True).eval()
    with torch.no_grad():
        hidden = backbone(past_values=inputs["past_values"], freq_token=inputs.get("freq_token"))
    saved["hidden"] = hidden.last_hidden_state
    print(type(backbone).__name__)
torch.save(saved, sys.argv[4])
print(type(model).__name__)
"""


def run_without_project(checkpoint: Path, inputs: dict, tmp_path: Path) -> dict:
    torch.save(inputs, tmp_path / "inputs.pt")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(HF_HOME=str(tmp_path / "hf_home"), HF_HUB_OFFLINE="1")
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            REMOTE_LOAD,
            str(ROOT),
            str(checkpoint),
            str(tmp_path / "inputs.pt"),
            str(tmp_path / "out.pt"),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "TTMForPrediction" in result.stdout
    return torch.load(tmp_path / "out.pt", weights_only=True)


def test_auto_classes_are_registered(tmp_path):
    model = TTMForPrediction(tiny_config()).eval()
    model.save_pretrained(tmp_path)
    assert isinstance(AutoConfig.from_pretrained(tmp_path), TTMConfig)
    assert type(AutoModelForTimeSeriesPrediction.from_pretrained(tmp_path)) is TTMForPrediction
    backbone = AutoModel.from_pretrained(tmp_path).eval()
    assert type(backbone) is TTMModel
    x = torch.randn(2, 32, 3)
    assert torch.equal(backbone(past_values=x).last_hidden_state, model(past_values=x).backbone_hidden_state)


def test_remote_code_loads_without_the_project(tmp_path):
    config = tiny_config(
        resolution_prefix_tuning=True,
        monotone_quantile_head=True,
        quantile_levels=[0.2, 0.5, 0.8],
        adaptive_patching_levels=2,
    )
    model = TTMForPrediction(config).eval()
    model.save_pretrained(tmp_path / "checkpoint")
    saved = json.loads((tmp_path / "checkpoint" / "config.json").read_text())
    assert set(saved["auto_map"]) == {"AutoConfig", "AutoModel", "AutoModelForTimeSeriesPrediction"}
    inputs = {"past_values": torch.randn(2, 32, 3), "freq_token": torch.tensor([1, 3])}
    remote = run_without_project(tmp_path / "checkpoint", inputs, tmp_path)
    with torch.no_grad():
        local = model(**inputs)
    assert torch.equal(remote["prediction"], local.prediction_outputs)
    assert torch.equal(remote["hidden"], local.backbone_hidden_state)


def convert(source: Path, output: Path) -> subprocess.CompletedProcess:
    script = ROOT / "scripts" / "convert_granite_checkpoint.py"
    return subprocess.run(
        [sys.executable, str(script), str(source), str(output)], capture_output=True, text=True, timeout=900
    )


def test_convert_granite_checkpoint(tmp_path):
    granite = small_granite_model()
    granite.save_pretrained(tmp_path / "ibm")
    before = {p.name: p.read_bytes() for p in (tmp_path / "ibm").iterdir()}
    result = convert(tmp_path / "ibm", tmp_path / "ours")
    assert result.returncode == 0, result.stderr[-3000:]
    assert {p.name: p.read_bytes() for p in (tmp_path / "ibm").iterdir()} == before  # input untouched
    config = json.loads((tmp_path / "ours" / "config.json").read_text())
    assert config["model_type"] == "ttm" and "num_patches" not in config  # derived, never stored
    assert {p.name for p in (tmp_path / "ours").iterdir()} == {"config.json", "model.safetensors", *CODE_FILES}
    x = torch.randn(3, 64, 2) * 4 + 1
    with torch.no_grad():
        expected = granite(past_values=x).prediction_outputs
    remote = run_without_project(tmp_path / "ours", {"past_values": x}, tmp_path)
    torch.testing.assert_close(remote["prediction"], expected, rtol=0, atol=1e-5)

    again = convert(tmp_path / "ibm", tmp_path / "ours")
    assert again.returncode != 0 and "not empty" in again.stderr


def test_shipped_checkpoints_carry_the_current_code():
    """The code files next to shipped weights serve `trust_remote_code` users: they must be this project's code."""
    checkpoints = sorted((ROOT / "checkpoints").glob("*/config.json"))
    assert checkpoints
    for config in checkpoints:
        for name in CODE_FILES:
            assert (config.parent / name).read_text() == (ROOT / name).read_text(), f"{config.parent.name}/{name}"


def test_convert_granite_r3_decomposed_checkpoint_and_load_it_as_remote_code(tmp_path):
    case = next(case for case in R3_CASES if case.name == "r3_decomposed_trend_overrides_quantiles")
    granite = save_granite_model(case, tmp_path / "ibm").eval()
    result = convert(tmp_path / "ibm", tmp_path / "ours")
    assert result.returncode == 0, result.stderr[-3000:]
    assert {p.name for p in (tmp_path / "ours").iterdir()} == {"config.json", "model.safetensors", *CODE_FILES}
    x = torch.randn(3, 32, 3) * 4 + 1
    with torch.no_grad():
        expected = granite(past_values=x)
    remote = run_without_project(tmp_path / "ours", {"past_values": x}, tmp_path)
    torch.testing.assert_close(remote["prediction"], expected.prediction_outputs, rtol=0, atol=1e-5)
    torch.testing.assert_close(remote["quantiles"], expected.quantile_outputs, rtol=0, atol=1e-5)

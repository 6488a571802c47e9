"""Security: weights only through safetensors or torch's weights-only unpickler, no remote code needed when the
package is installed, and Hub tokens never printed."""

from __future__ import annotations

import ast
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from hub_server import HubServer
from script_loader import load_script
from tiny import save_tiny_checkpoint, tiny_config

from modeling_ttm import TTMForPrediction

ROOT = Path(__file__).resolve().parents[1]
# The project's code: root modules, scripts, tests and the ttm_* packages (not run outputs or checkpoints).
PACKAGES = [ROOT / "scripts", ROOT / "tests", *sorted(ROOT.glob("ttm_*"))]
SOURCES = sorted([*ROOT.glob("*.py"), *(path for package in PACKAGES for path in package.rglob("*.py"))])
UNSAFE_MODULES = {"pickle", "cPickle", "dill", "cloudpickle", "joblib", "marshal", "shelve"}
UNSAFE_CALLS = {"read_pickle", "to_pickle"}  # pandas


def calls(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            owner = func.value.id if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) else None
            yield node, owner, name


def keyword_is_true(node: ast.Call, name: str) -> bool:
    return any(k.arg == name and isinstance(k.value, ast.Constant) and k.value.value is True for k in node.keywords)


def test_the_project_never_unpickles_outside_torchs_weights_only_mode() -> None:
    assert len(SOURCES) > 20 and ROOT / "modeling_ttm.py" in SOURCES
    problems = []
    for path in SOURCES:
        if path == Path(__file__):
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        where = path.relative_to(ROOT)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
                problems += [f"{where}:{node.lineno} imports {n}" for n in names if n.split(".")[0] in UNSAFE_MODULES]
        for node, owner, name in calls(tree):
            if owner == "torch" and name == "load" and not keyword_is_true(node, "weights_only"):
                problems.append(f"{where}:{node.lineno} torch.load without weights_only=True")
            if name == "load" and owner in ("np", "numpy") and any(k.arg == "allow_pickle" for k in node.keywords):
                problems.append(f"{where}:{node.lineno} numpy.load with allow_pickle")
            if name in UNSAFE_CALLS:
                problems.append(f"{where}:{node.lineno} {name}")
    assert problems == []


def test_saved_models_hold_safetensors_only(tmp_path: Path) -> None:
    TTMForPrediction(tiny_config()).save_pretrained(tmp_path)
    weights = {p.name for p in tmp_path.iterdir() if p.suffix not in (".json", ".py", ".md")}
    assert weights == {"model.safetensors"}


class Payload:
    """A pickle that creates a file when unpickled: what a malicious pytorch_model.bin would do."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_malicious_pickle_checkpoint_is_never_executed(tmp_path: Path) -> None:
    checkpoint = tmp_path / "checkpoint"
    TTMForPrediction(tiny_config()).save_pretrained(checkpoint)
    (checkpoint / "model.safetensors").unlink()
    marker = tmp_path / "pwned"
    with open(checkpoint / "pytorch_model.bin", "wb") as file:
        pickle.dump({"backbone.encoder.patcher.weight": Payload(marker)}, file)
    with pytest.raises(Exception):  # noqa: B017 - refused one way or another, never executed
        TTMForPrediction.from_pretrained(checkpoint)
    assert not marker.exists()


def test_resuming_a_finetune_loads_checkpoints_with_weights_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    finetune = load_script("finetune")
    save_tiny_checkpoint(tmp_path / "ttm")
    frame = pd.DataFrame({"date": pd.date_range("2024-01-01", periods=200, freq="h"), "y": np.sin(np.arange(200))})
    frame.to_csv(tmp_path / "y.csv", index=False)
    arguments = ["--model_name_or_path", str(tmp_path / "ttm"), "--data_path", str(tmp_path / "y.csv")]
    arguments += ["--output_dir", str(tmp_path / "out"), "--save_strategy", "steps", "--save_steps", "1"]
    arguments += ["--eval_strategy", "no", "--load_best_model_at_end", "false", "--disable_tqdm", "true"]
    finetune.main([*arguments, "--max_steps", "1"])
    loads = []
    original = torch.load

    def spy(*args, **kwargs):
        loads.append(kwargs.get("weights_only"))
        return original(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    finetune.main([*arguments, "--max_steps", "2", "--resume_from_checkpoint", "last"])
    assert len(loads) >= 3 and all(flag is True for flag in loads)  # optimizer, scheduler, RNG states


def test_auto_classes_load_a_saved_model_without_remote_code(tmp_path: Path) -> None:
    TTMForPrediction(tiny_config()).save_pretrained(tmp_path / "model")
    code = (
        "import sys, modeling_ttm\n"
        "from transformers import AutoModelForTimeSeriesPrediction\n"
        "model = AutoModelForTimeSeriesPrediction.from_pretrained(sys.argv[1], trust_remote_code=False)\n"
        "assert type(model) is modeling_ttm.TTMForPrediction, type(model)\n"
    )
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf_home"), "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "model")], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert not (tmp_path / "hf_home" / "modules" / "transformers_modules").exists()  # no remote code was copied


def test_hub_tokens_are_never_printed(hub_server: HubServer, tmp_path: Path) -> None:
    secret = "hf_reliabilityTestSecret0123456789"
    TTMForPrediction(tiny_config()).save_pretrained(tmp_path / "model")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING")) and not k.endswith("_proxy")}
    env.update(
        HF_ENDPOINT=hub_server.url,
        HF_HOME=str(tmp_path / "hf_home"),
        HF_TOKEN=secret,
        HF_HUB_DISABLE_XET="1",
        HF_HUB_VERBOSITY="debug",
        TRANSFORMERS_VERBOSITY="debug",
        NO_PROXY="127.0.0.1",
    )
    script = str(ROOT / "scripts" / "push_to_hub.py")
    outputs = []
    for arguments in (
        [str(tmp_path / "model"), "alice/secret-test"],  # succeeds
        ["alice/does-not-exist", "alice/secret-test-2", "--source-revision", "main"],  # fails at the Hub
    ):
        result = subprocess.run(
            [sys.executable, script, *arguments], env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path
        )
        outputs.append((result.returncode, result.stdout + result.stderr))
    assert [code for code, _ in outputs] == [0, 2], outputs
    assert all(secret not in text and secret[3:15] not in text for _, text in outputs)
    assert json.dumps(outputs).count("published alice/secret-test") == 1

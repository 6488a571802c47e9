"""Publishing on the Hub and loading back, end to end against the loopback Hub of tests/hub_server.py.

The real `huggingface_hub` / `transformers` clients talk to it over HTTP from subprocesses, because both read
HF_ENDPOINT when they are imported. Three client runs share one server (module fixture `published`):

1. PUSH, with this project importable: `model.push_to_hub`, `push_checkpoint` with a model card (twice, plus a branch
   variant and an all-regular upload), a short Trainer finetune with `push_to_hub=True`, an IBM-style repository,
   and the errors users hit;
2. SCRIPT: scripts/push_to_hub.py converts a granite-tsfm checkpoint on the fly onto a private branch;
3. LOAD, with this project blocked: `from_pretrained(..., trust_remote_code=True)` of every published repo, and
   `snapshot_download`.

Every client run records each host it resolves or connects to (an audit hook), and refuses anything but 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import torch
from hub_server import HubServer
from huggingface_hub import ModelCard, metadata_load
from huggingface_hub.repocard_data import model_index_to_eval_results
from script_loader import load_script
from tiny import small_granite_model, tiny_config

from modeling_ttm import TTMForPrediction
from ttm_hub.hub import CODE_FILES, HubError, check_branch, check_repo_id, variant_branch
from ttm_hub.model_card import DataSource, EvalRecord, Evaluation, TrainingInfo, build_model_card, load_evaluation

ROOT = Path(__file__).resolve().parent.parent
CODE_SET = {"config.json", "model.safetensors", *CODE_FILES}
REPO_SET = CODE_SET | {".gitattributes", "README.md"}
# A report as scripts/backtest.py writes it (ttm_metrics.evaluation_report plus the run's settings).
EVALUATION = {
    "model": "runs/ttm",
    "input": "data/sea_surface_temperature.csv.gz",
    "freq": "30min",
    "split": "test",
    "context_length": 32,
    "stride": 1,
    "scaled_units": "(value - mean) / std with the training split's statistics",
    "seasonal_period": 48,
    "num_windows": 120,
    "horizon": 8,
    "metrics": {
        "original": {"mse": {"model": 0.9, "seasonal_naive": 1.2, "ratio": 0.75}},
        "scaled": {
            "mse": {"model": 0.3, "seasonal_naive": 0.4, "ratio": 0.75},
            "mase": {"model": 0.8, "seasonal_naive": 1.0, "ratio": 0.8},
            "smape": {"model": None, "seasonal_naive": None, "ratio": None},
        },
    },
}
TRAINING = {
    "command": "python scripts/finetune.py --data sea_surface_temperature --epochs 3",
    "base_model": "ibm-granite/granite-timeseries-ttm-r2",
    "data": [
        {
            "name": "sea_surface_temperature",
            "license": "bokeh-sampledata terms",
            "frequency": "30min",
            "source": "bokeh_sampledata",
        }
    ],
}

# Runs first in every client process: records every host looked up or connected to, and blocks non-loopback ones.
GUARD = """
import atexit, json, os, sys
_hosts = []
def _guard(event, args):
    if event == "socket.getaddrinfo" and args[0] is not None:
        host = args[0].decode() if isinstance(args[0], bytes) else str(args[0])
    elif event == "socket.connect" and isinstance(args[1], tuple):
        host = str(args[1][0])
    else:
        return
    _hosts.append(host)
    if host != "127.0.0.1":
        raise PermissionError(f"network access outside loopback: {host}")
sys.addaudithook(_guard)
atexit.register(lambda: open(os.environ["NET_LOG"], "w").write(json.dumps(sorted(set(_hosts)))))
"""

PUSH = """
import json, os, sys
from pathlib import Path
import torch
from huggingface_hub import HfApi
from tiny import small_granite_model, tiny_config
from transformers import AutoModelForTimeSeriesPrediction, Trainer, TrainingArguments
from modeling_ttm import TTMForPrediction
from ttm_hub.hub import load_model, push_checkpoint, variant_branch
from ttm_hub.model_card import DataSource, TrainingInfo, build_model_card, load_evaluation, load_training_info

work = Path(sys.argv[1])
inputs = torch.load(work / "inputs.pt", weights_only=True)
evaluation, training = load_evaluation(work / "evaluation.json"), load_training_info(work / "training.json")
out, errors, outputs = {}, {}, {}

def forecast(model, x):
    with torch.no_grad():
        return model.eval()(past_values=x).prediction_outputs

def error_of(call):
    try:
        call()
    except Exception as error:
        return f"{type(error).__name__}: {error}"
    raise AssertionError("no error")

torch.manual_seed(0)
model = TTMForPrediction(tiny_config()).eval()
out["push_to_hub"] = [model.push_to_hub("alice/pushed").oid, model.push_to_hub("alice/pushed").oid]
outputs["alice/pushed"] = forecast(model, inputs["tiny"])

def card(model, repo, revision=None):
    return build_model_card(model, repo, revision=revision, evaluation=evaluation, training=training)

out["push_checkpoint"] = [push_checkpoint(model, "alice/carded", card(model, "alice/carded")).oid for _ in range(2)]
outputs["alice/carded"] = forecast(model, inputs["tiny"])
variant = TTMForPrediction(tiny_config(prediction_length=16)).eval()
branch = variant_branch(variant.config)
push_checkpoint(variant, "alice/carded", card(variant, "alice/carded", branch), revision=branch)
outputs[f"alice/carded@{branch}"] = forecast(variant, inputs["tiny"])
push_checkpoint(model, "alice/regular", card(model, "alice/regular"))
outputs["alice/regular"] = forecast(model, inputs["tiny"])

# With the project importable, its registered classes load our repo without remote code.
local = AutoModelForTimeSeriesPrediction.from_pretrained("alice/carded")
out["registered_class"] = type(local).__module__ + "." + type(local).__name__
out["registered_equal"] = bool(torch.equal(forecast(local, inputs["tiny"]), outputs["alice/carded"]))
for trust in (False, True):
    loaded = load_model("alice/carded", revision=branch, trust_remote_code=trust)
    same = torch.equal(forecast(loaded, inputs["tiny"]), outputs[f"alice/carded@{branch}"])
    out[f"load_model_trust_{trust}"] = [type(loaded).__module__, bool(same)]

# A short finetune whose Trainer pushes at the end, then the model card replaces the Trainer's generic one.
class Windows(torch.utils.data.Dataset):
    series = torch.randn(16, 40, 3, generator=torch.Generator().manual_seed(1))
    def __len__(self):
        return len(self.series)
    def __getitem__(self, i):
        return {"past_values": self.series[i, :32], "future_values": self.series[i, 32:]}

args = TrainingArguments(
    work / "trainer", push_to_hub=True, hub_model_id="alice/finetuned", max_steps=3, per_device_train_batch_size=4,
    save_strategy="no", report_to="none", use_cpu=True, disable_tqdm=True, logging_strategy="no",
)
trainer = Trainer(model=TTMForPrediction(tiny_config()), args=args, train_dataset=Windows())
trainer.train()
trainer.push_to_hub()
finetune_info = TrainingInfo("Trainer, 3 steps on random windows", data=(DataSource("random windows", "CC0-1.0"),))
build_model_card(trainer.model, "alice/finetuned", training=finetune_info).push_to_hub("alice/finetuned")
outputs["alice/finetuned"] = forecast(trainer.model, inputs["tiny"])

# An IBM-style repository (granite-tsfm files, no code files) on a variant branch.
api = HfApi()
api.create_repo("ibm-granite/ttm-loopback")
api.create_branch("ibm-granite/ttm-loopback", branch="64-16-r2")
api.upload_folder(repo_id="ibm-granite/ttm-loopback", folder_path=work / "granite", revision="64-16-r2")
ibm = TTMForPrediction.from_pretrained("ibm-granite/ttm-loopback", revision="64-16-r2")
outputs["ibm-granite/ttm-loopback@64-16-r2"] = forecast(ibm, inputs["granite"])

errors["missing_revision"] = error_of(lambda: load_model("alice/carded", revision="96-24"))
errors["no_code_files"] = error_of(
    lambda: load_model("ibm-granite/ttm-loopback", revision="64-16-r2", trust_remote_code=True)
)
errors["wrong_branch"] = error_of(lambda: push_checkpoint(model, "alice/carded", card(model, "x"), revision="512-96"))
errors["malformed_repo_id"] = error_of(lambda: push_checkpoint(model, "alice/bad--name", card(model, "x")))
token = os.environ.pop("HF_TOKEN")
errors["no_token"] = error_of(lambda: push_checkpoint(model, "alice/anonymous", card(model, "x")))
errors["no_token_transformers"] = error_of(lambda: model.push_to_hub("alice/anonymous"))
os.environ["HF_TOKEN"] = token

torch.save(outputs, work / "push_outputs.pt")
(work / "push.json").write_text(json.dumps({"out": out, "errors": errors}))
"""

# The project is blocked: only the code files saved in the repositories can serve the models.
LOAD = """
import json, sys
from pathlib import Path
root, work = sys.argv[1], Path(sys.argv[2])
sys.path = [p for p in sys.path if p not in ("", ".", root)]
for name in ("modeling_ttm", "configuration_ttm", "layers_ttm", "heads_ttm"):
    sys.modules[name] = None
import torch
from huggingface_hub import snapshot_download
from transformers import AutoModelForTimeSeriesPrediction

errors, outputs, modules = {}, {}, {}
# First, before any remote code is imported in this process (importing it registers the model type).
try:
    AutoModelForTimeSeriesPrediction.from_pretrained("alice/carded")
except ValueError as error:
    errors["without_trust_remote_code"] = str(error)
try:
    AutoModelForTimeSeriesPrediction.from_pretrained("alice/carded", revision="96-24", trust_remote_code=True)
except OSError as error:
    errors["missing_revision"] = str(error)

inputs = torch.load(work / "inputs.pt", weights_only=True)
for name in json.loads(sys.argv[3]):
    repo, _, revision = name.partition("@")
    model = AutoModelForTimeSeriesPrediction.from_pretrained(repo, revision=revision or None, trust_remote_code=True)
    modules[name] = type(model).__module__
    x = inputs["granite"] if repo == "alice/converted" else inputs["tiny"]
    with torch.no_grad():
        outputs[name] = model.eval()(past_values=x).prediction_outputs

snapshots = {
    "main": sorted(p.name for p in Path(snapshot_download("alice/carded")).iterdir()),
    "32-16": sorted(p.name for p in Path(snapshot_download("alice/carded", revision="32-16")).iterdir()),
}
torch.save(outputs, work / "load_outputs.pt")
(work / "load.json").write_text(json.dumps({"errors": errors, "modules": modules, "snapshots": snapshots}))
"""


def client_env(hub: HubServer, work: Path, name: str, pythonpath: list[Path]) -> dict[str, str]:
    """Environment of a client process: the loopback endpoint, a fresh HF_HOME, a dummy token, no proxies."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("HF_", "HUGGING")) and not key.lower().endswith("_proxy") and key != "PYTHONPATH"
    }
    env.update(
        HF_ENDPOINT=hub.url,
        HF_HOME=str(work / f"hf_home_{name}"),
        HF_TOKEN="hf_loopback_dummy_token",
        HF_HUB_DISABLE_XET="1",
        HF_HUB_DISABLE_TELEMETRY="1",
        NO_PROXY="127.0.0.1",
        NET_LOG=str(work / f"net_{name}.json"),
        PYTHONPATH=os.pathsep.join(map(str, pythonpath)),
        TOKENIZERS_PARALLELISM="false",
    )
    return env


def run_client(code: str, args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-c", GUARD + code, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return result


@pytest.fixture(scope="module")
def published(hub_server: HubServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("hub_clients")
    granite = small_granite_model()
    granite.save_pretrained(work / "granite")
    inputs = {"tiny": torch.randn(4, 32, 3), "granite": torch.randn(3, 64, 2) * 4 + 1}
    torch.save(inputs, work / "inputs.pt")
    with torch.no_grad():
        granite_forecast = granite(past_values=inputs["granite"]).prediction_outputs
    (work / "evaluation.json").write_text(json.dumps(EVALUATION))
    (work / "training.json").write_text(json.dumps(TRAINING))
    run = work / "finetune_run"  # what scripts/finetune.py leaves next to the model, here an IBM checkpoint
    shutil.copytree(work / "granite", run)
    (run / "eval_results.json").write_text(json.dumps({"epoch": 3.0, "eval_loss": 0.41}))
    (run / "test_results.json").write_text(json.dumps({"epoch": 3.0, "test_loss": 0.52, "test_runtime": 0.1}))
    data_arguments = {"data_path": "/home/me/data/sea_surface_temperature.csv.gz", "target_columns": ["t"]}
    (run / "data_config.json").write_text(json.dumps({"data_arguments": data_arguments, "freq": "30min"}))
    hub_server.regular_only.add("alice/regular")

    run_client(PUSH, [str(work)], client_env(hub_server, work, "push", [ROOT, ROOT / "tests"]), work)
    script_path = ROOT / "scripts" / "push_to_hub.py"
    script = f"import runpy; sys.argv = sys.argv[1:]; runpy.run_path({str(script_path)!r}, run_name='__main__')"
    script_args = ["push_to_hub.py", str(run), "alice/converted", "--revision", "64-16", "--private"]
    script_args += ["--commit-message", "Convert the IBM checkpoint", "--evaluation", str(work / "evaluation.json")]
    script_run = run_client(script, script_args, client_env(hub_server, work, "script", []), work)
    expected = torch.load(work / "push_outputs.pt", weights_only=True)
    with torch.no_grad():  # converted on the fly: the same model as this project's direct load of the IBM files
        expected["alice/converted@64-16"] = TTMForPrediction.from_pretrained(work / "granite")(
            past_values=inputs["granite"]
        ).prediction_outputs
    remote = [name for name in expected if not name.startswith("ibm-granite/")]
    run_client(LOAD, [str(ROOT), str(work), json.dumps(remote)], client_env(hub_server, work, "load", []), work)
    return {
        "work": work,
        "granite": granite_forecast,
        "expected": expected,
        "remote": torch.load(work / "load_outputs.pt", weights_only=True),
        "push": json.loads((work / "push.json").read_text()),
        "load": json.loads((work / "load.json").read_text()),
        "script_stdout": script_run.stdout,
        "hosts": {name: json.loads((work / f"net_{name}.json").read_text()) for name in ("push", "script", "load")},
    }


def test_remote_code_reproduces_every_published_model(published: dict[str, Any]) -> None:
    assert set(published["remote"]) == set(published["expected"]) - {"ibm-granite/ttm-loopback@64-16-r2"}
    for name, forecast in published["remote"].items():
        assert torch.equal(forecast, published["expected"][name]), name
        assert published["load"]["modules"][name].startswith("transformers_modules."), name


def test_project_classes_load_without_remote_code(published: dict[str, Any]) -> None:
    assert published["push"]["out"]["registered_class"] == "modeling_ttm.TTMForPrediction"
    assert published["push"]["out"]["registered_equal"]
    # Registered local classes take precedence over the repository's code files, even with trust_remote_code.
    assert published["push"]["out"]["load_model_trust_False"] == ["modeling_ttm", True]
    assert published["push"]["out"]["load_model_trust_True"] == ["modeling_ttm", True]
    # TTMForPrediction.from_pretrained of an IBM repo id + revision (granite-tsfm files, no code files).
    torch.testing.assert_close(
        published["expected"]["ibm-granite/ttm-loopback@64-16-r2"], published["granite"], rtol=0, atol=1e-5
    )


def test_weights_go_through_lfs_unless_the_hub_asks_for_regular_uploads(
    hub_server: HubServer, published: dict[str, Any]
) -> None:
    for repo in ("alice/pushed", "alice/carded", "alice/finetuned", "alice/converted"):
        revision = "64-16" if repo == "alice/converted" else "main"
        weights = hub_server.head(repo, revision).files["model.safetensors"]
        assert weights.lfs, repo
        puts = [r for r in hub_server.requests if r.method == "PUT" and r.path == f"/_lfs/{weights.sha256}"]
        assert [r.status for r in puts] == [200], repo  # uploaded once through the LFS upload action
        kinds = [c.operations.get("model.safetensors") for c in hub_server.repos[repo].commits.values()]
        assert "lfsFile" in kinds and "file" not in kinds, repo
    regular = hub_server.head("alice/regular")
    assert set(regular.files) == REPO_SET and not any(f.lfs for f in regular.files.values())
    assert regular.operations["model.safetensors"] == "file"
    assert not [r for r in hub_server.requests if r.path.startswith("/alice/regular.git/")]


def test_second_push_of_an_unchanged_model_creates_no_commit(hub_server: HubServer, published: dict[str, Any]) -> None:
    first, second = published["push"]["out"]["push_checkpoint"]
    assert first == second == hub_server.head("alice/carded").oid
    assert [c.message for c in hub_server.repos["alice/carded"].commits.values()][:2] == [
        "initial commit",
        "Upload TTM checkpoint (32-8)",
    ]
    commit_requests = [r for r in hub_server.requests if r.path == "/api/models/alice/carded/commit/main"]
    assert len(commit_requests) == 1
    first, second = published["push"]["out"]["push_to_hub"]
    assert first == second == hub_server.head("alice/pushed").oid


def test_repositories_hold_exactly_the_loadable_files(hub_server: HubServer, published: dict[str, Any]) -> None:
    assert published["load"]["snapshots"] == {"main": sorted(REPO_SET), "32-16": sorted(REPO_SET)}
    assert set(hub_server.head("alice/pushed").files) == REPO_SET
    assert set(hub_server.head("alice/finetuned").files) == REPO_SET | {"training_args.bin"}
    config = json.loads(hub_server.read(hub_server.head("alice/carded").files["config.json"]))
    assert set(config["auto_map"]) == {"AutoConfig", "AutoModel", "AutoModelForTimeSeriesPrediction"}
    # The branch variant has its own config; main is untouched by it.
    variant = json.loads(hub_server.read(hub_server.head("alice/carded", "32-16").files["config.json"]))
    assert (variant["prediction_length"], config["prediction_length"]) == (16, 8)


def test_script_publishes_a_converted_ibm_checkpoint_on_a_private_branch(
    hub_server: HubServer, published: dict[str, Any]
) -> None:
    repo = hub_server.repos["alice/converted"]
    assert repo.private and set(repo.branches) == {"main", "64-16"}
    head = hub_server.head("alice/converted", "64-16")
    assert head.message == "Convert the IBM checkpoint" and set(head.files) == REPO_SET
    assert json.loads(hub_server.read(head.files["config.json"]))["model_type"] == "ttm"
    assert "granite-tsfm checkpoint" in published["script_stdout"]
    card = ModelCard(hub_server.read(head.files["README.md"]).decode(), ignore_metadata_errors=False)
    assert card.data.base_model is None and card.data.datasets == ["sea_surface_temperature"]
    for text in (
        'revision="64-16"',
        "| sea_surface_temperature | 30min | not recorded | sea_surface_temperature.csv.gz |",
        'A license marked "not recorded"',
        "| sea_surface_temperature | validation | mse | as trained | 0.41 | n/a |",
        "| sea_surface_temperature | test | mse | as trained | 0.52 | n/a |",
        "| sea_surface_temperature | test | mase | scaled | 0.8 | 0.800 |",
        "- sea_surface_temperature: 120 windows of the test split (stride 1), context 32, horizon 8, frequency 30min",
        "The command that produced this checkpoint was not recorded.",
    ):
        assert text in card.text, text
    assert "/home/me" not in card.text  # no local paths in a public card
    with pytest.raises(urllib.error.HTTPError) as anonymous:  # private: invisible without a token
        urllib.request.urlopen(f"{hub_server.url}/api/models/alice/converted")
    assert anonymous.value.code == 401 and anonymous.value.headers["X-Error-Code"] == "RepoNotFound"


def test_model_cards_have_valid_metadata(hub_server: HubServer, published: dict[str, Any]) -> None:
    readme = published["work"] / "carded_README.md"
    readme.write_bytes(hub_server.read(hub_server.head("alice/carded").files["README.md"]))
    ModelCard.load(readme, ignore_metadata_errors=False)  # parses the model-index block strictly
    metadata = metadata_load(readme)
    assert metadata["pipeline_tag"] == "time-series-forecasting"
    assert metadata["license"] == "apache-2.0" and metadata["library_name"] == "transformers"
    assert metadata["datasets"] == ["sea_surface_temperature"] and "ttm" in metadata["tags"]
    name, results = model_index_to_eval_results(metadata["model-index"])
    assert name == "carded"
    assert [(r.dataset_name, r.dataset_split, r.metric_type, r.metric_name, r.metric_value) for r in results] == [
        ("sea_surface_temperature", "test", "mse", "MSE (scaled)", 0.3),
        ("sea_surface_temperature", "test", "mse_seasonal_naive_ratio", "MSE (scaled) / seasonal naive", 0.75),
        ("sea_surface_temperature", "test", "mase", "MASE (scaled)", 0.8),
        ("sea_surface_temperature", "test", "mase_seasonal_naive_ratio", "MASE (scaled) / seasonal naive", 0.8),
    ]
    card = ModelCard.load(readme).text
    assert TRAINING["command"] in card and "| sea_surface_temperature | 30min | bokeh-sampledata terms |" in card
    # The server validated the YAML of every README.md committed (huggingface_hub posts it before committing),
    # and refuses a card whose metadata block is not YAML.
    validations = [r for r in hub_server.requests if r.path == "/api/validate-yaml"]
    assert validations and all(r.status == 200 for r in validations)
    broken = json.dumps({"content": "---\nlicense: [apache-2.0\n---\n# card\n", "repoType": "model"}).encode()
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(urllib.request.Request(f"{hub_server.url}/api/validate-yaml", data=broken))
    assert refused.value.code == 400 and "Invalid YAML" in json.load(refused.value)["errors"][0]["message"]
    finetuned = ModelCard(hub_server.read(hub_server.head("alice/finetuned").files["README.md"]).decode())
    assert "Trainer, 3 steps on random windows" in finetuned.text and "CC0-1.0" in finetuned.text


def test_errors_say_what_to_do(published: dict[str, Any]) -> None:
    errors = published["push"]["errors"]
    assert "No Hugging Face token found" in errors["no_token"] and "hf auth login" in errors["no_token"]
    assert "401" in errors["no_token_transformers"]  # the loopback Hub refuses anonymous writes
    assert "not a valid Hub repository id: use 'namespace/name'" in errors["malformed_repo_id"]
    assert "'96-24' does not exist" in errors["missing_revision"]
    assert "its branches are: 32-16, main." in errors["missing_revision"]
    assert "has no configuration_ttm.py / modeling_ttm.py" in errors["no_code_files"]
    assert "scripts/push_to_hub.py" in errors["no_code_files"]
    assert "use '32-8'" in errors["wrong_branch"]
    load_errors = published["load"]["errors"]
    assert "trust_remote_code=True" in load_errors["without_trust_remote_code"]
    assert "96-24 is not a valid git identifier" in load_errors["missing_revision"]


def test_no_request_left_loopback(hub_server: HubServer, published: dict[str, Any]) -> None:
    assert published["hosts"] == {"push": ["127.0.0.1"], "script": ["127.0.0.1"], "load": ["127.0.0.1"]}
    assert {r.client for r in hub_server.requests} == {"127.0.0.1"}


def test_script_refuses_bad_arguments_before_any_request(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    script = load_script("push_to_hub")
    with pytest.raises(SystemExit) as exit_info:
        script.main([str(tmp_path), "my org/ttm"])
    assert exit_info.value.code == 2
    assert "not a valid Hub repository id" in capsys.readouterr().err


def test_variant_branches_follow_ibm_naming() -> None:
    config = tiny_config()
    assert variant_branch(config) == "32-8" and variant_branch(config, "ft", "r2") == "32-8-ft-r2"
    check_branch(config, "32-8-ft")
    check_branch(config, "main")
    with pytest.raises(HubError, match="use '32-8'"):
        check_branch(config, "512-96-r2")
    check_repo_id("ibm-granite/granite-timeseries-ttm-r2")
    with pytest.raises(HubError, match="namespace/name"):
        check_repo_id("a/b/c")


def test_model_card_body_and_inputs(tmp_path: Path) -> None:
    config = tiny_config(
        resolution_prefix_tuning=True,
        frequency_token_vocab_size=8,
        monotone_quantile_head=True,
        quantile_levels=[0.1, 0.5, 0.9],
    )
    evaluation = Evaluation((EvalRecord("cgm", "test", "mae", 0.25, "scaled", 0.5),), ("Last 20% of each series.",))
    training = TrainingInfo("python train.py --steps 10", "", (DataSource("cgm", "CC-BY-4.0", "bokeh", "5min"),))
    card = build_model_card(config, "me/ttm", revision="32-8-ft", evaluation=evaluation, training=training)
    model = TTMForPrediction(config)
    assert f"| Parameters | {model.num_parameters():,} |" in card.text
    for text in (
        "| cgm | 5min | CC-BY-4.0 | bokeh |",
        "python train.py --steps 10",
        "| cgm | test | mae | scaled | 0.25 | 0.500 |",
        "- Last 20% of each series.",
        'from_pretrained("me/ttm", revision="32-8-ft", trust_remote_code=True)',
        "TTMForPrediction.from_pretrained",
        "`h`=7",
        "Quantile levels | 0.1, 0.5, 0.9",
    ):
        assert text in card.text, text
    assert "base_model" not in card.data.to_dict()
    bare = build_model_card(config, "me/ttm")
    assert "were not recorded" in bare.text and "No evaluation results" in bare.text
    assert bare.data.to_dict().get("model-index") is None
    (tmp_path / "other.json").write_text(json.dumps({"results": [{"dataset": "x", "metric": "mse"}]}))
    with pytest.raises(ValueError, match="neither a report of scripts/backtest.py nor Trainer losses"):
        load_evaluation(tmp_path / "other.json")
    (tmp_path / "partial.json").write_text(json.dumps({"metrics": {"original": {}}, "split": "test"}))
    with pytest.raises(ValueError, match="not a complete report of scripts/backtest.py: missing 'input'"):
        load_evaluation(tmp_path / "partial.json")


def test_model_card_of_an_r3_decomposed_model() -> None:
    config = tiny_config(
        multi_scale=True,
        register_tokens=2,
        fft_length=2,
        multi_quantile_head=True,
        decompose=True,
        residual_context_length=16,
        trend_d_model=8,
    )
    card = build_model_card(config, "me/ttm-r3")
    for text in (
        f"| Parameters | {TTMForPrediction(config).num_parameters():,} |",
        "| R3 tokens | multi-scale patch levels 3, register tokens 2, frequency tokens 2 |",
        "| Decomposition | trend forecaster on 32 steps (patch 8, width 8), residual forecaster on 16 steps |",
        "(IBM multi-quantile head)",
    ):
        assert text in card.text, text

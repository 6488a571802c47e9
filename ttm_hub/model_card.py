"""Model cards (the README.md of a Hub repository) for TTM checkpoints.

`build_model_card` renders `model_cards/template.md` with `huggingface_hub.ModelCard.from_template`: YAML metadata
(license, library, pipeline tag, tags, datasets, base model, and a `model-index` block with the evaluation results)
and a body describing the architecture, the training data with their licenses, the command that produced the
checkpoint, how to load it and its limitations. The card is a pure function of its inputs (no dates, no paths), so
re-publishing an unchanged checkpoint leaves README.md unchanged.

What the model itself does not know comes from files that the project's scripts write:

- evaluation results: the JSON report of scripts/backtest.py (one per data set; every metric with its
  seasonal-naive value and ratio), and the Trainer losses that scripts/finetune.py saves next to the model
  (eval_results.json, test_results.json); see `load_evaluation`;
- training information: a `training.json`, written by hand or by a training script::

    {"command": "python scripts/finetune.py --data_path sst.csv ...",
     "base_model": "ibm-granite/granite-timeseries-ttm-r2",
     "data": [{"name": "sea_surface_temperature", "license": "...", "frequency": "30min",
               "source": "bokeh_sampledata wheel, _data/sea_surface_temperature.csv.gz"}]}

  (every key optional; each data source needs `name` and `license`), or else the data_config.json of a
  scripts/finetune.py output directory, which names the data file and its frequency but not its license.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from huggingface_hub import EvalResult, ModelCard, ModelCardData

from configuration_ttm import TTMConfig
from modeling_ttm import TTMForPrediction

TEMPLATE = Path(__file__).resolve().parent.parent / "model_cards" / "template.md"
TASK = "time-series-forecasting"
TAGS = ["time-series", "forecasting", "tiny-time-mixer", "ttm"]
# IBM's frequency tokens (REFERENCE.md §4): the token of a frequency is its index here.
FREQUENCY_NAMES = ("oov", "min", "2min", "5min", "10min", "15min", "30min", "h", "d", "W")
# Trainer metric prefixes that scripts/finetune.py saves after training, and the split each one measures.
TRAINER_SPLITS = {"eval": "validation", "test": "test"}
UNRECORDED_LICENSE = "not recorded"


@dataclass(frozen=True)
class DataSource:
    """A training data set: its name, license, and optionally where it comes from and its sampling frequency."""

    name: str
    license: str
    source: str = ""
    frequency: str = ""


@dataclass(frozen=True)
class EvalRecord:
    """One evaluation number: `metric` of the checkpoint on a split of `dataset`, and its ratio to seasonal naive."""

    dataset: str
    split: str
    metric: str
    value: float
    units: str = "original"
    seasonal_naive_ratio: float | None = None
    baseline_ratios: tuple[tuple[str, float | None], ...] = ()  # (statsforecast baseline, model / baseline)


@dataclass(frozen=True)
class Evaluation:
    """Evaluation results, and one sentence per evaluation saying how it was done."""

    results: tuple[EvalRecord, ...] = ()
    protocol: tuple[str, ...] = ()

    def __add__(self, other: Evaluation) -> Evaluation:
        return Evaluation(self.results + other.results, self.protocol + other.protocol)


@dataclass(frozen=True)
class TrainingInfo:
    command: str = ""
    base_model: str = ""
    data: tuple[DataSource, ...] = ()


def _read_json(path: str | Path) -> dict[str, Any]:
    try:
        content = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"cannot read {path}: {error}") from error
    if not isinstance(content, dict):
        raise ValueError(f"{path} must hold a JSON object, not {type(content).__name__}")
    return content


def dataset_name(data_path: str) -> str:
    """The name of a data file without folders and extensions: `data/sst.csv.gz` -> `sst`."""
    return Path(data_path).name.split(".")[0]


def _from_report(report: dict[str, Any], path: str | Path, dataset: str | None) -> Evaluation:
    try:
        units = "scaled" if "scaled" in report["metrics"] else "original"
        name = dataset or dataset_name(report["input"])
        baselines = report.get("baselines", {}).get("metrics", {}).get("original", {})
        results = tuple(
            EvalRecord(
                name, report["split"], metric, values["model"], units, values["ratio"],
                _baseline_ratios(baselines.get(metric)) if units == "original" or metric == "mase" else (),
            )
            for metric, values in report["metrics"][units].items()
            if values["model"] is not None
        )  # fmt: skip
        scaling = f" ({report['scaled_units']})" if units == "scaled" else ""
        protocol = (
            f"{name}: {report['num_windows']} windows of the {report['split']} split (stride {report['stride']}), "
            f"context {report['context_length']}, horizon {report['horizon']}, frequency {report['freq']}, seasonal "
            f"period {report['seasonal_period']}; {units} units{scaling}."
        )
    except (KeyError, TypeError) as error:
        raise ValueError(f"{path} is not a complete report of scripts/backtest.py: missing {error}") from error
    return Evaluation(results, (protocol,))


def _baseline_ratios(values: dict[str, Any] | None) -> tuple[tuple[str, float | None], ...]:
    """(baseline, model / baseline) pairs of one metric of a report's "baselines" section (MASE is unit-free)."""
    if not values:
        return ()
    return tuple((name, entry["model_ratio"]) for name, entry in values.items() if name != "model")


def _from_trainer_metrics(metrics: dict[str, Any], path: str | Path, dataset: str, loss: str) -> Evaluation:
    results = tuple(
        EvalRecord(dataset, split, loss, float(metrics[f"{prefix}_loss"]), "as trained")
        for prefix, split in TRAINER_SPLITS.items()
        if f"{prefix}_loss" in metrics
    )
    if not results:
        raise ValueError(
            f"{path} holds neither a report of scripts/backtest.py nor Trainer losses ("
            + ", ".join(f"{prefix}_loss" for prefix in TRAINER_SPLITS)
            + ")"
        )
    splits = " and ".join(record.split for record in results)
    return Evaluation(results, (f"{dataset}: the Trainer's {loss} loss on the {splits} split after finetuning.",))


def load_evaluation(path: str | Path, *, dataset: str | None = None, loss: str = "loss") -> Evaluation:
    """Reads evaluation results written by the project's scripts.

    Args:
        path: a report of scripts/backtest.py (its metrics in scaled units when it has them, else in original
            units), or a Trainer metrics file of scripts/finetune.py (eval_results.json / test_results.json).
        dataset: name of the evaluated data set; default: the report's input file name, or "training data" for
            Trainer metrics.
        loss: the name of the model's training loss, for Trainer metrics ("mse", "mae", ...).
    """
    content = _read_json(path)
    if "metrics" in content:
        return _from_report(content, path, dataset)
    return _from_trainer_metrics(content, path, dataset or "training data", loss)


def load_training_info(path: str | Path) -> TrainingInfo:
    """Reads a training information file (format in the module docstring)."""
    content = _read_json(path)
    try:
        data = tuple(DataSource(**item) for item in content.pop("data", []))
        return TrainingInfo(**content, data=data)
    except TypeError as error:
        raise ValueError(f"{path}: {error}") from error


def training_from_finetune(data_config: str | Path) -> TrainingInfo:
    """The training data named by the data_config.json of a scripts/finetune.py run (its license is not known)."""
    content = _read_json(data_config)
    try:
        data_path = content["data_arguments"]["data_path"]
    except (KeyError, TypeError) as error:
        raise ValueError(f"{data_config} does not name the training data: missing {error}") from error
    source = DataSource(dataset_name(data_path), UNRECORDED_LICENSE, Path(data_path).name, content.get("freq", ""))
    return TrainingInfo(data=(source,))


def count_parameters(model_or_config: TTMForPrediction | TTMConfig) -> int:
    """Number of parameters of the model (built on the meta device when only a config is given)."""
    if isinstance(model_or_config, TTMConfig):
        with torch.device("meta"):
            model_or_config = TTMForPrediction(model_or_config)
    return sum(p.numel() for p in model_or_config.parameters())


def _architecture(config: TTMConfig) -> list[tuple[str, str]]:
    backbone = f"{config.num_layers} layers per level, width {config.d_model}, {config.mode}"
    if config.adaptive_patching_levels:
        backbone += f", {config.adaptive_patching_levels} adaptive-patching levels"
    rows = [
        ("Input channels", str(config.num_input_channels)),
        ("Forecast channels", str(config.num_targets)),
        ("Patches", f"{config.context_length // config.patch_length} of length {config.patch_length}"),
        ("Backbone", backbone),
        (
            "Decoder",
            f"{config.decoder_num_layers} layers, width {config.decoder_d_model}, {config.decoder_mode}"
            if config.use_decoder
            else "none",
        ),
        ("Scaling", str(config.scaling or "none")),
        ("Loss", "pinball over quantile levels" if config.forecast_quantiles else str(config.loss)),
    ]
    if config.forecast_quantiles:
        head = "IBM multi-quantile head" if config.multi_quantile_head else "monotone quantile head"
        levels = ", ".join(f"{q:g}" for q in config.forecast_quantiles)
        rows.append(("Quantile levels", f"{levels} ({head})"))
    tokens = [
        f"{name} {count}"
        for name, count in (
            ("multi-scale patch levels", config.num_scales if config.multi_scale else 0),
            ("register tokens", config.register_tokens),
            ("frequency tokens", config.fft_length),
        )
        if count
    ]
    if tokens:
        rows.append(("R3 tokens", ", ".join(tokens)))
    if config.decompose:
        trend = config.trend_config()
        rows.append(
            (
                "Decomposition",
                f"trend forecaster on {config.context_length} steps (patch {trend.patch_length}, width "
                f"{trend.d_model}), residual forecaster on {config.residual_config().context_length} steps",
            )
        )
    if config.exogenous_channel_indices:
        rows.append(("Exogenous channels", ", ".join(map(str, config.exogenous_channel_indices))))
    if config.categorical_vocab_size_list:
        rows.append(("Static categoricals", ", ".join(map(str, config.categorical_vocab_size_list))))
    return rows


def _frequencies(config: TTMConfig, data: tuple[DataSource, ...]) -> str:
    seen = sorted({source.frequency for source in data if source.frequency})
    trained = f" Training data sampling: {', '.join(seen)}." if seen else ""
    if not config.resolution_prefix_tuning:
        return f"any (the model takes no frequency token).{trained}"
    known = [f"`{name}`={token}" for token, name in enumerate(FREQUENCY_NAMES[: config.frequency_token_vocab_size])]
    return (
        f"given to the model as `freq_token` (one integer per series, vocabulary of "
        f"{config.frequency_token_vocab_size}); IBM's "
        f"mapping: {', '.join(known)}.{trained}"
    )


def _eval_results(results: tuple[EvalRecord, ...]) -> list[EvalResult]:
    entries = []
    for record in results:
        common = dict(
            task_type=TASK,
            task_name="Time Series Forecasting",
            dataset_type=record.dataset,
            dataset_name=record.dataset,
            dataset_split=record.split,
        )
        name = f"{record.metric.upper()} ({record.units})"
        entries.append(EvalResult(metric_type=record.metric, metric_name=name, metric_value=record.value, **common))
        if record.seasonal_naive_ratio is not None:
            entries.append(
                EvalResult(
                    metric_type=f"{record.metric}_seasonal_naive_ratio",
                    metric_name=f"{name} / seasonal naive",
                    metric_value=record.seasonal_naive_ratio,
                    **common,
                )
            )
    return entries


def build_model_card(
    model_or_config: TTMForPrediction | TTMConfig,
    repo_id: str,
    *,
    revision: str | None = None,
    evaluation: Evaluation | None = None,
    training: TrainingInfo | None = None,
    license: str = "apache-2.0",
    template_path: str | Path = TEMPLATE,
) -> ModelCard:
    """The model card of a TTM checkpoint published as `repo_id` (on branch `revision`, default main).

    Args:
        model_or_config: the model, or its config (the parameter count is then computed on the meta device).
        repo_id: the Hub repository, used in the title, the loading snippets and the `model-index` name.
        revision: the branch the checkpoint is published on; appears in the loading snippets.
        evaluation: results for the `model-index` block and the evaluation table (see `load_evaluation`).
        training: command, base model and training data with licenses (see `load_training_info`).
        license: license id of the weights.
        template_path: the Jinja template of the card body.
    """
    config = model_or_config if isinstance(model_or_config, TTMConfig) else model_or_config.config
    evaluation = evaluation or Evaluation()
    training = training or TrainingInfo()
    model_name = repo_id.split("/")[-1]
    card_data = ModelCardData(
        license=license,
        library_name="transformers",
        pipeline_tag=TASK,
        tags=list(TAGS),
        datasets=[source.name for source in training.data] or None,
        base_model=training.base_model or None,
        model_name=model_name,
        eval_results=_eval_results(evaluation.results) or None,
    )
    return ModelCard.from_template(
        card_data,
        template_path=str(template_path),
        repo_id=repo_id,
        model_name=model_name,
        revision_argument=f', revision="{revision}"' if revision and revision != "main" else "",
        parameters=f"{count_parameters(model_or_config):,}",
        config=config,
        architecture=_architecture(config),
        frequencies=_frequencies(config, training.data),
        training=training,
        evaluation=evaluation,
        unrecorded_license=UNRECORDED_LICENSE,
    )

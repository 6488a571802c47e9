"""Pretrain a Tiny Time Mixer (TTM) from scratch on corpora of univariate series with the transformers Trainer.

Corpora are datasets in the long-series layout (`target`, `start`, `freq`; see scripts/build_corpus.py): a
`save_to_disk` directory, a directory of parquet shards, or a Hub dataset id. Several corpora are mixed with
--corpus_weights. With --streaming the corpora are read as iterable datasets (larger than memory), sharded per
process under `accelerate launch`. Series are read into buffers of --buffer_series; training windows are drawn from
every buffer through `ttm_data.TrainWindows` and `ForecastWindowCollator`, and each window is standardised by its
context's mean and standard deviation so that the loss weighs every series alike.

Every buffer gives --windows_per_buffer windows, drawn in proportion to the number of windows of its series. Small
buffers therefore weigh a buffer of short series like one of long series, and a corpus stored source by source is
trained on one source after another unless --shuffle_buffer covers it. A shuffle buffer at least the corpus' size
with large buffers (--shuffle_buffer 8192 --buffer_series 1024 --windows_per_buffer 8192 for the offline corpus of
5,853 series) draws windows about uniformly over all windows of the corpus, as the shipped checkpoint was trained.

Diverse-resolution sampling: with probability --downsample_probability a series is averaged into a coarser
frequency of IBM's frequency-token table (5min -> 10min / 15min / 30min / h, h -> D, D -> W, ...), with the
matching `freq_token` (used by --resolution_prefix_tuning). Gap augmentation: --drop_point_probability and
--drop_span_probability (spans up to --max_drop_span steps) turn context points of training windows into missing
values, seeded like the windows, so the model learns to forecast across gaps (off by default). Level-drift
augmentation: with probability --drift_probability a real series gets a wandering level added (a random walk to a
smooth trend, `ttm_data.pretraining.add_level_drift`), so that the model learns that a level can move and stay where
it went instead of returning to the context mean (off by default). The last
--validation_fraction of every series is never trained on; without --streaming it is the validation set (rolling
windows, stride --eval_stride).

The model has the architecture of a preset (--architecture r2-512-96 or r2.1-90-30) with optional overrides
(--config_overrides '{"d_model": 128}'). Every TrainingArguments flag works; --resume_from_checkpoint last resumes.
At the end the model, trainer state and loss_curve.png (loss against steps) are written to --output_dir.

Example:
  python scripts/build_corpus.py --output corpus/offline
  python scripts/pretrain.py --corpus corpus/offline --output_dir outputs/pretrain --max_steps 4000
  accelerate launch --num_processes 2 scripts/pretrain.py --corpus corpus/parquet --streaming --max_steps 4000
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ttm_data.cli import check_trainer_command_line
from ttm_zoo.architectures import ARCHITECTURES

if TYPE_CHECKING:  # torch, transformers and datasets load after the arguments are checked
    from transformers import Trainer

    from modeling_ttm import TTMForPrediction

logger = logging.getLogger("pretrain")


@dataclass
class ModelArguments:
    architecture: str | None = field(
        default=None, metadata={"choices": list(ARCHITECTURES), "help": "Preset (default r2-512-96)."}
    )
    config_overrides: str | None = field(default=None, metadata={"help": "JSON object of TTMConfig keys."})
    init_from: str | None = field(
        default=None,
        metadata={
            "help": "Start from this checkpoint's weights and architecture (a directory or Hub id) instead of random "
            "ones; --config_overrides apply to its config, and parameters it lacks start at their initial values."
        },
    )
    resolution_prefix_tuning: bool = field(default=False, metadata={"help": "Feed the frequency token."})
    quantile_levels: list[float] | None = field(
        default=None, metadata={"help": "Train this project's monotone quantile head (pinball loss), e.g. 0.1 0.5 0.9."}
    )


@dataclass
class DataArguments:
    corpus: list[str] = field(metadata={"help": "save_to_disk dirs, parquet dirs or Hub dataset ids."})
    corpus_weights: list[float] | None = field(default=None, metadata={"help": "Mixing probabilities (default even)."})
    streaming: bool = field(default=False, metadata={"help": "Read the corpora as iterable datasets."})
    validation_fraction: float = field(default=0.1, metadata={"help": "Tail of every series kept out of training."})
    eval_stride: int | None = field(default=None, metadata={"help": "Validation window stride (default: horizon)."})
    downsample_probability: float = field(default=0.3, metadata={"help": "Chance to coarsen a series."})
    drift_probability: float = field(
        default=0.0,
        metadata={"help": "Augmentation: chance that a real series gets a wandering level added (add_level_drift)."},
    )
    buffer_series: int = field(default=64, metadata={"help": "Series per buffer that windows are drawn from."})
    windows_per_buffer: int = field(default=512, metadata={"help": "Windows drawn from every buffer."})
    shuffle_buffer: int = field(default=256, metadata={"help": "Series shuffle buffer of the stream."})
    min_past: int = field(default=64, metadata={"help": "Fewest observed context points of a window."})
    drop_point_probability: float = field(
        default=0.0, metadata={"help": "Augmentation: chance that a context point of a training window goes missing."}
    )
    drop_span_probability: float = field(
        default=0.0, metadata={"help": "Augmentation: chance that a training window gets a gap (a missing span)."}
    )
    max_drop_span: int = field(default=32, metadata={"help": "Longest augmentation gap, in steps."})
    synthetic_weight: float = field(
        default=0.0, metadata={"help": "Share of training windows from synthetic series (ttm_data.synthetic), 0-1."}
    )
    synthetic_families: list[float] | None = field(
        default=None,
        metadata={
            "help": "Weights of the synthetic families kernel, structural, state_space (ttm_data.synthetic.FAMILIES), "
            "e.g. 0.2 0.2 0.6 for more series that carry their level forward; default: a third each."
        },
    )
    mix_weight: float = field(
        default=0.0, metadata={"help": "Share of training windows from convex mixes of real series (of a buffer)."}
    )
    synthetic_length: int = field(default=1024, metadata={"help": "Length of every synthetic or mixed series."})
    loss_scale: str = field(
        default="std",
        metadata={
            "choices": ["std", "naive", "seasonal"],
            "help": "Scale of every window for the loss: its context's standard deviation, its mean absolute "
            "one-step change (naive; smooth and persistent series count more), or its mean absolute change over the "
            "seasonal period of its frequency (seasonal: MASE's scale).",
        },
    )


_DEFAULTS = {
    "output_dir": "outputs/pretrain",
    "max_steps": 1000,
    "learning_rate": 1e-3,
    "lr_scheduler_type": "cosine",
    "warmup_steps": 100,
    "weight_decay": 0.01,
    "per_device_train_batch_size": 64,
    "per_device_eval_batch_size": 256,
    "logging_steps": 25,
    "eval_strategy": "steps",
    "eval_steps": 250,
    "save_strategy": "steps",
    "save_steps": 250,
    "save_total_limit": 2,
    "remove_unused_columns": False,
    "ignore_data_skip": False,  # a resumed run replays the window stream to where it stopped
    "report_to": "none",
    "dataloader_pin_memory": False,
    "accelerator_config": {"dispatch_batches": False, "split_batches": False},
}


def build_model(model_args: ModelArguments) -> TTMForPrediction:
    from configuration_ttm import TTMConfig
    from modeling_ttm import TTMForPrediction

    overrides = json.loads(model_args.config_overrides) if model_args.config_overrides else {}
    if model_args.init_from:
        given = [flag for flag, value in (("--architecture", model_args.architecture),
                 ("--quantile_levels", model_args.quantile_levels),
                 ("--resolution_prefix_tuning", model_args.resolution_prefix_tuning)) if value]  # fmt: skip
        if given:
            raise ValueError(f"--init_from: the architecture is the checkpoint's; drop {', '.join(given)}")
        try:
            return TTMForPrediction.from_pretrained(model_args.init_from, **overrides)
        except (OSError, ValueError) as error:
            raise ValueError(f"--init_from: cannot start from {model_args.init_from}: {error}") from None
    settings = dict(ARCHITECTURES[model_args.architecture or "r2-512-96"], scaling="std", num_input_channels=1)
    settings.update(resolution_prefix_tuning=model_args.resolution_prefix_tuning, frequency_token_vocab_size=10)
    if model_args.quantile_levels:
        settings.update(quantile_levels=model_args.quantile_levels, monotone_quantile_head=True)
    settings.update(overrides)
    return TTMForPrediction(TTMConfig(**settings))


def launch_command(world_size: int = 1) -> str:
    """The command line of this run, with the thread setting when one was given and the launcher of several
    processes (`accelerate launch`)."""
    threads = os.environ.get("OMP_NUM_THREADS")
    launcher = "python" if world_size == 1 else f"accelerate launch --multi_gpu --num_processes {world_size}"
    return ("" if threads is None else f"OMP_NUM_THREADS={threads} ") + f"{launcher} " + shlex.join(sys.argv)


def plot_loss_curve(log_history: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    train = [(e["step"], e["loss"]) for e in log_history if "loss" in e]
    evals = [(e["step"], e["eval_loss"]) for e in log_history if "eval_loss" in e]
    figure, axis = plt.subplots(figsize=(7, 4))
    if train:
        axis.plot(*zip(*train, strict=True), label="training loss")
    if evals:
        axis.plot(*zip(*evals, strict=True), "o-", label="validation loss")
    axis.set_xlabel("step")
    axis.set_ylabel("loss (standardised windows)")
    axis.set_title("TTM pretraining")
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def main(argv: list[str] | None = None) -> Trainer:
    argv = sys.argv[1:] if argv is None else argv
    check_trainer_command_line(argv, (ModelArguments, DataArguments), __doc__, _DEFAULTS)
    from transformers import HfArgumentParser, Trainer, TrainingArguments, set_seed
    from transformers.trainer_utils import get_last_checkpoint

    from ttm_data import ForecastWindowCollator
    from ttm_data.pretraining import (
        CorpusWindows,
        GapAugmentation,
        StandardizingCollator,
        training_stream,
        validation_windows,
    )

    parser = HfArgumentParser((ModelArguments, DataArguments, TrainingArguments), description=__doc__)
    parser.set_defaults(**_DEFAULTS)
    try:
        model_args, data_args, training_args = parser.parse_args_into_dataclasses(args=argv)
    except ValueError as error:
        raise SystemExit(f"error: {error}") from None
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    set_seed(training_args.seed)
    started = time.time()
    try:
        model = build_model(model_args)
        horizon = model.config.forecast_length
        train = CorpusWindows(
            training_stream(data_args, training_args.seed, training_args.world_size), horizon, data_args,
            training_args.seed,
        )  # fmt: skip
        validation = validation_windows(data_args, horizon)
        augmentation = GapAugmentation(
            data_args.drop_point_probability, data_args.drop_span_probability, data_args.max_drop_span,
            training_args.seed,
        )  # fmt: skip
    except (ValueError, OSError) as error:
        raise SystemExit(f"error: {error}") from None
    if validation is None:
        training_args.eval_strategy = "no"
    origin = model_args.init_from or model_args.architecture or "r2-512-96"
    logger.info("model: %s parameters, %s", f"{model.num_parameters():,}", origin)
    trainer = Trainer(
        model=model,
        args=training_args,
        train_dataset=train,
        eval_dataset=validation,
        data_collator=StandardizingCollator(
            ForecastWindowCollator.from_config(model.config), augmentation, data_args.loss_scale
        ),
    )
    resume = training_args.resume_from_checkpoint
    if resume == "last":
        resume = get_last_checkpoint(training_args.output_dir)
        if resume is None:
            raise SystemExit(f"error: --resume_from_checkpoint last: no checkpoint in {training_args.output_dir}")
    result = trainer.train(resume_from_checkpoint=resume)
    trainer.save_model()
    trainer.save_state()
    if trainer.is_world_process_zero():
        output = Path(training_args.output_dir)
        plot_loss_curve(trainer.state.log_history, output / "loss_curve.png")
        command = launch_command(training_args.world_size)
        summary = {**result.metrics, "wall_clock_s": round(time.time() - started, 1), "command": command}
        if model_args.init_from:
            summary["init_from"] = model_args.init_from
        (output / "pretrain_results.json").write_text(json.dumps(summary, indent=2) + "\n")
    return trainer


if __name__ == "__main__":
    main()

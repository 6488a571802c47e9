"""Finetune a Tiny Time Mixer (TTM) on the series of a CSV or parquet file with the transformers Trainer.

The file is split in time into train / validation / test (--validation_fraction, --test_fraction or
--validation_start, --test_start). Training draws fresh random windows every step; validation and test use
deterministic rolling windows (--eval_stride), so their losses are exact and comparable between runs. The script
evaluates the checkpoint on the validation split before training (initial_eval_results.json), trains with early
stopping on the validation loss and keeps the best model, then writes eval_results.json, test_results.json,
train_results.json, the model (save_pretrained) and data_config.json (column roles, category codes) to
--output_dir.

Every TrainingArguments flag works (--learning_rate, --num_train_epochs, --max_steps, --per_device_train_batch_size,
--seed, --resume_from_checkpoint DIR or "last", ...), and a JSON file holding all arguments can replace the command
line: `python scripts/finetune.py config.json`. The script runs unchanged under `accelerate launch` (several
processes, each drawing different windows). Input files are only read.

Example:
  python scripts/finetune.py --model_name_or_path path/to/ttm-checkpoint --data_path data.csv \\
      --timestamp_column date --target_columns load --exogenous_columns temperature --output_dir outputs/load
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ttm_data.cli import (
    SHIPPED_CHECKPOINT,
    HelpFormatter,
    check_trainer_command_line,
    hub_offline,
    in_user_words,
    model_source_error,
    offline_hint,
)

if TYPE_CHECKING:  # torch, transformers and the data stack load after the arguments are parsed
    from transformers import HfArgumentParser, Trainer, TrainerCallback, TrainingArguments

    from modeling_ttm import TTMForPrediction
    from ttm_data import EvalWindows, SeriesStore, TrainWindows

logger = logging.getLogger("finetune")


@dataclass
class ModelArguments:
    model_name_or_path: str = field(
        default=SHIPPED_CHECKPOINT,
        metadata={
            "help": "Checkpoint to finetune: a local directory (saved by this project or granite-tsfm) or a Hub id "
            "such as ibm-granite/granite-timeseries-ttm-r2. Default: the checkpoint shipped in this repository."
        },
    )
    revision: str | None = field(
        default=None,
        metadata={
            "help": "Branch of a Hub checkpoint; IBM keeps one per variant, e.g. 1024-96-r2. Default: main, or for "
            "IBM's repositories given --prediction_length the variant chosen for the data (ttm_zoo; needed for R3)."
        },
    )
    use_lite: bool = field(
        default=False, metadata={"help": "With an IBM R3 repository and no --revision: choose its lite variants."}
    )
    context_length: int | None = field(
        default=None,
        metadata={"help": "Context length; must equal the checkpoint's (checked). Default: the checkpoint's."},
    )
    prediction_length: int | None = field(
        default=None,
        metadata={
            "help": "Forecast horizon; at most the checkpoint's. A shorter one trains and scores its first steps "
            "(prediction_filter_length). Default: the checkpoint's."
        },
    )
    freeze_backbone: bool = field(
        default=False, metadata={"help": "Train only the decoder and head; the pretrained backbone stays fixed."}
    )
    decoder_mode: str | None = field(
        default=None,
        metadata={
            "help": "mix_channel learns correlations between channels (needed for static categorical columns); "
            "default: the checkpoint's, or mix_channel with static categorical columns.",
            "choices": ["common_channel", "mix_channel"],
        },
    )
    enable_forecast_channel_mixing: bool | None = field(
        default=None,
        metadata={
            "help": "Refine the forecast with the known future of the exogenous columns. Default: on when "
            "--exogenous_columns are given."
        },
    )
    early_stopping_patience: int = field(
        default=5, metadata={"help": "Stop after this many evaluations without improvement; 0 turns it off."}
    )


@dataclass
class DataArguments:
    data_path: str = field(
        metadata={"help": "CSV / TSV (optionally compressed) or parquet file; wide, or long with --id_column."}
    )
    timestamp_column: str | None = field(
        default=None, metadata={"help": "Timestamp column. Default: the only column that holds dates."}
    )
    id_column: str | None = field(default=None, metadata={"help": "Column naming the series, for stacked series."})
    target_columns: list[str] | None = field(
        default=None, metadata={"help": "Columns to forecast. Default: every numeric column without another role."}
    )
    exogenous_columns: list[str] | None = field(
        default=None, metadata={"help": "Numeric columns known in the future too (weather forecast, price, holiday)."}
    )
    static_categorical_columns: list[str] | None = field(
        default=None, metadata={"help": "Columns constant within a series (store, region)."}
    )
    freq: str | None = field(
        default=None, metadata={"help": "Pandas frequency alias (15min, h, D, W-SUN, ...). Default: inferred."}
    )
    resample: bool = field(
        default=False,
        metadata={
            "help": "Average irregular, duplicate or unsorted timestamps into --freq periods; refused otherwise."
        },
    )
    validation_fraction: float = field(default=0.1, metadata={"help": "Share of every series used for validation."})
    test_fraction: float = field(default=0.2, metadata={"help": "Share of every series (its end) used for testing."})
    validation_start: str | None = field(
        default=None, metadata={"help": "First validation timestamp (replaces --validation_fraction)."}
    )
    test_start: str | None = field(default=None, metadata={"help": "First test timestamp (replaces --test_fraction)."})
    fewshot_fraction: float = field(
        default=1.0, metadata={"help": "Train on only the most recent share of the training split, e.g. 0.05."}
    )
    eval_stride: int = field(default=1, metadata={"help": "Steps between validation / test windows."})
    windows_per_epoch: int | None = field(
        default=None, metadata={"help": "Training windows per epoch. Default: the number of distinct windows."}
    )


def has_accelerator() -> bool:
    import torch

    accelerator = getattr(torch, "accelerator", None)  # torch >= 2.6 knows every accelerator backend
    return accelerator.is_available() if accelerator is not None else torch.cuda.is_available()


# Trainer defaults for finetuning: evaluate and checkpoint every epoch, keep the best model by validation loss.
_TRAINING_DEFAULTS = {
    "output_dir": "outputs/finetune",
    "eval_strategy": "epoch",
    "save_strategy": "epoch",
    "logging_strategy": "epoch",
    "load_best_model_at_end": True,
    "metric_for_best_model": "eval_loss",
    "greater_is_better": False,
    "save_total_limit": 2,
    "learning_rate": 1e-3,
    "num_train_epochs": 20.0,
    "per_device_train_batch_size": 64,
    "per_device_eval_batch_size": 256,
    "remove_unused_columns": False,
}


def training_defaults(given: dict[str, Any]) -> dict[str, Any]:
    """The Trainer defaults, following what the user set (`given`: flag or JSON key -> value).

    Evaluation is off without a validation split; checkpoints follow the evaluation strategy (and steps) unless set;
    without evaluation or checkpoints the best model cannot be kept. On a machine without accelerator, processes
    started by `accelerate launch` train together on CPU (gloo).
    """
    defaults = {**_TRAINING_DEFAULTS, "use_cpu": not has_accelerator(), "dataloader_pin_memory": has_accelerator()}
    no_validation = float(given.get("validation_fraction", 0.1)) == 0 and given.get("validation_start") is None
    if no_validation and "eval_strategy" not in given:
        defaults["eval_strategy"] = "no"
    eval_strategy = _value(given.get("eval_strategy", defaults["eval_strategy"]))
    if "save_strategy" not in given and eval_strategy != "no":
        defaults["save_strategy"] = eval_strategy
        if "eval_steps" in given and "save_steps" not in given:
            defaults["save_steps"] = given["eval_steps"]
    save_strategy = _value(given.get("save_strategy", defaults["save_strategy"]))
    if "load_best_model_at_end" not in given and "no" in (eval_strategy, save_strategy):
        defaults["load_best_model_at_end"] = False
    return defaults


def _value(setting: Any) -> str:
    """An IntervalStrategy or its string, as a lower-case string."""
    return str(getattr(setting, "value", setting)).lower()


def build_parser() -> HfArgumentParser:
    from transformers import HfArgumentParser, TrainingArguments

    parser = HfArgumentParser(
        (ModelArguments, DataArguments, TrainingArguments), description=__doc__, formatter_class=HelpFormatter
    )
    parser.set_defaults(**_TRAINING_DEFAULTS)
    return parser


def parse_arguments(
    argv: list[str], parser: HfArgumentParser | None = None
) -> tuple[ModelArguments, DataArguments, TrainingArguments]:
    """The arguments of a command line or of one JSON file, with the defaults of `training_defaults`."""
    parser = parser or build_parser()
    if len(argv) == 1 and argv[0].endswith(".json"):
        given = json.loads(Path(argv[0]).read_text())
        return parser.parse_dict({**training_defaults(given), **given})
    typed = {t.split("=", 1)[0].removeprefix("--").replace("-", "_") for t in argv if t.startswith("--")}
    values = vars(parser.parse_known_args(argv)[0])
    parser.set_defaults(**training_defaults({name: values[name] for name in typed if name in values}))
    return parser.parse_args_into_dataclasses(args=argv)


def choose_revision(arguments: ModelArguments, longest_train: int) -> str:
    """--revision, else for IBM's repositories given --prediction_length the variant ttm_zoo chooses for a context
    of --context_length (default: the longest training series less the horizon), else main."""
    from ttm_zoo import IBM_REVISIONS, R3_REPOSITORIES, select_ibm_variant

    source, horizon = arguments.model_name_or_path, arguments.prediction_length
    if arguments.use_lite and (source not in R3_REPOSITORIES or arguments.revision is not None):
        raise ValueError(f"`use_lite`: chooses among the variants of {' or '.join(R3_REPOSITORIES)} (no --revision).")
    if arguments.revision is not None or source not in IBM_REVISIONS:
        return arguments.revision or "main"
    if horizon is None:
        if "main" in IBM_REVISIONS[source]:
            return "main"
        raise ValueError(f"`prediction_length`: choosing a variant of {source} needs it (or pass --revision).")
    data_length = arguments.context_length or max(longest_train - horizon, 1)
    try:
        variant, _ = select_ibm_variant(source, data_length, horizon, arguments.use_lite)
    except ValueError as error:
        raise ValueError(str(error).replace("`horizon`", "`prediction_length`")) from None
    return variant.revision


def check_training_arguments(training_args: TrainingArguments, has_validation: bool) -> None:
    """Refuse, in one sentence, Trainer settings this script cannot honour (before any training)."""
    if training_args.load_best_model_at_end and _value(training_args.eval_strategy) == "no":
        raise ValueError(
            "`load_best_model_at_end` needs evaluation: set `eval_strategy` to epoch or steps, or pass "
            "--load_best_model_at_end false."
        )
    metric = training_args.metric_for_best_model
    if metric not in (None, "loss", "eval_loss"):
        raise ValueError(f"`metric_for_best_model`: this script evaluates only the loss, not {metric!r}; use loss.")
    if not has_validation and _value(training_args.eval_strategy) != "no":
        raise ValueError(
            "`validation_fraction` is 0, so nothing can be evaluated: keep a validation split, or pass "
            "--eval_strategy no."
        )


def model_source(value: str) -> str:
    """The checkpoint `--model_name_or_path` names; the shipped checkpoint is found from any working directory."""
    from ttm_zoo import SHIPPED_DIR

    shipped = SHIPPED_DIR.parent / SHIPPED_CHECKPOINT
    if value == SHIPPED_CHECKPOINT and not Path(value).is_dir() and shipped.is_dir():
        return str(shipped)
    problem = model_source_error(value, "`model_name_or_path`")
    if problem:
        raise ValueError(problem)
    return value


def load_model(
    arguments: ModelArguments, store: SeriesStore, static_vocab_sizes: list[int], longest_train: int
) -> TTMForPrediction:
    """The checkpoint, adapted to the data's channels, with every mismatch reported before training."""
    from configuration_ttm import TTMConfig
    from modeling_ttm import TTMForPrediction, TTMModel

    source, revision = model_source(arguments.model_name_or_path), choose_revision(arguments, longest_train)
    offline = not Path(source).is_dir() and hub_offline()
    try:
        config_dict, _ = TTMConfig.get_config_dict(source, revision=revision)
    except (OSError, ValueError) as error:
        reason = offline_hint(source) if offline else f"{error}. Pass a local checkpoint directory or a Hub id"
        raise ValueError(
            f"`model_name_or_path`: cannot load a checkpoint from {source!r} (revision {revision!r}): {reason}."
        ) from None
    if config_dict.get("model_type") != TTMConfig.model_type:
        raise ValueError(
            f"`model_name_or_path`: {source!r} is a {config_dict.get('model_type')!r} checkpoint, not a TTM."
        )
    base = TTMConfig.from_dict(config_dict)
    channels, num_targets = store.num_channels, store.num_targets
    if arguments.context_length is not None and arguments.context_length != base.context_length:
        raise ValueError(
            f"`context_length`: the checkpoint {source!r} reads context_length={base.context_length}, not "
            f"{arguments.context_length}; TTM's context is fixed by its weights: choose a checkpoint (--revision) "
            "with that context, or drop --context_length."
        )
    horizon = arguments.prediction_length or base.forecast_length
    if horizon > base.prediction_length:
        raise ValueError(
            f"`prediction_length`: the checkpoint {source!r} forecasts at most {base.prediction_length} steps, "
            f"not {horizon}; choose a checkpoint (--revision) with a longer horizon."
        )
    if longest_train < base.context_length + horizon:
        raise ValueError(
            f"`data_path`: the longest training series has {longest_train} time steps, fewer than one window of "
            f"context_length + prediction_length = {base.context_length} + {horizon}; use a longer file, smaller "
            "--validation_fraction / --test_fraction, or a checkpoint with a shorter context (--revision)."
        )
    channel_weights = [
        name
        for name, on in (
            ("mode=mix_channel", base.mode == "mix_channel"),
            ("decoder_mode=mix_channel", base.decoder_mode == "mix_channel"),
            ("forecast channel mixing", base.enable_forecast_channel_mixing),
            ("static categoricals", base.categorical_vocab_size_list is not None),
        )
        if on
    ]
    if channel_weights and base.num_input_channels != channels:
        raise ValueError(
            f"`model_name_or_path`: the checkpoint {source!r} has weights for {base.num_input_channels} channels "
            f"({', '.join(channel_weights)}), but the data has {channels} ({num_targets} target and "
            f"{channels - num_targets} exogenous columns); name matching --target_columns / --exogenous_columns, "
            "or finetune a channel-independent checkpoint."
        )
    decoder_mode = arguments.decoder_mode or ("mix_channel" if static_vocab_sizes else base.decoder_mode)
    if static_vocab_sizes and decoder_mode != "mix_channel":
        raise ValueError("`decoder_mode`: static categorical columns need --decoder_mode mix_channel.")
    exogenous = store.exogenous_channel_indices
    mixing = arguments.enable_forecast_channel_mixing
    updates = {
        "num_input_channels": channels,
        "prediction_channel_indices": store.prediction_channel_indices if exogenous else None,
        "exogenous_channel_indices": exogenous or None,
        "decoder_mode": decoder_mode,
        "enable_forecast_channel_mixing": bool(exogenous) if mixing is None else mixing,
        "categorical_vocab_size_list": static_vocab_sizes or None,
        "prediction_filter_length": horizon if horizon < base.prediction_length else None,
    }
    config = TTMConfig.from_dict({**base.to_dict(), **updates})
    model, loading = TTMForPrediction.from_pretrained(
        source, revision=revision, config=config, ignore_mismatched_sizes=True, output_loading_info=True
    )
    if loading["mismatched_keys"]:
        shapes = "; ".join(
            f"{name}: {list(old)} vs {list(new)}" for name, old, new in sorted(loading["mismatched_keys"])
        )
        raise ValueError(
            f"`model_name_or_path`: weights of the checkpoint {source!r} do not fit the data's channels or "
            f"categories (checkpoint vs needed: {shapes}); choose columns that match the checkpoint, or finetune a "
            "channel-independent one."
        )
    if config.resolution_prefix_tuning:
        if (store.freq_tokens >= config.frequency_token_vocab_size).any():
            raise ValueError(
                f"`freq`: the data's frequency token {int(store.freq_tokens.max())} is outside the checkpoint's "
                f"vocabulary of {config.frequency_token_vocab_size}."
            )
        if (store.freq_tokens == 0).any():
            logger.warning("the data's frequency is not in IBM's token table: the model sees the unknown token 0")
    if arguments.freeze_backbone:  # every backbone: a decomposed model has one per forecaster
        for module in model.modules():
            if isinstance(module, TTMModel):
                module.requires_grad_(False)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    logger.info(
        "model %s: context %d, horizon %d, decoder %s, forecast channel mixing %s; %d parameters, %d trainable",
        source,
        config.context_length,
        config.forecast_length,
        config.decoder_mode,
        "on" if config.enable_forecast_channel_mixing else "off",
        model.num_parameters(),
        trainable,
    )
    return model


@dataclass
class Prepared:
    model: TTMForPrediction
    train: TrainWindows
    validation: EvalWindows | None
    test: EvalWindows | None
    data_config: dict


def check_output_dir(output_dir: str, inputs: list[str]) -> None:
    """Refuse an output directory that is, or would overwrite, an input, or that cannot be created."""
    output = Path(output_dir).resolve()
    for source in inputs:
        if Path(source).exists() and Path(source).resolve() == output:
            raise ValueError(f"`output_dir`: {output_dir} would overwrite the input {source}; choose another directory")
    existing = next(parent for parent in (output, *output.parents) if parent.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"`output_dir`: cannot create or write {output_dir} ({existing} is not a writable directory)")


def prepare(model_args: ModelArguments, data_args: DataArguments, training_args: TrainingArguments) -> Prepared:
    """Load and check data and model; raises ValueError naming the argument on anything that cannot work."""
    from ttm_data import (
        LOAD_OPTIONS,
        EvalWindows,
        SeriesStore,
        TrainWindows,
        chronological_split,
        fewshot_subset,
        load_series,
        series_lengths,
        series_schema,
    )

    check_output_dir(training_args.output_dir, [data_args.data_path, model_args.model_name_or_path])
    model_source(model_args.model_name_or_path)
    check_training_arguments(training_args, data_args.validation_fraction > 0 or data_args.validation_start is not None)
    if training_args.remove_unused_columns:
        raise ValueError(
            "`remove_unused_columns` must be False: the window rows carry the series references the collator reads."
        )
    if data_args.eval_stride < 1:
        raise ValueError(f"`eval_stride` must be positive, got {data_args.eval_stride}.")
    dataset = load_series(data_args.data_path, **{name: getattr(data_args, name) for name in LOAD_OPTIONS})
    schema = series_schema(dataset)
    splits = chronological_split(
        dataset,
        validation_fraction=data_args.validation_fraction,
        test_fraction=data_args.test_fraction,
        validation_start=data_args.validation_start,
        test_start=data_args.test_start,
    )
    static_sizes = [len(schema.categories[c]) for c in schema.static_categorical_columns]
    store = SeriesStore.from_dataset(splits["train"])
    model = load_model(model_args, store, static_sizes, int(series_lengths(splits["train"]).max()))
    config = model.config
    train = fewshot_subset(splits["train"], data_args.fewshot_fraction, config.context_length)
    seed = training_args.seed if training_args.data_seed is None else training_args.data_seed
    windows = {"train": TrainWindows(train, config.forecast_length, data_args.windows_per_epoch, seed=seed)}
    for split, argument in (("validation", "validation_fraction"), ("test", "test_fraction")):
        windows[split] = EvalWindows(splits[split], config.forecast_length, stride=data_args.eval_stride)
        wanted = getattr(data_args, argument) > 0 or getattr(data_args, f"{split}_start") is not None
        if wanted and len(windows[split]) == 0:
            raise ValueError(
                f"`{argument}`: the {split} split holds no window of {config.forecast_length} steps; raise "
                f"--{argument} (or move --{split}_start earlier)."
            )
        windows[split] = windows[split] if wanted else None
    logger.info(
        "data %s: %d series, %d target + %d exogenous channels, frequency %s; windows: %d train (%d per epoch), "
        "%d validation, %d test",
        data_args.data_path,
        len(dataset),
        store.num_targets,
        store.num_exogenous,
        dataset[0]["freq"],
        windows["train"].num_windows,
        len(windows["train"]),
        len(windows["validation"] or []),
        len(windows["test"] or []),
    )
    data_config = {"data_arguments": asdict(data_args), "schema": asdict(schema), "freq": dataset[0]["freq"]}
    return Prepared(model, windows["train"], windows["validation"], windows["test"], data_config)


def window_epoch_callback(windows: TrainWindows) -> TrainerCallback:
    """A callback that sets the epoch keying the training windows' draws, also in the epoch a resumed run restarts
    mid-way, where Trainer's batch-skipping data loader does not pass `set_epoch` on to the dataset."""
    from transformers import TrainerCallback

    class WindowEpochCallback(TrainerCallback):
        def on_epoch_begin(self, args: TrainingArguments, state, control, **kwargs) -> None:
            windows.set_epoch(math.floor(state.epoch or 0))

    return WindowEpochCallback()


def checkpoint_is_complete(directory: Path) -> bool:
    """Whether a Trainer save into `directory` (checkpoint-N) finished.

    Trainer writes a checkpoint file by file and `trainer_state.json` last, so a save killed midway leaves a
    directory without a readable state file of step N: that directory must not be resumed from.
    """
    try:
        state = json.loads((directory / "trainer_state.json").read_text())
    except (OSError, ValueError):
        return False
    return directory.name == f"checkpoint-{state.get('global_step')}"


def resolve_checkpoint(resume: str | None, output_dir: str, remove_incomplete: bool) -> str | None:
    """The checkpoint to resume from: "last" is the newest complete checkpoint of `output_dir`.

    Incomplete checkpoints (saves cut short by a kill) are reported and, on the main process, removed; resuming
    from an incomplete checkpoint named explicitly is refused.
    """
    if resume is None:
        return None
    if resume != "last":
        if not checkpoint_is_complete(Path(resume)):
            raise ValueError(f"`resume_from_checkpoint`: {resume} is not a complete checkpoint (no trainer_state.json)")
        return resume
    steps = {path: re.fullmatch(r"checkpoint-(\d+)", path.name) for path in Path(output_dir).glob("checkpoint-*")}
    found = sorted((path for path, step in steps.items() if step and path.is_dir()), key=lambda p: int(steps[p][1]))
    complete = [path for path in found if checkpoint_is_complete(path)]
    for path in found:
        if path not in complete:
            logger.warning("ignoring %s: its save did not finish%s", path, " (removed)" if remove_incomplete else "")
            if remove_incomplete:
                shutil.rmtree(path)
    if not complete:
        raise ValueError(f"`resume_from_checkpoint`: no complete checkpoint in {output_dir}")
    return str(complete[-1])


def setup_logging(training_args: TrainingArguments) -> None:
    """This script's summaries at INFO on the main process; --log_level also sets the transformers verbosity."""
    import transformers

    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    level = logging.INFO if training_args.should_log else logging.WARNING
    if training_args.log_level != "passive":
        level = training_args.get_process_log_level()
        transformers.utils.logging.set_verbosity(level)
    for name in (logger.name, "ttm_data"):
        logging.getLogger(name).setLevel(level)


def main(argv: list[str] | None = None) -> Trainer:
    argv = sys.argv[1:] if argv is None else argv
    check_trainer_command_line(argv, (ModelArguments, DataArguments), __doc__, _TRAINING_DEFAULTS)
    parser = build_parser()

    def stop(error: Exception) -> SystemExit:
        return SystemExit(f"error: {in_user_words(str(error), parser._option_string_actions, argv)}")

    try:
        model_args, data_args, training_args = parse_arguments(argv, parser)
    except ValueError as error:  # TrainingArguments' own checks
        raise stop(error) from None
    from transformers import EarlyStoppingCallback, Trainer, set_seed

    from ttm_data import ForecastWindowCollator

    setup_logging(training_args)
    set_seed(training_args.seed)
    try:
        prepared = prepare(model_args, data_args, training_args)
    except (ValueError, FileNotFoundError) as error:
        raise stop(error) from None

    trainer = Trainer(
        model=prepared.model,
        args=training_args,
        train_dataset=prepared.train,
        eval_dataset=prepared.validation,
        data_collator=ForecastWindowCollator.from_config(prepared.model.config),
        callbacks=[window_epoch_callback(prepared.train)],
    )
    if prepared.validation is not None:
        trainer.save_metrics("initial_eval", trainer.evaluate(metric_key_prefix="initial_eval"))
        if training_args.load_best_model_at_end and model_args.early_stopping_patience > 0:
            trainer.add_callback(EarlyStoppingCallback(model_args.early_stopping_patience))
    try:
        resume = resolve_checkpoint(
            training_args.resume_from_checkpoint, training_args.output_dir, training_args.should_save
        )
    except ValueError as error:
        raise stop(error) from None
    result = trainer.train(resume_from_checkpoint=resume)
    trainer.remove_callback(EarlyStoppingCallback)
    trainer.save_model()
    trainer.save_metrics("train", result.metrics)
    trainer.save_state()
    if prepared.validation is not None:
        trainer.save_metrics("eval", trainer.evaluate())
    if prepared.test is not None:
        trainer.save_metrics("test", trainer.evaluate(prepared.test, metric_key_prefix="test"))
    if trainer.is_world_process_zero():
        path = Path(training_args.output_dir) / "data_config.json"
        path.write_text(json.dumps(prepared.data_config, indent=2, default=str) + "\n")
    return trainer


if __name__ == "__main__":
    main()

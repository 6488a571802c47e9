"""Publish a TTM checkpoint on the Hugging Face Hub with a generated model card.

CHECKPOINT is a directory written by `save_pretrained` (this project's, or IBM granite-tsfm's, which is converted on
the fly) or a Hub model id (with --source-revision). The repository gets config.json, model.safetensors, the code
files (configuration_ttm.py, modeling_ttm.py and the modules they import, so that `transformers` alone loads it with
`trust_remote_code=True`) and a README.md model card
rendered from model_cards/template.md. Publishing an unchanged checkpoint again changes nothing.

The card's evaluation table and `model-index` come from the Trainer losses that scripts/finetune.py saved in
CHECKPOINT (eval_results.json, test_results.json) and from the reports of scripts/backtest.py given with
--evaluation. Its training command, base model and data licenses come from --training (default:
CHECKPOINT/training.json), else from the data_config.json of a finetune run. The formats are described in
ttm_hub/model_card.py.

Variants of one release go to branches named like IBM's: <context>-<horizon>[-suffix], e.g.

    python scripts/push_to_hub.py runs/ttm-512-96 my-org/ttm --revision 512-96-ft

A token with write access is needed: `hf auth login`, or the HF_TOKEN environment variable.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from ttm_data.cli import FlagParser

if TYPE_CHECKING:  # torch and the Hub client load after the arguments are parsed
    from configuration_ttm import TTMConfig
    from ttm_hub.model_card import Evaluation, TrainingInfo


def _training(args: argparse.Namespace, checkpoint: Path) -> TrainingInfo | None:
    from ttm_hub.model_card import load_training_info, training_from_finetune

    if args.training is not None:
        return load_training_info(args.training)
    if (checkpoint / "training.json").is_file():
        return load_training_info(checkpoint / "training.json")
    if (checkpoint / "data_config.json").is_file():
        return training_from_finetune(checkpoint / "data_config.json")
    return None


def _evaluation(args: argparse.Namespace, checkpoint: Path, config: TTMConfig, dataset: str | None) -> Evaluation:
    from ttm_hub.model_card import Evaluation, load_evaluation

    loss = "pinball" if config.forecast_quantiles else str(config.loss)
    finetune = [checkpoint / name for name in ("eval_results.json", "test_results.json")]
    evaluation = Evaluation()
    for path in [path for path in finetune if path.is_file()]:
        evaluation += load_evaluation(path, dataset=dataset, loss=loss)
    for path in args.evaluation:
        evaluation += load_evaluation(path)
    return evaluation


def _is_granite(checkpoint: str) -> bool:
    config = Path(checkpoint) / "config.json"
    return config.is_file() and json.loads(config.read_text()).get("model_type") == "tinytimemixer"


def parse_args(argv: list[str] | None = None) -> tuple[argparse.ArgumentParser, argparse.Namespace]:
    parser = FlagParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", metavar="CHECKPOINT", help="checkpoint directory, or a Hub model id")
    parser.add_argument("repo_id", metavar="REPO_ID", help="target repository, 'namespace/name'")
    parser.add_argument("--revision", default="main", metavar="BRANCH", help="target branch (default: main)")
    parser.add_argument("--private", action="store_true", help="create the repository as private (if it is new)")
    parser.add_argument("--commit-message", default=None, metavar="MESSAGE", help="message of the commit")
    parser.add_argument(
        "--evaluation", action="append", default=[], metavar="FILE", help="a scripts/backtest.py report (repeatable)"
    )
    parser.add_argument("--training", default=None, metavar="FILE", help="training info JSON for the card")
    parser.add_argument("--license", default="apache-2.0", metavar="ID", help="license of the weights")
    parser.add_argument("--source-revision", default=None, metavar="REV", help="revision of a Hub CHECKPOINT")
    return parser, parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    parser, args = parse_args(argv)
    from modeling_ttm import TTMForPrediction
    from ttm_hub.hub import check_repo_id, push_checkpoint, require_token
    from ttm_hub.model_card import build_model_card

    try:
        check_repo_id(args.repo_id)
        token = require_token()
        if _is_granite(args.checkpoint):
            print(f"{args.checkpoint} is a granite-tsfm checkpoint: converting it to this project's format")
        model = TTMForPrediction.from_pretrained(args.checkpoint, revision=args.source_revision).eval()
        checkpoint = Path(args.checkpoint)
        training = _training(args, checkpoint)
        dataset = training.data[0].name if training and len(training.data) == 1 else None
        evaluation = _evaluation(args, checkpoint, model.config, dataset)
        card = build_model_card(
            model, args.repo_id, revision=args.revision, evaluation=evaluation, training=training, license=args.license
        )
        commit = push_checkpoint(
            model,
            args.repo_id,
            card,
            revision=args.revision,
            private=args.private,
            commit_message=args.commit_message,
            token=token,
        )
    except (ValueError, OSError) as error:  # HubError and HfHubHTTPError included
        parser.error(str(error))
    print(f"published {args.repo_id} @ {args.revision}: {commit.commit_url}")


if __name__ == "__main__":
    main()

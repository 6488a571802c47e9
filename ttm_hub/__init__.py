"""Publishing TTM checkpoints on the Hugging Face Hub: model cards, push helpers, and loading with clear errors."""

from ttm_hub.hub import HubError, load_model, push_checkpoint, variant_branch
from ttm_hub.model_card import (
    DataSource,
    EvalRecord,
    Evaluation,
    TrainingInfo,
    build_model_card,
    load_evaluation,
    load_training_info,
)

__all__ = [
    "DataSource",
    "EvalRecord",
    "Evaluation",
    "HubError",
    "TrainingInfo",
    "build_model_card",
    "load_evaluation",
    "load_model",
    "load_training_info",
    "push_checkpoint",
    "variant_branch",
]

"""Publish TTM checkpoints on the Hugging Face Hub and load them back, with errors that say what to do.

`push_checkpoint` writes one commit with everything a repository needs to load with `transformers` alone: config.json
(with `auto_map`), model.safetensors, configuration_ttm.py, modeling_ttm.py and a model card as README.md. Pushing an
unchanged checkpoint again creates no commit. Variants of one release go to branches named like IBM's:
`<context>-<horizon>[-suffix...]` (see `variant_branch`).
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from huggingface_hub import CommitInfo, HfApi, ModelCard, get_token
from huggingface_hub.errors import HfHubHTTPError, HFValidationError, RepositoryNotFoundError, RevisionNotFoundError
from huggingface_hub.utils import validate_repo_id
from transformers import AutoModelForTimeSeriesPrediction, PreTrainedModel

from configuration_ttm import TTMConfig
from modeling_ttm import TTMForPrediction

# The code files that travel with every checkpoint: the config and model modules and what they import.
CODE_FILES = ("configuration_ttm.py", "modeling_ttm.py", "layers_ttm.py", "heads_ttm.py")
# Weights of an earlier upload that this checkpoint replaces (e.g. shards, or PyTorch pickles of a converted repo).
STALE_WEIGHTS = ["*.safetensors", "*.safetensors.index.json", "*.bin", "*.bin.index.json"]
TOKEN_HELP = (
    "Create a token with write access at https://huggingface.co/settings/tokens, then run `hf auth login` "
    "or set the HF_TOKEN environment variable."
)
_VARIANT = re.compile(r"^(\d+)-(\d+)(-.+)?$")


class HubError(ValueError):
    """A problem with a Hub request that the user can fix; the message says how."""


def check_repo_id(repo_id: str) -> None:
    """Raises `HubError` unless `repo_id` is a well-formed Hub model id (`name` or `namespace/name`)."""
    try:
        validate_repo_id(repo_id)
    except HFValidationError as error:
        raise HubError(
            f"{repo_id!r} is not a valid Hub repository id: use 'namespace/name' with letters, digits, '-', '_' and "
            f"'.' (no '--' or '..', at most 96 characters each), e.g. 'my-org/ttm-512-96'. ({error})"
        ) from error


def variant_branch(config: TTMConfig, *suffixes: str) -> str:
    """IBM's branch name of a checkpoint variant: `<context>-<horizon>` followed by `suffixes` (e.g. "ft", "r2")."""
    return "-".join([str(config.context_length), str(config.prediction_length), *suffixes])


def check_branch(config: TTMConfig, branch: str) -> None:
    """Refuses a variant-style branch name whose context / horizon differ from the checkpoint's."""
    match = _VARIANT.match(branch)
    if match and (int(match.group(1)), int(match.group(2))) != (config.context_length, config.prediction_length):
        raise HubError(
            f"branch {branch!r} names a {match.group(1)}-step context and a {match.group(2)}-step horizon, but this "
            f"checkpoint has context {config.context_length} and horizon {config.prediction_length}: "
            f"use {variant_branch(config)!r} (optionally followed by '-<suffix>')."
        )


def require_token(token: str | None = None) -> str:
    """The token to write with: `token`, else the one `huggingface_hub` finds (HF_TOKEN, `hf auth login`)."""
    token = token or get_token()
    if not token:
        raise HubError(f"No Hugging Face token found, and pushing needs one. {TOKEN_HELP}")
    return token


def push_checkpoint(
    model: PreTrainedModel,
    repo_id: str,
    card: ModelCard,
    *,
    revision: str | None = None,
    private: bool = False,
    commit_message: str | None = None,
    token: str | None = None,
) -> CommitInfo:
    """Publishes `model` with `card` as README.md in one commit to `repo_id` (created if needed) on `revision`.

    A branch other than main is created from main if it does not exist. Returns the commit; when nothing changed,
    no commit is made and the current head is returned.
    """
    check_repo_id(repo_id)
    revision = revision or "main"
    check_branch(model.config, revision)
    api = HfApi(token=require_token(token))
    try:
        repo_id = api.create_repo(repo_id, private=private, exist_ok=True).repo_id
        if revision != "main":
            api.create_branch(repo_id, branch=revision, exist_ok=True)
        with tempfile.TemporaryDirectory() as folder:
            model.save_pretrained(folder)
            card.save(Path(folder) / "README.md")
            return api.upload_folder(
                repo_id=repo_id,
                folder_path=folder,
                revision=revision,
                commit_message=commit_message or f"Upload TTM checkpoint ({variant_branch(model.config)})",
                delete_patterns=STALE_WEIGHTS,
            )
    except HfHubHTTPError as error:
        if error.response.status_code in (401, 403):
            raise HubError(f"The Hub refused to let this token write to {repo_id!r}. {TOKEN_HELP}") from error
        raise


def load_model(
    repo_id: str, revision: str | None = None, *, trust_remote_code: bool = False, token: str | None = None
) -> PreTrainedModel:
    """Loads a TTM checkpoint from the Hub, explaining what to do when the repo, the revision or code files are missing.

    With `trust_remote_code=False` this project's `TTMForPrediction` loads it (our checkpoints and IBM's granite-tsfm
    ones alike). With `True`, the repository must hold the code files that `transformers` alone needs, and
    `AutoModelForTimeSeriesPrediction` loads it; in this process, where this project's classes are registered,
    `transformers` prefers them to the downloaded code.
    """
    check_repo_id(repo_id)
    api = HfApi(token=token)
    try:
        files = set(api.list_repo_files(repo_id, revision=revision))
    except RevisionNotFoundError as error:
        branches = sorted(ref.name for ref in api.list_repo_refs(repo_id).branches)
        raise HubError(
            f"Revision {revision!r} does not exist in {repo_id!r}; its branches are: {', '.join(branches)}. "
            "TTM variants live on branches named <context>-<horizon>[-suffix], e.g. '512-96-r2'."
        ) from error
    except RepositoryNotFoundError as error:
        raise HubError(
            f"Repository {repo_id!r} was not found on {api.endpoint}, or it is private and no token with access was "
            "given: check the id (namespace/name), then run `hf auth login` or set HF_TOKEN if it is private."
        ) from error
    if not trust_remote_code:
        return TTMForPrediction.from_pretrained(repo_id, revision=revision, token=token)
    missing = [name for name in CODE_FILES if name not in files]
    if missing:
        raise HubError(
            f"{repo_id!r} has no {' / '.join(missing)}, so it cannot be loaded as remote code. Load it with this "
            "project's classes instead (`load_model(..., trust_remote_code=False)` or "
            "`TTMForPrediction.from_pretrained`), or republish it with scripts/push_to_hub.py, which adds the "
            "code files."
        )
    return AutoModelForTimeSeriesPrediction.from_pretrained(
        repo_id, revision=revision, trust_remote_code=True, token=token
    )

"""Command-line conventions shared by the scripts: one flag dialect, errors in the user's words, fast failures.

Every script takes `--flag-name` and `--flag_name` alike (`FlagParser`; transformers' `HfArgumentParser` registers
both spellings itself), and its errors name flags the way the user typed them (`in_user_words`), also where a
library error names a keyword argument (`` `target_columns` ``, `` `resample=True` ``). This module imports only
the standard library, so that `--help` and argument errors answer before torch, transformers or pandas load.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import NoReturn
from urllib.parse import urlsplit

SHIPPED_CHECKPOINT = "checkpoints/ttm-r2-512-96-offline"

_FLAG = re.compile(r"(?<![\w-])--[A-Za-z0-9][\w-]*")
_KEYWORD = re.compile(r"`(\w+)(?:=True)?`")
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


def _key(flag: str) -> str:
    """The spelling-free key of a flag: `--target_columns` and `--target-columns` are both `target-columns`."""
    return flag.removeprefix("--").replace("_", "-")


def in_user_words(message: str, options: Iterable[str], argv: Sequence[str]) -> str:
    """`message` with every flag and library keyword argument spelled as the user spells flags.

    `options` are the parser's option strings (its first spelling of each flag is the default), `argv` the
    command line. A flag the user typed keeps their spelling; any other follows their habit (underscores or
    dashes) when they used only one, else the parser's first spelling. `` `target_columns` `` becomes a flag when
    the parser has one of that name; "`resample=True`" becomes "--resample".
    """
    primary: dict[str, str] = {}
    for option in options:
        if option.startswith("--"):
            primary.setdefault(_key(option), option)
    typed = {_key(t): t for t in (a.split("=", 1)[0] for a in argv) if t.startswith("--") and _key(t) in primary}
    habits = {"_" if "_" in t else "-" for t in typed.values() if re.search(r"\w[_-]\w", t)}

    def spell(key: str) -> str:
        if key in typed:
            return typed[key]
        if len(habits) == 1:
            return "--" + key.replace("-", next(iter(habits)))
        return primary[key]

    message = _KEYWORD.sub(lambda m: spell(_key(m[1])) if _key(m[1]) in primary else m[0], message)
    return _FLAG.sub(lambda m: spell(_key(m[0])) if _key(m[0]) in primary else m[0], message)


class FlagParser(argparse.ArgumentParser):
    """An `argparse.ArgumentParser` that takes each `--flag-name` also as `--flag_name` (and the reverse), and whose
    errors name flags as the user typed them.

    Flags are declared once, with dashes; `--help` lists that spelling.
    """

    _argv: Sequence[str] = ()

    def parse_known_args(
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        self._argv = list(sys.argv[1:] if args is None else args)
        return super().parse_known_args([self._declared(token) for token in self._argv], namespace)

    def _declared(self, token: str) -> str:
        """`token` with its flag in the declared spelling; values and unknown flags pass unchanged."""
        if not token.startswith("--") or token == "--":
            return token
        flag, equals, value = token.partition("=")
        declared = {_key(option): option for option in self._option_string_actions if option.startswith("--")}
        return declared.get(_key(flag), flag) + equals + value

    def error(self, message: str) -> NoReturn:
        super().error(in_user_words(message, self._option_string_actions, self._argv))


def model_source_error(value: str, flag: str = "--model") -> str | None:
    """Why `value` cannot name a checkpoint (a sentence naming `flag`), or None for a directory or a Hub id.

    A value that reads as a path (`./my-ttm`, `/data/ttm`, `~/ttm`, `runs/a/b`) must be an existing directory.
    """
    path = Path(value).expanduser()
    if path.is_dir():
        return None
    if path.exists():
        return f"{flag}: {value} is a file; pass a checkpoint directory (one holding config.json) or a Hub id"
    if value.startswith((".", "/", "~")) or value.count("/") > 1 or "\\" in value:
        return f"{flag}: directory {value} does not exist (the shipped checkpoint is {SHIPPED_CHECKPOINT})"
    if not _HUB_ID.fullmatch(value):
        return (
            f"{flag}: {value} is not an existing directory nor a Hub id (namespace/name); the shipped checkpoint is "
            f"{SHIPPED_CHECKPOINT}"
        )
    return None


def _truthy(value: str | None) -> bool:
    return (value or "").strip().upper() in {"1", "ON", "YES", "TRUE"}


def hub_offline(timeout: float = 3.0) -> bool:
    """Whether the Hub is off: offline mode is set, or its endpoint cannot be reached within `timeout` seconds.

    An unreachable endpoint (no network, no name resolution) switches huggingface_hub to offline mode for this
    process, so that loading a Hub id answers at once from the cache (or fails at once) instead of retrying for
    half a minute. Behind a proxy (HTTPS_PROXY / ALL_PROXY) the endpoint is not probed.
    """
    if _truthy(os.environ.get("HF_HUB_OFFLINE")) or _truthy(os.environ.get("TRANSFORMERS_OFFLINE")):
        return True
    if any(os.environ.get(name) for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return False
    endpoint = urlsplit(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        socket.create_connection((endpoint.hostname, port), timeout=timeout).close()
        return False
    except OSError:
        os.environ["HF_HUB_OFFLINE"] = "1"
        constants = sys.modules.get("huggingface_hub.constants")
        if constants is not None:  # already imported: its flag was read from the environment
            constants.HF_HUB_OFFLINE = True
        return True


def offline_hint(value: str) -> str:
    """The sentence to add when loading the Hub id `value` failed while the Hub is off."""
    return (
        f"the Hugging Face Hub is not reachable (offline) and {value} is not in the local cache; use the shipped "
        f"checkpoint {SHIPPED_CHECKPOINT} or another local directory"
    )


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def fraction(text: str) -> float:
    """argparse type: a number in [0, 1)."""
    value = float(text)
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {value}")
    return value

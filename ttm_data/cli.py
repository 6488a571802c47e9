"""Command-line conventions shared by the scripts: one flag dialect, errors in the user's words, fast failures.

Every script takes `--flag-name` and `--flag_name` alike (`FlagParser`; transformers' `HfArgumentParser` registers
both spellings itself), and its errors name flags the way the user typed them (`in_user_words`), also where a
library error names a keyword argument (`` `target_columns` ``, `` `resample=True` ``). This module imports only
the standard library, so that `--help` and argument errors answer before torch, transformers or pandas load.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import importlib.util
import os
import re
import socket
import sys
import types
import typing
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

SHIPPED_CHECKPOINT = "checkpoints/ttm-r2-512-96-offline"

_FLAG = re.compile(r"(?<![\w-])--[A-Za-z0-9][\w-]*")
_KEYWORD = re.compile(r"`(\w+)(?:=True)?`")
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


def load_script(name: str) -> types.ModuleType:
    """`scripts/<name>.py` as the module `<name>`, for a script that calls another's functions."""
    path = Path(__file__).resolve().parents[1] / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = sys.modules[name] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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
    message = _FLAG.sub(lambda m: spell(_key(m[0])) if _key(m[0]) in primary else m[0], message)
    return re.sub(r"(--[\w-]+)/\1(?![\w-])", r"\1", message)  # argparse's "--a_b/--a-b", now spelled alike


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


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """The module docstring as written, and every flag's default."""


@dataclasses.dataclass(frozen=True)
class Flag:
    """One flag of a dataclass of arguments: its field name, annotation (as text), default and help."""

    name: str
    annotation: str
    default: Any = dataclasses.MISSING
    help: str = ""
    choices: Sequence[Any] | None = None


def dataclass_flags(arguments: type) -> list[Flag]:
    """The flags of a dataclass of arguments, as `transformers.HfArgumentParser` reads them."""
    flags = []
    for spec in dataclasses.fields(arguments):
        default = spec.default
        if spec.default_factory is not dataclasses.MISSING:
            default = spec.default_factory()
        annotation = _annotation_text(spec.type)
        help_text, choices = spec.metadata.get("help", ""), spec.metadata.get("choices")
        flags.append(Flag(spec.name, annotation, default, help_text, choices))
    return flags


def _annotation_text(annotation: Any) -> str:
    """A field's annotation as source text (`list[float] | None`); HfArgumentParser replaces the text by types."""
    if isinstance(annotation, str):
        return annotation
    if annotation is type(None):
        return "None"
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return " | ".join(_annotation_text(part) for part in typing.get_args(annotation))
    if typing.get_origin(annotation) is list:
        return f"list[{_annotation_text(typing.get_args(annotation)[0])}]"
    return getattr(annotation, "__name__", str(annotation))


def training_argument_flags() -> list[Flag]:
    """The flags of `transformers.TrainingArguments`, read from the installed transformers' source.

    Importing TrainingArguments loads torch (seconds); `--help` and argument errors must answer before that, so
    the class's fields are read from `transformers/training_args.py` with `ast`. Defaults and choices that are not
    literals are left unknown; the real parser checks every value once the arguments are accepted here.
    """
    spec = importlib.util.find_spec("transformers")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError("transformers is not installed")
    tree = ast.parse(Path(spec.origin).with_name("training_args.py").read_text(encoding="utf-8"))
    (body,) = [node.body for node in tree.body if isinstance(node, ast.ClassDef) and node.name == "TrainingArguments"]
    flags = []
    for statement in body:
        if not (isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name)):
            continue
        keywords = {k.arg: k.value for k in getattr(statement.value, "keywords", [])}
        metadata = keywords.get("metadata")
        entries = dict(zip(metadata.keys, metadata.values, strict=True)) if isinstance(metadata, ast.Dict) else {}
        entries = {key.value: value for key, value in entries.items() if isinstance(key, ast.Constant)}
        default = _literal(keywords["default"]) if "default" in keywords else None
        if "default_factory" in keywords:
            default = None
        help_node, choices_node = entries.get("help"), entries.get("choices")
        help_text = _literal(help_node) if help_node is not None else ""
        choices = _literal(choices_node) if choices_node is not None else None
        annotation = ast.unparse(statement.annotation)
        flags.append(Flag(statement.target.id, annotation, default, help_text or "", choices or None))
    return flags


def _literal(node: ast.expr) -> Any:
    """The value of a literal expression, else None (not known without running transformers)."""
    try:
        return ast.literal_eval(node)
    except ValueError:
        return None


def _boolean(text: str) -> bool:
    """argparse type of boolean flags, with HfArgumentParser's spellings."""
    if text.lower() in {"yes", "true", "t", "y", "1"}:
        return True
    if text.lower() in {"no", "false", "f", "n", "0"}:
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean (true / false), got {text!r}")


def add_flags(parser: argparse.ArgumentParser, flags: Iterable[Flag], title: str | None = None) -> None:
    """Declare `flags` on `parser` (in an argument group named `title`), typed as HfArgumentParser types them.

    Plain int, float, bool and str fields and lists of them get their type; any other annotation (enums, dicts,
    unions) takes one string, which the real parser checks. A boolean flag alone means true; one that defaults to
    true also has a `--no_` form.
    """
    group = parser.add_argument_group(title) if title else parser
    for flag in flags:
        kinds = {part.strip() for part in flag.annotation.split("|")} - {"None", "Optional"}
        listed = [kind[5:-1] for kind in kinds if kind.startswith("list[") and kind.endswith("]")]
        kind = {"int": int, "float": float, "bool": _boolean, "str": str}.get(
            listed[0] if listed else kinds.pop() if len(kinds) == 1 else "", str
        )
        options: dict[str, Any] = {"help": flag.help.replace("%", "%%") or " ", "type": kind}
        if flag.default is dataclasses.MISSING:
            options["required"] = True
        else:
            options["default"] = flag.default
        if flag.choices is not None:
            options["choices"] = list(flag.choices)
        if listed:
            options["nargs"] = "+"
        elif kind is _boolean:
            options.update(nargs="?", const=True)
        group.add_argument(*_spellings(flag.name), **options)
        if kind is _boolean and flag.default is True:
            group.add_argument(*_spellings(f"no_{flag.name}"), action="store_false", dest=flag.name, help=" ")


def _spellings(name: str) -> list[str]:
    """A field's flag with underscores, then with dashes (as HfArgumentParser lists them)."""
    return list(dict.fromkeys([f"--{name}", f"--{name.replace('_', '-')}"]))


def check_trainer_command_line(
    argv: Sequence[str], arguments: Sequence[type], description: str | None, defaults: dict[str, Any]
) -> None:
    """Answer `--help` and reject unknown flags or bad values of a Trainer script before torch loads.

    The scripts parse with `transformers.HfArgumentParser((*arguments, TrainingArguments))`, whose import takes
    seconds; this parser has the same flags (`dataclass_flags`, `training_argument_flags`) and stdlib types, so
    `--help` and most mistakes answer at once. A single `.json` argument (all arguments in one file) is left to the
    real parser.
    """
    if len(argv) == 1 and argv[0].endswith(".json"):
        return
    parser = FlagParser(
        usage="%(prog)s [flags] (--help lists them)", description=description, formatter_class=HelpFormatter
    )
    for arguments_class in arguments:
        add_flags(parser, dataclass_flags(arguments_class), arguments_class.__name__)
    add_flags(parser, training_argument_flags(), "TrainingArguments (transformers)")
    parser.set_defaults(**defaults)
    parser.parse_args(argv)


def add_series_flags(group: argparse._ActionsContainer, covariates: bool = False) -> None:
    """The flags that say how to read a file of series (`ttm_data.load_series`), worded alike in every script:
    --timestamp-column, --id-column, --target-columns, with `covariates` --exogenous-columns and
    --static-categorical-columns, then --freq and --resample."""
    group.add_argument("--timestamp-column", metavar="NAME", help="timestamp column (default: the one with dates)")
    group.add_argument("--id-column", metavar="NAME", help="column naming the series of each row, for stacked series")
    group.add_argument(
        "--target-columns", metavar="NAME", nargs="+", help="columns to forecast (default: the other numeric ones)"
    )
    if covariates:
        group.add_argument(
            "--exogenous-columns", metavar="NAME", nargs="+", help="numeric columns known in advance (model inputs)"
        )
        group.add_argument(
            "--static-categorical-columns", metavar="NAME", nargs="+", help="per-series categories (models using them)"
        )
    group.add_argument("--freq", metavar="ALIAS", help="pandas frequency alias: 15min, h, D, MS (default: inferred)")
    group.add_argument(
        "--resample", action="store_true", help="average irregular or duplicate timestamps into --freq periods"
    )


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

"""The README's commands and examples are the project's front door: run its examples and pin its commands."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SKIP_MARKER = "<!-- readme-test: skip"

INSTALL_AND_RUN = 'pip install "torch==2.13.0" -e ".[demo]" && python scripts/forecast.py'
TEST_COMMAND = (
    'pip install "torch==2.13.0" -e ".[dev]" && pip install --no-deps "granite-tsfm==0.3.11" && python -m pytest -q'
)


@dataclass
class Block:
    language: str
    code: str
    line: int  # 1-based line of the opening fence
    skipped: bool


def readme_blocks() -> list[Block]:
    blocks = []
    lines = README.read_text().splitlines()
    start = None
    for number, line in enumerate(lines):
        if start is None and (match := re.fullmatch(r"```(\w*)\s*", line)):
            start, language = number, match.group(1)
        elif start is not None and line.strip() == "```":
            skipped = start > 0 and lines[start - 1].startswith(SKIP_MARKER)
            blocks.append(Block(language, "\n".join(lines[start + 1 : number]) + "\n", start + 1, skipped))
            start = None
    assert start is None, f"README.md: code block opened at line {start + 1} is never closed"
    return blocks


def test_python_blocks_run_and_print_what_they_claim(tmp_path: Path) -> None:
    blocks = [b for b in readme_blocks() if b.language == "python" and not b.skipped]
    assert blocks, "README.md has no executable python block"
    script = "".join(f"# README.md line {b.line}\n{b.code}" for b in blocks)
    (tmp_path / "readme_examples.py").write_text(script)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "HF_HOME": str(tmp_path / "hf_home"),  # remote code is cached there
        "HF_HUB_OFFLINE": "1",
    }
    result = subprocess.run(
        [sys.executable, "readme_examples.py"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, f"README examples failed:\n{result.stderr[-4000:]}"
    # `print(x)  # value` in the README promises that `value` is printed.
    promised = re.findall(r"^[ \t]*print\(.*\)[ \t]*#[ \t]*(.+?)[ \t]*$", script, flags=re.MULTILINE)
    assert promised, "README examples show no printed result"
    for value in promised:
        assert value in result.stdout, f"README promises {value!r}; the examples printed:\n{result.stdout}"


def test_skipped_python_blocks_compile() -> None:
    blocks = [b for b in readme_blocks() if b.language == "python" and b.skipped]
    assert blocks, "README.md should show how to load IBM checkpoints (a block that needs the Hub)"
    for block in blocks:
        compile(block.code, f"README.md line {block.line}", "exec")


def test_readme_opens_with_the_install_and_test_commands() -> None:
    first, second = readme_blocks()[:2]
    assert (first.language, first.code.strip()) == ("bash", INSTALL_AND_RUN)
    assert (second.language, second.code.strip()) == ("bash", TEST_COMMAND)


def test_extras_named_by_the_commands_exist() -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for extra in ("demo", "dev"):  # pip only warns about an unknown extra, so check them here
        assert any(req.startswith("bokeh-sampledata") for req in extras[extra]), f"extra {extra!r} lacks the demo data"


def test_ci_runs_the_readme_test_command() -> None:
    ci = ROOT / ".ci" / "run"
    assert os.access(ci, os.X_OK), ".ci/run is not executable"
    lines = ci.read_text().splitlines()
    assert "set -euo pipefail" in lines
    assert TEST_COMMAND in lines

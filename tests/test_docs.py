"""docs/ cannot drift: generated pages are current, every error type and module named exists, runnable commands run."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from dbt_temporal.contract_reference import contract_markdown
from tests.support import BIN

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
PACKAGE = REPO / "dbt_temporal"


def _runnable_commands() -> list[str]:
    commands = []
    for page in [REPO / "README.md", *sorted(DOCS.glob("*.md"))]:
        for block in re.findall(r"```sh runnable\n(.*?)```", page.read_text(), flags=re.S):
            commands += [line for line in block.splitlines() if line.strip() and not line.startswith("#")]
    return commands


def test_the_contract_page_is_current() -> None:
    committed = (DOCS / "contract.md").read_text()
    assert committed == contract_markdown(), "stale: run python -m dbt_temporal.contract_reference"


def test_every_error_type_a_run_can_end_with_is_documented() -> None:
    source = "\n".join(path.read_text() for path in PACKAGE.rglob("*.py"))
    raised = set(re.findall(r'type="([A-Za-z]+)"', source)) | set(re.findall(r'= "([A-Za-z]+TooLarge)"', source))
    documented = set(re.findall(r"^\| `(\w+)`", (DOCS / "errors.md").read_text(), flags=re.M))

    assert raised, "no error types found: the scan is broken"
    assert raised <= documented, f"undocumented error types: {sorted(raised - documented)}"


def test_every_module_the_architecture_names_exists() -> None:
    named = set(re.findall(r"`((?:\w+/)*\w+\.py)`", (DOCS / "architecture.md").read_text()))

    assert len(named) > 10
    assert {name for name in named if not (PACKAGE / name).is_file()} == set()


@pytest.mark.parametrize("command", _runnable_commands())
def test_a_command_marked_runnable_runs(command: str) -> None:
    result = subprocess.run(
        ["bash", "-c", command],
        cwd=REPO,
        env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"

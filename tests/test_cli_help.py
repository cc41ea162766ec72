"""What `dbtt` says about itself: help, versions, and the shell completion scripts in completions/."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from tests.support import BIN, EXAMPLES, REPO, dbtt

COMPLETION_FILES = {"bash": "dbtt.bash", "zsh": "_dbtt", "fish": "dbtt.fish"}


@pytest.mark.parametrize("shell", sorted(COMPLETION_FILES))
def test_committed_completion_scripts_are_what_the_cli_prints(shell: str) -> None:
    committed = REPO / "completions" / COMPLETION_FILES[shell]

    printed = dbtt("--show-completion", shell)

    assert printed.returncode == 0, printed.stderr
    assert printed.stdout == committed.read_text(), (
        f"completions/{committed.name} is stale: dbtt --show-completion {shell} > completions/{committed.name}"
    )


def _bash_complete(*words: str, env: dict[str, str] | None = None) -> list[str]:
    """What Tab offers after `words` in bash with the committed script loaded."""
    script = (
        f"source {REPO / 'completions' / 'dbtt.bash'}\n"
        'COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))\n'
        "_dbtt_completion dbtt\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    done = subprocess.run(
        ["bash", "-c", script, "bash", "dbtt", *words],
        env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_bash_completes_commands_options_and_dbt_commands() -> None:
    assert _bash_complete("su") == ["submit"]
    assert _bash_complete("submit", "s") == ["seed", "snapshot", "show", "source"]
    assert _bash_complete("submit", "source", "") == ["freshness"]
    assert _bash_complete("submit", "--full") == ["--full-refresh"]
    assert _bash_complete("--show-completion", "") == ["bash", "zsh", "fish"]


def test_bash_completes_the_project_names_a_worker_here_would_load() -> None:
    projects = {"DBT_PROJECT_DIRS": f"{EXAMPLES / 'shop'},{EXAMPLES / 'env_override'}"}
    names = _bash_complete("submit", "--project", "", env=projects)
    nothing = _bash_complete("submit", "--project", "", env={"DBT_PROJECT_DIRS": "/nonexistent"})

    assert sorted(names) == ["env_override", "shop"]
    assert nothing == []


def test_show_completion_rejects_a_shell_it_has_no_script_for() -> None:
    result = dbtt("--show-completion", "ksh")

    assert result.returncode == 2
    assert result.stderr.strip() == "error: --show-completion takes one of: bash, zsh, fish; got 'ksh'"


def test_version_names_dbtt_dbt_core_the_adapters_and_temporalio() -> None:
    result = dbtt("--version")

    lines = result.stdout.splitlines()
    assert result.returncode == 0
    assert lines[:2] == [f"dbtt {metadata.version('dbtt')}", f"dbt-core {metadata.version('dbt-core')}"]
    assert lines[-1] == f"temporalio {metadata.version('temporalio')}"
    for adapter in ["dbt-duckdb", "dbt-postgres"]:  # the adapters dbtt depends on; others may be installed
        assert f"{adapter} {metadata.version(adapter)} (adapter)" in lines[2:-1]


def _commands() -> list[str]:
    listing = dbtt("--help").stdout.split("Commands:", 1)[1]
    return re.findall(r"^  (\w+)", listing, flags=re.MULTILINE)


def test_h_is_help_everywhere() -> None:
    assert dbtt("-h").stdout == dbtt("--help").stdout
    assert dbtt("submit", "-h").stdout == dbtt("submit", "--help").stdout
    assert dbtt("submit", "-h").stdout.startswith("Usage: dbtt submit [OPTIONS] [COMMAND]")


def test_help_names_every_value_readably() -> None:
    pages = {command: dbtt(command, "-h").stdout for command in _commands()}

    assert {"submit", "status", "cancel", "reset", "worker", "healthcheck"} <= pages.keys()
    for command, page in pages.items():
        assert not re.search(r"<\w|\{\w", page), f"dbtt {command} -h shows a typer placeholder:\n{page}"
    assert "Usage: dbtt cancel [OPTIONS] WORKFLOW_ID" in pages["cancel"]
    assert "Usage: dbtt status [OPTIONS] [WORKFLOW_ID]" in pages["status"]
    for shown in ["-s, --select SELECTOR", "--env KEY[=VALUE]", "--vars YAML", "--threads N", "--address HOST:PORT"]:
        assert shown in pages["submit"]
    assert "--project-dir DIR" in pages["worker"]


PROBE = """
import re, sys
sys.argv = ["dbtt", "healthcheck", "--health-file", sys.argv[1]]
from dbt_temporal.cli.entry import main
try:
    main()
except SystemExit as done:
    loaded = {name.split(".")[0] for name in sys.modules}
    heavy = loaded & {"asyncio", "dbt", "pydantic", "rich", "temporalio", "typer", "yaml"}
    # VmHWM: this process's peak resident memory (ru_maxrss would count the forking pytest's too)
    peak_kb = int(re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read()).group(1))
    print(done.code, peak_kb // 1024, *sorted(heavy))
"""


def test_healthcheck_loads_no_heavy_library(tmp_path: Path) -> None:
    """Kubernetes runs the probe every few seconds: it must stay a small, quick process."""
    health_file = tmp_path / "health"
    health_file.touch()

    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(health_file)], capture_output=True, text=True, timeout=60, check=True
    )

    exit_code, peak_mb, *heavy = done.stdout.splitlines()[-1].split()
    assert (exit_code, heavy) == ("0", [])
    assert int(peak_mb) < 30


def test_healthcheck_rejects_an_unknown_option_in_one_line() -> None:
    result = dbtt("healthcheck", "--bogus")

    assert result.returncode == 2
    assert result.stderr == "error: unrecognized arguments: --bogus; see: dbtt healthcheck -h\n"

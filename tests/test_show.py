"""`dbtt submit show` against plain `dbt show`: the same rows under the same table, for a node and a query."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from dbt_temporal.client.devserver import DevServer
from tests.support import BIN, EXAMPLES, WorkerProcess, copy_project, dbtt

INLINE = "select status, count(*) as orders from {{ ref('orders') }} group by status order by status"


def plain_dbt(project: Path, database: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "dbt"), *args, "--project-dir", str(project), "--profiles-dir", str(project)],
        capture_output=True, text=True, timeout=300, cwd=project,
        env={**os.environ, "SHOP_DUCKDB_PATH": str(database)},
    )  # fmt: skip


def preview(stdout: str, heading: str) -> list[str]:
    """The table printed under `heading`: its lines up to the first that is not a table row."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.endswith(heading)) + 1
    table = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        table.append(line)
    return table


@pytest.fixture(scope="module")
def runs(temporal: DevServer, tmp_path_factory: pytest.TempPathFactory) -> dict:
    base = tmp_path_factory.mktemp("show")
    reference = copy_project(EXAMPLES / "shop", base / "reference")
    reference_db = base / "reference.duckdb"
    assert plain_dbt(reference, reference_db, "build").returncode == 0
    expected = {
        "node": plain_dbt(reference, reference_db, "show", "-s", "orders", "--limit", "3"),
        "inline": plain_dbt(reference, reference_db, "show", "--inline", INLINE),
    }
    project = copy_project(EXAMPLES / "shop", base / "project")
    env = {"DBT_PROJECT_DIR": str(project), "SHOP_DUCKDB_PATH": str(base / "dbtt.duckdb")}
    worker = WorkerProcess(address=temporal.address, env=env).start()
    client = {"TEMPORAL_ADDRESS": worker.address, "TEMPORAL_TASK_QUEUE": worker.task_queue}
    try:
        assert dbtt("submit", "build", env=client).returncode == 0
        shown = {
            "node": dbtt("submit", "show", "-s", "orders", "--limit", "3", env=client),
            "inline": dbtt("submit", "show", "--inline", INLINE, env=client),
        }
    finally:
        worker.stop()
    return {"expected": expected, "shown": shown}


@pytest.mark.parametrize(
    ("case", "heading"), [("node", "Previewing node 'orders':"), ("inline", "Previewing inline node:")]
)
def test_show_prints_the_rows_dbt_show_prints(runs: dict, case: str, heading: str) -> None:
    shown, expected = runs["shown"][case], runs["expected"][case]

    assert shown.returncode == expected.returncode == 0, shown.stderr
    assert preview(shown.stdout, heading) == preview(expected.stdout, heading)
    assert len(preview(shown.stdout, heading)) > 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["show"], "show needs --select or --inline"),
        (["show", "-s", "orders", "--limit", "5000"], "--limit takes 0 to 1000"),
        (["show", "--inline", "select 1", "-s", "orders"], "previews its query alone"),
        (["run", "--inline", "select 1"], "--inline and --limit go with show"),
    ],
)
def test_what_show_cannot_take_is_one_line_and_exit_2(temporal: DevServer, args: list[str], message: str) -> None:
    result = dbtt("submit", *args, env={"TEMPORAL_ADDRESS": temporal.address})

    assert result.returncode == 2
    assert message in result.stderr

"""`dbtt submit run-operation MACRO --args YAML` against plain `dbt run-operation` on the same project."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from dbt_temporal.client.devserver import DevServer
from tests.support import BIN, EXAMPLES, copy_project, dbtt, shop_worker_keeping_artifacts, table_rows

MACROS = """
{% macro grant_note(role) %}
  {% do log("granting select to " ~ role, info=True) %}
  {% do run_query("create table if not exists main.grants as select '" ~ role ~ "' as role") %}
{% endmacro %}

{% macro broken_operation() %}
  {% do run_query("select * from main.no_such_table") %}
{% endmacro %}
"""


def with_macros(destination: Path) -> Path:
    project = copy_project(EXAMPLES / "shop", destination)
    (project / "macros" / "operations.sql").write_text(MACROS)
    return project


def plain_dbt(project: Path, database: Path, *args: str) -> tuple[int, dict]:
    done = subprocess.run(
        [str(BIN / "dbt"), *args, "--project-dir", str(project), "--profiles-dir", str(project)],
        capture_output=True, text=True, timeout=300, cwd=project,
        env={**os.environ, "SHOP_DUCKDB_PATH": str(database)},
    )  # fmt: skip
    results = json.loads((project / "target" / "run_results.json").read_text())
    return done.returncode, {r["unique_id"]: r["status"] for r in results["results"]}


@pytest.fixture(scope="module")
def runs(temporal: DevServer, tmp_path_factory: pytest.TempPathFactory) -> dict:
    base = tmp_path_factory.mktemp("run-operation")
    reference = with_macros(base / "reference")
    expected = {
        "grant": plain_dbt(
            reference, base / "reference.duckdb", "run-operation", "grant_note", "--args", "{role: analyst}"
        ),
        "broken": plain_dbt(reference, base / "reference.duckdb", "run-operation", "broken_operation"),
    }
    project = with_macros(base / "project")
    worker = shop_worker_keeping_artifacts(temporal.address, project, base)
    client = {"TEMPORAL_ADDRESS": worker.address, "TEMPORAL_TASK_QUEUE": worker.task_queue}
    try:
        grant_text = dbtt("submit", "run-operation", "grant_note", "--args", "{role: analyst}", env=client)
        broken = dbtt("submit", "run-operation", "shop.broken_operation", "-o", "json", env=client)
        missing = dbtt("submit", "run-operation", "no_such_macro", env=client)
        selected = dbtt("submit", "run-operation", "grant_note", "-s", "orders", env=client)
        bare = dbtt("submit", "run-operation", env=client)
    finally:
        worker.stop()
    return {
        "expected": expected,
        "grant_text": grant_text,
        "broken": broken,
        "missing": missing,
        "selected": selected,
        "bare": bare,
        "database": Path(worker.env["SHOP_DUCKDB_PATH"]),
        "reference_db": base / "reference.duckdb",
    }


def test_a_macro_runs_with_its_args_and_prints_its_log_lines(runs: dict) -> None:
    grant = runs["grant_text"]

    assert grant.returncode == runs["expected"]["grant"][0] == 0, grant.stderr
    assert "granting select to analyst" in grant.stdout
    assert "OK ran macro shop.grant_note" in grant.stdout
    assert (
        table_rows(runs["database"], "main.grants") == table_rows(runs["reference_db"], "main.grants") == [("analyst",)]
    )


def test_a_failing_macro_is_an_error_with_dbts_status_and_exit_code(runs: dict) -> None:
    broken = runs["broken"]
    report = json.loads(broken.stdout)

    assert broken.returncode == runs["expected"]["broken"][0] == 1
    statuses = {r["unique_id"]: r["dbt_status"] for r in report["node_results"]}
    assert statuses == runs["expected"]["broken"][1] == {"macro.shop.broken_operation": "error"}
    assert "no_such_table" in report["node_results"][0]["message"]
    kept = json.loads(Path(next(p for p in report["artifacts"] if p.endswith("run_results.json"))).read_text())
    assert {r["unique_id"]: r["status"] for r in kept["results"]} == runs["expected"]["broken"][1]


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing", "dbt could not find a macro with the name 'no_such_macro' in any package"),
        ("selected", "run-operation runs one macro and takes no selection"),
        ("bare", "run-operation needs the macro to run"),
    ],
)
def test_what_run_operation_cannot_take_is_one_line_and_exit_2(runs: dict, case: str, message: str) -> None:
    result = runs[case]

    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr

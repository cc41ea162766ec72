"""Slim CI: `--select state:modified+ --state last-success`, and `--defer`, on a project changed between runs.

The first run keeps its manifest in the artifact store; after one model changes, a state run
selects what plain `dbt ls` selects against that manifest (the model and its children), and a
deferred run in an empty schema, given the first run's workflow id (last-success has moved on to
the state run by then), builds the change reading its unbuilt parents from the first run's.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from dbt_temporal.client.devserver import DevServer
from tests.support import BIN, EXAMPLES, WorkerProcess, copy_project, dbtt, shop_worker_keeping_artifacts, table_rows

CHANGED = "model.shop.stg_orders"


@pytest.fixture(scope="module")
def runs(temporal: DevServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """Every run of the module through one worker; the DuckDB file is read once the worker is gone."""
    base = tmp_path_factory.mktemp("slim-ci")
    project = copy_project(EXAMPLES / "shop", base / "shop")
    profile = (project / "profiles.yml").read_text()
    (project / "profiles.yml").write_text(
        profile.replace("schema: main", "schema: \"{{ env_var('SHOP_SCHEMA', 'main') }}\"")
    )
    worker = shop_worker_keeping_artifacts(temporal.address, project, base)
    try:
        first = submit(worker, "build")
        # The change a pull request makes: one staging model's SQL.
        model = project / "models" / "staging" / "stg_orders.sql"
        model.write_text(model.read_text().replace("status\n", "status,\n    1 as changed_in_pr\n"))
        first_id = first[1]["workflow_id"]
        state = submit(worker, "build", "-s", "state:modified+", "--state", "last-success")
        # last-success is the state run by now: the first run is named by its workflow id.
        deferred = submit(
            worker, "run", "-s", "state:modified", "--state", first_id, "--defer", "--env", "SHOP_SCHEMA=pr_1"
        )
        undeferred = submit(worker, "run", "-s", "state:modified", "--state", first_id, "--env", "SHOP_SCHEMA=pr_2")
        # What failed in the latest run (the one above), re-run where its parents exist.
        failed_again = submit(worker, "run", "-s", "result:error", "--state", "last")
        cloned = submit(worker, "clone", "-s", "orders+", "--state", first_id, "--env", "SHOP_SCHEMA=pr_3")
        refused = {
            "no state": submit(worker, "build", "-s", "state:modified+", "--defer"),
            "unknown run": submit(worker, "build", "-s", "state:modified+", "--state", "no-such-run"),
        }
    finally:
        worker.stop()
    yield {
        "env": worker.env,
        "project": project,
        "first": first,
        "state": state,
        "deferred": deferred,
        "undeferred": undeferred,
        "failed_again": failed_again,
        "cloned": cloned,
        "refused": refused,
        "store_dir": base / "store" / first_id,
        "database": base / "shop.duckdb",
    }


def submit(worker: WorkerProcess, *args: str) -> tuple[int, dict, str]:
    result = dbtt(
        "submit", *args, "-o", "json",
        env={"TEMPORAL_ADDRESS": worker.address, "TEMPORAL_TASK_QUEUE": worker.task_queue},
    )  # fmt: skip
    report = json.loads(result.stdout) if result.stdout.strip() else {}
    return result.returncode, report, result.stderr


def plain_dbt_ls(project: Path, state: Path, env: dict[str, str]) -> list[str]:
    listed = subprocess.run(
        [str(BIN / "dbt"), "-q", "ls", "-s", "state:modified+", "--state", str(state), "--output", "json"]
        + ["--output-keys", "unique_id", "--project-dir", str(project), "--profiles-dir", str(project)]
        + ["--target-path", str(project.parent / "dbt-ls-target")],
        capture_output=True, text=True, timeout=120, env={**os.environ, **env},
    )  # fmt: skip
    assert listed.returncode == 0, listed.stdout + listed.stderr
    return sorted(json.loads(line)["unique_id"] for line in listed.stdout.splitlines() if line.strip())


def test_state_modified_selects_what_dbt_selects_against_the_last_success(runs: dict) -> None:
    assert runs["first"][0] == 0, runs["first"][2]
    code, report, stderr = runs["state"]

    assert code == 0, stderr
    expected = plain_dbt_ls(runs["project"], runs["store_dir"], runs["env"])
    assert CHANGED in expected and "model.shop.stg_customers" not in expected
    assert sorted(report["selected"]) == expected
    assert sorted(r["unique_id"] for r in report["node_results"]) == expected
    assert f"State: comparing with {runs['first'][1]['workflow_id']}" in Path(report["log_path"]).read_text()


def test_defer_builds_the_change_in_an_empty_schema_from_the_state_runs_parents(runs: dict) -> None:
    code, report, stderr = runs["deferred"]

    assert code == 0, stderr
    assert [r["unique_id"] for r in report["node_results"]] == [CHANGED]
    built = table_rows(runs["database"], "pr_1.stg_orders")
    assert built and all(row[-1] == 1 for row in built)
    # The state run had built the same change into main, from the same seeds.
    assert built == table_rows(runs["database"], "main.stg_orders")


def test_without_defer_the_same_run_fails_on_the_missing_parent(runs: dict) -> None:
    code, report, _ = runs["undeferred"]

    assert code == 1
    assert "raw_orders" in report["node_results"][0]["message"]


def test_clone_makes_the_state_runs_relations_in_another_schema_as_dbt_does(runs: dict) -> None:
    code, report, stderr = runs["cloned"]
    project = runs["project"]
    plain = subprocess.run(
        [str(BIN / "dbt"), "clone", "-s", "orders+", "--state", str(runs["store_dir"])]
        + ["--project-dir", str(project), "--profiles-dir", str(project)],
        capture_output=True, text=True, timeout=120, cwd=project,
        env={**os.environ, **runs["env"], "SHOP_SCHEMA": "pr_4"},
    )  # fmt: skip
    expected = json.loads((project / "target" / "run_results.json").read_text())

    assert code == plain.returncode == 0, stderr + plain.stdout
    statuses = {r["unique_id"]: r["dbt_status"] for r in report["node_results"]}
    assert statuses == {r["unique_id"]: r["status"] for r in expected["results"]}
    assert "model.shop.orders" in statuses
    database = runs["database"]
    assert table_rows(database, "pr_3.orders") == table_rows(database, "pr_4.orders") != []


def test_result_error_with_state_last_reruns_what_failed_last_time(runs: dict) -> None:
    code, report, stderr = runs["failed_again"]

    assert code == 0, stderr
    assert [(r["unique_id"], r["dbt_status"]) for r in report["node_results"]] == [(CHANGED, "success")]


@pytest.mark.parametrize(
    ("case", "message"),
    [("no state", "--defer needs --state"), ("unknown run", "--state no-such-run: the run kept no manifest.json")],
)
def test_a_state_with_nothing_to_compare_is_refused_in_one_line(runs: dict, case: str, message: str) -> None:
    code, _, stderr = runs["refused"][case]

    assert code == 2
    assert message in stderr
    assert "Traceback" not in stderr


def test_last_success_without_an_artifact_store_says_what_to_set(temporal: DevServer, tmp_path: Path) -> None:
    project = copy_project(EXAMPLES / "shop", tmp_path / "shop")
    env = {"DBT_PROJECT_DIR": str(project), "SHOP_DUCKDB_PATH": str(tmp_path / "shop.duckdb")}
    worker = WorkerProcess(address=temporal.address, env=env).start()
    try:
        code, _, stderr = submit(worker, "build", "-s", "state:modified+", "--state", "last-success")
    finally:
        worker.stop()

    assert code == 2
    assert "WRITE_ARTIFACTS=true" in stderr

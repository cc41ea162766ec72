"""`dbt build` parity on a project with one node of every kind dbt 1.11 builds on DuckDB.

Seed, view, table, ephemeral, incremental, microbatch, snapshot, Python model,
unit test, a failing warn-severity test, exposure, saved query (with its
semantic model and metric), and on-run-start / on-run-end hooks writing an
audit table. dbtt must report what plain `dbt build` reports, node for node,
in dbt's own status words, and each run must see its own invocation.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from dbt_temporal.contract import DbtRunInput, DbtRunOutput
from tests.support import TEST_PROJECTS, copy_project, dbt_build, output_of, run_and_wait, table_rows

BIG_EVENTS = "model.every_kind.big_events"
BIG_EVENTS_UNIT_TEST = "unit_test.every_kind.big_events.big_events_keeps_large_amounts"
STABLE_TABLES = ("raw_events", "stg_events", "events_incremental", "events_microbatch", "kind_totals", "big_events")


def tree_state(root: Path) -> dict[str, tuple[int, int]]:
    """Every path under `root` with its size and modification time: what 'nothing was written' means."""
    return {str(path.relative_to(root)): (path.stat().st_size, path.stat().st_mtime_ns) for path in root.rglob("*")}


def make_read_only(root: Path) -> None:
    for path in [root, *root.rglob("*")]:
        mode = path.stat().st_mode
        path.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, temporal) -> dict:  # noqa: ANN001
    """Plain `dbt build` on one copy; two dbtt builds on a read-only copy, through one worker.

    The reference and the first dbtt build run one node at a time, so that their start orders compare.
    """
    from tests.support import WorkerProcess

    base = tmp_path_factory.mktemp("parity")
    reference = copy_project(TEST_PROJECTS / "every_kind", base / "reference")
    expected = dbt_build(reference, {"EVERY_KIND_DUCKDB_PATH": str(reference / "every_kind.duckdb")}, "--threads", "1")

    project = copy_project(TEST_PROJECTS / "every_kind", base / "project")
    make_read_only(project)
    before = tree_state(project)
    database = base / "dbtt.duckdb"
    work_dir = base / "work"
    worker = WorkerProcess(
        address=temporal.address,
        env={
            "DBT_PROJECT_DIR": str(project),
            "EVERY_KIND_DUCKDB_PATH": str(database),
            "WORKER_WORK_DIR": str(work_dir),
        },
    ).start()
    try:
        first = output_of(run_and_wait(worker, DbtRunInput(threads=1)))
        second = output_of(run_and_wait(worker, DbtRunInput()))
        # What `dbtt reset` sends: exact nodes, here a model and its unit test.
        exact = output_of(run_and_wait(worker, DbtRunInput(unique_ids=[BIG_EVENTS, BIG_EVENTS_UNIT_TEST])))
    finally:
        worker.stop()  # DuckDB lets one process hold the file
    return {
        "expected": expected,
        "first": first,
        "second": second,
        "exact": exact,
        "reference_db": reference / "every_kind.duckdb",
        "database": database,
        "project": project,
        "before": before,
        "work_dir": work_dir,
    }


def statuses(output: DbtRunOutput) -> dict[str, str]:
    return {result.unique_id: result.dbt_status for result in output.node_results}


def test_every_node_kind_and_project_hook_matches_dbt_build(runs: dict) -> None:
    first: DbtRunOutput = runs["first"]
    assert statuses(first) == runs["expected"]
    assert first.success
    assert statuses(first)["exposure.every_kind.revenue_dashboard"] == "no-op"
    assert statuses(first)["saved_query.every_kind.amount_by_kind"] == "no-op"
    assert statuses(first)["operation.every_kind.every_kind-on-run-end-0"] == "success"
    # Hooks come first and last, as in run_results.json.
    assert first.node_results[0].unique_id == "operation.every_kind.every_kind-on-run-start-0"
    assert first.node_results[-1].unique_id == "operation.every_kind.every_kind-on-run-end-1"
    for table in STABLE_TABLES:
        assert table_rows(runs["database"], table) == table_rows(runs["reference_db"], table), table


def test_nodes_start_in_the_order_dbt_starts_them(runs: dict) -> None:
    """Several ready nodes start as dbt's queue takes them: by depth in the graph, then by unique_id.

    It matters beyond looks: a model that reads a table it does not declare sees it built or not.
    """
    reference = json.loads((runs["reference_db"].parent / "target" / "run_results.json").read_text())
    dbt_order = [result["unique_id"] for result in reference["results"]]
    started = sorted(runs["first"].node_results, key=lambda result: result.started_at or 0.0)
    assert [result.unique_id for result in started] == dbt_order
    # Results are listed as dbt lists them: hooks first and last, nodes in the order they finished.
    assert [result.unique_id for result in runs["first"].node_results] == dbt_order


def test_on_run_end_sees_the_results_dbt_gives_it(runs: dict) -> None:
    """What a results-uploading package (elementary, dbt_artifacts) records: status, materialization, SQL."""

    def recorded(database: Path, invocation_id: str | None = None) -> list[tuple]:
        rows = table_rows(database, "main.results_audit")
        return sorted(row[1:] for row in rows if invocation_id in (None, row[0]))

    assert recorded(runs["database"], runs["first"].invocation_id) == recorded(runs["reference_db"])


def test_the_report_has_compiled_sql_where_dbt_has(runs: dict) -> None:
    """The workflow keeps results lean; the report reads each node's and hook's SQL back from the history."""
    reference = json.loads((runs["reference_db"].parent / "target" / "run_results.json").read_text())
    expected = {result["unique_id"] for result in reference["results"] if result.get("compiled_code")}
    assert "operation.every_kind.every_kind-on-run-end-0" in expected
    assert {result.unique_id for result in runs["first"].node_results if result.compiled_code} == expected


def test_selected_lists_what_ran_or_was_skipped(runs: dict) -> None:
    first: DbtRunOutput = runs["first"]
    nodes = {uid for uid in runs["expected"] if not uid.startswith("operation.")}
    assert set(first.selected) == nodes
    assert "model.every_kind.eph_stamp" not in first.selected  # inlined into its child, never run


def test_each_run_sees_its_own_invocation_in_hooks_and_models(runs: dict) -> None:
    first, second = runs["first"], runs["second"]
    audit = table_rows(runs["database"], "main.run_audit")
    by_run = {
        output.invocation_id: sorted((row[0], row[2], row[3]) for row in audit if row[1] == output.invocation_id)
        for output in (first, second)
    }
    started = {}
    for invocation_id, rows in by_run.items():
        assert [event for event, _, _ in rows] == ["end", "start"], "one start and one end row per run"
        assert rows[0][1] == rows[1][1], "on-run-start and on-run-end see the same run_started_at"
        started[invocation_id] = rows[0][1]
    assert started[first.invocation_id] != started[second.invocation_id]
    # The end hook saw the run's results: every node of the run (hooks are not among them).
    assert {rows[0][2] for rows in by_run.values()} == {len(first.selected)}

    stamp = table_rows(runs["database"], "main.run_stamp")
    assert stamp == [(started[second.invocation_id], second.invocation_id) * 2]


def test_exact_nodes_run_a_unit_test_before_its_model(runs: dict) -> None:
    results = {result.unique_id: result for result in runs["exact"].node_results}
    assert results[BIG_EVENTS_UNIT_TEST].dbt_status == "pass"
    assert results[BIG_EVENTS].dbt_status == "success"
    assert results[BIG_EVENTS_UNIT_TEST].completed_at <= results[BIG_EVENTS].started_at


def test_project_directory_is_never_written(runs: dict) -> None:
    assert tree_state(runs["project"]) == runs["before"]
    work_dir: Path = runs["work_dir"]
    assert stat.S_IMODE(work_dir.stat().st_mode) == 0o700
    assert os.listdir(work_dir) == [], "the worker removes its sessions' files when it stops"


FAILING_START_HOOK = """
on-run-start:
  - "select * from no_such_table"
  - "select 1"
on-run-end:
  - "select 1"
"""


def test_a_failing_on_run_start_hook_is_reported_as_dbt_reports_it(tmp_path: Path, start_worker) -> None:
    """dbt 1.11: the failed hook errors, the later start hooks are skipped, nodes still run, on-run-end runs."""
    from tests.support import EXAMPLES

    reference = copy_project(EXAMPLES / "shop", tmp_path / "reference")
    project = copy_project(EXAMPLES / "shop", tmp_path / "shop")
    for copy in (reference, project):
        with (copy / "dbt_project.yml").open("a") as file:
            file.write(FAILING_START_HOOK)
    expected = dbt_build(reference, {"SHOP_DUCKDB_PATH": str(reference / "shop.duckdb")}, "-s", "stg_orders")
    worker = start_worker(project)

    output = output_of(run_and_wait(worker, DbtRunInput(select="stg_orders")))

    assert statuses(output) == expected
    assert not output.success
    hook = output.node_results[0]
    assert hook.dbt_status == "error" and "no_such_table" in (hook.message or "")


FAILING_UNIT_TEST = """
  - name: {name}
    model: stg_orders
    given:
      - input: ref('raw_orders')
        rows:
          - {{id: 1, customer_id: 1, order_date: '2026-01-01', status: placed}}
    expect:
      rows:
        - {{order_id: {wrong_id}}}
"""
# Two unit tests of one model, both wrong.
FAILING_UNIT_TESTS = "unit_tests:" + "".join(
    FAILING_UNIT_TEST.format(name=name, wrong_id=wrong_id)
    for name, wrong_id in (("keeps_every_order", 2), ("renames_the_id", 3))
)


def test_a_failing_unit_test_skips_the_models_other_unit_tests_as_dbt_does(tmp_path: Path, start_worker) -> None:
    """dbt runs a model's unit tests in turn: the first to fail stops the rest, and the model is skipped."""
    from tests.support import EXAMPLES

    reference = copy_project(EXAMPLES / "shop", tmp_path / "reference")
    project = copy_project(EXAMPLES / "shop", tmp_path / "shop")
    for copy in (reference, project):
        (copy / "models" / "staging" / "unit_tests.yml").write_text(FAILING_UNIT_TESTS)
    expected = dbt_build(reference, {"SHOP_DUCKDB_PATH": str(reference / "shop.duckdb")}, "-s", "+orders")
    worker = start_worker(project)

    output = output_of(run_and_wait(worker, DbtRunInput(select="+orders")))

    unit_tests = {uid for uid in expected if uid.startswith("unit_test.")}
    assert len(unit_tests) == 2
    # Which unit test dbt takes first is not fixed; the outcome of the pair and of every other node is.
    assert sorted(statuses(output)[uid] for uid in unit_tests) == sorted(expected[uid] for uid in unit_tests)
    assert sorted(expected[uid] for uid in unit_tests) == ["fail", "skipped"]
    others = {uid: status for uid, status in expected.items() if uid not in unit_tests}
    assert {uid: statuses(output)[uid] for uid in others} == others
    assert others["model.shop.stg_orders"] == "skipped"
    assert not output.success

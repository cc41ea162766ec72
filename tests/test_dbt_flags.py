"""dbt's run flags --warn-error, --store-failures and --empty, against plain dbt on the same project.

The every_kind project has a failing warn-severity test: `--warn-error` makes it fail and skips what
depends on it; `--store-failures` keeps its failing rows in dbt's audit schema; `--empty` builds every
model from zero-row inputs. One worker serves every run, so a run without a flag must also not see the
flag of the run before it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dbt_temporal.contract import DbtRunInput, DbtRunOutput
from tests.support import TEST_PROJECTS, WorkerProcess, copy_project, dbt_build, output_of, run_and_wait, table_rows

WARN_TEST = "test.every_kind.accepted_values_stg_events_kind__click__view.0002952235"
AUDIT_TABLE = "main_dbt_test__audit.accepted_values_stg_events_kind__click__view"
MODELS = ("stg_events", "events_incremental", "kind_totals", "big_events")


def statuses(output: DbtRunOutput) -> dict[str, str]:
    return {result.unique_id: result.dbt_status for result in output.node_results}


def row_counts(database: Path) -> dict[str, int]:
    return {table: len(table_rows(database, table)) for table in MODELS}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, temporal) -> dict:  # noqa: ANN001
    base = tmp_path_factory.mktemp("dbt-flags")
    reference = copy_project(TEST_PROJECTS / "every_kind", base / "reference")
    reference_env = {"EVERY_KIND_DUCKDB_PATH": str(reference / "every_kind.duckdb")}
    empty_reference = copy_project(TEST_PROJECTS / "every_kind", base / "empty-reference")
    empty_env = {"EVERY_KIND_DUCKDB_PATH": str(empty_reference / "every_kind.duckdb")}
    expected = {
        "strict": dbt_build(reference, reference_env, "--warn-error", "--store-failures"),
        "empty": dbt_build(empty_reference, empty_env, "--empty"),
    }
    project = copy_project(TEST_PROJECTS / "every_kind", base / "project")
    database, empty_database = base / "dbtt.duckdb", base / "dbtt-empty.duckdb"
    worker = WorkerProcess(
        address=temporal.address,
        env={"DBT_PROJECT_DIR": str(project), "EVERY_KIND_DUCKDB_PATH": str(database)},
    ).start()
    try:
        strict = output_of(run_and_wait(worker, DbtRunInput(warn_error=True, store_failures=True)))
        lenient = output_of(run_and_wait(worker, DbtRunInput()))
        # A distinct database is a distinct session: the same worker, another warm project.
        empty = output_of(
            run_and_wait(worker, DbtRunInput(empty=True, env={"EVERY_KIND_DUCKDB_PATH": str(empty_database)}))
        )
    finally:
        worker.stop()
    return {
        "expected": expected,
        "strict": strict,
        "lenient": lenient,
        "empty": empty,
        "reference_db": reference / "every_kind.duckdb",
        "empty_reference_db": empty_reference / "every_kind.duckdb",
        "database": database,
        "empty_database": empty_database,
    }


def test_warn_error_fails_a_warning_test_as_dbt_does(runs: dict) -> None:
    strict: DbtRunOutput = runs["strict"]

    assert statuses(strict) == runs["expected"]["strict"]
    assert statuses(strict)[WARN_TEST] == "fail"
    assert not strict.success


def test_store_failures_keeps_the_failing_rows_dbt_keeps(runs: dict) -> None:
    stored = table_rows(runs["database"], AUDIT_TABLE)

    assert stored and stored == table_rows(runs["reference_db"], AUDIT_TABLE)


def test_a_run_without_warn_error_on_the_same_worker_warns_again(runs: dict) -> None:
    assert statuses(runs["lenient"])[WARN_TEST] == "warn"
    assert runs["lenient"].success


def test_empty_builds_every_model_with_no_rows_as_dbt_does(runs: dict) -> None:
    assert statuses(runs["empty"]) == runs["expected"]["empty"]
    assert row_counts(runs["empty_database"]) == row_counts(runs["empty_reference_db"])
    assert set(row_counts(runs["empty_database"]).values()) == {0}


def test_flags_a_command_does_not_take_are_refused(temporal) -> None:  # noqa: ANN001
    from tests.support import dbtt

    env = {"TEMPORAL_ADDRESS": temporal.address}
    refused = {
        ("submit", "seed", "--empty"): "--empty goes with build, run, compile, snapshot",
        ("submit", "run", "--store-failures"): "--store-failures goes with build, test",
        ("submit", "--indirect-selection", "eagerly"): "--indirect-selection takes eager, cautious",
        ("submit", "--warn-error", "--warn-error-options", "{error: all}"): "contradict each other",
        ("submit", "--warn-error-options", "{errors: all}"): "has no key 'errors'",
        ("submit", "--warn-error-options", "[all]"): "takes a YAML or JSON mapping",
    }
    for args, message in refused.items():
        result = dbtt(*args, env=env)
        assert result.returncode == 2, args
        assert message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr

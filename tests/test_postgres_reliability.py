"""Retries and cancellation against a real PostgreSQL: dropped connections, long queries."""

from __future__ import annotations

from pathlib import Path

import pytest

from dbt_temporal.contract import DbtRunInput
from tests.postgres import PostgresServer
from tests.support import (
    TEST_PROJECTS,
    copy_project,
    dbtt,
    node_status_is,
    output_of,
    run_and_wait,
    start_without_waiting,
    wait_until,
)

LONG_QUERY = "select pg_sleep(600)"


@pytest.fixture
def ops_worker(tmp_path: Path, postgres: PostgresServer, database: str, start_worker):  # noqa: ANN201
    project = copy_project(TEST_PROJECTS / "pg_ops", tmp_path / "pg_ops")
    return start_worker(project, **postgres.env(database))


def long_queries(postgres: PostgresServer, database: str) -> int:
    rows = postgres.query(
        database,
        "select count(*) from pg_stat_activity where state = 'active' and query like %s and pid <> pg_backend_pid()",
        (f"%{LONG_QUERY}%",),
    )
    return rows[0][0]


def test_a_dropped_connection_is_retried_and_the_node_succeeds(
    postgres: PostgresServer, database: str, ops_worker
) -> None:
    postgres.execute(database, "create sequence public.dbtt_fault_attempts")

    output = output_of(run_and_wait(ops_worker, DbtRunInput(command="run", select="dropped_once beside")))

    assert output.success
    dropped = next(r for r in output.node_results if r.unique_id == "model.pg_ops.dropped_once")
    assert dropped.attempt == 2
    assert postgres.query(database, "select id from ops.dropped_once") == [(1,)]
    assert postgres.query(database, "select last_value from public.dbtt_fault_attempts") == [(2,)]


def test_cancelling_a_run_stops_its_warehouse_query(postgres: PostgresServer, database: str, ops_worker) -> None:
    start_without_waiting(ops_worker, DbtRunInput(command="run", select="long_query"), "pg-cancel")
    wait_until(lambda: long_queries(postgres, database) == 1, timeout=60)
    assert node_status_is(ops_worker.address, "pg-cancel", "model.pg_ops.long_query", "running")

    result = dbtt("cancel", "pg-cancel", "--output", "json", env={"TEMPORAL_ADDRESS": ops_worker.address})

    assert result.returncode == 0, result.stderr
    assert '"model.pg_ops.long_query": "cancelled"' in result.stdout
    wait_until(lambda: long_queries(postgres, database) == 0, timeout=15)
    # The worker is free again: the next run on it succeeds.
    assert output_of(run_and_wait(ops_worker, DbtRunInput(command="run", select="beside"))).success

"""A retried node never applies its data change twice: an append model, its worker killed with SIGKILL.

The node is held at a chosen point, deterministically: on DuckDB by a named pipe it reads (the test
decides when it gets data), on PostgreSQL by pg_sleep. The worker is killed there, and a new
worker finishes the run.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from dbt_temporal.contract import DbtRunInput, NodeResult
from dbt_temporal.engine.commit_markers import rerun_is_safe
from tests.postgres import PostgresServer
from tests.support import (
    TEST_PROJECTS,
    copy_project,
    dbt_build,
    output_of,
    start_without_waiting,
    table_rows,
    view_of,
    wait_until,
)

BATCH = "model.append_once.batch"
ROWS = "".join(f"{n}\n" for n in range(1, 11)).encode()


@contextmanager
def holding(fifo: Path) -> Iterator[int]:
    """Once the node opens the pipe, keep it open without data: the node waits inside its read."""
    descriptor: list[int] = []

    def reader_arrived() -> bool:
        try:
            descriptor.append(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:  # ENXIO: nobody reads it yet
            return False
        return True

    wait_until(reader_arrived, timeout=120)
    try:
        yield descriptor[0]
    finally:
        os.close(descriptor[0])  # the node reads to its end


def feed(fifo: Path, data: bytes = b"go\n") -> None:
    """Hand the node its data as soon as it reads the pipe."""
    with holding(fifo) as pipe:
        os.write(pipe, data)


def kill(worker) -> None:  # noqa: ANN001
    worker.process.send_signal(signal.SIGKILL)
    worker.process.wait(timeout=30)


def batch_result(address: str, workflow_id: str) -> NodeResult:
    output = output_of(view_of(address, workflow_id))
    assert output.success, [r.message for r in output.node_results]
    return next(r for r in output.node_results if r.unique_id == BATCH)


def test_an_append_retried_after_its_commit_is_not_applied_again_duckdb(tmp_path: Path, start_worker) -> None:
    project = copy_project(TEST_PROJECTS / "append_once", tmp_path / "append_once")
    database = tmp_path / "append.duckdb"
    rows_fifo, hook_fifo = tmp_path / "rows.fifo", tmp_path / "hook.fifo"
    os.mkfifo(rows_fifo)
    os.mkfifo(hook_fifo)
    assert dbt_build(project, {"APPEND_DUCKDB_PATH": str(database)})[BATCH] == "success"  # the empty table
    env = {"APPEND_DUCKDB_PATH": str(database), "ROWS_FIFO": str(rows_fifo), "HOOK_FIFO": str(hook_fifo)}

    # Killed after the insert committed, while the after-commit post-hook runs.
    first = start_worker(project, **env)
    start_without_waiting(first, DbtRunInput(command="run"), "after-commit")
    feed(rows_fifo, ROWS)
    with holding(hook_fifo):
        kill(first)
    second = start_worker(project, TEMPORAL_TASK_QUEUE=first.task_queue, **env)
    feed(hook_fifo)
    after_commit = batch_result(second.address, "after-commit")

    # Killed before its insert committed, while it reads its rows.
    start_without_waiting(second, DbtRunInput(command="run"), "before-commit")
    with holding(rows_fifo):
        kill(second)
    third = start_worker(project, TEMPORAL_TASK_QUEUE=first.task_queue, **env)
    feed(rows_fifo, ROWS)
    feed(hook_fifo)
    before_commit = batch_result(third.address, "before-commit")
    third.stop()

    assert (after_commit.attempt, after_commit.previously_committed) == (2, True)
    assert "already committed by attempt 1" in (after_commit.message or "")
    assert (before_commit.attempt, before_commit.previously_committed) == (2, False)
    loads = sorted(row[1] for row in table_rows(database, "batch"))
    assert len(loads) == 20 and len(set(loads)) == 2  # each run's batch exactly once
    assert table_rows(database, "hook_log") == [(1,), (1,)]  # the post-hook ran once per run, to its end


@pytest.mark.parametrize("full_refresh", [False, True])
def test_what_is_safe_to_run_twice(full_refresh: bool) -> None:
    def node(materialized: str, **config: object) -> object:
        class Config(dict):
            def __getattr__(self, name: str) -> object:
                return self.get(name)

        return type("Node", (), {"resource_type": "model", "language": "sql", "config": Config(
            materialized=materialized, **config)})()  # fmt: skip

    assert rerun_is_safe(node("table"), full_refresh)
    assert rerun_is_safe(node("view"), full_refresh)
    assert rerun_is_safe(node("incremental", incremental_strategy="merge", unique_key="id"), full_refresh)
    assert rerun_is_safe(node("incremental", unique_key="id"), full_refresh)
    assert rerun_is_safe(node("incremental", incremental_strategy="microbatch"), full_refresh)
    assert rerun_is_safe(node("incremental", incremental_strategy="append"), full_refresh) == full_refresh
    assert rerun_is_safe(node("incremental"), full_refresh) == full_refresh
    assert not rerun_is_safe(node("my_custom_materialization"), full_refresh)


def test_an_append_retried_after_its_commit_is_not_applied_again_postgres(
    tmp_path: Path, postgres: PostgresServer, database: str, start_worker
) -> None:
    project = copy_project(TEST_PROJECTS / "append_once", tmp_path / "append_once")
    env = {**postgres.env(database), "DBT_TARGET": "pg"}
    assert dbt_build(project, env, "--target", "pg")[BATCH] == "success"
    hook_rows = postgres.query(database, "select count(*) from appends.hook_log")[0][0]

    # Killed after the insert committed (its marker is visible), while the after-commit post-hook sleeps.
    first = start_worker(project, **env, HOOK_SLEEP="600")
    start_without_waiting(first, DbtRunInput(command="run"), "pg-after-commit")
    wait_until(lambda: _markers(postgres, database) == 1, timeout=120)
    kill(first)
    second = start_worker(project, TEMPORAL_TASK_QUEUE=first.task_queue, **env, MAIN_SLEEP="601")
    after_commit = batch_result(second.address, "pg-after-commit")

    # Killed before its insert committed, while its query sleeps.
    start_without_waiting(second, DbtRunInput(command="run"), "pg-before-commit")
    wait_until(lambda: _sleeping(postgres, database, "pg_sleep(601)") == 1, timeout=120)
    kill(second)
    third = start_worker(project, TEMPORAL_TASK_QUEUE=first.task_queue, **env)
    before_commit = batch_result(third.address, "pg-before-commit")

    assert (after_commit.attempt, after_commit.previously_committed) == (2, True)
    assert (before_commit.attempt, before_commit.previously_committed) == (2, False)
    assert postgres.query(database, "select count(*), count(distinct loaded_by) from appends.batch") == [(20, 2)]
    assert postgres.query(database, "select count(*) from appends.hook_log")[0][0] == hook_rows + 2


def _sleeping(postgres: PostgresServer, database: str, call: str) -> int:
    sql = "select count(*) from pg_stat_activity where state = 'active' and query like %s and pid <> pg_backend_pid()"
    return postgres.query(database, sql, (f"%{call}%",))[0][0]


def _markers(postgres: PostgresServer, database: str) -> int:
    try:
        return postgres.query(database, "select count(*) from dbtt_meta.dbtt_commits")[0][0]
    except Exception:  # noqa: BLE001 - the table appears with the first marker
        return 0

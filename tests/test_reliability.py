"""Retries, cancellation, crash recovery, graceful shutdown and reset, with real processes."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

from dbt_temporal.contract import DbtRunInput, NodeStatus
from tests.support import (
    SLOW_PYTHON_MODEL,
    TEST_PROJECTS,
    copy_project,
    dbtt,
    identity_of,
    node_status_is,
    output_of,
    run_and_wait,
    start_without_waiting,
    table_rows,
    view_of,
    wait_until,
)


def flaky_worker(tmp_path: Path, start_worker, dbt_temporal_yml: str | None = None, **env: str):  # noqa: ANN001, ANN201
    project = copy_project(TEST_PROJECTS / "flaky", tmp_path / "flaky")
    if dbt_temporal_yml is not None:
        (project / "dbt_temporal.yml").write_text(dbt_temporal_yml)
    return start_worker(
        project, FLAKY_DUCKDB_PATH=str(tmp_path / "flaky.duckdb"), FLAKY_MARKER=str(tmp_path / "failed-once"), **env
    )


def test_a_transient_error_is_retried_and_the_run_succeeds(tmp_path: Path, start_worker) -> None:
    worker = flaky_worker(tmp_path, start_worker, WORKER_LOG_FORMAT="json")

    output = output_of(run_and_wait(worker, DbtRunInput(command="run", select="flaky_once steady"), "flaky-run"))

    assert output.success
    [flaky] = [r for r in output.node_results if r.unique_id == "model.flaky.flaky_once"]
    assert flaky.status == NodeStatus.success and flaky.attempt == 2
    assert (tmp_path / "failed-once").read_text() == "failed once"
    # The worker's log: one JSON object a line, one line per event, no traceback for the retry.
    wait_until(lambda: any("run flaky-run success" in line for line in worker.lines))
    events = [json.loads(line) for line in worker.lines if line.strip()]
    messages = [event["message"] for event in events]
    assert "run flaky-run: planned run of flaky, 2 nodes (attempt 1)" in messages
    retried = [m for m in messages if m.startswith("run flaky-run: model.flaky.flaky_once failed, will retry: ")]
    assert len(retried) == 1 and "Runtime Error in model flaky_once" in retried[0]
    assert "Completing activity as failed" not in messages  # the SDK's own traceback line is dropped
    assert not any("\x1b[" in line for line in worker.lines)  # no colour codes


def test_without_commit_markers_a_python_model_is_not_retried_blindly(tmp_path: Path, start_worker) -> None:
    """A Python model may write anything: with markers off, dbtt cannot tell a retry is harmless."""
    worker = flaky_worker(tmp_path, start_worker, COMMIT_MARKERS="false")

    output = output_of(run_and_wait(worker, DbtRunInput(command="run", select="flaky_once")))

    [flaky] = [r for r in output.node_results if r.unique_id == "model.flaky.flaky_once"]
    assert flaky.status == NodeStatus.error
    assert "may have written part of its data on attempt 1 (a Python model)" in (flaky.message or "")
    assert "re-run it with `dbtt reset`" in (flaky.message or "")


def test_a_compilation_error_is_attempted_once_with_dbts_message(tmp_path: Path, start_worker) -> None:
    worker = flaky_worker(tmp_path, start_worker)

    output = output_of(run_and_wait(worker, DbtRunInput(command="run", select="compile_error")))

    [result] = output.node_results
    assert result.status == NodeStatus.error and result.attempt == 1
    assert "this model does not compile at run time" in (result.message or "")


def test_a_non_retryable_pattern_stops_retries(tmp_path: Path, start_worker) -> None:
    worker = flaky_worker(
        tmp_path, start_worker, "retry:\n  initial_interval_secs: 0.2\n  non_retryable_errors: ['reset by peer']\n"
    )

    output = output_of(run_and_wait(worker, DbtRunInput(command="run", select="flaky_once")))

    [result] = output.node_results
    assert result.status == NodeStatus.error and result.attempt == 1
    assert "connection reset by peer" in (result.message or "")


def test_an_invalid_dbt_temporal_yml_stops_the_worker_at_start(tmp_path: Path) -> None:
    project = copy_project(TEST_PROJECTS / "flaky", tmp_path / "flaky")
    (project / "dbt_temporal.yml").write_text("retry:\n  non_retryable_errors: ['(unclosed']\n")

    result = dbtt("worker", "--project-dir", str(project))

    assert result.returncode == 2
    assert "dbt_temporal.yml: key 'retry.non_retryable_errors'" in result.stderr
    assert "'(unclosed' is not a valid regular expression" in result.stderr


def crash_project(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    project = copy_project(TEST_PROJECTS / "crash", tmp_path / "crash")
    return project, {"CRASH_DUCKDB_PATH": str(tmp_path / "crash.duckdb")}


def executions(tmp_path: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for name, _ in table_rows(tmp_path / "crash.duckdb", "executions"):
        counts[name] = counts.get(name, 0) + 1
    return counts


def test_a_killed_worker_loses_no_node_and_repeats_none(tmp_path: Path, start_worker) -> None:
    project, env = crash_project(tmp_path)
    first = start_worker(project, **env)
    first_identity = identity_of(first)
    start_without_waiting(first, DbtRunInput(command="run"), "crash-run")
    wait_until(lambda: node_status_is(first.address, "crash-run", "model.crash.slow", "running"), timeout=60)

    first.process.send_signal(signal.SIGKILL)
    first.process.wait()
    second = start_worker(project, TEMPORAL_TASK_QUEUE=first.task_queue, **env)
    output = output_of(view_of(second.address, "crash-run"))

    assert output.success
    results = {r.unique_id.split(".")[-1]: r for r in output.node_results}
    assert results["first"].worker == first_identity  # finished before the crash: not run again
    assert results["slow"].worker == identity_of(second) and results["slow"].attempt == 2
    assert results["last"].worker == identity_of(second)
    second.stop()
    assert executions(tmp_path) == {"first": 1, "slow": 1, "last": 1}


def sigterm_while_slow_runs(tmp_path: Path, start_worker, workflow_id: str):  # noqa: ANN001, ANN201
    """Start the crash project's run, and stop its worker with SIGTERM while `slow` runs."""
    project, env = crash_project(tmp_path)
    first = start_worker(project, WORKER_GRACEFUL_SHUTDOWN_SECS="60", **env)
    start_without_waiting(first, DbtRunInput(command="run"), workflow_id)
    wait_until(lambda: node_status_is(first.address, workflow_id, "model.crash.slow", "running"), timeout=60)
    first.process.send_signal(signal.SIGTERM)
    assert first.process.wait(timeout=60) == 0
    return project, env, first


def test_sigterm_lets_the_running_node_finish_and_another_worker_continues(tmp_path: Path, start_worker) -> None:
    project, env, first = sigterm_while_slow_runs(tmp_path, start_worker, "graceful-run")
    second = start_worker(project, TEMPORAL_TASK_QUEUE=first.task_queue, **env)
    output = output_of(view_of(second.address, "graceful-run"))

    assert output.success
    results = {r.unique_id.split(".")[-1]: r for r in output.node_results}
    assert results["slow"].attempt == 1  # finished by the stopping worker, not restarted
    assert results["last"].worker == identity_of(second)
    second.stop()
    assert executions(tmp_path) == {"first": 1, "slow": 1, "last": 1}


def test_a_worker_on_another_project_version_refuses_the_rest_of_a_run(tmp_path: Path, start_worker) -> None:
    """A rolling deploy: the run was planned on the old project; the new worker must not mix versions."""
    project, env, first = sigterm_while_slow_runs(tmp_path, start_worker, "deploy-run")
    (project / "models" / "last.sql").write_text("select id + 2 as id from {{ ref('slow') }}\n")
    second = start_worker(project, TEMPORAL_TASK_QUEUE=first.task_queue, **env)
    output = output_of(view_of(second.address, "deploy-run"))

    assert not output.success
    last = next(r for r in output.node_results if r.unique_id == "model.crash.last")
    assert last.status == NodeStatus.error
    assert "differs from the one the run was planned on" in (last.message or "")
    second.stop()
    assert executions(tmp_path) == {"first": 1, "slow": 1}  # the new `last` never ran in the old run


def test_cancel_stops_the_run_and_marks_every_node(tmp_path: Path, start_worker) -> None:
    project, env = crash_project(tmp_path)
    store = tmp_path / "store"
    worker = start_worker(project, WRITE_ARTIFACTS="true", ARTIFACT_STORE=str(store), **env)
    start_without_waiting(worker, DbtRunInput(command="run"), "cancel-run")
    wait_until(lambda: node_status_is(worker.address, "cancel-run", "model.crash.slow", "running"), timeout=60)

    result = dbtt("cancel", "cancel-run", "--output", "json", env={"TEMPORAL_ADDRESS": worker.address})

    assert result.returncode == 0, result.stderr
    view = json.loads(result.stdout)
    assert view["status"] == "cancelled"
    assert view["node_status"] == {
        "model.crash.first": "success",
        "model.crash.slow": "cancelled",
        "model.crash.last": "cancelled",
    }
    worker.stop()  # DuckDB lets one process hold the file
    assert len(table_rows(tmp_path / "crash.duckdb", "run_ends")) == 1, "on-run-end ran once, after the cancel"
    # The cancelled run still kept its record; dbt retries its unfinished nodes like skipped ones.
    kept = json.loads((store / "cancel-run" / "run_results.json").read_text())
    statuses = {r["unique_id"]: r["status"] for r in kept["results"] if r["unique_id"].startswith("model.")}
    assert statuses == {"model.crash.first": "success", "model.crash.slow": "skipped", "model.crash.last": "skipped"}
    assert "Run cancelled." in (store / "cancel-run" / "log.txt").read_text()


def test_reset_failed_only_reruns_just_what_failed_with_the_fix_on_disk(shop: Path, start_worker) -> None:
    marts = shop / "models" / "marts"
    (marts / "broken.sql").write_text("select no_such_column from {{ ref('stg_orders') }}\n")
    (marts / "broken_child.sql").write_text("select * from {{ ref('broken') }}\n")
    worker = start_worker(shop)
    env = {"TEMPORAL_ADDRESS": worker.address, "TEMPORAL_TASK_QUEUE": worker.task_queue}
    assert not output_of(run_and_wait(worker, DbtRunInput(), workflow_id="to-reset")).success

    # The fix is saved in the project the worker serves; the same worker picks it up, unrestarted.
    (marts / "broken.sql").write_text("select order_id from {{ ref('stg_orders') }}\n")
    result = dbtt("retry", "to-reset", "--output", "json", env=env)  # dbt's name for `dbtt reset`

    assert result.returncode == 0, result.stderr
    output = json.loads(result.stdout)
    assert output["success"] is True
    assert sorted(r["unique_id"] for r in output["node_results"]) == ["model.shop.broken", "model.shop.broken_child"]
    assert all(r["worker"] == identity_of(worker) for r in output["node_results"])
    assert (
        "select order_id"
        in next(r for r in output["node_results"] if r["unique_id"] == "model.shop.broken")["compiled_code"]
    )


def test_an_edit_reaches_the_next_run_while_a_planned_run_keeps_its_version(tmp_path: Path, start_worker) -> None:
    project, env = crash_project(tmp_path)
    worker = start_worker(project, **env)
    start_without_waiting(worker, DbtRunInput(command="run"), "before-edit")
    wait_until(lambda: node_status_is(worker.address, "before-edit", "model.crash.slow", "running"), timeout=60)

    (project / "models" / "last.sql").write_text("select id + 2 as id from {{ ref('slow') }}\n")
    after = run_and_wait(worker, DbtRunInput(command="compile", select="last"), workflow_id="after-edit")
    before = view_of(worker.address, "before-edit")

    assert output_of(before).success  # its `last` ran on the manifest it was planned on
    assert "id + 1" in _compiled(before, "model.crash.last")
    assert output_of(after).success
    assert "id + 2" in _compiled(after, "model.crash.last")
    assert any(line.startswith("project changed; re-parsed in ") for line in after.log)
    assert not any(line.startswith("project changed") for line in before.log)


def _compiled(view, unique_id: str) -> str:  # noqa: ANN001
    return next(r for r in output_of(view).node_results if r.unique_id == unique_id).compiled_code or ""


def test_reset_from_start_runs_the_whole_run_again(shop: Path, start_worker) -> None:
    worker = start_worker(shop)
    env = {"TEMPORAL_ADDRESS": worker.address, "TEMPORAL_TASK_QUEUE": worker.task_queue}
    first = output_of(run_and_wait(worker, DbtRunInput(select="+orders"), workflow_id="from-start"))

    result = dbtt("reset", "from-start", "--from-start", "--output", "json", env=env)

    assert result.returncode == 0, result.stderr
    again = json.loads(result.stdout)
    assert again["success"] is True
    assert sorted(r["unique_id"] for r in again["node_results"]) == sorted(r.unique_id for r in first.node_results)
    assert again["invocation_id"] != first.invocation_id


def test_reset_of_an_unknown_run_exits_2(temporal) -> None:  # noqa: ANN001
    result = dbtt("reset", "never-ran", env={"TEMPORAL_ADDRESS": temporal.address})

    assert result.returncode == 2
    assert "no run with workflow id 'never-ran'" in result.stderr


def test_cancel_interrupts_a_long_duckdb_query(tmp_path: Path, start_worker) -> None:
    worker = flaky_worker(tmp_path, start_worker)
    start_without_waiting(worker, DbtRunInput(command="run", select="endless"), "duckdb-cancel")
    wait_until(lambda: node_status_is(worker.address, "duckdb-cancel", "model.flaky.endless", "running"), timeout=60)
    env = {"TEMPORAL_ADDRESS": worker.address, "TEMPORAL_TASK_QUEUE": worker.task_queue}
    still_running = dbtt("status", "duckdb-cancel", env=env)
    assert still_running.returncode == 0 and "START sql table model main.endless" in still_running.stdout
    duplicate = dbtt("submit", "run", "--workflow-id", "duckdb-cancel", env=env)
    assert duplicate.returncode == 2 and "a run with workflow id 'duckdb-cancel' already exists" in duplicate.stderr
    cancelled_at = time.monotonic()

    result = dbtt("cancel", "duckdb-cancel", "--output", "json", env={"TEMPORAL_ADDRESS": worker.address})

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["node_status"] == {"model.flaky.endless": "cancelled"}
    # Without the interrupt the query would run for minutes and the worker would give up on it
    # only after its 30 s grace; interrupted, the node stops as soon as the cancellation arrives.
    assert time.monotonic() - cancelled_at < 25
    assert output_of(run_and_wait(worker, DbtRunInput(command="run", select="steady"))).success


def test_a_node_of_a_run_reset_from_the_temporal_ui_stops(shop: Path, start_worker) -> None:
    (shop / "models" / "slow.py").write_text(SLOW_PYTHON_MODEL)
    worker = start_worker(shop, SHOP_SLOW_SECONDS="15")
    start_without_waiting(worker, DbtRunInput(command="run", select="slow"), "reset-running")
    wait_until(lambda: node_status_is(worker.address, "reset-running", "model.shop.slow", "running"), timeout=60)

    reset_to_first_task(worker.address, "reset-running")

    # The node's heartbeat finds its run gone, and the run that replaced it did not inherit the
    # node (only a handover does that): the node stops instead of running on beside its rerun.
    stopped = "run reset-running: model.shop.slow stopped, its workflow run has ended"
    wait_until(lambda: any(stopped in line for line in worker.lines), timeout=40)
    terminate(worker.address, "reset-running")


def reset_to_first_task(address: str, workflow_id: str) -> None:
    """What the Temporal UI's Reset does: a new run from the first workflow task; the old one ends."""
    import asyncio
    import uuid

    from temporalio.api.common.v1 import WorkflowExecution
    from temporalio.api.enums.v1 import EventType
    from temporalio.api.workflowservice.v1 import ResetWorkflowExecutionRequest
    from temporalio.client import Client

    async def main() -> None:
        client = await Client.connect(address)
        handle = client.get_workflow_handle(workflow_id)
        first_task = next(
            event.event_id
            for event in (await handle.fetch_history()).events
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
        )
        await client.workflow_service.reset_workflow_execution(
            ResetWorkflowExecutionRequest(
                namespace=client.namespace,
                workflow_execution=WorkflowExecution(workflow_id=workflow_id),
                reason="test",
                workflow_task_finish_event_id=first_task,
                request_id=str(uuid.uuid4()),
            )
        )

    asyncio.run(main())


def test_a_node_of_a_terminated_run_stops_its_query(tmp_path: Path, start_worker) -> None:
    worker = flaky_worker(tmp_path, start_worker)
    start_without_waiting(worker, DbtRunInput(command="run", select="endless"), "terminated")
    wait_until(lambda: node_status_is(worker.address, "terminated", "model.flaky.endless", "running"), timeout=60)

    terminate(worker.address, "terminated")

    stopped = "run terminated: model.flaky.endless stopped, its workflow run has ended"
    wait_until(lambda: any(stopped in line for line in worker.lines), timeout=40)
    assert output_of(run_and_wait(worker, DbtRunInput(command="run", select="steady"))).success


def terminate(address: str, workflow_id: str, missing_ok: bool = False) -> None:
    import asyncio

    from temporalio.client import Client
    from temporalio.service import RPCError

    async def main() -> None:
        client = await Client.connect(address)
        try:
            await client.get_workflow_handle(workflow_id).terminate("test")
        except RPCError:
            if not missing_ok:
                raise

    asyncio.run(main())

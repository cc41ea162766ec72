"""Worker versioning: a run started on one dbtt/project version finishes there while a new one rolls out."""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from pathlib import Path

from temporalio.api.enums.v1 import VersioningBehavior
from temporalio.client import Client

from dbt_temporal.client.devserver import temporal_binary
from dbt_temporal.contract import DbtRunInput, NodeResult
from tests.support import (
    TEST_PROJECTS,
    copy_project,
    identity_of,
    node_status_is,
    output_of,
    run_and_wait,
    start_without_waiting,
    view_of,
    wait_until,
)


def _set_current_version(address: str, deployment: str, build_id: str) -> bool:
    """What an operator runs once the new version's workers are up (false until the server has seen them)."""
    result = subprocess.run(
        [temporal_binary(), "worker", "deployment", "set-current-version", "--address", address]
        + ["--deployment-name", deployment, "--build-id", build_id, "--yes"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result.returncode == 0


def test_a_pinned_run_finishes_on_its_version_while_new_runs_use_the_next(tmp_path: Path, start_worker) -> None:
    deployment = f"dbtt-test-{uuid.uuid4().hex[:6]}"
    v1 = copy_project(TEST_PROJECTS / "crash", tmp_path / "v1")
    old = start_worker(
        v1, WORKER_DEPLOYMENT_NAME=deployment, WORKER_BUILD_ID="v1", CRASH_DUCKDB_PATH=str(tmp_path / "v1.duckdb")
    )
    wait_until(lambda: _set_current_version(old.address, deployment, "v1"), timeout=60, interval=1)
    start_without_waiting(old, DbtRunInput(command="run"), "pinned-run")
    wait_until(lambda: node_status_is(old.address, "pinned-run", "model.crash.slow", "running"), timeout=60)

    v2 = copy_project(TEST_PROJECTS / "crash", tmp_path / "v2")
    (v2 / "models" / "last.sql").write_text("select id + 2 as id from {{ ref('slow') }}\n")  # another manifest
    new = start_worker(
        v2,
        TEMPORAL_TASK_QUEUE=old.task_queue,
        WORKER_DEPLOYMENT_NAME=deployment,
        WORKER_BUILD_ID="v2",
        CRASH_DUCKDB_PATH=str(tmp_path / "v2.duckdb"),
    )
    wait_until(lambda: _set_current_version(new.address, deployment, "v2"), timeout=60, interval=1)

    pinned = output_of(view_of(old.address, "pinned-run"))
    assert pinned.success, [r.message for r in pinned.node_results]
    assert _workers(pinned.node_results) == {identity_of(old)}  # never mixed with v2
    assert _pinned_build(old.address, "pinned-run") == "v1"  # Temporal itself kept the run on v1

    later = output_of(run_and_wait(new, DbtRunInput(command="run", select="first")))
    assert later.success
    assert _workers(later.node_results) == {identity_of(new)}


def _pinned_build(address: str, workflow_id: str) -> str | None:
    async def main() -> str | None:
        client = await Client.connect(address)
        described = await client.get_workflow_handle(workflow_id).describe()
        versioning = described.raw_description.workflow_execution_info.versioning_info
        if versioning.behavior != VersioningBehavior.VERSIONING_BEHAVIOR_PINNED:
            return None
        return versioning.deployment_version.build_id

    return asyncio.run(main())


def _workers(results: list[NodeResult]) -> set[str | None]:
    """Who ran the nodes (project hooks run in the run's own hook activity and name no worker)."""
    return {r.worker for r in results if not r.unique_id.startswith("operation.")}

"""Helpers for tests that drive real processes: a worker, the CLI, dbt itself."""

from __future__ import annotations

import asyncio
import json
import os
import queue
import shutil
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
from temporalio.client import Client, WorkflowFailureError

from dbt_temporal.client.codec import data_converter
from dbt_temporal.client.runs import RunView, fetch_view, start_run
from dbt_temporal.config.settings import Settings
from dbt_temporal.contract import DbtRunInput, DbtRunOutput, RunState

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
TEST_PROJECTS = Path(__file__).resolve().parent / "projects"
BIN = Path(sys.executable).parent
WORKER_READY_SECONDS = 120


def copy_project(source: Path, destination: Path) -> Path:
    shutil.copytree(source, destination, ignore=shutil.ignore_patterns("target", "logs", "*.duckdb*"))
    return destination


@dataclass
class WorkerProcess:
    """A real `dbtt worker` subprocess on its own task queue."""

    address: str
    env: dict[str, str]
    task_queue: str = field(default_factory=lambda: f"test-{uuid.uuid4().hex[:8]}")
    process: subprocess.Popen[str] | None = None
    lines: list[str] = field(default_factory=list)

    def start(self) -> WorkerProcess:
        env = {**os.environ, **self.env, "TEMPORAL_ADDRESS": self.address, "TEMPORAL_TASK_QUEUE": self.task_queue}
        self.process = subprocess.Popen(
            [str(BIN / "dbtt"), "worker"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        ready: queue.Queue[str] = queue.Queue()

        def pump() -> None:
            assert self.process and self.process.stdout
            for line in self.process.stdout:
                self.lines.append(line)
                if "ready: polling" in line:
                    ready.put(line)

        threading.Thread(target=pump, daemon=True).start()
        try:
            ready.get(timeout=WORKER_READY_SECONDS)
        except queue.Empty:
            self.stop()
            raise AssertionError("worker did not become ready:\n" + "".join(self.lines)) from None
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    @property
    def settings(self) -> Settings:
        return Settings(temporal_address=self.address, temporal_task_queue=self.task_queue)


async def _connect(address: str) -> Client:
    return await Client.connect(address, data_converter=data_converter)


def shop_worker_keeping_artifacts(address: str, project: Path, base: Path) -> WorkerProcess:
    """A started worker for a copy of the shop example whose runs keep dbt's artifacts under `base`."""
    env = {
        "DBT_PROJECT_DIR": str(project),
        "SHOP_DUCKDB_PATH": str(base / "shop.duckdb"),
        "WRITE_ARTIFACTS": "true",
        "ARTIFACT_STORE": str(base / "store"),
    }
    return WorkerProcess(address=address, env=env).start()


def run_and_wait(worker: WorkerProcess, run: DbtRunInput, workflow_id: str | None = None) -> RunView:
    """Start a run on the worker's queue and return its final view (what `dbtt status` shows)."""
    workflow_id = workflow_id or f"test-{uuid.uuid4().hex[:10]}"
    start_without_waiting(worker, run, workflow_id)
    return view_of(worker.address, workflow_id)


def memo_of(address: str, workflow_id: str) -> dict:
    async def main() -> dict:
        client = await _connect(address)
        description = await client.get_workflow_handle(workflow_id).describe()
        return await description.memo()

    return asyncio.run(main())


def dbtt(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """The real CLI, as a user runs it."""
    return subprocess.run(
        [str(BIN / "dbtt"), *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def dbt_build(project: Path, env: dict[str, str], *args: str) -> dict[str, str]:
    """Plain `dbt build` on a project copy; returns unique_id -> dbt status from run_results.json."""
    subprocess.run(
        [str(BIN / "dbt"), "build", "--project-dir", str(project), "--profiles-dir", str(project), *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=600,
        cwd=project,
    )
    results = json.loads((project / "target" / "run_results.json").read_text())
    return {r["unique_id"]: r["status"] for r in results["results"]}


def table_rows(database: Path, table: str) -> list[tuple]:
    with duckdb.connect(str(database), read_only=True) as connection:
        return sorted(connection.execute(f"select * from {table}").fetchall(), key=repr)


def wait_until(condition, timeout: float = 60, interval: float = 0.1) -> None:  # noqa: ANN001
    """Poll a condition until it holds; fail with a clear message otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise AssertionError("condition not met within timeout")


def output_of(view: RunView) -> DbtRunOutput:
    assert view.output is not None, f"run has no output: {view.error}"
    return view.output


def start_without_waiting(worker: WorkerProcess, run: DbtRunInput, workflow_id: str) -> None:
    async def main() -> None:
        client = await _connect(worker.address)
        await start_run(client, worker.settings, run, workflow_id)

    asyncio.run(main())


def view_of(address: str, workflow_id: str, wait: bool = True) -> RunView:
    """The run's view as `dbtt status` shows it, after it ends when `wait` is set."""

    async def main() -> RunView:
        client = await _connect(address)
        handle = client.get_workflow_handle(workflow_id, result_type=DbtRunOutput)
        if wait:
            try:
                await handle.result()
            except WorkflowFailureError:
                pass
        return await fetch_view(client, handle)

    return asyncio.run(main())


def node_status_is(address: str, workflow_id: str, unique_id: str, status: str) -> bool:
    try:
        return memo_of(address, workflow_id).get("node_status", {}).get(unique_id) == status
    except Exception:  # noqa: BLE001 - the run may not exist yet
        return False


def identity_of(worker: WorkerProcess) -> str:
    """The `pid@hostname` a worker stamps on the nodes it ran."""
    import socket

    assert worker.process is not None
    return f"{worker.process.pid}@{socket.gethostname()}"


def query_status(address: str, workflow_id: str) -> RunState:
    """The workflow's `status` query (answered by a worker, from the run's live state)."""

    async def main() -> RunState:
        client = await _connect(address)
        return await client.get_workflow_handle(workflow_id).query("status", result_type=RunState)

    return asyncio.run(main())


def search_attributes_of(address: str, workflow_id: str) -> dict[str, object]:
    async def main() -> dict[str, object]:
        client = await _connect(address)
        description = await client.get_workflow_handle(workflow_id).describe()
        return {pair.key.name: pair.value for pair in description.typed_search_attributes}

    return asyncio.run(main())


# A Python model that sleeps SHOP_SLOW_SECONDS (an env var of the worker): a node that runs a while.
SLOW_PYTHON_MODEL = """import os
import time


def model(dbt, session):
    time.sleep(float(os.environ["SHOP_SLOW_SECONDS"]))
    return session.sql("select 1 as id")
"""

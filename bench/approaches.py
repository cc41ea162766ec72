"""The measured ways of running one project: plain dbt, dbtt (warm and cold), per-node dbt.

Each function gets a private copy of the project (DuckDB allows one writing
process per file) and returns wall times plus whatever the report needs.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client

from bench.dag import BuildDag
from bench.metrics import peak_memory_mb
from bench.project import DUCKDB_ENV, database_of
from dbt_temporal.client.codec import data_converter
from dbt_temporal.client.runs import fetch_view, start_run
from dbt_temporal.contract import DbtRunInput, DbtRunOutput
from tests.support import BIN, WorkerProcess

# A run that has not finished by then is terminated and reported (e.g. a workflow task failing forever).
RUN_TIMEOUT_SECONDS = float(os.environ.get("BENCH_RUN_TIMEOUT", "1800"))
# No usage statistics and no version check: the benchmark never touches the network.
QUIET_DBT = {"DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DBT_VERSION_CHECK": "false"}


def project_env(project: Path) -> dict[str, str]:
    return {**QUIET_DBT, DUCKDB_ENV: str(database_of(project))}


def _dbt_args(project: Path, threads: int | None, profiles_dir: Path | None = None) -> list[str]:
    """Project and profiles flags; `threads` None keeps the profile's own."""
    args = ["--project-dir", str(project), "--profiles-dir", str(profiles_dir or project)]
    return args + (["--threads", str(threads)] if threads else [])


# ---------------------------------------------------------------- plain dbt build


@dataclass
class DbtBuild:
    wall_seconds: float
    ok: bool
    elapsed_seconds: float  # dbt's own elapsed_time from run_results.json (after parsing)
    execution_times: dict[str, float]


def dbt_build(
    project: Path, threads: int | None, extra: Sequence[str] = (), profiles_dir: Path | None = None
) -> DbtBuild:
    """`dbt build` (or the command `extra` starts with) as a user runs it: a fresh process on a project copy."""
    command = list(extra) or ["build"]
    started = time.perf_counter()
    with open(project / "bench-dbt.log", "w") as log:
        completed = subprocess.run(
            [str(BIN / "dbt"), *command, *_dbt_args(project, threads, profiles_dir)],
            env={**os.environ, **project_env(project)},
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=project,
        )
    wall = time.perf_counter() - started
    run_results = project / "target" / "run_results.json"
    # Missing when dbt stopped before running a node (e.g. a parse error); its log says why.
    results = json.loads(run_results.read_text()) if run_results.is_file() else {"results": []}
    return DbtBuild(
        wall_seconds=wall,
        ok=completed.returncode == 0,
        elapsed_seconds=results.get("elapsed_time", 0.0),
        execution_times={r["unique_id"]: r["execution_time"] for r in results["results"]},
    )


def dbt_parse(project: Path) -> None:
    """`dbt parse`: only writes target/manifest.json, for runs that skip the baseline."""
    subprocess.run(
        [str(BIN / "dbt"), "parse", "--project-dir", str(project), "--profiles-dir", str(project)],
        env={**os.environ, **project_env(project)},
        capture_output=True,
        cwd=project,
        check=True,
    )


# ---------------------------------------------------------------- dbtt


@dataclass
class DbttRun:
    wall_seconds: float  # submit -> result, client side
    worker_ready_seconds: float  # process spawn -> "ready: polling"
    output: DbtRunOutput | None
    error: str | None
    events: list[HistoryEvent] = field(default_factory=list)
    worker_peak_mb: float | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.output is not None and self.output.success


async def submit(worker: WorkerProcess, run: DbtRunInput) -> tuple[float, DbtRunOutput | None, str | None, list]:
    """Start a run, wait for its end; returns wall seconds, output, error and the history events."""
    client = await Client.connect(worker.address, data_converter=data_converter)
    started = time.perf_counter()
    handle = await start_run(client, worker.settings, run, f"bench-{uuid.uuid4().hex[:10]}")
    error: str | None = None
    output: DbtRunOutput | None = None
    try:
        output = await asyncio.wait_for(handle.result(), RUN_TIMEOUT_SECONDS)
    except TimeoutError:
        await handle.terminate("benchmark run timeout")
        error = f"terminated after {RUN_TIMEOUT_SECONDS:.0f}s (BENCH_RUN_TIMEOUT)"
    except Exception:  # noqa: BLE001 - a failed run is a result to report
        view = await fetch_view(client, handle)
        output, error = view.output, f"{view.status}: {view.error}"
    wall = time.perf_counter() - started
    return wall, output, error, await _history_of_every_run(client, handle.id, handle.result_run_id)


async def _history_of_every_run(client: Client, workflow_id: str, first_run_id: str | None) -> list[HistoryEvent]:
    """The events of the first run and of every run it continued as, in order."""
    events: list[HistoryEvent] = []
    run_id = first_run_id
    while run_id:
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        events += history.events
        last = history.events[-1] if history.events else None
        handover = last.workflow_execution_continued_as_new_event_attributes if last else None
        run_id = handover.new_execution_run_id if handover else None
    return events


def start_worker(address: str, project: Path, env: dict[str, str] | None = None) -> tuple[WorkerProcess, float]:
    started = time.perf_counter()
    env = {"DBT_PROJECT_DIR": str(project), **project_env(project), **(env or {})}
    worker = WorkerProcess(address=address, env=env).start()
    return worker, time.perf_counter() - started


def dbtt_run(
    address: str,
    project: Path,
    threads: int,
    warm: bool,
    profile_to: Path | None = None,
    after_events: int | None = None,
) -> DbttRun:
    """A `build` through Temporal and a real `dbtt worker`.

    warm: the worker is started and has served a plan-only run (`ls`) before the timed run.
    cold: the timed figure is worker start-up plus the run (`wall_seconds` stays the run alone).
    after_events: the run's continue_as_new_after_events (a low one forces handovers).
    """
    build = DbtRunInput(command="build", threads=threads)
    if after_events is not None:
        build.continue_as_new_after_events = after_events
    worker, ready = start_worker(address, project)
    assert worker.process is not None
    try:
        if warm:
            asyncio.run(submit(worker, DbtRunInput(command="ls")))
        profiler = _start_py_spy(worker.process.pid, profile_to) if profile_to else None
        wall, output, error, events = asyncio.run(submit(worker, build))
        if profiler:
            _stop(profiler)
        peak = peak_memory_mb(worker.process.pid)
    finally:
        worker.stop()
    return DbttRun(wall, ready, output, error, events, peak)


def _start_py_spy(pid: int, destination: Path) -> subprocess.Popen[bytes]:
    destination.parent.mkdir(parents=True, exist_ok=True)
    command = [str(BIN / "py-spy"), "record", "--pid", str(pid), "--format", "raw", "--rate", "200"]
    return subprocess.Popen([*command, "--output", str(destination)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# ---------------------------------------------------------------- per-node dbt


@dataclass
class PerNode:
    """One dbt invocation per node, serially in dependency order (DuckDB: one writing process)."""

    seconds: list[float]  # per node
    total_nodes: int
    setup_seconds: float = 0.0  # one-off cost (dbtRunner: parsing the manifest once)
    failed: list[str] = field(default_factory=list)

    @property
    def sampled(self) -> bool:
        return len(self.seconds) < self.total_nodes

    @property
    def serial_seconds(self) -> float:
        """Measured when every node ran; else the sample's mean times the node count."""
        mean = sum(self.seconds) / max(1, len(self.seconds))
        return self.setup_seconds + (sum(self.seconds) if not self.sampled else mean * self.total_nodes)


def _node_names(dag: BuildDag, limit: int) -> list[str]:
    return [dag.names[uid] for uid in dag.order()[:limit]]


def per_node_subprocess(project: Path, dag: BuildDag, limit: int) -> PerNode:
    """`dbt build -s <node>` in a new process per node, as per-node orchestrator integrations do."""
    seconds: list[float] = []
    failed: list[str] = []
    for name in _node_names(dag, limit):
        started = time.perf_counter()
        completed = subprocess.run(
            [str(BIN / "dbt"), "build", "-s", name, "--indirect-selection", "empty", *_dbt_args(project, 1)],
            env={**os.environ, **project_env(project)},
            capture_output=True,
            cwd=project,
        )
        seconds.append(time.perf_counter() - started)
        if completed.returncode != 0:
            failed.append(name)
    return PerNode(seconds=seconds, total_nodes=len(dag.names), failed=failed)


def per_node_dbt_runner(project: Path, dag: BuildDag, limit: int) -> PerNode:
    """`dbtRunner(manifest=...).invoke(["build", "-s", node])` per node, in a helper process."""
    completed = subprocess.run(
        [sys.executable, "-m", "bench.invoke_nodes", str(project), "1"],
        input=json.dumps(_node_names(dag, limit)),
        env={**os.environ, **project_env(project)},
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
        check=True,
    )
    report = json.loads(completed.stdout)
    return PerNode(
        seconds=report["seconds"],
        total_nodes=len(dag.names),
        setup_seconds=report["parse_seconds"],
        failed=report["failed"],
    )

"""Assembling and running the worker: projects, warm sessions, workflow and activities."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from typing import TYPE_CHECKING

from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from dbt_temporal.config.projects import discover_projects
from dbt_temporal.config.settings import WorkerSettings
from dbt_temporal.contract import SessionSpec
from dbt_temporal.worker import health
from dbt_temporal.worker.tuning import node_threads, worker_options
from dbt_temporal.workflow.dbt_run import DbtRunWorkflow

if TYPE_CHECKING:
    from dbt_temporal.engine.pool import SessionPool
    from dbt_temporal.worker.project_sources import ProjectSources

log = logging.getLogger("dbtt.worker")


def quiet_dbt_events() -> None:
    """dbt's own console logger would print every event of every run; the run log covers them.

    Without a logger, most events are read by no one: they are no longer even built (lazy_events);
    statements that return no rows share one empty result table (empty_table).
    """
    from dbt_common.events.event_manager_client import cleanup_event_logger

    from dbt_temporal.engine import empty_table, lazy_events

    cleanup_event_logger()
    lazy_events.install()
    empty_table.install()


NODE_THREAD_SWITCH_SECONDS = 0.0005


async def run_worker(
    client: Client, settings: WorkerSettings, stop: asyncio.Event, sources: ProjectSources | None = None
) -> None:
    """Serve runs until `stop` is set; each project is parsed once, up front.

    On stop the worker stops polling and lets running nodes finish (within
    WORKER_GRACEFUL_SHUTDOWN_SECS, 300 s by default, after which they are cancelled).

    Workflow tasks run in this process too. A process of their own was
    measured (bench, 500 nodes): their tasks got shorter (7 ms against 10 ms),
    but each node's dispatch got longer (14 ms against 10 ms), since the
    server can no longer hand a scheduled node straight to the worker that
    scheduled it (eager activity start); the per-node median stayed at 24 ms
    and the whole run was slower.
    """
    from dbt_temporal.engine.commit_markers import MarkerSettings
    from dbt_temporal.engine.pool import SessionPool
    from dbt_temporal.worker.activities import DbtActivities
    from dbt_temporal.worker.artifacts import artifact_options

    projects = discover_projects(settings)
    quiet_dbt_events()
    # Node threads hold the interpreter lock for up to the switch interval at a time (5 ms by
    # default); the event loop that reports results and heartbeats waits behind every one of them.
    sys.setswitchinterval(NODE_THREAD_SWITCH_SECONDS)
    pool = SessionPool(projects, settings.work_root, settings.dbt_target, max_sessions=settings.worker_max_sessions)
    activities = DbtActivities(
        pool,
        threads=node_threads(settings),
        static_search_attributes=settings.temporal_search_attributes,
        registered_search_attributes=await _registered_search_attributes(client, settings),
        artifacts=artifact_options(settings),
        sources=sources,
        markers=MarkerSettings(settings.commit_markers, settings.commit_marker_schema, settings.commit_marker_table),
    )
    background: list[asyncio.Task[None]] = []
    try:
        for name in projects:
            await _warm(pool, name)
        worker = Worker(
            client,
            task_queue=settings.temporal_task_queue,
            workflows=[DbtRunWorkflow],
            # Outside the SDK's sandbox: in it, every payload of every workflow task looks up its
            # serialization context through the sandbox, which tripled the worker's time per task
            # (replaying a 2,000-node run: 3.0 s of CPU against 1.2 s). The workflow code imports
            # nothing but pure modules and holds no global state; the tests run it in the sandbox
            # (tests/test_workflow_logic.py) and replay recorded histories to keep it deterministic.
            workflow_runner=UnsandboxedWorkflowRunner(),
            activities=[
                activities.plan_project,
                activities.project_hooks,
                activities.execute_node,
                activities.store_artifacts,
            ],
            **worker_options(settings),
        )
        async with worker:
            background = await _start_health(client, worker, settings)
            log.info(
                "ready: polling %s/%s for %s",
                settings.temporal_namespace,
                settings.temporal_task_queue,
                ", ".join(sorted(projects)),
            )
            await stop.wait()
            log.info("stopping: no new work is taken; running nodes finish first")
    finally:
        for task in background:
            task.cancel()
        activities.close()


async def _registered_search_attributes(client: Client, settings: WorkerSettings) -> set[str]:
    """Custom search attributes the namespace knows; runs set only these, and the worker says which not."""
    from temporalio.api.enums.v1 import IndexedValueType
    from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
    from temporalio.service import RPCError

    try:
        response = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=settings.temporal_namespace)
        )
    except RPCError as err:
        log.warning("cannot list search attributes (%s); runs will set none", err.message)
        return set()
    keyword = IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
    registered = {name for name, kind in response.custom_attributes.items() if kind == keyword}
    missing = sorted(set(settings.temporal_search_attributes) - registered)
    if missing:
        log.warning(
            "TEMPORAL_SEARCH_ATTRIBUTES names %s, not registered as Keyword on namespace %s; runs leave them out",
            ", ".join(missing),
            settings.temporal_namespace,
        )
    return registered


async def _start_health(client: Client, worker: Worker, settings: WorkerSettings) -> list[asyncio.Task[None]]:
    path = settings.worker_health_file
    if path is None:
        return []
    tasks = [asyncio.create_task(health.keep_fresh(client, lambda: worker.is_running, path))]
    if settings.health_port is not None:
        server = await health.serve(settings.health_host, settings.health_port, path)
        tasks.append(asyncio.create_task(_serve_forever(server)))
        log.info("health endpoint on http://%s:%d/health, file %s", settings.health_host, settings.health_port, path)
    return tasks


async def _serve_forever(server: asyncio.Server) -> None:
    with contextlib.suppress(asyncio.CancelledError):
        async with server:
            await server.serve_forever()


async def _warm(pool: SessionPool, project: str) -> None:
    """Parse the project's default session now, so the first run starts warm.

    A failure here is not fatal: a profile may need env values that only runs supply.
    """
    try:
        session = await asyncio.to_thread(pool.get, SessionSpec(project=project))
        log.info("parsed %s in %.2fs", project, session.parse_seconds)
    except Exception as err:  # noqa: BLE001 - reported, and retried by the first run
        log.warning("could not parse %s at start (%s); runs will retry", project, str(err).splitlines()[0])

"""Temporal activities: planning and running nodes on the worker's warm sessions.

dbt is synchronous; each activity hands its work to the worker's node thread
pool and heartbeats while it waits, so a dead worker is noticed quickly and a
cancellation reaches the node, whose warehouse query is then cancelled too.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import socket
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TypeVar

from dbt_common.exceptions import DbtBaseException
from temporalio import activity
from temporalio.client import WorkflowQueryFailedError
from temporalio.common import RawValue
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from dbt_temporal.artifact_store import StoreError, StoreMisconfigured
from dbt_temporal.client.node_details import read_node_details, with_details
from dbt_temporal.contract import (
    DOCS_COMMAND,
    LISTING_COMMANDS,
    NO_SCHEMA_COMMANDS,
    PLAN_ACTIVITY,
    PROJECT_HOOKS_ACTIVITY,
    SESSION_QUERY,
    STATUS_ATTRIBUTE,
    STORE_ARTIFACTS_ACTIVITY,
    ArtifactOptions,
    BadRunInput,
    InvocationSpec,
    NodeRequest,
    NodeResult,
    NodeStatus,
    Plan,
    PlanRequest,
    ProjectHooksRequest,
    SessionSpec,
    StoreArtifactsRequest,
    StoredArtifacts,
)
from dbt_temporal.engine.commit_markers import MarkerSettings
from dbt_temporal.engine.errors import is_transient
from dbt_temporal.engine.executor import NodeOutcome, RerunRefused, RunningNode, cancel_query, run_node
from dbt_temporal.engine.hooks import run_project_hooks
from dbt_temporal.engine.invocation import Invocation, InvocationCache, ManifestMismatch, check_manifest
from dbt_temporal.engine.planner import plan_selection, run_flags
from dbt_temporal.engine.pool import SessionPool, UnknownProject, ensure_schemas
from dbt_temporal.engine.session import DbtSession
from dbt_temporal.redaction import redact
from dbt_temporal.worker import node_report, run_state
from dbt_temporal.worker.artifacts import store_run
from dbt_temporal.worker.plan_size import ensure_plan_fits
from dbt_temporal.worker.project_sources import ProjectSources
from dbt_temporal.worker.run_state import StateNotFound

HEARTBEAT_EVERY_SECONDS = 2.0
RUN_SESSIONS_KEPT = 256
# How long a cancelled node may take to wind down once its query was cancelled.
CANCEL_GRACE_SECONDS = 30.0
T = TypeVar("T")
log = logging.getLogger("dbtt.worker")
# Failures of the project or the request, not of the moment: reported at once, never retried.
CONFIGURATION_ERRORS = (UnknownProject, ManifestMismatch, BadRunInput, StateNotFound, DbtBaseException)


async def _wind_down(future: asyncio.Future[object]) -> None:
    """Give a cancelled node CANCEL_GRACE_SECONDS to stop, heartbeating meanwhile.

    A warehouse query stops at once; a Python model cannot be interrupted. Without heartbeats
    the server would time the node out and report an error instead of its cancellation.
    """
    deadline = asyncio.get_running_loop().time() + CANCEL_GRACE_SECONDS
    while not future.done() and asyncio.get_running_loop().time() < deadline:
        activity.heartbeat()
        await asyncio.wait({future}, timeout=HEARTBEAT_EVERY_SECONDS)
    if not future.done():
        _log_event(
            logging.WARNING,
            f"{activity.info().activity_id} did not stop within {CANCEL_GRACE_SECONDS:.0f} s of its cancellation; "
            "abandoned, it may still finish and write",
        )


LOGGED_MESSAGE_CHARS = 300


def _one_line(message: str | None) -> str:
    """A message on one line (dbt's put the detail below a header line), cut short for the log."""
    text = " ".join((message or "").split())
    return text if len(text) <= LOGGED_MESSAGE_CHARS else text[: LOGGED_MESSAGE_CHARS - 1] + "…"


def _log_event(level: int, what: str) -> None:
    """One worker log line about the current activity, naming its run and attempt."""
    info = activity.info()
    log.log(level, "run %s: %s (attempt %d)", info.workflow_id, what, info.attempt)


def _logged(err: ApplicationError, what: str | None = None) -> ApplicationError:
    """Say a failure in one line (the SDK's traceback for it is dropped, see worker/log_setup.py)."""
    _log_event(logging.WARNING, f"{what or activity.info().activity_type + ' failed'}: {_one_line(err.message)}")
    return err


def configuration_error(err: Exception, secret_values: Sequence[str]) -> ApplicationError:
    """A failure no retry can fix, carrying dbt's own message."""
    if isinstance(err, UnknownProject):
        return ApplicationError(str(err), type="ProjectNotFound", non_retryable=True)
    if isinstance(err, ManifestMismatch):
        return ApplicationError(str(err), type="ProjectVersionMismatch", non_retryable=True)
    message = redact(str(err).strip() or type(err).__name__, secret_values)
    return ApplicationError(message, type="Configuration", non_retryable=True)


def crash_error(err: Exception, secret_values: Sequence[str]) -> ApplicationError:
    """An exception outside dbt's own error handling: one redacted line; retried only when transient."""
    first_line = (str(err).strip().splitlines() or [""])[0]
    message = redact(f"{type(err).__name__}: {first_line}" if first_line else type(err).__name__, secret_values)
    if is_transient(err):
        return ApplicationError(message, type="TransientWarehouseError")
    return ApplicationError(message, type="NodeCrashed", non_retryable=True)


async def _heartbeating(work: Awaitable[T]) -> T:
    """Await `work` (a node thread's, or reading a long run's history), heartbeating meanwhile."""
    task = asyncio.ensure_future(work)
    while True:
        done, _ = await asyncio.wait({task}, timeout=HEARTBEAT_EVERY_SECONDS)
        if done:
            return task.result()
        activity.heartbeat()


async def _with_details(results: list[NodeResult]) -> list[NodeResult]:
    """The run's lean results with their compiled code and phase timings, read from its history."""
    if not results:
        return results
    info = activity.info()
    try:
        details = await _heartbeating(read_node_details(activity.client(), info.workflow_id, info.workflow_run_id))
    except RPCError as err:
        unreadable = ApplicationError(f"cannot read the run's history: {err.message}", type="HistoryUnreadable")
        raise _logged(unreadable) from None
    return with_details(results, details)


def is_last_attempt() -> bool:
    info = activity.info()
    maximum = info.retry_policy.maximum_attempts if info.retry_policy else 0
    return maximum > 0 and info.attempt >= maximum


def run_search_attributes(
    plan: Plan, request: PlanRequest, static: dict[str, str], registered: set[str]
) -> dict[str, str]:
    """DbtProject, DbtCommand, DbtTarget and DbtStatus, then the worker's static ones (which win), kept
    to what the namespace has registered: upserting an unknown attribute would fail the workflow."""
    dynamic = {"DbtProject": plan.project, "DbtCommand": request.command, STATUS_ATTRIBUTE: "running"}
    if request.session.target:
        dynamic["DbtTarget"] = request.session.target
    return {name: value for name, value in {**dynamic, **static}.items() if name in registered}


class DbtActivities:
    def __init__(
        self,
        pool: SessionPool,
        threads: int,
        static_search_attributes: dict[str, str] | None = None,
        registered_search_attributes: set[str] | None = None,
        artifacts: ArtifactOptions | None = None,
        sources: ProjectSources | None = None,
        markers: MarkerSettings | None = None,
    ) -> None:
        self.pool = pool
        self.sources = sources
        self.markers = markers or MarkerSettings()
        self.invocations = InvocationCache()
        # Session specs of recent runs, by invocation id (see `_run_session`).
        self.run_sessions: OrderedDict[str, SessionSpec] = OrderedDict()
        self.static_search_attributes = static_search_attributes or {}
        self.registered_search_attributes = registered_search_attributes or set()
        self.artifacts = artifacts
        self.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="dbt-node")
        # Temporal's own default worker identity, so per-node results name the same process.
        self.identity = f"{os.getpid()}@{socket.gethostname()}"

    async def _in_thread(self, work: Callable[[], T], on_cancel: Callable[[], None] | None = None) -> T:
        """Run blocking dbt work on a node thread, heartbeating until it returns."""
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self.executor, contextvars.copy_context().run, work)
        try:
            return await _heartbeating(future)
        except asyncio.CancelledError:
            if node_report.run_has_closed():
                return await node_report.outlive_handover(future, on_cancel)
            if on_cancel is not None:
                await asyncio.to_thread(on_cancel)
                await _wind_down(future)
            raise

    async def _reporting(
        self, work: Callable[[], T], secrets: Sequence[str], on_cancel: Callable[[], None] | None = None
    ) -> T:
        """`_in_thread`, with every failure turned into one redacted line that says whether to retry."""
        try:
            return await self._in_thread(work, on_cancel)
        except ApplicationError as err:
            raise _logged(err) from None  # already says what it is and whether to retry
        except CONFIGURATION_ERRORS as err:
            raise _logged(configuration_error(err, secrets)) from None
        except RerunRefused as err:
            refused = ApplicationError(redact(str(err), secrets), type="RerunRefused", non_retryable=True)
            raise _logged(refused) from None
        except Exception as err:  # noqa: BLE001 - reported as one line, never a traceback
            raise _logged(crash_error(err, secrets)) from None

    @activity.defn(name=PLAN_ACTIVITY)
    async def plan_project(self, request: PlanRequest) -> Plan:
        def plan() -> Plan:
            if request.command == DOCS_COMMAND and self.artifacts is None:
                raise BadRunInput(
                    "docs generate keeps the docs site in the artifact store, and this worker keeps nothing: "
                    "start it with WRITE_RUN_LOG=true or WRITE_ARTIFACTS=true"
                )
            project = self.pool.resolve_project(request.session.project)
            source = self.sources.check(project.path) if self.sources else None
            reparsed_seconds = self.pool.refresh(request.session)
            with self.pool.lease(request.session) as session:
                location = self._fixed_state(request, session)
                state_dir = self._state_dir(location)
                sources_dir = self._current_sources(session) if state_dir is not None else None
                plan = plan_selection(session, request, project.config, state_dir, sources_dir)
                plan.state = location
                plan.reparsed_seconds = reparsed_seconds
                if source is not None:
                    plan.project_revision, plan.source_note = source.revision, source.note
                if request.command not in NO_SCHEMA_COMMANDS:
                    ensure_schemas(session, run_flags(session, request.command, request.flags, state_dir))
            attributes = run_search_attributes(
                plan, request, self.static_search_attributes, self.registered_search_attributes
            )
            artifacts = None if request.command in LISTING_COMMANDS else self.artifacts
            return ensure_plan_fits(plan.model_copy(update={"search_attributes": attributes, "artifacts": artifacts}))

        planned = await self._reporting(plan, list(request.session.env.values()))
        _log_event(logging.INFO, f"planned {request.command} of {planned.project}, {len(planned.nodes)} nodes")
        return planned

    @contextmanager
    def _invocation(self, session_spec: SessionSpec, command: str, spec: InvocationSpec) -> Iterator[Invocation]:
        """The run's invocation on its warm session, which stays warm (never evicted) meanwhile."""
        with self.pool.lease(session_spec, spec.manifest_digest) as session:
            check_manifest(session, spec.manifest_digest)
            yield self.invocations.get(session, command, spec, self._state_dir(spec.dbt_flags.state))

    def _fixed_state(self, request: PlanRequest, session: DbtSession) -> str | None:
        """The run's --state as a location every worker resolves alike (last-success: a workflow id)."""
        if request.flags.state is None:
            return None
        config = session.config
        return run_state.resolve(request.flags.state, self.artifacts, config.project_name, config.target_name)

    def _current_sources(self, session: DbtSession) -> Path | None:
        """The latest freshness results of the project and target, which `source_status:` compares."""
        config = session.config
        return run_state.latest_freshness(self.artifacts, config.project_name, config.target_name, self._state_cache)

    @property
    def _state_cache(self) -> Path:
        return self.pool.work_root / "state"

    def _state_dir(self, location: str | None) -> Path | None:
        """Where the run's --state (fixed by its plan) is on this worker, fetched on first use."""
        if location is None:
            return None
        return run_state.fetch(location, self.artifacts, self._state_cache)

    @activity.defn(dynamic=True)
    async def execute_node(self, args: Sequence[RawValue]) -> NodeResult:
        """Run one node; its outcome reaches the workflow even if the run that started it handed over."""
        request = activity.payload_converter().from_payload(args[0].payload, NodeRequest)
        try:
            result = await self._run_node(request, request.session or await self._run_session(request))
        except ApplicationError as err:
            await node_report.fail(err)
        await node_report.complete(result)

    async def _run_session(self, request: NodeRequest) -> SessionSpec:
        """The run's session spec, asked of the run once per worker (node requests leave it out)."""
        key = request.invocation.invocation_id
        spec = self.run_sessions.get(key)
        if spec is None:
            handle = activity.client().get_workflow_handle(activity.info().workflow_id)
            try:
                spec = await handle.query(SESSION_QUERY, result_type=SessionSpec)
            except (RPCError, WorkflowQueryFailedError) as err:
                unknown = ApplicationError(f"cannot ask the run for its session: {err}", type="SessionUnknown")
                raise _logged(unknown) from None
            self.run_sessions[key] = spec
            while len(self.run_sessions) > RUN_SESSIONS_KEPT:
                self.run_sessions.popitem(last=False)
        self.run_sessions.move_to_end(key)
        return spec

    async def _run_node(self, request: NodeRequest, session: SessionSpec) -> NodeResult:
        secrets = list(session.env.values())
        running = RunningNode()

        attempt = activity.info().attempt

        def execute() -> NodeOutcome:
            with self._invocation(session, request.command, request.invocation) as invocation:
                return run_node(
                    invocation, request.unique_id, request.index, request.total, running, attempt, self.markers
                )

        outcome = await self._reporting(execute, secrets, on_cancel=lambda: cancel_query(running))
        result = outcome.result.model_copy(
            update={
                "worker": self.identity,
                "attempt": activity.info().attempt,
                "message": redact(outcome.result.message, secrets) if outcome.result.message else None,
            }
        )
        if self._should_retry(session, result, outcome.exception):
            retry = ApplicationError(f"transient warehouse error: {result.message}", type="TransientWarehouseError")
            raise _logged(retry, f"{request.unique_id} failed, will retry") from None
        if result.status == NodeStatus.error:
            _log_event(logging.WARNING, f"{request.unique_id} {result.dbt_status}: {_one_line(result.message)}")
        return result

    @activity.defn(name=PROJECT_HOOKS_ACTIVITY)
    async def project_hooks(self, request: ProjectHooksRequest) -> list[NodeResult]:
        secrets = list(request.session.env.values())
        run_results = await _with_details(request.results)  # dbt's `results`: compiled code included

        def run_hooks() -> list[NodeResult]:
            with self._invocation(request.session, request.command, request.invocation) as invocation:
                return run_project_hooks(invocation, request.hook_type, run_results)

        results = await self._reporting(run_hooks, secrets)
        return [r.model_copy(update={"message": redact(r.message, secrets) if r.message else None}) for r in results]

    @activity.defn(name=STORE_ARTIFACTS_ACTIVITY)
    async def store_artifacts(self, request: StoreArtifactsRequest) -> StoredArtifacts:
        """Write the run's record to the artifact store; Temporal retries a store that cannot be reached."""
        secrets = list(request.session.env.values())

        def run_invocation() -> AbstractContextManager[Invocation]:
            return self._invocation(request.session, request.command, request.invocation)

        request = request.model_copy(update={"results": await _with_details(request.results)})
        try:
            return await self._in_thread(lambda: store_run(request, run_invocation, secrets))
        except StoreMisconfigured as err:
            raise ApplicationError(str(err), type="Configuration", non_retryable=True) from None
        except StoreError as err:
            raise ApplicationError(redact(str(err), secrets), type="ArtifactStoreUnreachable") from None
        except CONFIGURATION_ERRORS as err:
            raise configuration_error(err, secrets) from None

    def _should_retry(self, session: SessionSpec, result: NodeResult, exc: BaseException | None) -> bool:
        """Retry only what a retry can fix, and never past the last attempt (that result is kept)."""
        if result.status != NodeStatus.error or exc is None or not is_transient(exc):
            return False
        retry = self.pool.resolve_project(session.project).config.retry
        return not retry.gives_up_on(result.message or "") and not is_last_attempt()

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.pool.close()

"""Run one dbt node of an invocation, the way dbt's own thread pool would."""

from __future__ import annotations

import io
import threading
import time
from dataclasses import dataclass
from typing import Any

from dbt.artifacts.schemas.results import NodeStatus as DbtNodeStatus
from dbt.node_types import NodeType
from dbt.task.run import MicrobatchModelRunner
from dbt_common.exceptions import DbtBaseException

from dbt_temporal.contract import RUN_OPERATION, NodeResult, NodeStatus, SourceFreshness, TimingEntry
from dbt_temporal.engine.commit_markers import CommitMarkers, MarkerSettings, rerun_hazard, run_after_commit_hooks
from dbt_temporal.engine.invocation import SEQUENTIAL_POOL, Invocation, fresh_copy
from dbt_temporal.engine.isolation import activated
from dbt_temporal.engine.macro_log import captured_log_lines
from dbt_temporal.engine.planner import manifest_entry
from dbt_temporal.engine.relations import remembered_lookups
from dbt_temporal.engine.session import DbtSession

# dbt's result words mapped onto the node statuses of the wire contract.
_STATUS_MAP = {
    DbtNodeStatus.Success: NodeStatus.success,
    DbtNodeStatus.Pass: NodeStatus.success,
    DbtNodeStatus.Warn: NodeStatus.success,
    DbtNodeStatus.NoOp: NodeStatus.success,
    DbtNodeStatus.Error: NodeStatus.error,
    DbtNodeStatus.Fail: NodeStatus.error,
    DbtNodeStatus.RuntimeErr: NodeStatus.error,
    DbtNodeStatus.PartialSuccess: NodeStatus.error,
    DbtNodeStatus.Skipped: NodeStatus.skipped,
}


@dataclass
class NodeOutcome:
    """A node's result, plus the exception dbt swallowed while producing it."""

    result: NodeResult
    exception: BaseException | None


@dataclass
class RunningNode:
    """Where a running node's warehouse connection lives, so it can be cancelled from outside."""

    session: DbtSession | None = None
    thread_key: Any = None
    # Set when cancellation arrives before the node reached the warehouse: it then never starts.
    cancelled: bool = False


class NodeCancelled(Exception):
    pass


class RerunRefused(Exception):
    """A retry that could write a node's data a second time, with no way to know whether the first committed."""


def run_node(
    invocation: Invocation,
    unique_id: str,
    index: int,
    total: int,
    running: RunningNode | None = None,
    attempt: int = 1,
    markers: MarkerSettings | None = None,
) -> NodeOutcome:
    if invocation.command == RUN_OPERATION:
        return run_macro(invocation, unique_id)
    session = invocation.session
    # The run's view: with --defer or clone, its nodes carry the state run's relations.
    node = fresh_copy(manifest_entry(invocation.manifest, unique_id))
    hazard = rerun_hazard(node, session.spec.full_refresh)
    if markers is not None and hazard is not None:
        committed = _guard_rerun(invocation, node, attempt, markers, hazard)
        if committed is not None:
            return committed
    caught: list[BaseException] = []
    with activated(invocation.state()), captured_log_lines() as log_lines:
        if running is not None:
            running.session = session
            running.thread_key = session.adapter.connections.get_thread_identifier()
        runner = invocation.task.get_runner_type(node)(invocation.config, session.adapter, node, index, total)
        if isinstance(runner, MicrobatchModelRunner):
            # dbt hands batches to the invocation's task; with no job queue they run here, in order.
            runner.set_parent_task(invocation.task)
            runner.set_pool(SEQUENTIAL_POOL)
        _record_exceptions(runner, caught)
        if running is not None and running.cancelled:
            raise NodeCancelled(unique_id)
        started = time.time()
        with remembered_lookups():
            dbt_result = runner.run_with_hooks(invocation.manifest)
        finished = time.time()
    result = to_node_result(dbt_result, runner.node, started, finished)
    result.log_lines = log_lines + _preview_lines(dbt_result, runner.node)
    return NodeOutcome(result=result, exception=caught[0] if caught else None)


def _preview_lines(dbt_result: Any, node: Any) -> list[str]:
    """What `dbt show` prints for a node: its rows as a table, under dbt's heading."""
    table = getattr(dbt_result, "agate_table", None)
    if table is None:
        return []
    printed = io.StringIO()
    table.print_table(output=printed, max_rows=None)
    inline = node.resource_type == NodeType.SqlOperation
    heading = "Previewing inline node:" if inline else f"Previewing node '{node.name}':"
    return [heading, *printed.getvalue().splitlines()]


def run_macro(invocation: Invocation, unique_id: str) -> NodeOutcome:
    """run-operation: the macro with the run's --args, as dbt runs it; dbt's errors are the result's."""
    session = invocation.session
    macro = session.manifest.macros[unique_id]
    caught: DbtBaseException | None = None
    started = time.time()
    with activated(invocation.state()), captured_log_lines() as log_lines:
        with session.adapter.connection_named(f"macro_{macro.name}"):
            session.adapter.clear_transaction()
            try:
                session.adapter.execute_macro(
                    macro.name,
                    project=macro.package_name,
                    kwargs=invocation.flags.ARGS,
                    macro_resolver=invocation.manifest,
                )
            except DbtBaseException as exc:
                caught = exc
    finished = time.time()
    result = NodeResult(
        unique_id=unique_id,
        status=NodeStatus.error if caught else NodeStatus.success,
        dbt_status="error" if caught else "success",
        execution_time=finished - started,
        message=str(caught) if caught else None,
        failures=1 if caught else 0,
        log_lines=log_lines,
        thread_id=threading.current_thread().name,
        started_at=started,
        completed_at=finished,
    )
    return NodeOutcome(result=result, exception=caught)


def _guard_rerun(
    invocation: Invocation, node: Any, attempt: int, settings: MarkerSettings, hazard: str
) -> NodeOutcome | None:
    """Make a node whose re-run is not harmless safe to retry: mark its commit, or check the mark.

    Returns the outcome when an earlier attempt had committed (nothing more is written).
    """
    session = invocation.session
    markers = session_markers(session, settings)
    if not markers.usable:
        if attempt > 1:
            raise RerunRefused(
                f"{node.unique_id} may have written part of its data on attempt {attempt - 1} "
                f"({hazard}), and without a commit marker dbtt cannot tell whether it committed; "
                "check its rows, then re-run it with `dbtt reset`"
            )
        return None
    invocation_id = invocation.run.invocation_id
    with activated(invocation.state()):
        markers.ensure_table()
        committed_by = markers.committed_attempt(invocation_id, node.unique_id) if attempt > 1 else None
        if committed_by is None:
            marker = markers.marker_hook(invocation_id, node.unique_id, attempt)
            node.config.post_hook = [*node.config.post_hook, marker]
            return None
        started = time.time()
        hooks = run_after_commit_hooks(node, invocation.config, invocation.manifest, session.adapter)
        finished = time.time()
    message = f"already committed by attempt {committed_by}"
    result = NodeResult(
        unique_id=node.unique_id,
        status=NodeStatus.success,
        dbt_status="success",
        execution_time=finished - started,
        message=f"{message}: its data change was not applied again; ran {hooks} after-commit post-hook(s)",
        adapter_response={"_message": message},
        previously_committed=True,
        thread_id=threading.current_thread().name,
        started_at=started,
        completed_at=finished,
    )
    return NodeOutcome(result=result, exception=None)


_MARKERS_LOCK = threading.Lock()


def session_markers(session: DbtSession, settings: MarkerSettings) -> CommitMarkers:
    with _MARKERS_LOCK:
        if session.commit_markers is None:
            session.commit_markers = CommitMarkers(session, settings)
        return session.commit_markers


def cancel_query(running: RunningNode) -> None:
    """Stop the node's warehouse query; dbt then reports the node as failed and returns.

    dbt's runners turn any exception, cancellation included, into an error
    result, so the query itself has to be cancelled for the node to stop.
    """
    running.cancelled = True
    session = running.session
    if session is None or running.thread_key is None:
        return
    connections = session.adapter.connections
    connection = connections.thread_connections.get(running.thread_key)
    if connection is None:
        return
    if session.adapter.type() == "duckdb":
        # dbt-duckdb's own cancel does nothing; DuckDB interrupts the statement on its cursor.
        connection.handle.cursor().interrupt()
        return
    with activated(session.state()), session.adapter.connection_named("dbtt-cancel"):
        connections.cancel(connection)


def _record_exceptions(runner: Any, caught: list[BaseException]) -> None:
    """dbt turns every exception into an error result; keep the exception for retry decisions."""
    original = runner.handle_exception

    def handle_exception(exc: BaseException, ctx: Any) -> str:
        caught.append(exc)
        return original(exc, ctx)

    runner.handle_exception = handle_exception


def to_node_result(dbt_result: Any, node: Any, started: float, finished: float) -> NodeResult:
    adapter_response = dbt_result.adapter_response or {}
    if hasattr(adapter_response, "to_dict"):
        adapter_response = adapter_response.to_dict()
    return NodeResult(
        unique_id=node.unique_id,
        status=_STATUS_MAP.get(dbt_result.status, NodeStatus.error),
        dbt_status=str(dbt_result.status),
        execution_time=dbt_result.execution_time or 0.0,
        message=dbt_result.message,
        adapter_response={k: v for k, v in adapter_response.items() if v is not None},
        timing=[
            TimingEntry(
                name=t.name,
                started_at=t.started_at.isoformat() if t.started_at else None,
                completed_at=t.completed_at.isoformat() if t.completed_at else None,
            )
            for t in dbt_result.timing
        ],
        failures=dbt_result.failures,
        # A unit test runs a node built from its definition: the SQL is on the result's node.
        compiled_code=getattr(dbt_result.node, "compiled_code", None) or getattr(node, "compiled_code", None),
        freshness=_freshness(dbt_result),
        thread_id=threading.current_thread().name,
        started_at=started,
        completed_at=finished,
    )


def _freshness(dbt_result: Any) -> SourceFreshness | None:
    """What a `source freshness` check measured; a check that failed to run measured nothing."""
    if getattr(dbt_result, "max_loaded_at", None) is None:
        return None
    return SourceFreshness(
        max_loaded_at=dbt_result.max_loaded_at, snapshotted_at=dbt_result.snapshotted_at, age=dbt_result.age
    )

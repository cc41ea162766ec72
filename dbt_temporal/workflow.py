"""The `dbt_run` workflow: plan, then run every node as its own activity.

Deterministic code only: no dbt, no I/O. The plan arrives as plain data from
the `plan_project` activity; nodes start as soon as their own parents are
done; memos carry the live state for `dbtt status` and the Temporal UI.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError

with workflow.unsafe.imports_passed_through():
    from dbt_temporal import __version__, runlog
    from dbt_temporal.models import (
        COMMANDS,
        LISTING_COMMANDS,
        PLAN_ACTIVITY,
        WORKFLOW_TYPE,
        DbtRunInput,
        DbtRunOutput,
        NodeRequest,
        NodeResult,
        NodeStatus,
        Plan,
        PlannedNode,
        PlanRequest,
        RunState,
        SessionSpec,
    )
    from dbt_temporal.scheduler import DagScheduler

PLAN_TIMEOUT = timedelta(minutes=10)
NODE_TIMEOUT = timedelta(hours=6)
NODE_HEARTBEAT_TIMEOUT = timedelta(seconds=30)
# Errors that no retry can fix; activities raise them with these types.
NON_RETRYABLE = ["ProjectNotFound", "Configuration", "InvalidInput"]
FAIL_FAST_REASON = "Skipping due to fail_fast"


class RunFailed(ApplicationError):
    """Raised at the end of a run with failed nodes; its details hold the full output."""


@workflow.defn(name=WORKFLOW_TYPE)
class DbtRunWorkflow:
    def __init__(self) -> None:
        self._state = RunState()
        self._log: list[str] = []
        self._memo_dirty = False

    @workflow.query(name="status")
    def status(self) -> RunState:
        return self._state.model_copy(update={"log": runlog.bounded_log(self._log)})

    @workflow.run
    async def run(self, run: DbtRunInput) -> DbtRunOutput:
        started = workflow.now()
        self._state.command = run.without_secrets()
        workflow.upsert_memo({"command": self._state.command})
        if run.command not in COMMANDS:
            raise ApplicationError(
                f"unknown command '{run.command}'; use one of: {', '.join(COMMANDS)}",
                type="InvalidInput",
                non_retryable=True,
            )
        plan = await self._plan(run)
        output = DbtRunOutput(
            invocation_id=str(workflow.uuid4()),
            project=plan.project,
            command=run.command,
            success=True,
            selected=plan.selected,
        )
        if run.command in LISTING_COMMANDS:
            return self._finish(output, started)

        threads = run.threads or plan.threads
        scheduler = DagScheduler(plan.nodes, threads)
        self._log.extend(runlog.header_lines(__version__, plan.project_summary, threads, plan.target, len(plan.nodes)))
        results = await self._execute(run, plan, scheduler)
        output.node_results = [results[node.unique_id] for node in plan.nodes]
        output.success = all(r.status == NodeStatus.success for r in output.node_results)
        return self._finish(output, started)

    async def _plan(self, run: DbtRunInput) -> Plan:
        request = PlanRequest(session=SessionSpec.of(run), command=run.command, select=run.select, exclude=run.exclude)
        try:
            return await workflow.execute_activity(
                PLAN_ACTIVITY,
                request,
                result_type=Plan,
                start_to_close_timeout=PLAN_TIMEOUT,
                retry_policy=RetryPolicy(maximum_attempts=3, non_retryable_error_types=NON_RETRYABLE),
            )
        except ActivityError as err:
            cause = err.cause
            message = cause.message if isinstance(cause, ApplicationError) else str(cause or err)
            kind = cause.type if isinstance(cause, ApplicationError) else None
            raise ApplicationError(message, type=kind or "PlanFailed", non_retryable=True) from err

    async def _execute(self, run: DbtRunInput, plan: Plan, scheduler: DagScheduler) -> dict[str, NodeResult]:
        session = SessionSpec.of(run)
        total = len(plan.nodes)
        index_of: dict[str, int] = {}
        results: dict[str, NodeResult] = {}
        running: dict[asyncio.Task[NodeResult], PlannedNode] = {}
        self._state.node_status = scheduler.status

        def start_ready() -> None:
            for node in scheduler.start_ready():
                index_of[node.unique_id] = len(index_of) + 1
                request = NodeRequest(
                    session=session,
                    command=run.command,
                    unique_id=node.unique_id,
                    index=index_of[node.unique_id],
                    total=total,
                )
                task = asyncio.ensure_future(self._run_node(node, request))
                running[task] = node
                self._log.append(runlog.start_line(index_of[node.unique_id], total, node))
            self._memo_dirty = True

        def record(node: PlannedNode, result: NodeResult) -> None:
            results[node.unique_id] = result
            index = index_of.setdefault(node.unique_id, len(index_of) + 1)
            self._log.append(runlog.finish_line(index, total, node, result))
            for skipped in scheduler.finish(node.unique_id, result.status):
                cause = plan_nodes[scheduler.skip_cause[skipped]].name
                record_skip(skipped, f"Skipped because {cause} did not succeed")
            if run.fail_fast and result.status == NodeStatus.error:
                for task in running:
                    task.cancel()
                for skipped in scheduler.skip_pending(FAIL_FAST_REASON):
                    record_skip(skipped, FAIL_FAST_REASON)

        def record_skip(uid: str, message: str) -> None:
            results[uid] = NodeResult(unique_id=uid, status=NodeStatus.skipped, dbt_status="skipped", message=message)
            index = index_of.setdefault(uid, len(index_of) + 1)
            self._log.append(runlog.finish_line(index, total, plan_nodes[uid], results[uid]))

        plan_nodes = {node.unique_id: node for node in plan.nodes}
        start_ready()
        try:
            while running:
                self._flush_memo()
                done, _ = await workflow.wait(list(running), return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    record(running.pop(task), task.result())
                start_ready()
        except asyncio.CancelledError:
            for task in running:
                task.cancel()
            for uid in scheduler.cancel_unfinished():
                results[uid] = NodeResult(
                    unique_id=uid, status=NodeStatus.cancelled, dbt_status="cancelled", message="Run cancelled"
                )
            self._log.append("Run cancelled.")
            self._memo_dirty = True
            self._flush_memo()
            raise
        return results

    async def _run_node(self, node: PlannedNode, request: NodeRequest) -> NodeResult:
        try:
            return await workflow.execute_activity(
                node.activity_type,
                request,
                result_type=NodeResult,
                activity_id=node.unique_id,
                start_to_close_timeout=NODE_TIMEOUT,
                heartbeat_timeout=NODE_HEARTBEAT_TIMEOUT,
                retry_policy=RetryPolicy(maximum_attempts=3, non_retryable_error_types=NON_RETRYABLE),
            )
        except asyncio.CancelledError:
            return NodeResult(
                unique_id=node.unique_id, status=NodeStatus.cancelled, dbt_status="cancelled", message=FAIL_FAST_REASON
            )
        except ActivityError as err:
            if isinstance(err.cause, CancelledError):
                return NodeResult(
                    unique_id=node.unique_id,
                    status=NodeStatus.cancelled,
                    dbt_status="cancelled",
                    message=FAIL_FAST_REASON,
                )
            cause = err.cause
            message = cause.message if isinstance(cause, ApplicationError) else str(cause or err)
            return NodeResult(unique_id=node.unique_id, status=NodeStatus.error, dbt_status="error", message=message)

    def _flush_memo(self) -> None:
        """One memo update per workflow task, however many nodes changed in it."""
        if not self._memo_dirty:
            return
        workflow.upsert_memo(
            {
                "node_status": runlog.bounded_node_status(self._state.node_status),
                "progress": runlog.progress(self._state.node_status),
                "log": runlog.bounded_log(self._log),
            }
        )
        self._memo_dirty = False

    def _finish(self, output: DbtRunOutput, started) -> DbtRunOutput:  # noqa: ANN001
        output.elapsed_time = (workflow.now() - started).total_seconds()
        if output.node_results:
            self._log.extend(runlog.footer_lines(output.node_results, output.elapsed_time))
            output.summary = runlog.done_line(output.node_results)
        self._memo_dirty = True
        self._flush_memo()
        self._state.finished = True
        self._state.output = output
        if not output.success:
            raise RunFailed(output.summary or "dbt run failed", output, type="DbtRunFailed", non_retryable=True)
        return output

"""The `dbt_run` workflow: plan, then run every node as its own activity.

Deterministic code only: no dbt, no I/O. The plan arrives as plain data from
the `plan_project` activity; nodes start as soon as their own parents are
done; memos carry the live state for `dbtt status` and the Temporal UI.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError
from temporalio.workflow import ActivityCancellationType

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
    from dbt_temporal.project_config import RetryConfig
    from dbt_temporal.scheduler import DagScheduler
    from dbt_temporal.secrets import redact

PLAN_TIMEOUT = timedelta(minutes=10)
NODE_TIMEOUT = timedelta(hours=6)
# A worker that dies is noticed after this long without a heartbeat; its nodes then move on.
NODE_HEARTBEAT_TIMEOUT = timedelta(seconds=10)
# Errors that no retry can fix; activities raise them with these types.
NON_RETRYABLE = ["ProjectNotFound", "Configuration", "InvalidInput"]
FAIL_FAST_REASON = "Skipping due to fail_fast"
CANCELLED_BY_FAIL_FAST = "Cancelled due to fail_fast"
CANCELLED_RUN = "Run cancelled"


class RunFailed(ApplicationError):
    """Raised at the end of a run with failed nodes; its details hold the full output."""


def node_retry_policy(retry: RetryConfig) -> RetryPolicy:
    return RetryPolicy(
        maximum_attempts=retry.max_attempts,
        initial_interval=timedelta(seconds=retry.initial_interval_secs),
        backoff_coefficient=retry.backoff_coefficient,
        maximum_interval=timedelta(seconds=retry.max_interval_secs),
        non_retryable_error_types=NON_RETRYABLE,
    )


def _failure_message(err: ActivityError) -> tuple[str, str | None]:
    cause = err.cause
    if isinstance(cause, ApplicationError):
        return cause.message, cause.type
    return str(cause or err), None


@workflow.defn(name=WORKFLOW_TYPE)
class DbtRunWorkflow:
    def __init__(self) -> None:
        self._state = RunState()
        self._log: list[str] = []
        self._secrets: list[str] = []
        self._memo_dirty = False
        self._run_cancelled = False

    @workflow.query(name="status")
    def status(self) -> RunState:
        return self._state.model_copy(update={"log": runlog.bounded_log(self._log)})

    @workflow.run
    async def run(self, run: DbtRunInput) -> DbtRunOutput:
        started = workflow.now()
        self._secrets = list((run.env or {}).values())
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
        self._say(*runlog.header_lines(__version__, plan.project_summary, threads, plan.target, len(plan.nodes)))
        results = await self._execute(run, plan, DagScheduler(plan.nodes, threads))
        output.node_results = [results[node.unique_id] for node in plan.nodes]
        output.success = all(r.status == NodeStatus.success for r in output.node_results)
        return self._finish(output, started)

    def _say(self, *lines: str) -> None:
        self._log.extend(redact(line, self._secrets) for line in lines)

    async def _plan(self, run: DbtRunInput) -> Plan:
        request = PlanRequest(
            session=SessionSpec.of(run),
            command=run.command,
            select=run.select,
            exclude=run.exclude,
            unique_ids=run.unique_ids,
        )
        try:
            return await workflow.execute_activity(
                PLAN_ACTIVITY,
                request,
                result_type=Plan,
                start_to_close_timeout=PLAN_TIMEOUT,
                retry_policy=RetryPolicy(maximum_attempts=3, non_retryable_error_types=NON_RETRYABLE),
            )
        except ActivityError as err:
            message, kind = _failure_message(err)
            raise ApplicationError(message, type=kind or "PlanFailed", non_retryable=True) from err

    async def _execute(self, run: DbtRunInput, plan: Plan, scheduler: DagScheduler) -> dict[str, NodeResult]:
        session = SessionSpec.of(run)
        retry_policy = node_retry_policy(plan.retry)
        nodes = {node.unique_id: node for node in plan.nodes}
        total = len(plan.nodes)
        index_of: dict[str, int] = {}
        results: dict[str, NodeResult] = {}
        running: dict[asyncio.Task[NodeResult], PlannedNode] = {}
        self._state.node_status = scheduler.status

        def index(uid: str) -> int:
            return index_of.setdefault(uid, len(index_of) + 1)

        def start_ready() -> None:
            for node in scheduler.start_ready():
                uid = node.unique_id
                request = NodeRequest(
                    session=session, command=run.command, unique_id=uid, index=index(uid), total=total
                )
                running[asyncio.ensure_future(self._run_node(node, request, retry_policy))] = node
                self._say(runlog.start_line(index(uid), total, node))
            self._memo_dirty = True

        def record(result: NodeResult) -> None:
            uid = result.unique_id
            results[uid] = result
            self._say(runlog.finish_line(index(uid), total, nodes[uid], result))
            for skipped in scheduler.finish(uid, result.status):
                cause = nodes[scheduler.skip_cause[skipped]].name
                record_skip(skipped, f"Skipped because {cause} did not succeed")
            if run.fail_fast and result.status == NodeStatus.error:
                for task in running:
                    task.cancel()
                for skipped in scheduler.skip_pending(FAIL_FAST_REASON):
                    record_skip(skipped, FAIL_FAST_REASON)

        def record_skip(uid: str, message: str) -> None:
            results[uid] = NodeResult(unique_id=uid, status=NodeStatus.skipped, dbt_status="skipped", message=message)
            self._say(runlog.finish_line(index(uid), total, nodes[uid], results[uid]))

        start_ready()
        try:
            while running:
                self._flush_memo()
                done, _ = await workflow.wait(list(running), return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    running.pop(task)
                    record(task.result())
                start_ready()
        except asyncio.CancelledError:
            # The run was cancelled: stop every running node (their queries too) and wait for them.
            self._run_cancelled = True
            for task in running:
                task.cancel()
            if running:
                await workflow.wait(list(running))
            for task, node in running.items():
                results[node.unique_id] = task.result()
            for uid in scheduler.cancel_unfinished():
                cancelled = NodeResult(unique_id=uid, status=NodeStatus.cancelled, dbt_status="cancelled")
                results.setdefault(uid, cancelled.model_copy(update={"message": CANCELLED_RUN}))
            self._say("", CANCELLED_RUN + ".", runlog.done_line(list(results.values())))
            self._memo_dirty = True
            self._flush_memo()
            raise
        return results

    async def _run_node(self, node: PlannedNode, request: NodeRequest, retry_policy: RetryPolicy) -> NodeResult:
        try:
            return await workflow.execute_activity(
                node.activity_type,
                request,
                result_type=NodeResult,
                activity_id=node.unique_id,
                start_to_close_timeout=NODE_TIMEOUT,
                heartbeat_timeout=NODE_HEARTBEAT_TIMEOUT,
                retry_policy=retry_policy,
                # Report a node cancelled only once the worker has really stopped it.
                cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
            )
        except (asyncio.CancelledError, ActivityError) as err:
            if isinstance(err, asyncio.CancelledError) or isinstance(err.cause, CancelledError):
                return NodeResult(
                    unique_id=node.unique_id,
                    status=NodeStatus.cancelled,
                    dbt_status="cancelled",
                    message=CANCELLED_RUN if self._run_cancelled else CANCELLED_BY_FAIL_FAST,
                )
            message, _ = _failure_message(err)
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

    def _finish(self, output: DbtRunOutput, started: datetime) -> DbtRunOutput:
        output.elapsed_time = (workflow.now() - started).total_seconds()
        if output.node_results:
            self._say(*runlog.footer_lines(output.node_results, output.elapsed_time))
            output.summary = runlog.done_line(output.node_results)
        self._memo_dirty = True
        self._flush_memo()
        self._state.finished = True
        self._state.output = output
        if not output.success:
            raise RunFailed(output.summary or "dbt run failed", output, type="DbtRunFailed", non_retryable=True)
        return output

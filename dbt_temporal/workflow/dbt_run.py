"""The `dbt_run` workflow: plan, then run every node as its own activity.

Deterministic code only: no dbt, no I/O. The plan arrives as plain data from
the `plan_project` activity; nodes start as soon as their own parents are
done; memos carry the live state for `dbtt status` and the Temporal UI. Very
large runs hand over to a fresh workflow run (continue-as-new) before their
history grows past Temporal's limits.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeKey
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError
from temporalio.workflow import ActivityCancellationType

with workflow.unsafe.imports_passed_through():
    from pydantic import ValidationError

    from dbt_temporal import __version__
    from dbt_temporal.config.project_config import LifecycleHooks, RetryConfig, validation_message
    from dbt_temporal.contract import (
        AWAITS_NODE_QUERY,
        COMMANDS,
        LISTING_COMMANDS,
        NODE_REPORT_SIGNAL,
        PLAN_ACTIVITY,
        PROJECT_HOOKS_ACTIVITY,
        SESSION_QUERY,
        STATUS_ATTRIBUTE,
        STORE_ARTIFACTS_ACTIVITY,
        WORKFLOW_TYPE,
        BadRunInput,
        Carryover,
        DbtFlags,
        DbtRunInput,
        DbtRunOutput,
        HookType,
        InvocationSpec,
        NodeReport,
        NodeRequest,
        NodeResult,
        NodeStatus,
        Plan,
        PlannedNode,
        PlanRequest,
        ProjectHooksRequest,
        RunState,
        SessionSpec,
        StoreArtifactsRequest,
        StoredArtifacts,
        check_run_input,
    )
    from dbt_temporal.workflow import runlog
    from dbt_temporal.workflow.lifecycle import LifecycleHookRunner, PreRunOutcome
    from dbt_temporal.workflow.scheduler import DagScheduler

PLAN_TIMEOUT = timedelta(minutes=10)
NODE_TIMEOUT = timedelta(hours=6)
# Project hooks run SQL of the project's choosing (grants, audit uploads): as long as a node may.
HOOKS_TIMEOUT = NODE_TIMEOUT
# Writing a run's record: a store that cannot be reached is tried 4 times over about 10 s, then the run says so.
STORE_TIMEOUT = timedelta(minutes=10)
STORE_RETRY = RetryPolicy(
    maximum_attempts=4,
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    non_retryable_error_types=["Configuration", "ProjectVersionMismatch", "ProjectNotFound"],
)
STORE_ARTIFACTS_PATCH = "store-artifacts"
# Runs before this patch stopped starting nodes at a handover and waited for the running ones.
HAND_OVER_RUNNING_NODES_PATCH = "hand-over-running-nodes"
# Runs before this patch started ready nodes in the order they became ready, not in dbt's (scheduler.py).
START_IN_PLAN_ORDER_PATCH = "start-in-plan-order"
# A node still running at a handover says so every few seconds (worker/node_report.py); one not
# heard from for this long is taken as lost with its worker, and started again.
HANDED_OVER_SILENCE = timedelta(seconds=60)
# Once a handover is due, no node starts, and the run hands over when every node still running has
# run this long: quick nodes finish first, longer ones run on through the handover (see `_execute`).
HANDOVER_SETTLE = timedelta(seconds=2)
# A worker that dies is noticed after this long without a heartbeat; its nodes then move on.
NODE_HEARTBEAT_TIMEOUT = timedelta(seconds=10)
# Memos are rewritten at most this often, and only when something changed: each update is a
# history event holding the whole memo.
MEMO_INTERVAL = timedelta(seconds=2)
# Errors that no retry can fix; activities raise them with these types.
NON_RETRYABLE = ["ProjectNotFound", "Configuration", "InvalidInput", "PlanTooLarge"]
FAIL_FAST_REASON = "Skipping due to fail_fast"
CANCELLED_BY_FAIL_FAST = "Cancelled due to fail_fast"
CANCELLED_RUN = "Run cancelled"
START_HOOK_FAILED = "Skipping because an on-run-start hook failed"


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


def _any_failed(results: list[NodeResult]) -> bool:
    return any(result.status == NodeStatus.error for result in results)


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
        # Whether this workflow run (not the chain) has started a node; see `_history_is_long`.
        self._started_here = False
        self._run_cancelled = False
        # In the order nodes finished (or were skipped): the order of dbt's run_results.json.
        self._results: dict[str, NodeResult] = {}
        self._hook_status: dict[str, NodeStatus] = {}
        self._index_of: dict[str, int] = {}
        self._log_earlier = 0
        # Reports of the nodes this run inherited still running from the run before (by unique_id).
        # Kept whenever they come: the first may arrive before the run has read its carryover.
        self._reports: dict[str, NodeReport] = {}
        self._inherited: set[str] = set()
        self._session = SessionSpec()

    @workflow.signal(name=NODE_REPORT_SIGNAL)
    def node_report(self, report: NodeReport) -> None:
        self._reports[report.unique_id] = report

    @workflow.query(name=AWAITS_NODE_QUERY)
    def awaits_node(self, unique_id: str) -> bool:
        """Whether this run inherited the node still running from the run before, and awaits it."""
        return unique_id in self._inherited and unique_id not in self._results

    @workflow.query(name=SESSION_QUERY)
    def session(self) -> SessionSpec:
        """The session spec the run's nodes use (their requests leave it out)."""
        return self._session

    @workflow.query(name="status")
    def status(self) -> RunState:
        return self._state.model_copy(update={"log": runlog.bounded_log(self._log, earlier=self._log_earlier)})

    @workflow.run
    async def run(self, run: DbtRunInput) -> DbtRunOutput:
        self._secrets = list((run.env or {}).values())
        self._state.command = run.without_secrets()
        carryover = run.carryover
        if carryover is None:
            workflow.upsert_memo({"command": self._state.command})
            carryover = await self._start(run)
            if run.command in LISTING_COMMANDS:
                return self._finish(self._output(run, carryover), carryover)
            lifecycle = self._lifecycle(run, carryover)
            pre_run = await lifecycle.pre_run(self._hook_payload(carryover))
            if pre_run.skip or pre_run.abort:
                return self._finish(self._ended_before_nodes(run, carryover, pre_run), carryover)
            if pre_run.extra_env:
                # Like `env`: what env_var() returns for this run, profiles.yml included; secret too.
                run = run.model_copy(update={"env": {**(run.env or {}), **pre_run.extra_env}})
                self._secrets += list(pre_run.extra_env.values())
        else:
            self._inherited = set(carryover.in_flight)
            self._results = {r.unique_id: r for r in carryover.results}
            self._index_of = dict(carryover.index_of)
            self._log = list(carryover.log)
            self._log_earlier = carryover.log_earlier
            self._hook_status = {result.unique_id: result.status for result in carryover.start_hook_results}
            lifecycle = self._lifecycle(run, carryover)

        plan = carryover.plan
        scheduler = DagScheduler(plan.nodes, carryover.threads, workflow.patched(START_IN_PLAN_ORDER_PATCH))
        scheduler.restore({uid: r.status for uid, r in self._results.items()})
        scheduler.resume_running(carryover.in_flight)
        if run.carryover is None and plan.start_hooks:
            carryover.start_hook_results = await self._project_hooks(run, carryover, "on-run-start")
            if plan.skip_nodes_if_on_run_start_fails and _any_failed(carryover.start_hook_results):
                self._skip_all(plan, scheduler)
        try:
            in_flight = await self._execute(run, carryover, scheduler)
        except asyncio.CancelledError:
            self._set_status_attribute(plan, "cancelled")
            # dbt runs on-run-end hooks after an interrupted run too (audit rows, grants, uploads).
            await self._store_artifacts(run, carryover, await self._end_hooks(run, carryover))
            raise
        if scheduler.pending or in_flight:
            self._continue_as_new(run, carryover, in_flight)
        end_hook_results = await self._end_hooks(run, carryover)
        output = self._output(run, carryover)
        output.node_results = self._run_results(carryover, end_hook_results)
        output.selected = [node.unique_id for node in plan.nodes]
        output.success = all(r.status == NodeStatus.success for r in output.node_results)
        await self._store_artifacts(run, carryover, end_hook_results, output)
        event = "on_success" if output.success else "on_failure"
        if not await lifecycle.post_run(event, self._hook_payload(carryover, output)):
            output.success = False
        return self._finish(self._output(run, carryover, output), carryover)

    def _lifecycle(self, run: DbtRunInput, carryover: Carryover) -> LifecycleHookRunner:
        """The run's own `hooks` replace the project's entirely (empty lists turn them off)."""
        hooks = carryover.plan.lifecycle_hooks if run.hooks is None else LifecycleHooks.model_validate(run.hooks)
        return LifecycleHookRunner(hooks, self._say, carryover.hook_runs, carryover.hook_errors)

    def _hook_payload(self, carryover: Carryover, output: DbtRunOutput | None = None) -> dict[str, object]:
        """What a hook workflow receives by default: env values never, compiled SQL not (results are lean)."""
        return {
            "invocation_id": carryover.invocation_id,
            "input": self._state.command,
            "plan": carryover.plan.model_dump(mode="json"),
            "output": output.model_dump(mode="json") if output else None,
        }

    def _ended_before_nodes(self, run: DbtRunInput, carryover: Carryover, pre_run: PreRunOutcome) -> DbtRunOutput:
        """A pre_run hook skipped the run (a success) or failed with `on_error: fail` (a failure)."""
        output = self._output(run, carryover)
        if pre_run.abort:
            output.success = False
            output.summary = pre_run.abort
        else:
            output.skipped = True
            output.skip_reason = pre_run.skip_reason
            output.summary = "Skipped by a pre_run hook" + (f": {pre_run.skip_reason}" if pre_run.skip_reason else "")
        self._say("", output.summary)
        return output

    def _invocation(self, run: DbtRunInput, carryover: Carryover) -> InvocationSpec:
        # The state as the plan fixed it, so every node compares with (and defers to) the same run.
        flags = DbtFlags.of(run).model_copy(update={"state": carryover.plan.state})
        return InvocationSpec(
            invocation_id=carryover.invocation_id,
            run_started_at=carryover.started_at,
            manifest_digest=carryover.plan.manifest_digest,
            flags=None if flags == DbtFlags() else flags,
        )

    async def _project_hooks(self, run: DbtRunInput, carryover: Carryover, hook_type: HookType) -> list[NodeResult]:
        """Run the project's hooks of one type on a worker; they never stop the run by themselves."""
        results = list(self._results.values())
        request = ProjectHooksRequest(
            session=SessionSpec.of(run),
            command=run.command,
            invocation=self._invocation(run, carryover),
            hook_type=hook_type,
            # Lean: the worker reads the compiled code back from the history (elementary and
            # dbt_artifacts read it from dbt's `results`).
            results=results,
        )
        try:
            hook_results = await workflow.execute_activity(
                PROJECT_HOOKS_ACTIVITY,
                request,
                result_type=list[NodeResult],
                start_to_close_timeout=HOOKS_TIMEOUT,
                heartbeat_timeout=NODE_HEARTBEAT_TIMEOUT,
                retry_policy=node_retry_policy(carryover.plan.retry),
                summary=hook_type,
            )
        except ActivityError as err:
            message, _ = _failure_message(err)
            hook_results = [
                NodeResult(
                    unique_id=f"operation.{carryover.plan.project}.{carryover.plan.project}-{hook_type}-0",
                    status=NodeStatus.error,
                    dbt_status="error",
                    message=message,
                )
            ]
        self._say(*runlog.hook_lines(hook_results))
        self._hook_status.update({result.unique_id: result.status for result in hook_results})
        self._memo_dirty = True
        return [result.lean() for result in hook_results]

    async def _end_hooks(self, run: DbtRunInput, carryover: Carryover) -> list[NodeResult]:
        if not carryover.plan.end_hooks:
            return []
        return await self._project_hooks(run, carryover, "on-run-end")

    def _run_results(self, carryover: Carryover, end_hook_results: list[NodeResult]) -> list[NodeResult]:
        """Every result as dbt's run_results.json lists them: on-run-start, nodes as they finished, on-run-end."""
        return carryover.start_hook_results + list(self._results.values()) + end_hook_results

    async def _store_artifacts(
        self,
        run: DbtRunInput,
        carryover: Carryover,
        end_hook_results: list[NodeResult],
        output: DbtRunOutput | None = None,
    ) -> None:
        """Keep the run's record (dbt's artifacts, compiled SQL, the log) in the artifact store.

        Runs after the last node and on-run-end, for failed and cancelled runs too (`output` is None
        then). A store that stays unreachable fails the run with the store named; the node results
        stay in the output.
        """
        options = carryover.plan.artifacts
        if options is None or not workflow.patched(STORE_ARTIFACTS_PATCH):
            return
        plan = carryover.plan
        results = self._run_results(carryover, end_hook_results)
        elapsed = (workflow.now() - carryover.started_at).total_seconds()
        nodes = {node.unique_id: node for node in plan.nodes}
        footer = runlog.footer_lines(results, elapsed, plan.stat_line, nodes) if output is not None else []
        request = StoreArtifactsRequest(
            session=SessionSpec.of(run),
            command=run.command,
            invocation=self._invocation(run, carryover),
            options=options,
            workflow_id=workflow.info().workflow_id,
            results=results,
            log=self._log + [runlog.masked_line(line, self._secrets) for line in footer],
            elapsed_time=elapsed,
        )
        try:
            stored = await workflow.execute_activity(
                STORE_ARTIFACTS_ACTIVITY,
                request,
                result_type=StoredArtifacts,
                start_to_close_timeout=STORE_TIMEOUT,
                heartbeat_timeout=NODE_HEARTBEAT_TIMEOUT,
                retry_policy=STORE_RETRY,
                summary="store artifacts",
            )
        except ActivityError as err:
            message, _ = _failure_message(err)
            self._say(f"error: the run's artifacts were not kept: {message}")
            if output is not None:
                output.store_error = message
                output.success = False
            return
        if output is not None:
            output.artifacts = stored.artifacts
            output.log_path = stored.log_path

    def _skip_all(self, plan: Plan, scheduler: DagScheduler) -> None:
        """The project asked dbt to skip every node when an on-run-start hook fails."""
        for uid in scheduler.skip_pending(START_HOOK_FAILED):
            self._results[uid] = NodeResult(
                unique_id=uid, status=NodeStatus.skipped, dbt_status="skipped", message=START_HOOK_FAILED
            )

    async def _start(self, run: DbtRunInput) -> Carryover:
        if run.command not in COMMANDS:
            raise ApplicationError(
                f"unknown command '{run.command}'; use one of: {', '.join(COMMANDS)}",
                type="InvalidInput",
                non_retryable=True,
            )
        try:
            check_run_input(run)
        except BadRunInput as err:
            raise ApplicationError(str(err), type="InvalidInput", non_retryable=True) from None
        if run.hooks is not None:
            try:
                LifecycleHooks.model_validate(run.hooks)
            except ValidationError as err:
                raise ApplicationError(
                    f"input 'hooks': {validation_message(err)}", type="InvalidInput", non_retryable=True
                ) from None
        started = workflow.now()
        plan = await self._plan(run)
        if plan.search_attributes:
            workflow.upsert_search_attributes(
                [
                    SearchAttributeKey.for_keyword(name).value_set(value)
                    for name, value in plan.search_attributes.items()
                ]
            )
        threads = run.threads or plan.threads
        if plan.source_note:
            self._say(plan.source_note)
        if plan.reparsed_seconds is not None:
            self._say(runlog.reparsed_line(plan.reparsed_seconds))
        if plan.state is not None:
            self._say(runlog.state_line(plan.state, run.defer))
        if run.command not in LISTING_COMMANDS:
            self._say(*runlog.header_lines(__version__, plan.project_summary, threads, plan.target, len(plan.nodes)))
        return Carryover(
            plan=plan,
            invocation_id=str(workflow.uuid4()),
            started_at=started,
            threads=threads,
            results=[],
            index_of={},
            log=[],
        )

    def _output(self, run: DbtRunInput, carryover: Carryover, output: DbtRunOutput | None = None) -> DbtRunOutput:
        """The run's output (a new one, or `output` completed) with the lifecycle hooks' record."""
        output = output or DbtRunOutput(
            invocation_id=carryover.invocation_id,
            project=carryover.plan.project,
            command=run.command,
            success=True,
            selected=carryover.plan.selected,
            project_revision=carryover.plan.project_revision,
        )
        output.hook_runs = list(carryover.hook_runs)
        output.hook_errors = list(carryover.hook_errors)
        return output

    def _say(self, *lines: str) -> None:
        """Add run log lines; every change of a run's state says a line, so this also marks the memo stale."""
        self._log.extend(runlog.masked_line(line, self._secrets) for line in lines)
        self._memo_dirty = True

    async def _plan(self, run: DbtRunInput) -> Plan:
        request = PlanRequest(
            session=SessionSpec.of(run),
            command=run.command,
            select=run.select,
            exclude=run.exclude,
            selector=run.selector,
            resource_types=run.resource_types,
            exclude_resource_types=run.exclude_resource_types,
            unique_ids=run.unique_ids,
            flags=DbtFlags.of(run),
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

    def _index(self, uid: str) -> int:
        return self._index_of.setdefault(uid, len(self._index_of) + 1)

    async def _execute(self, run: DbtRunInput, carryover: Carryover, scheduler: DagScheduler) -> list[str]:
        """Run nodes until none is left, or until this workflow run should hand over.

        Returns the nodes still running at a handover: they keep running and report to the next run.

        Why a handover waits up to HANDOVER_SETTLE: the server refuses to close a run while results
        it has not shown the workflow are waiting (an activity that completed during the closing
        task), and the worker then replays the run's whole history from the start (25 s at 45,000
        events, measured in the SDK's sandbox; about half that outside it). Letting the nodes
        started last finish first makes that race rare, since only nodes that have run for a while
        are left and they seldom end in that instant; waiting for every node instead would idle
        the free threads for as long as the slowest one runs.
        """
        plan = carryover.plan
        self._session = SessionSpec.of(run)
        invocation = self._invocation(run, carryover)
        retry_policy = node_retry_policy(plan.retry)
        nodes = {node.unique_id: node for node in plan.nodes}
        total = len(plan.nodes)
        running: dict[asyncio.Task[NodeResult], PlannedNode] = {}
        started_at: dict[asyncio.Task[NodeResult], datetime] = {}
        self._state.node_status = scheduler.status

        def node_run(node: PlannedNode) -> Coroutine[None, None, NodeResult]:
            uid = node.unique_id
            index = self._index(uid)
            request = NodeRequest(command=run.command, invocation=invocation, unique_id=uid, index=index, total=total)
            return self._run_node(node, request, retry_policy)

        def start_ready() -> None:
            if self._history_is_long(run):
                return  # no node starts once a handover is due
            for node in scheduler.start_ready():
                task = asyncio.ensure_future(node_run(node))
                running[task], started_at[task] = node, workflow.now()
                self._say(runlog.start_line(self._index(node.unique_id), total, node))
                self._started_here = True

        def until_handover() -> timedelta | None:
            """None while no handover is due; else how long until the nodes started last have settled."""
            if not (self._history_is_long(run) and workflow.patched(HAND_OVER_RUNNING_NODES_PATCH)):
                return None
            youngest = max((started_at[task] for task in running if task in started_at), default=None)
            return max(timedelta(0), HANDOVER_SETTLE - (workflow.now() - youngest)) if youngest else timedelta(0)

        def record(result: NodeResult) -> None:
            uid = result.unique_id
            # Kept lean: what the node's macros logged goes to the run log; its compiled SQL and phase
            # timings stay in its own event, so nothing the run carries on grows with the project's SQL.
            self._results[uid] = result.lean()
            self._say(*result.log_lines, runlog.finish_line(self._index(uid), total, nodes[uid], result))
            for skipped in scheduler.finish(uid, result.status):
                record_skip(skipped, None)  # as in dbt's run_results: a skipped child has no message
            if run.fail_fast and result.status == NodeStatus.error:
                for task in running:
                    task.cancel()
                for skipped in scheduler.skip_pending(FAIL_FAST_REASON):
                    record_skip(skipped, FAIL_FAST_REASON)

        def record_skip(uid: str, message: str | None) -> None:
            self._results[uid] = NodeResult(
                unique_id=uid, status=NodeStatus.skipped, dbt_status="skipped", message=message
            )
            self._say(runlog.finish_line(self._index(uid), total, nodes[uid], self._results[uid]))

        for uid in carryover.in_flight:
            node = nodes[uid]
            running[asyncio.ensure_future(self._handed_over(node, lambda node=node: node_run(node)))] = node
        start_ready()
        memo_keeper = asyncio.ensure_future(self._keep_memo())
        try:
            while running:
                wait = until_handover()
                if wait == timedelta(0):
                    return [node.unique_id for node in running.values()]
                timeout = wait.total_seconds() if wait else None
                done, _ = await workflow.wait(list(running), timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    running.pop(task)
                    started_at.pop(task, None)
                    record(task.result())
                start_ready()
            return []
        except asyncio.CancelledError:
            await self._cancel(running, scheduler)
            raise
        finally:
            memo_keeper.cancel()

    async def _cancel(self, running: dict[asyncio.Task[NodeResult], PlannedNode], scheduler: DagScheduler) -> None:
        """The run was cancelled: stop every running node (their queries too) and wait for them."""
        self._run_cancelled = True
        for task in running:
            task.cancel()
        if running:
            await workflow.wait(list(running))
        for task in running:
            result = task.result()
            self._results[result.unique_id] = result.lean()
            if result.status != NodeStatus.cancelled:  # it finished before the cancellation reached it
                scheduler.finish(result.unique_id, result.status)
        for uid in scheduler.cancel_unfinished():
            cancelled = NodeResult(unique_id=uid, status=NodeStatus.cancelled, dbt_status="cancelled")
            self._results.setdefault(uid, cancelled.model_copy(update={"message": CANCELLED_RUN}))
        self._say("", CANCELLED_RUN + ".", runlog.done_line(list(self._results.values())))
        self._memo_dirty = True
        self._flush_memo()

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
                return self._cancelled(node.unique_id)
            message, _ = _failure_message(err)
            return NodeResult(unique_id=node.unique_id, status=NodeStatus.error, dbt_status="error", message=message)

    async def _handed_over(
        self, node: PlannedNode, start_again: Callable[[], Coroutine[None, None, NodeResult]]
    ) -> NodeResult:
        """The outcome of a node the previous run started and handed over still running.

        It arrives by signal (worker/node_report.py); a node that asks for another attempt, or
        that says nothing for HANDED_OVER_SILENCE (its worker died), is started again here.
        """
        uid = node.unique_id
        try:
            while True:
                await workflow.wait_condition(lambda: uid in self._reports, timeout=HANDED_OVER_SILENCE)
                report = self._reports.pop(uid)
                if report.result is not None:
                    return report.result
                if report.retry:
                    break
        except TimeoutError:
            self._say(f"{uid} was not heard from for {HANDED_OVER_SILENCE.total_seconds():.0f} s; starting it again")
        except asyncio.CancelledError:
            return self._cancelled(uid)
        return await start_again()

    def _history_is_long(self, run: DbtRunInput) -> bool:
        """Whether to hand over to a fresh run (continue-as-new); nodes still running go on and report to it.

        Decided on the history's real length and size against the run's own bounds, well
        inside Temporal's limits (51,200 events, 50 MB). The server's suggestion comes much
        earlier (a few thousand events) and would hand over, draining every slot, many
        times per big run, so it is not followed alone. A run that has not started a node
        never hands over: one whose carryover alone passed the bounds would otherwise
        continue as new forever without running anything.
        """
        if not self._started_here:
            return False
        info = workflow.info()
        return (
            info.get_current_history_length() > run.continue_as_new_after_events
            or info.get_current_history_size() > run.continue_as_new_after_bytes
        )

    def _cancelled(self, uid: str) -> NodeResult:
        return NodeResult(
            unique_id=uid,
            status=NodeStatus.cancelled,
            dbt_status="cancelled",
            message=CANCELLED_RUN if self._run_cancelled else CANCELLED_BY_FAIL_FAST,
        )

    def _continue_as_new(self, run: DbtRunInput, carryover: Carryover, in_flight: list[str]) -> None:
        handover = carryover.model_copy(
            update={
                "in_flight": in_flight,
                "results": list(self._results.values()),
                "index_of": self._index_of,
                "log": self._log[-runlog.LOG_MEMO_LINES :],
                "log_earlier": self._log_earlier + max(0, len(self._log) - runlog.LOG_MEMO_LINES),
            }
        )
        workflow.continue_as_new(
            run.model_copy(update={"carryover": handover}), memo={"command": self._state.command, **self._live_memo()}
        )

    async def _keep_memo(self) -> None:
        """Flush the memo when something changed, then rest for MEMO_INTERVAL.

        One timer per flush, and only while the run changes; waiting for nodes with a
        timeout instead would start and cancel a timer on every turn of the node loop.
        """
        while True:
            await workflow.wait_condition(lambda: self._memo_dirty)
            self._flush_memo()
            await asyncio.sleep(MEMO_INTERVAL.total_seconds())

    def _live_memo(self) -> dict[str, object]:
        # Project hooks are shown beside the nodes, as dbt lists them in its results.
        status = {**self._hook_status, **self._state.node_status}
        return {
            "node_status": runlog.bounded_node_status(status),
            "progress": runlog.progress(status),
            "log": runlog.bounded_log(self._log, earlier=self._log_earlier),
        }

    def _flush_memo(self) -> None:
        if not self._memo_dirty:
            return
        workflow.upsert_memo(self._live_memo())
        self._memo_dirty = False

    def _set_status_attribute(self, plan: Plan, status: str) -> None:
        """Keep DbtStatus current, where the namespace has it registered (the plan says so)."""
        if STATUS_ATTRIBUTE in plan.search_attributes:
            workflow.upsert_search_attributes([SearchAttributeKey.for_keyword(STATUS_ATTRIBUTE).value_set(status)])

    def _finish(self, output: DbtRunOutput, carryover: Carryover) -> DbtRunOutput:
        output.elapsed_time = (workflow.now() - carryover.started_at).total_seconds()
        if output.node_results:
            plan = carryover.plan
            nodes = {node.unique_id: node for node in plan.nodes}
            self._say(*runlog.footer_lines(output.node_results, output.elapsed_time, plan.stat_line, nodes))
            output.summary = runlog.done_line(output.node_results)
        self._memo_dirty = True
        self._flush_memo()
        self._state.finished = True
        self._state.output = output
        outcome = "skipped" if output.skipped else "success" if output.success else "failed"
        self._set_status_attribute(carryover.plan, outcome)
        # The worker's one line for the run's end (the logger is silent while a history replays).
        workflow.logger.info(
            "run %s %s in %.1f s: %s", workflow.info().workflow_id, outcome, output.elapsed_time, output.summary
        )
        if not output.success:
            raise RunFailed(output.summary or "dbt run failed", output, type="DbtRunFailed", non_retryable=True)
        return output

"""Client-side view of runs: start one, read its live state, wait for its end.

Everything here talks to the Temporal server only (memo, describe, result),
never to a worker, so it works for finished runs and from any machine.
"""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from temporalio.api.enums.v1 import PendingActivityState, TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError, WorkflowHandle
from temporalio.common import TypedSearchAttributes
from temporalio.exceptions import ApplicationError, CancelledError, TerminatedError, TimeoutError
from temporalio.service import RPCError, RPCStatusCode

from dbt_temporal.client.node_details import read_node_details, with_details
from dbt_temporal.client.schedules import SCHEDULED_BY_ATTRIBUTE
from dbt_temporal.config.settings import Settings
from dbt_temporal.contract import (
    LISTING_COMMANDS,
    RUN_OPERATION,
    SHOW_COMMAND,
    WORKFLOW_TYPE,
    DbtRunInput,
    DbtRunOutput,
    NodeStatus,
)

# Failure types that mean the request itself was wrong (exit code 2 on the CLI).
USAGE_FAILURES = {"InvalidInput", "Configuration", "ProjectNotFound"}
# A worker long-polls a task queue for up to a minute; one not seen for longer is gone.
POLLER_SEEN_WITHIN = timedelta(minutes=2)

RunStatus = Literal["running", "completed", "failed", "cancelled", "terminated", "continued_as_new", "timed_out"]
_STATUS_WORDS: dict[WorkflowExecutionStatus, RunStatus] = {
    WorkflowExecutionStatus.RUNNING: "running",
    WorkflowExecutionStatus.COMPLETED: "completed",
    WorkflowExecutionStatus.FAILED: "failed",
    WorkflowExecutionStatus.CANCELED: "cancelled",
    WorkflowExecutionStatus.TERMINATED: "terminated",
    WorkflowExecutionStatus.CONTINUED_AS_NEW: "continued_as_new",
    WorkflowExecutionStatus.TIMED_OUT: "timed_out",
}


def status_word(status: WorkflowExecutionStatus | None) -> RunStatus:
    return _STATUS_WORDS.get(status, "running") if status is not None else "running"


class RunReport(DbtRunOutput):
    """A run as every command prints it with `--output json`, in every outcome.

    The workflow's output fields (empty until the run ends, or when it ended without one:
    cancelled, or failed before planning) plus the run's identity and live state, so a
    script reads the same keys from `submit`, `status`, `reset` and `cancel`.
    """

    # Every key is always printed, so the schema marks every key required.
    model_config = ConfigDict(extra="forbid", json_schema_serialization_defaults_required=True)

    workflow_id: str
    run_id: str | None = None
    task_queue: str | None = None
    status: RunStatus = Field(description="Temporal's execution status of the run.")
    # The workflow's output fields, relaxed for runs that have none yet (or never will).
    invocation_id: str | None = None
    success: bool = False
    command: str | None = None
    error: str | None = Field(default=None, description="Why the run failed, when it did.")
    error_type: str | None = Field(
        default=None, description="The failure's type, e.g. DbtRunFailed, InvalidInput, Cancelled."
    )
    input: dict[str, Any] = Field(default_factory=dict, description="The run's input (env: key names only).")
    scheduled_by: str | None = Field(default=None, description="The schedule that started the run, if one did.")
    node_status: dict[str, NodeStatus] = Field(default_factory=dict, description="Each node's latest status.")
    progress: dict[str, int] = Field(default_factory=dict, description="Node counts per status, and the total.")
    start_time: datetime | None = None
    close_time: datetime | None = None


def run_report_schema() -> str:
    """The JSON schema of `RunReport`, as committed in docs/run-output.schema.json."""
    schema = RunReport.model_json_schema(mode="serialization")
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


class NodeRetry(BaseModel):
    """A node Temporal is retrying: its attempt, and when the next one starts (None: running now)."""

    attempt: int
    next_attempt_at: datetime | None = None


class RunView(BaseModel):
    """A run as the CLI shows it."""

    workflow_id: str
    run_id: str | None = None
    task_queue: str | None = None
    status: RunStatus
    command: dict[str, Any] = Field(default_factory=dict)
    node_status: dict[str, str] = Field(default_factory=dict)
    progress: dict[str, int] = Field(default_factory=dict)
    log: list[str] = Field(default_factory=list)
    start_time: datetime | None = None
    close_time: datetime | None = None
    output: DbtRunOutput | None = None
    error: str | None = None
    error_type: str | None = None
    # The schedule that started the run (Temporal's TemporalScheduledById), if one did.
    scheduled_by: str | None = None
    # Nodes past their first attempt, by unique_id (from the run's pending activities).
    retries: dict[str, NodeRetry] = Field(default_factory=dict)

    @property
    def duration_seconds(self) -> float | None:
        if self.start_time and self.close_time:
            return (self.close_time - self.start_time).total_seconds()
        return None

    @property
    def running(self) -> bool:
        return self.status == "running"

    @property
    def matched_nothing(self) -> bool:
        """The run ended well but its selection matched no node (dbt warns, and exits 0)."""
        output = self.output
        return output is not None and output.success and not output.selected and not output.node_results

    def selection(self) -> str:
        """The selection the run was given, as a user would type it."""
        parts = [f"--{flag} {self.command[flag]}" for flag in ("select", "exclude") if self.command.get(flag)]
        return " ".join(parts) or "(everything)"

    def report(self) -> RunReport:
        output = self.output.model_dump() if self.output else {}
        node_status = dict(self.node_status)
        if self.output:
            node_status.update({r.unique_id: r.status for r in self.output.node_results})
        return RunReport.model_validate(
            {
                **output,
                "workflow_id": self.workflow_id,
                "run_id": self.run_id,
                "task_queue": self.task_queue,
                "status": self.status,
                "command": output.get("command") or self.command.get("command"),
                "project": output.get("project") or self.command.get("project"),
                "cancelled": bool(output.get("cancelled")) or self.status == "cancelled",
                "error": self.error,
                "error_type": self.error_type,
                "input": self.command,
                "node_status": node_status,
                "progress": self.progress,
                "start_time": self.start_time,
                "close_time": self.close_time,
                "scheduled_by": self.scheduled_by,
            }
        )


def is_listing(command: dict[str, Any]) -> bool:
    return command.get("command") in LISTING_COMMANDS


def prints_output(command: dict[str, Any]) -> bool:
    """Whether the run's purpose is what its nodes print (show's rows, a macro's log lines): a terminal
    then gets the run log, as off a terminal, instead of the live node table."""
    return command.get("command") in (SHOW_COMMAND, RUN_OPERATION)


def new_workflow_id(run: DbtRunInput, local_project: str | None = None) -> str:
    """`dbt-<project>-<command>-<UTC time>-<4 hex>`; the project part is left out when it is not known here."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    project = run.project or local_project
    command = run.command.replace(" ", "-")  # `docs generate` -> docs-generate: ids stay one shell word
    return "-".join(["dbt", *([project] if project else []), command, stamp, secrets.token_hex(2)])


def ui_link(settings: Settings, workflow_id: str) -> str | None:
    """The run's page in the Temporal UI: TEMPORAL_UI_URL's, or Temporal Cloud's; None when unknown."""
    base = settings.temporal_ui_url
    if base is None and settings.temporal_address.endswith(".tmprl.cloud:7233"):
        base = "https://cloud.temporal.io"
    if base is None:
        return None
    return f"{base.rstrip('/')}/namespaces/{settings.temporal_namespace}/workflows/{workflow_id}"


async def start_run(client: Client, settings: Settings, run: DbtRunInput, workflow_id: str) -> WorkflowHandle:
    return await start_on_queue(client, settings.temporal_task_queue, run, workflow_id)


async def start_on_queue(client: Client, task_queue: str, run: DbtRunInput, workflow_id: str) -> WorkflowHandle:
    return await client.start_workflow(
        WORKFLOW_TYPE,
        run,
        id=workflow_id,
        task_queue=task_queue,
        result_type=DbtRunOutput,
    )


async def worker_polls(client: Client, task_queue: str) -> bool:
    """Whether a worker has polled the task queue lately (Temporal's task queue description).

    When the server will not describe the queue (a permission, an old server), say yes: the
    answer only decides whether to warn, and a false warning is worse than none.
    """
    try:
        response = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=client.namespace,
                task_queue=TaskQueue(name=task_queue),
                task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
            )
        )
    except RPCError as err:
        if err.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED):
            raise
        return True
    seen_since = datetime.now(UTC) - POLLER_SEEN_WITHIN
    return any(p.last_access_time.ToDatetime().replace(tzinfo=UTC) >= seen_since for p in response.pollers)


def _failure_details(err: BaseException) -> tuple[str, str | None, DbtRunOutput | None]:
    cause = err.__cause__ or getattr(err, "cause", None)
    if isinstance(cause, ApplicationError):
        output = None
        if cause.type == "DbtRunFailed" and cause.details:
            output = DbtRunOutput.model_validate(cause.details[0])
        return cause.message, cause.type, output
    if isinstance(cause, CancelledError):
        return "run cancelled", "Cancelled", None
    if isinstance(cause, TerminatedError):
        return "run terminated", "Terminated", None
    if isinstance(cause, TimeoutError):
        return "run timed out", "Timeout", None
    return str(cause or err), None, None


async def fetch_view(client: Client, handle: WorkflowHandle) -> RunView:
    """The run as the CLI shows it; once it has ended, its nodes' results in full (compiled code included)."""
    description = await handle.describe()
    memo = await description.memo()
    view = RunView(
        workflow_id=handle.id,
        run_id=description.run_id,
        task_queue=description.task_queue,
        status=status_word(description.status),
        command=memo.get("command") or {},
        node_status=memo.get("node_status") or {},
        progress=memo.get("progress") or {},
        log=memo.get("log") or [],
        start_time=description.start_time,
        close_time=description.close_time,
        scheduled_by=_scheduled_by(description.typed_search_attributes),
        retries=_retries(description.raw_description.pending_activities),
    )
    if description.status != WorkflowExecutionStatus.RUNNING:
        try:
            view.output = await handle.result()
        except WorkflowFailureError as err:
            view.error, view.error_type, view.output = _failure_details(err)
    if view.output is not None and view.output.node_results:
        details = await read_node_details(client, handle.id, description.run_id)
        view.output.node_results = with_details(view.output.node_results, details)
    return view


def runs_query(filters: dict[str, str | None]) -> str:
    """A visibility query for dbt runs, narrowed by search attribute values (DbtProject="shop", ...)."""
    clauses = [f'WorkflowType="{WORKFLOW_TYPE}"']
    for attribute, value in filters.items():
        if value is not None:
            escaped = value.replace("\\", "\\\\").replace('"', '\\"')
            clauses.append(f'{attribute}="{escaped}"')
    return " AND ".join(clauses)


async def list_runs(client: Client, limit: int = 20, filters: dict[str, str | None] | None = None) -> list[RunView]:
    views: list[RunView] = []
    async for execution in client.list_workflows(runs_query(filters or {}), limit=limit):
        memo = await execution.memo()
        command = dict(memo.get("command") or {})
        # A run that named no project still shows the one it ran, from its search attribute.
        attributes = {pair.key.name: pair.value for pair in execution.typed_search_attributes}
        command["project"] = command.get("project") or attributes.get("DbtProject")
        views.append(
            RunView(
                workflow_id=execution.id,
                run_id=execution.run_id,
                task_queue=execution.task_queue,
                status=status_word(execution.status),
                command=command,
                progress=memo.get("progress") or {},
                start_time=execution.start_time,
                close_time=execution.close_time,
                scheduled_by=_scheduled_by(execution.typed_search_attributes),
            )
        )
    return views


def _retries(pending: Any) -> dict[str, NodeRetry]:
    """Node activities (their activity id is the node's unique_id) on a second or later attempt."""
    retries = {}
    for activity in pending:
        if activity.attempt > 1:
            waiting = activity.state == PendingActivityState.PENDING_ACTIVITY_STATE_SCHEDULED
            known = waiting and activity.HasField("next_attempt_schedule_time")
            next_at = activity.next_attempt_schedule_time.ToDatetime(tzinfo=UTC) if known else None
            retries[activity.activity_id] = NodeRetry(attempt=activity.attempt, next_attempt_at=next_at)
    return retries


def _scheduled_by(attributes: TypedSearchAttributes) -> str | None:
    value = next((pair.value for pair in attributes if pair.key.name == SCHEDULED_BY_ATTRIBUTE), None)
    return str(value) if value else None


class ResetError(ValueError):
    """A run that cannot be reset the way asked; the message says why and what to do."""


async def original_input(client: Client, handle: WorkflowHandle) -> DbtRunInput:
    """The input the run was started with, read back from its history."""
    async for event in handle.fetch_history_events():
        payloads = event.workflow_execution_started_event_attributes.input.payloads
        [run] = await client.data_converter.decode(payloads, [DbtRunInput])
        return run
    raise ResetError(f"run '{handle.id}' has no history")


def failed_nodes(view: RunView) -> list[str]:
    """Nodes to run again after a failure: those that errored, were skipped or were cancelled.

    Project hooks (`operation.*`) are not nodes to select: the new run runs them anyway.
    """
    if view.output is not None and view.output.node_results:
        statuses = {r.unique_id: r.status for r in view.output.node_results}
    else:
        statuses = dict(view.node_status)
    return [uid for uid, status in statuses.items() if status != "success" and not uid.startswith("operation.")]


async def rerun_failed(client: Client, workflow_id: str) -> WorkflowHandle:
    """A new run of only the nodes that did not succeed last time, like `dbt retry`.

    It goes to the original run's task queue, whose workers serve its project; nodes that
    project no longer has are refused rather than silently dropped.
    """
    previous = client.get_workflow_handle(workflow_id, result_type=DbtRunOutput)
    view = await fetch_view(client, previous)
    if view.running:
        raise ResetError(f"run '{workflow_id}' is still running; wait for it or cancel it first")
    if view.output is None and not view.node_status:
        raise ResetError(f"run '{workflow_id}' ended before running any node ({view.error}); use --from-start")
    todo = failed_nodes(view)
    if not todo:
        raise ResetError(f"every node of '{workflow_id}' succeeded; nothing to re-run")
    queue = view.task_queue or ""
    if not await worker_polls(client, queue):
        raise ResetError(
            f"no worker polls task queue '{queue}', where run '{workflow_id}' ran; "
            f"start one (dbtt worker --task-queue {queue}) and reset again"
        )
    # The latest run of a long run carries its predecessor's state; a re-run starts afresh.
    run = (await original_input(client, previous)).model_copy(update={"unique_ids": todo, "carryover": None})
    new_id = f"{workflow_id}-retry-{datetime.now(UTC).strftime('%H%M%S')}"
    unknown = await unknown_nodes(client, queue, run, f"{new_id}-check")
    if unknown:
        shown = ", ".join(unknown[:5]) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
        raise ResetError(
            f"the project on task queue '{queue}' no longer has {shown}; "
            "submit a new run instead (or reset --from-start)"
        )
    return await start_on_queue(client, queue, run, new_id)


async def unknown_nodes(client: Client, task_queue: str, run: DbtRunInput, check_id: str) -> list[str]:
    """Of the run's `unique_ids`, those the workers' project does not have, found by a listing run."""
    listing = run.model_copy(update={"command": "ls"})
    handle = await start_on_queue(client, task_queue, listing, check_id)
    try:
        output = await handle.result()
    except WorkflowFailureError as err:
        message, _, _ = _failure_details(err)
        raise ResetError(f"could not check the nodes to re-run: {message}") from None
    known = set(output.selected)
    return [uid for uid in run.unique_ids or [] if uid not in known]


async def reset_from_start(client: Client, workflow_id: str) -> WorkflowHandle:
    """Temporal's reset to the first workflow task: the same run id history, executed again."""
    from temporalio.api.common.v1 import WorkflowExecution
    from temporalio.api.enums.v1 import EventType
    from temporalio.api.workflowservice.v1 import ResetWorkflowExecutionRequest

    handle = client.get_workflow_handle(workflow_id)
    first_task = None
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            first_task = event.event_id
            break
    if first_task is None:
        raise ResetError(f"run '{workflow_id}' has not started yet; nothing to reset")
    response = await client.workflow_service.reset_workflow_execution(
        ResetWorkflowExecutionRequest(
            namespace=client.namespace,
            workflow_execution=WorkflowExecution(workflow_id=workflow_id),
            reason="dbtt reset --from-start",
            workflow_task_finish_event_id=first_task,
            request_id=secrets.token_hex(16),
        )
    )
    return client.get_workflow_handle(workflow_id, run_id=response.run_id, result_type=DbtRunOutput)

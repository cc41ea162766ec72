"""Client-side view of runs: start one, read its live state, wait for its end.

Everything here talks to the Temporal server only (memo, describe, result),
never to a worker, so it works for finished runs and from any machine.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ApplicationError, CancelledError, TerminatedError, TimeoutError

from dbt_temporal.config.settings import Settings
from dbt_temporal.contract import WORKFLOW_TYPE, DbtRunInput, DbtRunOutput

# Failure types that mean the request itself was wrong (exit code 2 on the CLI).
USAGE_FAILURES = {"InvalidInput", "Configuration", "ProjectNotFound"}


class RunView(BaseModel):
    """A run as the CLI shows it."""

    workflow_id: str
    status: str  # Temporal's execution status, lower case: running, completed, failed, ...
    command: dict[str, Any] = Field(default_factory=dict)
    node_status: dict[str, str] = Field(default_factory=dict)
    progress: dict[str, int] = Field(default_factory=dict)
    log: list[str] = Field(default_factory=list)
    start_time: datetime | None = None
    close_time: datetime | None = None
    output: DbtRunOutput | None = None
    error: str | None = None
    error_type: str | None = None

    @property
    def running(self) -> bool:
        return self.status == "running"


def new_workflow_id(run: DbtRunInput) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return f"dbt-{run.project or 'run'}-{run.command}-{stamp}-{secrets.token_hex(2)}"


def ui_link(settings: Settings, workflow_id: str) -> str:
    namespace = settings.temporal_namespace
    if settings.temporal_address.endswith(".tmprl.cloud:7233"):
        return f"https://cloud.temporal.io/namespaces/{namespace}/workflows/{workflow_id}"
    host, _, port = settings.temporal_address.rpartition(":")
    # The dev server serves its UI on the gRPC port + 1000 unless told otherwise.
    return f"http://{host}:{int(port) + 1000}/namespaces/{namespace}/workflows/{workflow_id}"


async def start_run(client: Client, settings: Settings, run: DbtRunInput, workflow_id: str) -> WorkflowHandle:
    return await client.start_workflow(
        WORKFLOW_TYPE,
        run,
        id=workflow_id,
        task_queue=settings.temporal_task_queue,
        result_type=DbtRunOutput,
    )


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


async def fetch_view(handle: WorkflowHandle) -> RunView:
    description = await handle.describe()
    memo = await description.memo()
    status = description.status.name.lower() if description.status else "unknown"
    view = RunView(
        workflow_id=handle.id,
        status=status,
        command=memo.get("command") or {},
        node_status=memo.get("node_status") or {},
        progress=memo.get("progress") or {},
        log=memo.get("log") or [],
        start_time=description.start_time,
        close_time=description.close_time,
    )
    if description.status != WorkflowExecutionStatus.RUNNING:
        try:
            view.output = await handle.result()
        except WorkflowFailureError as err:
            view.error, view.error_type, view.output = _failure_details(err)
    return view


async def list_runs(client: Client, limit: int = 20) -> list[RunView]:
    views: list[RunView] = []
    async for execution in client.list_workflows(f'WorkflowType="{WORKFLOW_TYPE}"', limit=limit):
        memo = await execution.memo()
        command = dict(memo.get("command") or {})
        # A run that named no project still shows the one it ran, from its search attribute.
        attributes = {pair.key.name: pair.value for pair in execution.typed_search_attributes}
        command["project"] = command.get("project") or attributes.get("DbtProject")
        views.append(
            RunView(
                workflow_id=execution.id,
                status=execution.status.name.lower() if execution.status else "unknown",
                command=command,
                progress=memo.get("progress") or {},
                start_time=execution.start_time,
                close_time=execution.close_time,
            )
        )
    return views


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
    """Nodes to run again after a failure: those that errored, were skipped or were cancelled."""
    if view.output is not None and view.output.node_results:
        return [r.unique_id for r in view.output.node_results if r.status != "success"]
    return [uid for uid, status in view.node_status.items() if status != "success"]


async def rerun_failed(client: Client, settings: Settings, workflow_id: str) -> WorkflowHandle:
    """A new run of only the nodes that did not succeed last time, like `dbt retry`."""
    previous = client.get_workflow_handle(workflow_id, result_type=DbtRunOutput)
    view = await fetch_view(previous)
    if view.running:
        raise ResetError(f"run '{workflow_id}' is still running; wait for it or cancel it first")
    if view.output is None and not view.node_status:
        raise ResetError(f"run '{workflow_id}' ended before running any node ({view.error}); use --from-start")
    todo = failed_nodes(view)
    if not todo:
        raise ResetError(f"every node of '{workflow_id}' succeeded; nothing to re-run")
    # The latest run of a long run carries its predecessor's state; a re-run starts afresh.
    run = (await original_input(client, previous)).model_copy(update={"unique_ids": todo, "carryover": None})
    stamp = datetime.now(UTC).strftime("%H%M%S")
    return await start_run(client, settings, run, f"{workflow_id}-retry-{stamp}")


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

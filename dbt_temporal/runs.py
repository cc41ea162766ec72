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

from dbt_temporal.models import WORKFLOW_TYPE, DbtRunInput, DbtRunOutput
from dbt_temporal.settings import Settings

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
        memo={"command": run.without_secrets()},
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
        views.append(
            RunView(
                workflow_id=execution.id,
                status=execution.status.name.lower() if execution.status else "unknown",
                command=memo.get("command") or {},
                progress=memo.get("progress") or {},
                start_time=execution.start_time,
                close_time=execution.close_time,
            )
        )
    return views

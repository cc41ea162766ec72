"""The compiled SQL and phase timings of a run's nodes, read back from the run's history.

Each node's activity result carries them, an event bounded by that one node. The workflow keeps
only lean results (`NodeResult.lean`): with every node's SQL, a run's output, its carryover at
a handover and the requests of its last steps would grow with the project, past Temporal's 2 MB
payload limit on large ones. Whoever needs the details reads them here: the store step
(run_results.json, the compiled/ tree), on-run-end hooks (dbt's `results`), and `dbtt status`
and `submit` for their JSON report.
"""

from __future__ import annotations

from pydantic import BaseModel, Field
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client

from dbt_temporal.contract import (
    NODE_REPORT_SIGNAL,
    PLAN_ACTIVITY,
    PROJECT_HOOKS_ACTIVITY,
    STORE_ARTIFACTS_ACTIVITY,
    NodeReport,
    NodeResult,
    TimingEntry,
)

# Activities whose results are not node results (every other activity runs one node).
_NOT_NODES = {PLAN_ACTIVITY, STORE_ARTIFACTS_ACTIVITY}


class NodeDetail(BaseModel):
    """What a node's result holds beyond its lean form."""

    compiled_code: str | None = None
    timing: list[TimingEntry] = Field(default_factory=list)


def with_details(results: list[NodeResult], details: dict[str, NodeDetail]) -> list[NodeResult]:
    """The results with the details their nodes' own events hold put back."""
    return [_with_detail(result, details.get(result.unique_id)) for result in results]


def _with_detail(result: NodeResult, detail: NodeDetail | None) -> NodeResult:
    if detail is None:
        return result
    return result.model_copy(update={"compiled_code": detail.compiled_code, "timing": detail.timing})


async def read_node_details(client: Client, workflow_id: str, run_id: str | None) -> dict[str, NodeDetail]:
    """Details of every node of the run, through the runs it continued (continue-as-new).

    The latest outcome of a node wins: a later run's over an earlier one's, a later event over an
    earlier one in the same run.
    """
    details: dict[str, NodeDetail] = {}
    while True:
        previous_run, found = await _read_run(client, workflow_id, run_id)
        for unique_id, detail in found.items():
            details.setdefault(unique_id, detail)
        if not previous_run:
            return details
        run_id = previous_run


async def _read_run(client: Client, workflow_id: str, run_id: str | None) -> tuple[str | None, dict[str, NodeDetail]]:
    """The run this one continued, if any, and the details its events hold."""
    previous_run: str | None = None
    result_types: dict[int, type] = {}  # by scheduled event id: what the activity returns
    found: dict[str, NodeDetail] = {}
    async for event in client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history_events():
        kind = event.event_type
        if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            previous_run = event.workflow_execution_started_event_attributes.continued_execution_run_id or None
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            activity_type = event.activity_task_scheduled_event_attributes.activity_type.name
            if activity_type not in _NOT_NODES:
                hooks = activity_type == PROJECT_HOOKS_ACTIVITY
                result_types[event.event_id] = list[NodeResult] if hooks else NodeResult
        else:
            for result in await _node_results(client, event, result_types):
                found[result.unique_id] = NodeDetail(compiled_code=result.compiled_code, timing=result.timing)
    return previous_run, found


async def _node_results(client: Client, event: HistoryEvent, result_types: dict[int, type]) -> list[NodeResult]:
    """The results an event carries: a node's or the project hooks' completion, a handed-over node's report."""
    if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
        completed = event.activity_task_completed_event_attributes
        result_type = result_types.get(completed.scheduled_event_id)
        if result_type is not None and completed.result.payloads:
            [value] = await client.data_converter.decode(completed.result.payloads, [result_type])
            return value if isinstance(value, list) else [value]
    elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
        signaled = event.workflow_execution_signaled_event_attributes
        if signaled.signal_name == NODE_REPORT_SIGNAL and signaled.input.payloads:
            [report] = await client.data_converter.decode(signaled.input.payloads, [NodeReport])
            return [report.result] if report.result else []
    return []

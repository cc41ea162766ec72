"""Figures derived from a dbtt run: activity spans from the history, per-node overheads.

Clocks: node results carry the worker's wall clock, history events the
server's; both run on this machine, so they are compared directly.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent

from bench.dag import BuildDag
from dbt_temporal.contract import PLAN_ACTIVITY, DbtRunOutput, NodeResult

_CLOSED = {
    EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED: "activity_task_completed_event_attributes",
    EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED: "activity_task_failed_event_attributes",
    EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT: "activity_task_timed_out_event_attributes",
    EventType.EVENT_TYPE_ACTIVITY_TASK_CANCELED: "activity_task_canceled_event_attributes",
}


@dataclass
class ActivitySpan:
    activity_id: str
    activity_type: str
    scheduled: float
    closed: float | None = None
    # Scheduled time minus the last activity completion before it in the history: how long the
    # workflow took to react to the completion that freed this node (a workflow task round trip).
    reaction: float | None = None


@dataclass(frozen=True)
class Spread:
    """Median and 95th percentile of a sample, in milliseconds."""

    median_ms: float
    p95_ms: float
    count: int


def spread(seconds: Sequence[float]) -> Spread | None:
    if not seconds:
        return None
    ordered = sorted(seconds)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return Spread(median_ms=statistics.median(ordered) * 1000, p95_ms=p95 * 1000, count=len(ordered))


def _epoch(event: HistoryEvent) -> float:
    return event.event_time.seconds + event.event_time.nanos / 1e9


def activity_spans(events: Iterable[HistoryEvent]) -> dict[str, ActivitySpan]:
    """Scheduled and closed times of every activity, keyed by activity id (every run of a chain)."""
    spans: dict[str, ActivitySpan] = {}
    by_event_id: dict[int, ActivitySpan] = {}
    last_closed: float | None = None
    for event in events:
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            spans |= {span.activity_id: span for span in by_event_id.values()}
            by_event_id = {}  # event ids start again in each run
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attributes = event.activity_task_scheduled_event_attributes
            by_event_id[event.event_id] = ActivitySpan(
                activity_id=attributes.activity_id,
                activity_type=attributes.activity_type.name,
                scheduled=_epoch(event),
                reaction=None if last_closed is None else _epoch(event) - last_closed,
            )
        elif event.event_type in _CLOSED:
            attributes = getattr(event, _CLOSED[event.event_type])
            span = by_event_id.get(attributes.scheduled_event_id)
            last_closed = _epoch(event)
            if span is not None:
                span.closed = last_closed
    return spans | {span.activity_id: span for span in by_event_id.values()}


@dataclass(frozen=True)
class WorkflowTasks:
    """The workflow's own turns: how long each waited for the worker and how long the worker took."""

    count: int
    failed: int  # failed or timed out (each one means a replay)
    wait: Spread | None  # scheduled -> started
    work: Spread | None  # started -> completed
    runs: int = 1  # workflow runs in the chain (1 + handovers by continue-as-new)


def workflow_tasks(events: Sequence[HistoryEvent]) -> WorkflowTasks:
    scheduled: dict[tuple[int, int], float] = {}
    started: dict[tuple[int, int], float] = {}
    runs = 0
    wait: list[float] = []
    work: list[float] = []
    failed = 0
    for event in events:
        kind = event.event_type
        if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            runs += 1  # event ids start again in each run: task ids below are only compared within one
        elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED:
            scheduled[(runs, event.event_id)] = _epoch(event)
        elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
            origin = (runs, event.workflow_task_started_event_attributes.scheduled_event_id)
            started[(runs, event.event_id)] = _epoch(event)
            if origin in scheduled:
                wait.append(_epoch(event) - scheduled[origin])
        elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            origin = (runs, event.workflow_task_completed_event_attributes.started_event_id)
            if origin in started:
                work.append(_epoch(event) - started[origin])
        elif kind in (EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED, EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT):
            failed += 1
    return WorkflowTasks(count=len(scheduled), failed=failed, wait=spread(wait), work=spread(work), runs=runs)


def history_megabytes(events: Sequence[HistoryEvent]) -> float:
    """Encoded size of the history (Temporal fails a workflow at 50 MB, warns at 10 MB)."""
    return sum(event.ByteSize() for event in events) / 1e6


def plan_payload_bytes(events: Sequence[HistoryEvent]) -> int | None:
    """Encoded size of the plan as it sits in the history (the plan activity's result, in the first run)."""
    plan_scheduled: int | None = None
    for event in events:
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            if event.activity_task_scheduled_event_attributes.activity_type.name == PLAN_ACTIVITY:
                plan_scheduled = event.event_id
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            attributes = event.activity_task_completed_event_attributes
            if attributes.scheduled_event_id == plan_scheduled:
                return attributes.result.ByteSize()
    return None


def largest_event_bytes(events: Sequence[HistoryEvent]) -> int:
    """The biggest single event: the plan, a memo update or a continue-as-new carryover."""
    return max((event.ByteSize() for event in events), default=0)


def plan_seconds(spans: dict[str, ActivitySpan]) -> float | None:
    for span in spans.values():
        if span.activity_type == PLAN_ACTIVITY and span.closed is not None:
            return span.closed - span.scheduled
    return None


@dataclass(frozen=True)
class Overheads:
    """Where a node's time goes beyond dbt's own `execution_time` (see bench/README.md).

    runner:   worker-side run_with_hooks wall minus execution_time (dbtt's node wrapper)
    activity: history scheduled -> closed minus execution_time (dispatch, runner, reporting back)
    reaction: history scheduled minus the activity completion just before it (the workflow's turn)
    gap:      node start minus its last parent's end, worker clock; includes waiting for a free slot
    per_node: activity + reaction: what each node adds to a dependency chain beyond dbt's own time
    """

    runner: Spread | None
    activity: Spread | None
    reaction: Spread | None
    gap: Spread | None
    per_node: Spread | None


def _timed(results: Iterable[NodeResult]) -> dict[str, NodeResult]:
    return {r.unique_id: r for r in results if r.started_at is not None and r.completed_at is not None}


def overheads(output: DbtRunOutput, spans: dict[str, ActivitySpan], dag: BuildDag) -> Overheads:
    results = _timed(output.node_results)
    nodes = {uid: span for uid, span in spans.items() if uid in results and span.closed is not None}
    runner = [(r.completed_at or 0) - (r.started_at or 0) - r.execution_time for r in results.values()]
    activity = {uid: (span.closed or 0) - span.scheduled - results[uid].execution_time for uid, span in nodes.items()}
    reaction = {uid: span.reaction for uid, span in nodes.items() if span.reaction is not None}
    gaps = []
    for uid, result in results.items():
        parents = [results[p] for p in dag.parents.get(uid, []) if p in results]
        if parents:
            gaps.append((result.started_at or 0) - max(p.completed_at or 0 for p in parents))
    return Overheads(
        runner=spread(runner),
        activity=spread(list(activity.values())),
        reaction=spread(list(reaction.values())),
        gap=spread(gaps),
        per_node=spread([activity[uid] + reaction[uid] for uid in reaction if uid in activity]),
    )


def longest_ready_wait(output: DbtRunOutput, dag: BuildDag, threads: int) -> float | None:
    """The longest time a node waited to start, once ready (its parents done), while a thread was free.

    Worker clock. A run that stops starting nodes (a handover that waits for the running ones) shows here.
    """
    results = _timed(output.node_results)
    if not results:
        return None
    spans = [(r.started_at or 0.0, r.completed_at or 0.0) for r in results.values()]
    begin = min(start for start, _ in spans)
    edges = sorted({t for span in spans for t in span})
    longest = 0.0
    for uid, result in results.items():
        ready = max((results[p].completed_at or 0.0 for p in dag.parents.get(uid, []) if p in results), default=begin)
        start = result.started_at or 0.0
        free = 0.0
        for low, high in zip(edges, edges[1:], strict=False):
            low, high = max(low, ready), min(high, start)
            if high > low and sum(a <= low and high <= b for a, b in spans) < threads:
                free += high - low
        longest = max(longest, free)
    return longest


def execution_seconds(output: DbtRunOutput | None) -> float:
    return sum(r.execution_time for r in output.node_results) if output else 0.0


def peak_memory_mb(pid: int) -> float | None:
    """The process's peak resident set (VmHWM), from /proc."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None

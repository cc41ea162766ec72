"""dbt runs on a calendar: Temporal Schedules that start the `dbt_run` workflow with a fixed input.

A schedule is named by its Temporal schedule id. Each run it starts gets the workflow id
`dbt-<name>-<scheduled time>` and Temporal's `TemporalScheduledById` search attribute, which
`dbtt status` shows.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleBackfill,
    ScheduleDescription,
    ScheduleListActionStartWorkflow,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
)

from dbt_temporal.contract import WORKFLOW_TYPE, DbtRunInput

SCHEDULED_BY_ATTRIBUTE = "TemporalScheduledById"
# How the CLI spells Temporal's overlap policies.
OVERLAP_POLICIES = {
    "skip": ScheduleOverlapPolicy.SKIP,
    "buffer-one": ScheduleOverlapPolicy.BUFFER_ONE,
    "buffer-all": ScheduleOverlapPolicy.BUFFER_ALL,
    "cancel-other": ScheduleOverlapPolicy.CANCEL_OTHER,
    "terminate-other": ScheduleOverlapPolicy.TERMINATE_OTHER,
    "allow-all": ScheduleOverlapPolicy.ALLOW_ALL,
}


class ScheduleSummary(BaseModel):
    """A schedule as `dbtt schedule list/describe` print it."""

    name: str
    cron: list[str]
    paused: bool
    note: str | None = None
    command: str | None = None
    project: str | None = None
    select: str | None = None
    overlap: str | None = None
    next_runs: list[datetime] = []
    recent_runs: list[str] = []
    runs_started: int | None = None
    skipped_for_overlap: int | None = None


async def create_schedule(
    client: Client,
    name: str,
    run: DbtRunInput,
    task_queue: str,
    cron: list[str],
    overlap: str,
    catchup_window: timedelta,
    paused: bool,
) -> None:
    await client.create_schedule(
        name,
        Schedule(
            action=ScheduleActionStartWorkflow(WORKFLOW_TYPE, run, id=f"dbt-{name}", task_queue=task_queue),
            spec=ScheduleSpec(cron_expressions=cron),
            policy=SchedulePolicy(overlap=OVERLAP_POLICIES[overlap], catchup_window=catchup_window),
            state=ScheduleState(paused=paused, note="created paused by dbtt" if paused else None),
        ),
        # The server keeps cron expressions only as calendars; the memo keeps them as written.
        memo={"cron": cron},
    )


async def describe_schedule(client: Client, name: str) -> ScheduleSummary:
    description = await client.get_schedule_handle(name).describe()
    action = description.schedule.action
    run = None
    if isinstance(action, ScheduleActionStartWorkflow) and action.args:
        [run] = await client.data_converter.decode(list(action.args)[:1], [DbtRunInput])
    memo = await description.memo()
    return summary_of(description, run, list(memo.get("cron") or []))


def summary_of(description: ScheduleDescription, run: DbtRunInput | None, cron: list[str]) -> ScheduleSummary:
    schedule = description.schedule
    overlap = next((word for word, policy in OVERLAP_POLICIES.items() if policy == schedule.policy.overlap), None)
    return ScheduleSummary(
        name=description.id,
        cron=cron,
        paused=schedule.state.paused,
        note=schedule.state.note,
        command=run.command if run else None,
        project=run.project if run else None,
        select=run.select if run else None,
        overlap=overlap,
        next_runs=list(description.info.next_action_times[:5]),
        recent_runs=[r.action.workflow_id for r in description.info.recent_actions if hasattr(r.action, "workflow_id")],
        runs_started=description.info.num_actions,
        skipped_for_overlap=description.info.num_actions_skipped_overlap,
    )


async def list_schedules(client: Client) -> list[ScheduleSummary]:
    """The schedules that start dbt runs (others on the namespace are left out)."""
    found: list[ScheduleSummary] = []
    async for listed in await client.list_schedules():
        action = listed.schedule.action if listed.schedule else None
        if not isinstance(action, ScheduleListActionStartWorkflow) or action.workflow != WORKFLOW_TYPE:
            continue
        found.append(
            ScheduleSummary(
                name=listed.id,
                cron=list((await listed.memo()).get("cron") or []),
                paused=bool(listed.schedule and listed.schedule.state.paused),
                next_runs=list(listed.info.next_action_times[:1]) if listed.info else [],
            )
        )
    return found


async def pause(client: Client, name: str, paused: bool) -> None:
    handle = client.get_schedule_handle(name)
    if paused:
        await handle.pause(note="paused with dbtt")
    else:
        await handle.unpause(note="unpaused with dbtt")


async def trigger(client: Client, name: str) -> None:
    await client.get_schedule_handle(name).trigger()


async def backfill(client: Client, name: str, start: datetime, end: datetime, overlap: str) -> None:
    await client.get_schedule_handle(name).backfill(
        ScheduleBackfill(start_at=start, end_at=end, overlap=OVERLAP_POLICIES[overlap])
    )


async def delete(client: Client, name: str) -> None:
    await client.get_schedule_handle(name).delete()

"""`dbtt schedule ...`: dbt runs on a calendar (Temporal Schedules)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import typer
from rich.table import Table
from temporalio.service import RPCError, RPCStatusCode

from dbt_temporal.cli import app as cli
from dbt_temporal.cli.readable_help import DbttTyper
from dbt_temporal.cli.run_flags import SelectionFlags, takes_run_flags
from dbt_temporal.cli.safe_text import plain
from dbt_temporal.client import schedules
from dbt_temporal.client.connect import connect

schedule_app = DbttTyper(
    name="schedule",
    help="Run dbt on a calendar: create, list, describe, pause, unpause, trigger, backfill and delete schedules.",
    no_args_is_help=True,
)
NameArgument = typer.Argument(..., metavar="NAME", help="The schedule's name (its Temporal schedule id).")
OverlapOption = typer.Option(
    "skip",
    "--overlap",
    metavar="POLICY",
    help=f"When a run is due while the last one still runs: {', '.join(schedules.OVERLAP_POLICIES)}.",
)

CronOption = typer.Option(..., "--cron", metavar="EXPR", help='Cron expression (UTC), e.g. "0 6 * * *"; repeatable.')
CatchupOption = typer.Option(
    "1h",
    "--catchup-window",
    metavar="DURATION",
    help="How late a missed run may still start (e.g. after a server outage): 30m, 2h, 1d.",
)


def _duration(text: str) -> timedelta:
    """`90s`, `15m`, `2h`, `1d`."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if len(text) < 2 or text[-1] not in units or not text[:-1].isdigit():
        cli.fail(f"--catchup-window takes a duration like 30m, 2h or 1d; got '{text}'")
    return timedelta(seconds=int(text[:-1]) * units[text[-1]])


def _instant(flag: str, text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        cli.fail(f"{flag} takes an ISO date or time, like 2026-11-01 or 2026-11-01T06:00; got '{text}'")
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _refused(err: RPCError, name: str) -> None:
    if err.status == RPCStatusCode.NOT_FOUND:
        cli.fail(f"no schedule named '{name}'; list them with: dbtt schedule list")
    if err.status == RPCStatusCode.ALREADY_EXISTS:
        cli.fail(f"a schedule named '{name}' exists already; delete it first or choose another name")
    if err.status == RPCStatusCode.INVALID_ARGUMENT:
        cli.fail(f"Temporal refused schedule '{name}': {err.message}")
    raise err


def _on_schedule(name: str, action) -> None:  # noqa: ANN001 - a coroutine function of the client
    settings = cli.load_settings()

    async def main() -> None:
        client = await connect(settings)
        try:
            await action(client)
        except RPCError as err:
            _refused(err, name)

    cli.run_async(main())


@schedule_app.command()
@takes_run_flags
def create(
    name: str = NameArgument,
    command: list[str] = cli.CommandArgument,
    cron: list[str] = CronOption,
    overlap: str = OverlapOption,
    catchup_window: str = CatchupOption,
    paused: bool = typer.Option(False, "--paused", help="Create it paused."),
    select: str = cli.SelectOption,
    exclude: str = cli.ExcludeOption,
    vars_: str = cli.VarsOption,
    target: str = cli.TargetOption,
    full_refresh: bool = cli.FullRefreshOption,
    fail_fast: bool = cli.FailFastOption,
    env: list[str] = cli.EnvOption,
    env_file: Path = cli.EnvFileOption,
    project: str = cli.ProjectOption,
    threads: int = cli.ThreadsOption,
    flags: SelectionFlags = None,  # type: ignore[assignment]  - given by takes_run_flags
    task_queue: str = cli.TaskQueueOption,
) -> None:
    """Create a schedule that starts a dbt run (the same input as `dbtt submit`) at every cron time."""
    if overlap not in schedules.OVERLAP_POLICIES:
        cli.fail(f"--overlap takes one of: {', '.join(schedules.OVERLAP_POLICIES)}; got '{overlap}'")
    window = _duration(catchup_window)
    run = cli.run_input(
        cli.command_of(command), select, exclude, vars_, target, full_refresh, fail_fast, env, env_file, project,
        threads, flags,
    )  # fmt: skip
    queue = cli.load_settings(temporal_task_queue=task_queue).temporal_task_queue
    _on_schedule(
        name, lambda client: schedules.create_schedule(client, name, run, queue, cron, overlap, window, paused)
    )
    cli.say(f"schedule {name} created" + (" (paused)" if paused else ""))


@schedule_app.command("list")
def list_(output: cli.OutputFormat = cli.OutputOption) -> None:
    """List the schedules that start dbt runs."""
    found: list[schedules.ScheduleSummary] = []

    async def collect(client) -> None:  # noqa: ANN001
        found.extend(await schedules.list_schedules(client))

    _on_schedule("", collect)
    if output == cli.OutputFormat.json:
        print(json.dumps([s.model_dump(mode="json") for s in found], indent=2))
        return
    table = Table(title="dbt schedules", header_style="bold")
    for column in ("name", "cron", "state", "next run"):
        table.add_column(column)
    for item in found:
        upcoming = item.next_runs[0].strftime("%Y-%m-%d %H:%M UTC") if item.next_runs else ""
        table.add_row(plain(item.name), plain(", ".join(item.cron)), "paused" if item.paused else "active", upcoming)
    cli.console.print(table)


@schedule_app.command()
def describe(name: str = NameArgument, output: cli.OutputFormat = cli.OutputOption) -> None:
    """Show a schedule: its run, policy, state, next and recent runs."""
    found: list[schedules.ScheduleSummary] = []

    async def collect(client) -> None:  # noqa: ANN001
        found.append(await schedules.describe_schedule(client, name))

    _on_schedule(name, collect)
    summary = found[0]
    if output == cli.OutputFormat.json:
        print(summary.model_dump_json(indent=2))
        return
    for key, value in summary.model_dump(mode="json").items():
        shown = ", ".join(map(str, value)) if isinstance(value, list) else value
        cli.console.print(plain(f"{key:>20}: {'' if shown is None else shown}"))


@schedule_app.command()
def pause(name: str = NameArgument) -> None:
    """Pause a schedule: no run starts until it is unpaused (trigger still works)."""
    _on_schedule(name, lambda client: schedules.pause(client, name, True))
    cli.say(f"schedule {name} paused")


@schedule_app.command()
def unpause(name: str = NameArgument) -> None:
    """Unpause a schedule."""
    _on_schedule(name, lambda client: schedules.pause(client, name, False))
    cli.say(f"schedule {name} unpaused")


@schedule_app.command()
def trigger(name: str = NameArgument) -> None:
    """Start the schedule's run now (its overlap policy applies)."""
    _on_schedule(name, lambda client: schedules.trigger(client, name))
    cli.say(f"schedule {name} triggered; follow it with: dbtt status")


@schedule_app.command()
def backfill(
    name: str = NameArgument,
    start: str = typer.Option(..., "--start", metavar="WHEN", help="Start of the period (ISO; UTC unless given)."),
    end: str = typer.Option(..., "--end", metavar="WHEN", help="End of the period (ISO; UTC unless given)."),
    overlap: str = OverlapOption,
) -> None:
    """Start the runs the schedule would have started between --start and --end."""
    if overlap not in schedules.OVERLAP_POLICIES:
        cli.fail(f"--overlap takes one of: {', '.join(schedules.OVERLAP_POLICIES)}; got '{overlap}'")
    since, until = _instant("--start", start), _instant("--end", end)
    if until <= since:
        cli.fail("--end must be after --start")
    _on_schedule(name, lambda client: schedules.backfill(client, name, since, until, overlap))
    cli.say(f"schedule {name}: runs from {since:%Y-%m-%d %H:%M} to {until:%Y-%m-%d %H:%M} UTC requested")


@schedule_app.command()
def delete(name: str = NameArgument) -> None:
    """Delete a schedule (runs it started are kept)."""
    _on_schedule(name, lambda client: schedules.delete(client, name))
    cli.say(f"schedule {name} deleted")

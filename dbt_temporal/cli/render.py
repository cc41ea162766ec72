"""Rendering runs in the terminal with rich."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from rich.console import Console, Group
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TaskID, TextColumn
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from dbt_temporal.cli.safe_text import plain
from dbt_temporal.client.run_graph import RunGraph
from dbt_temporal.client.runs import NodeRetry, RunView
from dbt_temporal.contract import NodeResult

STYLES = {
    "pending": ("·", "dim"),
    "running": ("▶", "cyan"),
    "success": ("✔", "green"),
    "error": ("✖", "bold red"),
    "skipped": ("↷", "yellow"),
    "cancelled": ("■", "magenta"),
}
# Beyond this many nodes the live table shows only what is running or went wrong.
FULL_TABLE_LIMIT = 40


def short_name(unique_id: str) -> str:
    """`model.shop.orders` -> `model orders`; tests lose their hash suffix."""
    parts = unique_id.split(".")
    resource, name = parts[0], parts[2] if len(parts) > 2 else parts[-1]
    return f"{resource} {name}"


class NodeClock:
    """Times nodes as the watcher sees them change, until the run's own timings arrive."""

    def __init__(self) -> None:
        self._started: dict[str, float] = {}
        self._finished: dict[str, float] = {}

    def observe(self, node_status: dict[str, str]) -> None:
        now = time.monotonic()
        for uid, status in node_status.items():
            if status == "running":
                self._started.setdefault(uid, now)
            elif status != "pending" and uid in self._started:
                self._finished.setdefault(uid, now)
            # A node first seen finished ran between two looks: its time is unknown until the run's own.

    def seconds(self, view: RunView, uid: str) -> float | None:
        if view.output:
            for result in view.output.node_results:
                if result.unique_id == uid:
                    return result.execution_time
        if uid not in self._started:
            return None
        return self._finished.get(uid, time.monotonic()) - self._started[uid]


def node_table(view: RunView, clock: NodeClock) -> Table:
    table = Table(box=None, show_header=True, header_style="bold", pad_edge=False)
    table.add_column("", width=1)
    table.add_column("node")
    table.add_column("status")
    table.add_column("time", justify="right")
    rows = _node_statuses(view)
    if len(rows) > FULL_TABLE_LIMIT:
        rows = {uid: s for uid, s in rows.items() if s in ("running", "error", "cancelled")}
    retried = {r.unique_id: r for r in view.output.node_results if r.attempt > 1} if view.output else {}
    for uid, status in rows.items():
        icon, style = STYLES.get(status, ("?", ""))
        seconds = clock.seconds(view, uid)
        shown = _retrying(view.retries[uid]) if status == "running" and uid in view.retries else status
        table.add_row(
            Text(icon, style=style),
            plain(short_name(uid)),
            plain(shown + _retry_note(retried.get(uid)), style),
            f"{seconds:.2f}s" if seconds is not None else "",
        )
    return table


def _retrying(retry: NodeRetry) -> str:
    """`retrying (attempt 2 in 8 s)` while Temporal waits to retry a node, `running (attempt 2)` after."""
    if retry.next_attempt_at is None:
        return f"running (attempt {retry.attempt})"
    wait = max(0, round((retry.next_attempt_at - datetime.now(UTC)).total_seconds()))
    return f"retrying (attempt {retry.attempt} in {wait} s)"


def _retry_note(result: NodeResult | None) -> str:
    if result is None:
        return ""
    return f" (attempt {result.attempt}" + (", already committed)" if result.previously_committed else ")")


def _node_statuses(view: RunView) -> dict[str, str]:
    if view.output and view.output.node_results:
        return {r.unique_id: str(r.status) for r in view.output.node_results}
    return dict(view.node_status)


class RunClock(ProgressColumn):
    """Time since the run started (not since this watch did), redrawn on every refresh."""

    def render(self, task: Task) -> Text:
        started = task.fields.get("run_started")
        seconds = (datetime.now(UTC) - started).total_seconds() if started else 0
        return Text(str(timedelta(seconds=max(0, int(seconds)))), style="progress.elapsed")


class LiveView:
    """What a terminal shows while a run goes on. It lives as long as the watch, so its clock runs."""

    def __init__(self) -> None:
        self.clock = NodeClock()
        self._bar = Progress(
            TextColumn("{task.description}", style="bold", markup=False), BarColumn(), MofNCompleteColumn(), RunClock()
        )
        self._task: TaskID | None = None

    def render(self, view: RunView) -> Group:
        self.clock.observe(view.node_status)
        counts = view.progress
        total = counts.get("total", len(view.node_status))
        finished = total - counts.get("pending", 0) - counts.get("running", 0)
        label = f"{view.command.get('command', 'build')} {view.workflow_id}"
        if self._task is None:
            self._task = self._bar.add_task(label, total=max(total, 1), completed=finished)
        # The label too: the first look may come before the run has said what it runs.
        self._bar.update(
            self._task, description=label, total=max(total, 1), completed=finished, run_started=view.start_time
        )
        return Group(self._bar, node_table(view, self.clock))


def summary_lines(view: RunView, with_done_line: bool = True) -> list[Text]:
    lines: list[Text] = [plain(f"⏲ started by schedule {view.scheduled_by}", "cyan")] if view.scheduled_by else []
    if with_done_line and view.output and view.output.summary:
        style = "green" if view.output.success else "red"
        lines.append(plain(view.output.summary, style))
    failed = [r for r in view.output.node_results if r.status == "error"] if view.output else []
    for result in failed:
        lines.append(plain(f"✖ {short_name(result.unique_id)}: {result.message}", "red"))
    skipped = [r for r in view.output.node_results if r.status == "skipped"] if view.output else []
    if skipped:
        names = ", ".join(short_name(r.unique_id) for r in skipped[:10])
        more = f" and {len(skipped) - 10} more" if len(skipped) > 10 else ""
        lines.append(plain(f"↷ skipped: {names}{more}", "yellow"))
    for hook in view.output.hook_runs if view.output else []:
        style = "red" if hook.outcome == "failed" else "cyan"
        because = f": {hook.error}" if hook.error else ""
        what = f"{hook.event} hook {hook.workflow_type} {hook.outcome} ({hook.workflow_id}){because}"
        lines.append(plain(f"⚑ {what}", style))
    if view.output and view.output.store_error:
        lines.append(plain(f"✖ the run's artifacts were not kept: {view.output.store_error}", "red"))
    return lines


def header_line(view: RunView) -> Text:
    """Which run, how it ended, when, how long, and on which workers."""
    parts = [f"{view.workflow_id}: {view.status}", str(view.command.get("command") or "build")]
    if view.start_time:
        parts.append(f"started {view.start_time:%Y-%m-%d %H:%M:%S} UTC")
    if view.duration_seconds is not None:
        parts.append(f"took {view.duration_seconds:.1f}s")
    workers = sorted({r.worker for r in view.output.node_results if r.worker}) if view.output else []
    if workers:
        parts.append(f"worker{'s' if len(workers) > 1 else ''} {', '.join(workers)}")
    return plain(", ".join(parts), "bold")


def print_final(console: Console, view: RunView, clock: NodeClock, with_table: bool = True) -> None:
    clock.observe(view.node_status)
    if with_table:
        console.print(header_line(view))
        table = node_table(view, clock)
        if table.row_count:  # a big run that went well lists no node: no header over nothing
            console.print(table)
    # Without the table the run log was printed, and it ends with dbt's Done line already.
    for line in summary_lines(view, with_done_line=with_table):
        console.print(line)


def runs_table(views: list[RunView]) -> Table:
    table = Table(title="Recent dbt runs", header_style="bold")
    for column in ("workflow id", "project", "command", "status", "started", "duration", "schedule"):
        table.add_column(column)
    for view in views:
        duration = f"{view.duration_seconds:.1f}s" if view.duration_seconds is not None else ""
        table.add_row(
            plain(view.workflow_id),
            plain(view.command.get("project") or ""),
            plain(view.command.get("command") or ""),
            plain(view.status),
            view.start_time.strftime("%Y-%m-%d %H:%M:%S") if view.start_time else "",
            duration,
            plain(view.scheduled_by or ""),
        )
    return table


def graph_summary(graph: RunGraph, workflow_id: str) -> list[Tree | Text]:
    """The DAG as a tree of layers, the critical path marked ★, then where the time went."""
    tree = Tree(plain(f"dbt run {workflow_id}: critical path {graph.critical_seconds:.2f}s (★)", "bold"))
    branches: dict[int, Tree] = {}
    for node in graph.nodes:
        if node.layer not in branches:
            branches[node.layer] = tree.add(Text(f"layer {node.layer}", style="bold"))
        icon, style = STYLES.get(node.status, ("?", ""))
        star = " ★" if node.critical else ""
        waited = f", waited {node.waited:.2f}s" if node.waited >= 0.01 else ""
        branches[node.layer].add(
            plain(f"{icon} {short_name(node.unique_id)} {node.status} {node.seconds:.2f}s{waited}{star}", style)
        )
    lines: list[Tree | Text] = [tree, Text("longest nodes:", style="bold")]
    lines += [plain(f"  {n.unique_id} {n.seconds:.2f}s") for n in graph.longest()]
    waiting = graph.most_waiting()
    if waiting:
        lines.append(Text("waited longest once their parents were done:", style="bold"))
        lines += [plain(f"  {n.unique_id} {n.waited:.2f}s") for n in waiting]
    return lines

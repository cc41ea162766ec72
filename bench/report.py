"""What a benchmark run found: plain data, printed as tables and written as JSON."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bench.metrics import Overheads, Spread, WorkflowTasks
from bench.plan import PlanFigures

# Targets of issues #4 and #9; reported, never asserted.
# warm dbtt / dbt build, by size (#9: 0.7 at 500 nodes, 0.8 from 2,000 on).
RATIO_LIMITS = {500: 0.7, 2000: 0.8, 10000: 0.8}
# dbtt's own run time / dbt's own elapsed_time, parsing excluded on both sides.
ELAPSED_TARGET_SIZES = (100, 500, 2000)
ELAPSED_LIMIT = 1.0
OVERHEAD_MEDIAN_MS = 15.0
OVERHEAD_P95_MS = 50.0
PLAN_TARGET_SIZE = 2000
PLAN_LIMIT_SECONDS = 2.0
UNEVEN_LIMIT = 1.2
# The plan and every payload of the run well under 1 MB.
PAYLOAD_LIMIT_KB = 1000.0
# A handover may keep a ready node from a free thread only this long (#9).
HANDOVER_WAIT_LIMIT = 5.0


@dataclass
class Row:
    approach: str
    wall_seconds: float | None
    ratio: float | None  # wall / plain dbt build wall
    note: str = ""
    # The tool's own run time, parsing excluded: dbt's elapsed_time, dbtt's output elapsed_time.
    elapsed_seconds: float | None = None
    elapsed_ratio: float | None = None  # / dbt build's elapsed_time


@dataclass
class DbttDetail:
    ok: bool
    error: str | None
    plan_seconds: float | None
    history_events: int
    history_mb: float
    worker_ready_seconds: float
    worker_peak_mb: float | None
    exec_seconds: float  # sum of dbt's execution_time over the run's nodes
    workflow_tasks: WorkflowTasks
    overheads: Overheads | None
    nodes: int = 0  # nodes in the run's DAG, for the per-node history figures
    plan_payload_bytes: int | None = None  # the plan activity's result as stored in the history
    largest_event_bytes: int = 0  # the biggest history event (plan, memo, carryover)

    @property
    def events_per_node(self) -> float | None:
        return self.history_events / self.nodes if self.nodes else None

    @property
    def history_bytes_per_node(self) -> float | None:
        return self.history_mb * 1e6 / self.nodes if self.nodes else None


@dataclass
class SizeResult:
    size: int
    models: int
    nodes: int  # nodes dbt build ran (seed, models, tests)
    kind: str = "layered"
    plan: PlanFigures | None = None
    dbt_exec_seconds: float | None = None  # sum of execution_time in dbt build's run_results.json
    rows: list[Row] = field(default_factory=list)
    dbtt: DbttDetail | None = None


@dataclass
class UnevenResult:
    nodes: int
    slow_seconds: float
    dbt_build_wall: float
    dbt_build_elapsed: float  # dbt's own elapsed_time, parsing excluded
    dbt_critical_path: float
    dbtt_wall: float | None
    dbtt_critical_path: float | None
    critical_path_nodes: list[str] = field(default_factory=list)
    dbtt: DbttDetail | None = None

    @property
    def ratio(self) -> float | None:
        if self.dbtt_wall is None or not self.dbtt_critical_path:
            return None
        return self.dbtt_wall / self.dbtt_critical_path


@dataclass
class HandoverResult:
    """A run made to hand over (continue-as-new) while one slow model runs beside a chain."""

    nodes: int
    slow_seconds: float
    after_events: int
    runs: int  # workflow runs in the chain: handovers + 1
    dbtt_wall: float | None
    longest_ready_wait: float | None  # seconds a ready node waited with a thread free


@dataclass
class Target:
    name: str
    value: float | None
    limit: float
    unit: str

    @property
    def met(self) -> bool | None:
        return None if self.value is None else self.value <= self.limit


@dataclass
class Report:
    machine: dict[str, object]
    sizes: list[SizeResult] = field(default_factory=list)
    uneven: UnevenResult | None = None
    handover: HandoverResult | None = None
    targets: list[Target] = field(default_factory=list)


def evaluate_targets(report: Report) -> list[Target]:
    targets: list[Target] = []
    for result in report.sizes:
        warm = next((r for r in result.rows if r.approach == "dbtt warm"), None)
        if result.size in RATIO_LIMITS and warm:
            targets.append(Target(f"warm dbtt / dbt build @{result.size}", warm.ratio, RATIO_LIMITS[result.size], "x"))
        if result.size in ELAPSED_TARGET_SIZES and warm:
            name = f"dbtt / dbt own elapsed_time @{result.size}"
            targets.append(Target(name, warm.elapsed_ratio, ELAPSED_LIMIT, "x"))
        per_node = result.dbtt.overheads.per_node if result.dbtt and result.dbtt.overheads else None
        targets.append(_ms(f"per-node overhead median @{result.size}", per_node, "median_ms", OVERHEAD_MEDIAN_MS))
        targets.append(_ms(f"per-node overhead p95 @{result.size}", per_node, "p95_ms", OVERHEAD_P95_MS))
        if result.size == PLAN_TARGET_SIZE and result.dbtt:
            targets.append(Target(f"plan time @{result.size}", result.dbtt.plan_seconds, PLAN_LIMIT_SECONDS, "s"))
        if result.plan:
            kb = result.plan.payload_bytes / 1000
            targets.append(Target(f"plan payload @{result.size} {result.kind}", kb, PAYLOAD_LIMIT_KB, "KB"))
        if result.dbtt:
            kb = result.dbtt.largest_event_bytes / 1000
            targets.append(Target(f"largest history event @{result.size} {result.kind}", kb, PAYLOAD_LIMIT_KB, "KB"))
    if report.uneven:
        targets.append(Target("uneven DAG wall / critical path", report.uneven.ratio, UNEVEN_LIMIT, "x"))
    if report.handover:
        wait = report.handover.longest_ready_wait
        targets.append(Target("longest ready wait with a free thread, handing over", wait, HANDOVER_WAIT_LIMIT, "s"))
    return targets


def _ms(name: str, value: Spread | None, attribute: str, limit: float) -> Target:
    return Target(name, getattr(value, attribute) if value else None, limit, "ms")


# ---------------------------------------------------------------- printing


def _num(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]
    lines = [header, ["-" * w for w in widths], *rows]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip() for line in lines)


def _spread_cells(value: Spread | None) -> list[str]:
    return ["-", "-"] if value is None else [f"{value.median_ms:.1f}", f"{value.p95_ms:.1f}"]


def wall_table(result: SizeResult) -> str:
    rows = [
        [r.approach, _num(r.wall_seconds), _num(r.ratio), _num(r.elapsed_seconds), _num(r.elapsed_ratio), r.note]
        for r in result.rows
    ]
    title = f"size {result.size} ({result.kind}): {result.nodes} nodes ({result.models} models)"
    header = ["approach", "wall s", "x dbt build", "own elapsed s", "x dbt elapsed", "note"]
    return title + "\n" + _table(header, rows)


def dbtt_table(details: list[tuple[str, DbttDetail, float | None]]) -> str:
    """One row per dbtt warm run: (label, detail, summed execution_time of plain dbt build)."""
    header = ["run", "plan s", "runs", "events", "hist MB", "WFTs", "WFT wait med", "WFT wait p95"]
    header += ["WFT med ms", "WFT p95 ms", "ready s", "peak MB"]
    header += ["exec s dbt", "exec s dbtt", "plan KB", "max event KB", "events/node", "hist B/node"]
    for name in ("runner", "activity", "reaction", "gap", "per-node"):
        header += [f"{name} med", f"{name} p95"]
    rows: list[list[str]] = []
    for label, detail, dbt_exec in details:
        tasks = detail.workflow_tasks
        cells = [label, _num(detail.plan_seconds), str(tasks.runs), str(detail.history_events)]
        cells += [_num(detail.history_mb, 1)]
        cells += [str(tasks.count), *_spread_cells(tasks.wait), *_spread_cells(tasks.work)]
        cells += [_num(detail.worker_ready_seconds, 1), _num(detail.worker_peak_mb, 0)]
        cells += [_num(dbt_exec, 1), _num(detail.exec_seconds, 1)]
        plan_kb = detail.plan_payload_bytes / 1000 if detail.plan_payload_bytes is not None else None
        cells += [_num(plan_kb, 1), _num(detail.largest_event_bytes / 1000, 1)]
        cells += [_num(detail.events_per_node, 2), _num(detail.history_bytes_per_node, 0)]
        o = detail.overheads
        for value in (o.runner, o.activity, o.reaction, o.gap, o.per_node) if o else (None,) * 5:
            cells += _spread_cells(value)
        rows.append(cells)
    title = "dbtt warm runs (overheads in ms; WFT = workflow task: wait scheduled->started, else started->completed)"
    return title + "\n" + _table(header, rows)


def plans_table(results: list[SizeResult]) -> str:
    """The build plan of each project, planned in-process as the worker does."""
    header = ["size", "kind", "nodes", "dbt edges", "plan edges", "payload KB", "parse s", "plan s"]
    rows = []
    for result in results:
        plan = result.plan
        if plan is not None:
            rows.append(
                [str(result.size), result.kind, str(plan.nodes), str(plan.dbt_edges), str(plan.plan_edges)]
                + [_num(plan.payload_bytes / 1000, 1), _num(plan.parse_seconds, 1), _num(plan.plan_seconds, 2)]
            )
    return "plans (payload as the client codec encodes it)\n" + _table(header, rows)


def uneven_table(uneven: UnevenResult) -> str:
    rows = [
        ["dbt build", _num(uneven.dbt_build_wall), _num(uneven.dbt_critical_path), "process wall incl. parse"],
        ["dbt build (elapsed)", _num(uneven.dbt_build_elapsed), _num(uneven.dbt_critical_path), "dbt's elapsed_time"],
        ["dbtt warm", _num(uneven.dbtt_wall), _num(uneven.dbtt_critical_path), f"ratio {_num(uneven.ratio)}"],
    ]
    title = f"uneven DAG: {uneven.nodes} nodes, slow model {uneven.slow_seconds:g}s beside a chain"
    return title + "\n" + _table(["approach", "wall s", "critical path s", "note"], rows)


def handover_table(handover: HandoverResult) -> str:
    rows = [[str(handover.runs), _num(handover.dbtt_wall), _num(handover.longest_ready_wait)]]
    title = (
        f"handover: {handover.nodes} nodes, slow model {handover.slow_seconds:g}s beside a chain, "
        f"continue_as_new_after_events={handover.after_events}"
    )
    return title + "\n" + _table(["workflow runs", "wall s", "longest ready wait with a free thread s"], rows)


def targets_table(targets: list[Target]) -> str:
    rows = []
    for target in targets:
        verdict = "n/a" if target.met is None else ("met" if target.met else "MISSED")
        rows.append([target.name, f"{_num(target.value)} {target.unit}", f"<= {target.limit:g} {target.unit}", verdict])
    return "targets (issues #4 and #9)\n" + _table(["target", "value", "limit", "verdict"], rows)


def render(report: Report) -> str:
    parts = [wall_table(result) for result in report.sizes]
    if any(result.plan for result in report.sizes):
        parts.append(plans_table(report.sizes))
    details = [(str(r.size), r.dbtt, r.dbt_exec_seconds) for r in report.sizes if r.dbtt]
    if report.uneven and report.uneven.dbtt:
        details.append(("uneven", report.uneven.dbtt, None))
    if details:
        parts.append(dbtt_table(details))
    if report.uneven:
        parts.append(uneven_table(report.uneven))
    if report.handover:
        parts.append(handover_table(report.handover))
    parts.append(targets_table(report.targets))
    return "\n\n".join(parts)


def write_json(report: Report, path: Path) -> None:
    data = asdict(report)
    for target, entry in zip(report.targets, data["targets"], strict=True):
        entry["met"] = target.met
    if report.uneven:
        data["uneven"]["ratio"] = report.uneven.ratio
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")

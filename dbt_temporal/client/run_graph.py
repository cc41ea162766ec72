"""A picture of a run: its DAG with each node's status and time, the critical path, where time went.

Pure functions of the run's plan (nodes and parents) and its results; `plan_of` finds the plan in
the run's history. Rendered as a rich tree for the terminal, Mermaid (`.mmd`) or an SVG drawn
here (`.svg`, and `.html` wrapping it), so no Graphviz is needed.
"""

from __future__ import annotations

from html import escape
from typing import Any

from pydantic import BaseModel
from temporalio.client import Client

from dbt_temporal.contract import PLAN_ACTIVITY, DbtRunInput, NodeResult, Plan

GRAPH_SUFFIXES = (".mmd", ".svg", ".html")
STATUS_COLOURS = {
    "success": "#2e7d32",
    "error": "#c62828",
    "skipped": "#f9a825",
    "cancelled": "#6a1b9a",
    "running": "#0277bd",
    "pending": "#9e9e9e",
}


class GraphNode(BaseModel):
    unique_id: str
    name: str
    layer: int
    parents: list[int]
    status: str
    seconds: float
    # How long the node waited, once its last parent had finished, before it started.
    waited: float = 0.0
    critical: bool = False


class RunGraph(BaseModel):
    nodes: list[GraphNode]
    critical_seconds: float

    def longest(self, count: int = 5) -> list[GraphNode]:
        return sorted(self.nodes, key=lambda n: -n.seconds)[:count]

    def most_waiting(self, count: int = 5) -> list[GraphNode]:
        return [n for n in sorted(self.nodes, key=lambda n: -n.waited)[:count] if n.waited > 0]


async def plan_of(client: Client, workflow_id: str) -> Plan | None:
    """The plan the run was made from: in its input when it continued as new, else the plan activity's result."""
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    converter = client.data_converter
    scheduled: set[int] = set()
    for event in history.events:
        if event.HasField("workflow_execution_started_event_attributes"):
            payloads = list(event.workflow_execution_started_event_attributes.input.payloads)
            [run] = await converter.decode(payloads, [DbtRunInput]) if payloads else [None]
            if run is not None and run.carryover is not None:
                return run.carryover.plan
        elif event.HasField("activity_task_scheduled_event_attributes"):
            if event.activity_task_scheduled_event_attributes.activity_type.name == PLAN_ACTIVITY:
                scheduled.add(event.event_id)
        elif event.HasField("activity_task_completed_event_attributes"):
            completed = event.activity_task_completed_event_attributes
            if completed.scheduled_event_id in scheduled:
                [plan] = await converter.decode(list(completed.result.payloads), [Plan])
                return plan
    return None


def build_graph(plan: Plan, results: list[NodeResult], node_status: dict[str, str]) -> RunGraph:
    by_id = {r.unique_id: r for r in results}
    layers: list[int] = []
    for node in plan.nodes:  # parents always come earlier in the plan
        layers.append(1 + max((layers[p] for p in node.parents), default=-1))
    graph_nodes = []
    for node, layer in zip(plan.nodes, layers, strict=True):
        result = by_id.get(node.unique_id)
        status = str(result.status) if result else node_status.get(node.unique_id, "pending")
        graph_nodes.append(
            GraphNode(
                unique_id=node.unique_id,
                name=node.name,
                layer=layer,
                parents=node.parents,
                status=status,
                seconds=result.execution_time if result else 0.0,
                waited=_waited(node.parents, result, plan, by_id),
            )
        )
    return RunGraph(nodes=graph_nodes, critical_seconds=_mark_critical_path(graph_nodes))


def _waited(parents: list[int], result: NodeResult | None, plan: Plan, by_id: dict[str, NodeResult]) -> float:
    if result is None or result.started_at is None:
        return 0.0
    finished = [by_id[plan.nodes[p].unique_id].completed_at for p in parents if plan.nodes[p].unique_id in by_id]
    ready = max((f for f in finished if f is not None), default=None)
    return max(0.0, result.started_at - ready) if ready is not None else 0.0


def _mark_critical_path(nodes: list[GraphNode]) -> float:
    """The chain of nodes whose times add up to the most: no run can be shorter than it."""
    total: list[float] = []
    best_parent: list[int | None] = []
    for node in nodes:
        parent = max(node.parents, key=lambda p: total[p], default=None)
        best_parent.append(parent)
        total.append(node.seconds + (total[parent] if parent is not None else 0.0))
    if not nodes:
        return 0.0
    position: int | None = max(range(len(nodes)), key=lambda i: total[i])
    longest = total[position]
    while position is not None:
        nodes[position].critical = True
        position = best_parent[position]
    return longest


def mermaid(graph: RunGraph) -> str:
    lines = ["flowchart LR"]
    for status, colour in STATUS_COLOURS.items():
        lines.append(f"  classDef {status} fill:{colour},color:#fff,stroke:#333")
    lines.append("  classDef critical stroke:#000,stroke-width:4px")
    for index, node in enumerate(graph.nodes):
        label = f"{node.name}<br/>{node.status} {node.seconds:.2f}s".replace('"', "'")
        lines.append(f'  n{index}["{label}"]:::{node.status}')
        if node.critical:
            lines.append(f"  class n{index} critical")
    for index, node in enumerate(graph.nodes):
        for parent in node.parents:
            arrow = "==>" if node.critical and graph.nodes[parent].critical else "-->"
            lines.append(f"  n{parent} {arrow} n{index}")
    return "\n".join(lines) + "\n"


COLUMN_WIDTH, ROW_HEIGHT, BOX_WIDTH, BOX_HEIGHT = 240, 48, 200, 36


def svg(graph: RunGraph) -> str:
    """The DAG left to right by layer, boxes coloured by status, the critical path outlined in black."""
    rows: dict[int, int] = {}
    places: list[tuple[int, int]] = []
    for node in graph.nodes:
        row = rows.get(node.layer, 0)
        rows[node.layer] = row + 1
        places.append((20 + node.layer * COLUMN_WIDTH, 20 + row * ROW_HEIGHT))
    width = 40 + (max(rows, default=0) + 1) * COLUMN_WIDTH
    height = 40 + max(rows.values(), default=1) * ROW_HEIGHT
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif">']
    for index, node in enumerate(graph.nodes):
        x, y = places[index]
        for parent in node.parents:
            px, py = places[parent]
            bold = node.critical and graph.nodes[parent].critical
            parts.append(
                f'<line x1="{px + BOX_WIDTH}" y1="{py + BOX_HEIGHT // 2}" x2="{x}" y2="{y + BOX_HEIGHT // 2}" '
                f'stroke="{"#000" if bold else "#bbb"}" stroke-width="{3 if bold else 1}"/>'
            )
    for index, node in enumerate(graph.nodes):
        x, y = places[index]
        colour = STATUS_COLOURS.get(node.status, "#9e9e9e")
        outline = 'stroke="#000" stroke-width="3"' if node.critical else 'stroke="#333"'
        parts.append(
            f"<g><title>{escape(node.unique_id)}: {escape(node.status)} {node.seconds:.2f}s</title>"
            f'<rect x="{x}" y="{y}" width="{BOX_WIDTH}" height="{BOX_HEIGHT}" rx="5" fill="{colour}" {outline}/>'
            f'<text x="{x + 8}" y="{y + 15}" font-size="12" fill="#fff">{escape(node.name[:28])}</text>'
            f'<text x="{x + 8}" y="{y + 30}" font-size="11" fill="#fff">{escape(node.status)} '
            f"{node.seconds:.2f}s</text></g>"
        )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def html(graph: RunGraph, title: str) -> str:
    longest = "".join(f"<li>{escape(n.unique_id)}: {n.seconds:.2f}s</li>" for n in graph.longest())
    return (
        f"<!doctype html>\n<html><head><meta charset='utf-8'><title>{escape(title)}</title></head><body>\n"
        f"<h1>{escape(title)}</h1>\n<p>Critical path: {graph.critical_seconds:.2f}s (outlined in black).</p>\n"
        f"<h2>Longest nodes</h2><ul>{longest}</ul>\n{svg(graph)}</body></html>\n"
    )


def graph_file_text(graph: RunGraph, suffix: str, title: str) -> str:
    renderers: dict[str, Any] = {".mmd": mermaid, ".svg": svg, ".html": lambda g: html(g, title)}
    return renderers[suffix](graph)

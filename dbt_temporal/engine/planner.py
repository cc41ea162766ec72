"""Turn a dbt selection into a plan: plain data the workflow can schedule.

Selection goes through dbt's own task classes, so every selection method,
graph operator, `--exclude`, default selector and indirect test selection
behaves exactly as on the dbt command line.
"""

from __future__ import annotations

from typing import Any

import networkx as nx
from dbt.node_types import NodeType
from dbt.task.build import BuildTask
from dbt.task.compile import CompileTask
from dbt.task.list import ListTask
from dbt.task.run import RunTask
from dbt.task.seed import SeedTask
from dbt.task.snapshot import SnapshotTask
from dbt.task.test import TestTask

from dbt_temporal.config.project_config import RetryConfig
from dbt_temporal.contract import Plan, PlannedNode, PlanRequest
from dbt_temporal.engine.isolation import activated
from dbt_temporal.engine.session import DbtSession

TASKS: dict[str, type] = {
    "build": BuildTask,
    "run": RunTask,
    "test": TestTask,
    "seed": SeedTask,
    "snapshot": SnapshotTask,
    "compile": CompileTask,
    "ls": ListTask,
    "list": ListTask,
}


def selection_args(select: str | None, exclude: str | None) -> list[str]:
    args: list[str] = []
    if select:
        args += ["--select", *select.split()]
    if exclude:
        args += ["--exclude", *exclude.split()]
    return args


def make_task(session: DbtSession, command: str, select: str | None, exclude: str | None) -> Any:
    """One of dbt's own task objects, wired to the session's warm manifest and graph."""
    dbt_command = "ls" if command == "list" else command
    flags = session.command_flags(dbt_command, *selection_args(select, exclude))
    task = TASKS[command](flags, session.config, session.manifest)
    task.graph = session.graph(with_test_edges=command == "build")
    return task, flags


def plan_selection(session: DbtSession, request: PlanRequest, retry: RetryConfig) -> Plan:
    if request.unique_ids is not None:
        graph, unit_tests = _exact_nodes(session, request), []
    else:
        task, flags = make_task(session, request.command, request.select, request.exclude)
        with activated(session.state(flags)):
            queue = task.get_graph_queue()
            graph = queue.graph
            unit_tests = sorted(getattr(task, "selected_unit_tests", set()))
    selected = set(graph.nodes)
    graph = _without_ephemeral_models(graph, session.manifest)
    order, parents = _with_unit_tests(session, list(nx.topological_sort(graph)), graph, unit_tests)
    reduced = reduced_parents(order, parents)
    nodes = [_planned(session, uid, positions) for uid, positions in zip(order, reduced, strict=True)]
    return Plan(
        project=session.config.project_name,
        target=session.config.target_name,
        threads=session.config.threads,
        nodes=nodes,
        not_run=sorted(selected - set(order)),
        project_summary=_project_summary(session.manifest),
        retry=retry,
    )


def _exact_nodes(session: DbtSession, request: PlanRequest) -> nx.DiGraph:
    """The named nodes with dbt's edges among them (as `dbt retry` re-runs what failed)."""
    full = session.graph(with_test_edges=request.command == "build")
    wanted = set(request.unique_ids or ()) & set(full.graph.nodes)
    return full.get_subset_graph(wanted).graph


def _without_ephemeral_models(graph: nx.DiGraph, manifest: Any) -> nx.DiGraph:
    """Ephemeral models are inlined into their children, never run: bridge over them."""
    graph = graph.copy()
    for uid in list(graph.nodes):
        node = manifest.nodes.get(uid)
        if node is not None and node.is_ephemeral_model:
            for parent in graph.predecessors(uid):
                for child in graph.successors(uid):
                    graph.add_edge(parent, child)
            graph.remove_node(uid)
    return graph


def _with_unit_tests(
    session: DbtSession, order: list[str], graph: nx.DiGraph, unit_tests: list[str]
) -> tuple[list[str], dict[str, set[str]]]:
    """Plan order and each node's parents; in `build`, a model's unit tests run just before it and gate it."""
    parents = {uid: set(graph.predecessors(uid)) for uid in order}
    by_model: dict[str, list[str]] = {}
    for uid in unit_tests:
        model_id = session.manifest.unit_tests[uid].depends_on.nodes[0]
        by_model.setdefault(model_id, []).append(uid)
    result: list[str] = []
    for uid in order:
        for test_id in by_model.get(uid, []):
            result.append(test_id)
            parents[test_id] = set(parents[uid])
        parents[uid] |= set(by_model.get(uid, []))
        result.append(uid)
    return result, parents


def reduced_parents(order: list[str], parents: dict[str, set[str]]) -> list[list[int]]:
    """Each node's parents as positions in `order` (a topological order), keeping only the edges
    reachability needs: the transitive reduction of the graph.

    dbt links every upstream test to every downstream node in `build`, so a big
    project has hundreds of thousands of edges, most implied by others. dbt's
    gating depends on reachability alone (a node starts once all its ancestors
    succeeded; a failure skips every descendant), and the transitive reduction
    keeps exactly the reachability of the full graph with the fewest edges.

    A parent is implied when it is an ancestor of another parent, which then
    comes later in the order. So parents are visited latest first, and one is
    kept unless an already kept parent descends from it. Ancestor sets are
    bitsets over positions: linear in the edges, where networkx's general
    algorithm walks descendants from every node.
    """
    position = {uid: i for i, uid in enumerate(order)}
    ancestors: list[int] = []
    reduced: list[list[int]] = []
    for uid in order:
        covered = 0
        kept: list[int] = []
        for parent in sorted((position[p] for p in parents[uid]), reverse=True):
            if not covered >> parent & 1:
                kept.append(parent)
                covered |= ancestors[parent] | 1 << parent
        ancestors.append(covered)
        reduced.append(sorted(kept))
    return reduced


def _lookup(manifest: Any, uid: str) -> Any:
    for collection in (manifest.nodes, manifest.unit_tests, manifest.sources, manifest.exposures):
        if uid in collection:
            return collection[uid]
    functions = getattr(manifest, "functions", {})
    return functions.get(uid) or manifest.saved_queries[uid]


def _planned(session: DbtSession, uid: str, parents: list[int]) -> PlannedNode:
    node = _lookup(session.manifest, uid)
    return PlannedNode(
        unique_id=uid,
        name=node.name,
        resource_type=str(node.resource_type),
        description=describe(node),
        parents=parents,
    )


def describe(node: Any) -> str:
    """The words dbt prints before a node's name, e.g. "sql table model main.orders"."""
    resource_type = node.resource_type
    if resource_type in (NodeType.Test, NodeType.Unit):
        return f"{'unit_test' if resource_type == NodeType.Unit else 'test'} {node.name}"
    schema = getattr(node, "schema", None)
    target = f"{schema}.{node.alias}" if schema and getattr(node, "alias", None) else node.name
    if resource_type == NodeType.Model:
        language = getattr(node, "language", "sql")
        return f"{language} {node.config.materialized} model {target}"
    return f"{resource_type} {target}"


def _project_summary(manifest: Any) -> str:
    counts: dict[str, int] = {}
    for node in manifest.nodes.values():
        label = "data test" if node.resource_type == NodeType.Test else str(node.resource_type)
        counts[label] = counts.get(label, 0) + 1
    for label, collection in (("source", manifest.sources), ("unit test", manifest.unit_tests)):
        if collection:
            counts[label] = len(collection)
    return ", ".join(f"{n} {label}{'s' if n != 1 else ''}" for label, n in sorted(counts.items()))

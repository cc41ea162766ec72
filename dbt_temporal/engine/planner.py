"""Turn a dbt selection into a plan: plain data the workflow can schedule.

Selection goes through dbt's own task classes, so every selection method,
graph operator, `--exclude`, default selector and indirect test selection
behaves exactly as on the dbt command line.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import networkx as nx
from dbt.compilation import _generate_stats
from dbt.graph.queue import GraphQueue
from dbt.node_types import NodeType, RunHookType
from dbt.task.build import BuildTask
from dbt.task.clone import CloneTask
from dbt.task.compile import CompileTask
from dbt.task.docs.generate import GenerateTask
from dbt.task.freshness import FreshnessTask
from dbt.task.list import ListTask
from dbt.task.printer import get_counts
from dbt.task.run import RunTask
from dbt.task.run_operation import RunOperationTask
from dbt.task.seed import SeedTask
from dbt.task.show import ShowTask
from dbt.task.snapshot import SnapshotTask
from dbt.task.test import TestTask
from dbt_common.events.contextvars import task_contextvars
from dbt_common.events.format import pluralize

from dbt_temporal.config.project_config import ProjectConfig
from dbt_temporal.contract import (
    DOCS_COMMAND,
    FRESHNESS_COMMAND,
    RUN_OPERATION,
    SHOW_COMMAND,
    BadRunInput,
    DbtFlags,
    Plan,
    PlannedNode,
    PlanRequest,
    check_resource_types,
    check_selection,
)
from dbt_temporal.engine.isolation import activated
from dbt_temporal.engine.session import DbtSession

TASKS: dict[str, type] = {
    "build": BuildTask,
    "run": RunTask,
    "test": TestTask,
    "seed": SeedTask,
    "snapshot": SnapshotTask,
    "compile": CompileTask,
    "clone": CloneTask,
    SHOW_COMMAND: ShowTask,
    DOCS_COMMAND: GenerateTask,
    FRESHNESS_COMMAND: FreshnessTask,
    RUN_OPERATION: RunOperationTask,
    "ls": ListTask,
    "list": ListTask,
}


def selection_args(request: PlanRequest) -> list[str]:
    """dbt's own selection flags for the request (checked here too: a run may not come from dbtt's CLI)."""
    check_selection("--select", request.select)
    check_selection("--exclude", request.exclude)
    check_selection("--selector", request.selector)
    check_resource_types("--resource-type", request.resource_types)
    check_resource_types("--exclude-resource-type", request.exclude_resource_types)
    request.flags.check(request.command)
    args: list[str] = []
    if request.select:
        args += ["--select", *request.select.split()]
    if request.exclude:
        args += ["--exclude", *request.exclude.split()]
    if request.selector:
        args += ["--selector", request.selector]
    if request.resource_types:
        args += ["--resource-type", *request.resource_types]
    if request.exclude_resource_types:
        args += ["--exclude-resource-type", *request.exclude_resource_types]
    return args


def flag_args(flags: DbtFlags, state_dir: Path | None = None) -> list[str]:
    """The run's dbt flags as dbt's command line spells them; `state_dir` is where its --state was fetched."""
    args: list[str] = []
    if state_dir is not None:
        args += ["--state", str(state_dir)]
    if flags.defer:
        args.append("--defer")
    if flags.empty:
        args.append("--empty")
    if flags.store_failures:
        args.append("--store-failures")
    if flags.warn_error:
        args.append("--warn-error")
    if flags.warn_error_options is not None:
        args += ["--warn-error-options", json.dumps(flags.warn_error_options)]
    if flags.indirect_selection:
        args += ["--indirect-selection", flags.indirect_selection]
    if flags.limit is not None:
        args += ["--limit", str(flags.limit)]
    if flags.macro:
        args.append(flags.macro)
    if flags.args is not None:
        args += ["--args", json.dumps(flags.args)]
    return args


def run_flags(session: DbtSession, command: str, flags: DbtFlags, state_dir: Path | None = None) -> Any:
    """dbt's Flags for one run's command and dbt flags, without its selection."""
    return session.command_flags(dbt_command_name(command), *flag_args(flags, state_dir))


def dbt_command_name(command: str) -> str:
    return "ls" if command == "list" else command


def make_task(
    session: DbtSession, request: PlanRequest, state_dir: Path | None = None, sources_dir: Path | None = None
) -> Any:
    """One of dbt's own task objects, wired to the session's warm manifest and graph.

    dbt reads the current freshness results (for `source_status:`) from its target path: with
    `sources_dir` the task sees that directory as its target path.
    """
    command = request.command
    flags = session.command_flags(
        dbt_command_name(command), *selection_args(request), *flag_args(request.flags, state_dir)
    )
    config = session.config
    if sources_dir is not None:
        config = copy.copy(config)
        config.target_path = str(sources_dir)
    task = TASKS[command](flags, config, session.manifest)
    task.graph = session.graph(with_test_edges=command == "build")
    return task, flags


# Commands whose dbt task runs the project's on-run-start / on-run-end hooks (RunTask and its subclasses);
# `source freshness` runs them unless the project's flags turn that off.
HOOK_COMMANDS = ("build", "run", "test", "seed", "snapshot", FRESHNESS_COMMAND)


def plan_selection(
    session: DbtSession,
    request: PlanRequest,
    project_config: ProjectConfig,
    state_dir: Path | None = None,
    sources_dir: Path | None = None,
) -> Plan:
    if request.command == RUN_OPERATION:
        return _plan(session, project_config, [_macro_node(session, request)], stat_line="1 macro")
    if request.command == SHOW_COMMAND and request.flags.inline is not None:
        return _plan(session, project_config, [_inline_node(session, request)], stat_line="1 inline query")
    if request.unique_ids is not None:
        graph, unit_tests = _exact_nodes(session, request)
        queue = GraphQueue(graph, session.manifest, set(graph.nodes))  # as `dbt retry` queues the named nodes
    else:
        task, flags = make_task(session, request, state_dir, sources_dir)
        # dbt resolves `path:` selectors against the project root it sets for its task, as here.
        with activated(session.state(flags)), task_contextvars(project_root=session.config.project_root):
            queue = task.get_graph_queue()
            unit_tests = sorted(getattr(task, "selected_unit_tests", set()))
    selected = set(queue.graph.nodes)
    ranks = _start_ranks(queue)
    graph = _without_ephemeral_models(queue.graph, session.manifest)
    order, parents = _with_unit_tests(session, sorted(graph.nodes, key=ranks.__getitem__), graph, unit_tests)
    reduced = reduced_parents(order, parents)
    nodes = [_planned(session, uid, positions) for uid, positions in zip(order, reduced, strict=True)]
    start_hooks, end_hooks = _project_hooks(session, request.command)
    executed = [manifest_entry(session.manifest, uid) for uid in order] + start_hooks + end_hooks
    plan = _plan(session, project_config, nodes, stat_line=get_counts(executed))
    plan.not_run = sorted(selected - set(order))
    plan.start_hooks, plan.end_hooks = len(start_hooks), len(end_hooks)
    return plan


def _plan(session: DbtSession, project_config: ProjectConfig, nodes: list[PlannedNode], stat_line: str) -> Plan:
    return Plan(
        project=session.config.project_name,
        target=session.config.target_name,
        threads=session.config.threads,
        nodes=nodes,
        project_summary=_project_summary(session.manifest),
        manifest_digest=session.manifest_digest,
        stat_line=stat_line,
        skip_nodes_if_on_run_start_fails=bool(getattr(session.flags, "skip_nodes_if_on_run_start_fails", False)),
        retry=project_config.retry,
        lifecycle_hooks=project_config.hooks,
    )


INLINE_QUERY = "inline_query"


def _inline_node(session: DbtSession, request: PlanRequest) -> PlannedNode:
    """show --inline's one node: the query, which each worker parses into its run's manifest view."""
    request.flags.check(request.command)
    return PlannedNode(
        unique_id=f"{NodeType.SqlOperation}.{session.config.project_name}.{INLINE_QUERY}",
        name=INLINE_QUERY,
        resource_type=str(NodeType.SqlOperation),
        description="inline query",
    )


# run-operation's node is the macro itself (dbt has no resource type for that).
MACRO_RESOURCE = "macro"


def _macro_parts(macro: str) -> tuple[str | None, str]:
    """dbt's reading of run-operation's MACRO: `package.name`, or a name searched in every package."""
    package, dot, name = macro.partition(".")
    return (package, name) if dot else (None, macro)


def _macro_node(session: DbtSession, request: PlanRequest) -> PlannedNode:
    """run-operation's one node: the macro, found as dbt finds it."""
    request.flags.check(request.command)
    package, name = _macro_parts(request.flags.macro or "")
    macro = session.manifest.find_macro_by_name(name, session.config.project_name, package)
    if macro is None:
        raise BadRunInput(f"dbt could not find a macro with the name '{name}' in any package")
    return PlannedNode(
        unique_id=macro.unique_id,
        name=macro.name,
        resource_type=MACRO_RESOURCE,
        description=f"macro {macro.package_name}.{macro.name}",
    )


def _project_hooks(session: DbtSession, command: str) -> tuple[list[Any], list[Any]]:
    if command not in HOOK_COMMANDS:
        return [], []
    if command == FRESHNESS_COMMAND and not getattr(session.flags, "SOURCE_FRESHNESS_RUN_PROJECT_HOOKS", True):
        return [], []
    hooks = [node for node in session.manifest.nodes.values() if node.resource_type == NodeType.Operation]
    return (
        [hook for hook in hooks if RunHookType.Start in hook.tags],
        [hook for hook in hooks if RunHookType.End in hook.tags],
    )


def _start_ranks(queue: GraphQueue) -> dict[str, tuple[int, str]]:
    """Where each node stands in dbt's queue: of several ready nodes, dbt starts the least first.

    dbt ranks a node by its depth in its connected part of the graph, then by unique_id
    (the queue's scores, read rather than computed again). A parent is always shallower than
    its child, so ordering by rank is also a topological order, and the scheduler keeps it
    among ready nodes.
    """
    return {uid: (queue._scores[uid], uid) for uid in queue.graph.nodes}


def _exact_nodes(session: DbtSession, request: PlanRequest) -> tuple[nx.DiGraph, list[str]]:
    """The named nodes with dbt's edges among them (as `dbt retry` re-runs what failed).

    In `build`, named unit tests are set apart, to be placed before their model and gate it.
    """
    full = session.graph(with_test_edges=request.command == "build")
    wanted = set(request.unique_ids or ())
    unit_tests = sorted(wanted & set(session.manifest.unit_tests)) if request.command == "build" else []
    nodes = (wanted - set(unit_tests)) & set(full.graph.nodes)
    return full.get_subset_graph(nodes).graph, unit_tests


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
    """Plan order and each node's parents; in `build`, a model's unit tests run just before it and gate it.

    dbt runs a model's unit tests one after another, on the model's thread, and skips the rest and
    the model once one fails or errors: here each unit test waits for the one before it, so a
    failure skips the later ones as dbt does. dbt takes them in no fixed order (a set's); here
    by unique_id.
    """
    parents = {uid: set(graph.predecessors(uid)) for uid in order}
    by_model: dict[str, list[str]] = {}
    for uid in unit_tests:
        model_id = session.manifest.unit_tests[uid].depends_on.nodes[0]
        by_model.setdefault(model_id, []).append(uid)
    result: list[str] = []
    for uid in order:
        tests = by_model.get(uid, [])
        previous: set[str] = set()  # each unit test waits for the one before it
        for test_id in tests:
            parents[test_id] = parents[uid] | previous
            previous = {test_id}
        result += [*tests, uid]
        parents[uid] |= set(tests)
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


def manifest_entry(manifest: Any, unique_id: str) -> Any:
    """Where dbt keeps a member of the build graph: nodes, unit tests, sources, exposures, saved queries,
    functions."""
    collections = (manifest.nodes, manifest.unit_tests, manifest.sources, manifest.exposures, manifest.saved_queries)
    for collection in collections:
        if unique_id in collection:
            return collection[unique_id]
    return manifest.functions[unique_id]


def _planned(session: DbtSession, uid: str, parents: list[int]) -> PlannedNode:
    node = manifest_entry(session.manifest, uid)
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
    if resource_type == NodeType.Unit:
        return f"unit_test {node.model}::{node.name}"
    if resource_type == NodeType.Test:
        return f"test {node.name}"
    schema = getattr(node, "schema", None)
    target = f"{schema}.{node.alias}" if schema and getattr(node, "alias", None) else node.name
    if resource_type == NodeType.Model:
        language = getattr(node, "language", "sql")
        return f"{language} {_materialization(node)} model {target}"
    if resource_type == NodeType.Seed:
        return f"seed file {target}"
    if resource_type == NodeType.Source:
        return f"freshness of {node.source_name}.{node.name}"
    return f"{str(resource_type).replace('_', ' ')} {target}"


def _materialization(model: Any) -> str:
    config = model.config
    if config.materialized == "incremental" and config.get("incremental_strategy") == "microbatch":
        return "microbatch"
    return config.materialized


def _project_summary(manifest: Any) -> str:
    """dbt's `Found ...` line: what the project holds, counted as dbt counts it."""
    stats = _generate_stats(manifest)
    return ", ".join(pluralize(count, kind).replace("_", " ") for kind, count in stats.items() if count)

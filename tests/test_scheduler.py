"""Scheduling rules, without a server: readiness, skips, concurrency, fail-fast."""

from __future__ import annotations

import random

import networkx as nx

from dbt_temporal.contract import NodeStatus, PlannedNode
from dbt_temporal.engine.planner import reduced_parents
from dbt_temporal.workflow.scheduler import DagScheduler


def plan(parents: dict[str, list[str]]) -> list[PlannedNode]:
    """Planned nodes in the given (topological) order, parents named by unique_id."""
    position = {uid: i for i, uid in enumerate(parents)}
    return [
        PlannedNode(unique_id=uid, name=uid, resource_type="model", description=uid, parents=[position[p] for p in ups])
        for uid, ups in parents.items()
    ]


def reduced_plan(parents: dict[str, list[str]]) -> list[PlannedNode]:
    order = list(parents)
    reduced = reduced_parents(order, {uid: set(ups) for uid, ups in parents.items()})
    return plan({uid: [order[p] for p in positions] for uid, positions in zip(order, reduced, strict=True)})


def started(scheduler: DagScheduler) -> list[str]:
    return [n.unique_id for n in scheduler.start_ready()]


# slow and a are roots; b waits for a only; c waits for b; d waits for slow and c.
DAG = plan({"slow": [], "a": [], "b": ["a"], "c": ["b"], "d": ["slow", "c"]})


def test_a_node_starts_when_its_own_parents_are_done_not_its_level() -> None:
    scheduler = DagScheduler(DAG, concurrency=4)
    assert started(scheduler) == ["slow", "a"]

    scheduler.finish("a", NodeStatus.success)
    assert started(scheduler) == ["b"]  # slow, on the same level as a, is still running
    scheduler.finish("b", NodeStatus.success)
    assert started(scheduler) == ["c"]
    scheduler.finish("c", NodeStatus.success)
    assert started(scheduler) == []  # d also needs slow
    scheduler.finish("slow", NodeStatus.success)
    assert started(scheduler) == ["d"]
    scheduler.finish("d", NodeStatus.success)
    assert scheduler.done


def test_concurrency_limits_running_nodes() -> None:
    scheduler = DagScheduler(plan({"a": [], "b": [], "c": []}), concurrency=2)
    assert started(scheduler) == ["a", "b"]
    scheduler.finish("b", NodeStatus.success)
    assert started(scheduler) == ["c"]


def test_of_several_ready_nodes_the_earliest_in_the_plan_starts_first() -> None:
    """dbt's queue order (the planner's plan order), even for a node that became ready last."""
    dag = plan({"a": [], "r": [], "a1": ["a"], "s": ["r"], "t": ["r"]})
    for in_plan_order, expected in ((True, "a1"), (False, "t")):
        scheduler = DagScheduler(dag, concurrency=2, in_plan_order=in_plan_order)
        assert started(scheduler) == ["a", "r"]
        scheduler.finish("r", NodeStatus.success)
        assert started(scheduler) == ["s"]
        scheduler.finish("a", NodeStatus.success)  # a1 becomes ready after t, yet comes first in the plan
        assert started(scheduler) == [expected], in_plan_order


def test_failure_skips_all_descendants_and_names_the_cause() -> None:
    scheduler = DagScheduler(DAG, concurrency=4)
    started(scheduler)

    skipped = scheduler.finish("a", NodeStatus.error)

    assert sorted(skipped) == ["b", "c", "d"]
    assert scheduler.skip_cause == {"b": "a", "c": "a", "d": "a"}
    assert scheduler.status["slow"] == NodeStatus.running  # the independent branch carries on
    scheduler.finish("slow", NodeStatus.success)
    assert scheduler.done


def test_fail_fast_skips_everything_not_started() -> None:
    scheduler = DagScheduler(DAG, concurrency=1)
    assert started(scheduler) == ["slow"]

    assert sorted(scheduler.skip_pending("fail fast")) == ["a", "b", "c", "d"]
    assert started(scheduler) == []


def test_cancelling_marks_unfinished_nodes() -> None:
    scheduler = DagScheduler(DAG, concurrency=4)
    started(scheduler)
    scheduler.finish("a", NodeStatus.success)

    assert sorted(scheduler.cancel_unfinished()) == ["b", "c", "d", "slow"]
    assert scheduler.status["a"] == NodeStatus.success
    assert scheduler.done


# What dbt's build graph looks like: a model, its test, and two children linked to both
# (dbt adds an edge from every upstream test to every downstream node).
BUILD_DAG = {
    "orders": [],
    "test_orders": ["orders"],
    "daily": ["orders", "test_orders"],
    "weekly": ["orders", "test_orders", "daily"],
}


def test_reduction_drops_implied_edges() -> None:
    assert [n.parents for n in reduced_plan(BUILD_DAG)] == [[], [0], [1], [2]]


def run_all(nodes: list[PlannedNode], failing: set[str]) -> list[tuple[str, str, str | None]]:
    """Run a plan to the end, one node at a time; (node, status, skip cause) in start order."""
    scheduler = DagScheduler(nodes, concurrency=1)
    while batch := scheduler.start_ready():
        uid = batch[0].unique_id
        scheduler.finish(uid, NodeStatus.error if uid in failing else NodeStatus.success)
    return [(uid, str(s), scheduler.skip_cause.get(uid)) for uid, s in scheduler.status.items()]


def test_reduced_build_graph_gates_and_skips_like_the_full_one() -> None:
    for failing in ({"orders"}, {"test_orders"}, {"daily"}, set()):
        assert run_all(reduced_plan(BUILD_DAG), failing) == run_all(plan(BUILD_DAG), failing)
    assert run_all(reduced_plan(BUILD_DAG), {"test_orders"}) == [
        ("orders", "success", None), ("test_orders", "error", None),
        ("daily", "skipped", "test_orders"), ("weekly", "skipped", "test_orders"),
    ]  # fmt: skip


def descendants(nodes: list[PlannedNode]) -> dict[str, set[str]]:
    below: dict[str, set[str]] = {n.unique_id: set() for n in nodes}
    for node in reversed(nodes):  # children come later in plan order
        for position in node.parents:
            below[nodes[position].unique_id] |= {node.unique_id} | below[node.unique_id]
    return below


def test_reduction_keeps_every_nodes_descendants_on_random_dags() -> None:
    rng = random.Random(9)
    for _ in range(30):
        names = [f"n{i}" for i in range(rng.randint(2, 60))]
        density = rng.random()
        parents = {uid: [p for p in names[:i] if rng.random() < density] for i, uid in enumerate(names)}
        full, reduced = plan(parents), reduced_plan(parents)
        assert descendants(reduced) == descendants(full)
        # The transitive reduction of a DAG is unique: the same edges as networkx's.
        graph = nx.DiGraph([(p, uid) for uid, ups in parents.items() for p in ups])
        graph.add_nodes_from(names)
        expected = {(p, uid) for p, uid in nx.transitive_reduction(graph).edges}
        assert {(reduced[p].unique_id, n.unique_id) for n in reduced for p in n.parents} == expected
        assert sum(len(n.parents) for n in reduced) <= sum(len(n.parents) for n in full)
        failing = set(rng.sample(names, k=min(3, len(names))))
        assert run_all(reduced, failing) == run_all(full, failing)

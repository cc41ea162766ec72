"""Scheduling rules, without a server: readiness, skips, concurrency, fail-fast."""

from __future__ import annotations

from dbt_temporal.contract import NodeStatus, PlannedNode
from dbt_temporal.workflow.scheduler import DagScheduler


def node(uid: str, *parents: str) -> PlannedNode:
    return PlannedNode(unique_id=uid, name=uid, resource_type="model", description=uid, parents=list(parents))


def started(scheduler: DagScheduler) -> list[str]:
    return [n.unique_id for n in scheduler.start_ready()]


# slow and a are roots; b waits for a only; c waits for b; d waits for slow and c.
DAG = [node("slow"), node("a"), node("b", "a"), node("c", "b"), node("d", "slow", "c")]


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
    scheduler = DagScheduler([node("a"), node("b"), node("c")], concurrency=2)
    assert started(scheduler) == ["a", "b"]
    scheduler.finish("b", NodeStatus.success)
    assert started(scheduler) == ["c"]


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


def test_parents_outside_the_plan_are_ignored() -> None:
    scheduler = DagScheduler([node("child", "not.selected")], concurrency=1)
    assert started(scheduler) == ["child"]

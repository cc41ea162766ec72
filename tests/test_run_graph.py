"""The run's picture: layers, the critical path and waiting times, from a plan and its results."""

from __future__ import annotations

from dbt_temporal.client.run_graph import build_graph, mermaid, svg
from dbt_temporal.contract import NodeResult, NodeStatus, Plan, PlannedNode


def _node(name: str, parents: list[int]) -> PlannedNode:
    return PlannedNode(unique_id=f"model.p.{name}", name=name, resource_type="model", description=name, parents=parents)


def _result(name: str, seconds: float, started: float) -> NodeResult:
    return NodeResult(unique_id=f"model.p.{name}", status=NodeStatus.success, dbt_status="success",
                      execution_time=seconds, started_at=started, completed_at=started + seconds)  # fmt: skip


PLAN = Plan(
    project="p",
    target="dev",
    threads=4,
    nodes=[_node("seed", []), _node("fast", [0]), _node("slow", [0]), _node("mart", [1, 2])],
)


def test_the_critical_path_is_the_slowest_chain_and_layers_follow_parents() -> None:
    results = [_result("seed", 1, 0), _result("fast", 1, 1), _result("slow", 5, 1.5), _result("mart", 2, 7)]

    graph = build_graph(PLAN, results, {})

    assert [n.layer for n in graph.nodes] == [0, 1, 1, 2]
    assert [n.name for n in graph.nodes if n.critical] == ["seed", "slow", "mart"]
    assert graph.critical_seconds == 8
    assert [n.name for n in graph.longest(2)] == ["slow", "mart"]
    assert {n.name: round(n.waited, 2) for n in graph.nodes} == {"seed": 0, "fast": 0, "slow": 0.5, "mart": 0.5}


def test_nodes_without_results_show_their_live_status() -> None:
    graph = build_graph(PLAN, [_result("seed", 1, 0)], {"model.p.fast": "running"})

    assert [n.status for n in graph.nodes] == ["success", "running", "pending", "pending"]
    assert "n0 --> n1" in mermaid(graph) or "n0 ==> n1" in mermaid(graph)
    assert svg(graph).count("<rect") == 4

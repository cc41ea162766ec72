"""The `dbt build` DAG of a project, read from dbt's own manifest.json.

`build` orders a model's tests before the model's children (dbt's test edges);
the per-node approaches and the critical path use the same order.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from graphlib import TopologicalSorter
from pathlib import Path

RUNNABLE = ("model", "seed", "snapshot", "test")


@dataclass(frozen=True)
class BuildDag:
    names: dict[str, str]  # unique_id -> node name
    parents: dict[str, list[str]]

    def order(self) -> list[str]:
        """A dependency order (parents first), stable for equal inputs."""
        sorter = TopologicalSorter({uid: sorted(ups) for uid, ups in sorted(self.parents.items())})
        return list(sorter.static_order())

    def critical_path(self, seconds: dict[str, float]) -> tuple[float, list[str]]:
        """The slowest path through the DAG, weighted by each node's time."""
        best: dict[str, tuple[float, list[str]]] = {}
        for uid in self.order():
            before = max((best[p] for p in self.parents[uid]), default=(0.0, []), key=lambda item: item[0])
            best[uid] = (before[0] + seconds.get(uid, 0.0), [*before[1], uid])
        return max(best.values(), key=lambda item: item[0], default=(0.0, []))


def _ancestors(uid: str, parents: dict[str, list[str]]) -> set[str]:
    seen: set[str] = set()
    stack = list(parents.get(uid, []))
    while stack:
        current = stack.pop()
        if current not in seen:
            seen.add(current)
            stack.extend(parents.get(current, []))
    return seen


def load_build_dag(manifest_path: Path) -> BuildDag:
    manifest = json.loads(manifest_path.read_text())
    nodes = {uid: node for uid, node in manifest["nodes"].items() if node["resource_type"] in RUNNABLE}
    parents = {
        uid: [p for p in node.get("depends_on", {}).get("nodes", []) if p in nodes] for uid, node in nodes.items()
    }
    children: dict[str, list[str]] = {uid: [] for uid in nodes}
    for uid, ups in parents.items():
        for parent in ups:
            children[parent].append(uid)
    test_edges: dict[str, list[str]] = {uid: [] for uid in nodes}
    for test, deps in ((uid, parents[uid]) for uid, n in nodes.items() if n["resource_type"] == "test"):
        for child in {c for d in deps for c in children[d] if nodes[c]["resource_type"] != "test"}:
            if len(deps) == 1 or set(deps) <= _ancestors(child, parents):
                test_edges[child].append(test)
    merged = {uid: set(parents[uid]) | set(test_edges[uid]) for uid in nodes}
    ephemeral = [uid for uid, node in nodes.items() if node.get("config", {}).get("materialized") == "ephemeral"]
    _bridge_over(ephemeral, merged)
    return BuildDag(
        names={uid: node["name"] for uid, node in nodes.items() if uid in merged},
        parents={uid: sorted(ups) for uid, ups in merged.items()},
    )


def _bridge_over(removed: list[str], parents: dict[str, set[str]]) -> None:
    """Drop nodes dbt never runs (ephemeral models), their children inheriting their parents."""
    for uid in removed:
        inherited = parents.pop(uid)
        for ups in parents.values():
            if uid in ups:
                ups.discard(uid)
                ups |= inherited

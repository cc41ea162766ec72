"""Dependency-driven scheduling of a plan, with dbt's skip semantics.

Pure logic, deterministic and free of I/O, so the workflow can use it and
unit tests can drive it directly. A node becomes ready the moment all of its
own parents have succeeded: there is no level barrier.

Of several ready nodes, the one earliest in the plan starts first. The planner orders the
plan as dbt's own queue ranks nodes (graph depth, then unique_id), so with free threads
dbtt starts nodes in the order `dbt build` does. Runs recorded before that rule started
ready nodes in the order they became ready (`in_plan_order=False`), and replay so.
"""

from __future__ import annotations

import heapq
import itertools

from dbt_temporal.contract import NodeStatus, PlannedNode


class DagScheduler:
    def __init__(self, nodes: list[PlannedNode], concurrency: int, in_plan_order: bool = True) -> None:
        self.concurrency = max(1, concurrency)
        self.nodes = {node.unique_id: node for node in nodes}
        # Ready nodes wait in a heap keyed by plan position, or (old runs) by the order they became ready.
        positions = {node.unique_id: position for position, node in enumerate(nodes)}
        arrivals = itertools.count()
        self._ready_key = positions.__getitem__ if in_plan_order else lambda _uid: next(arrivals)
        self.status: dict[str, NodeStatus] = {uid: NodeStatus.pending for uid in self.nodes}
        # Why a node was skipped: the unique_id of the node whose failure caused it, or a reason.
        self.skip_cause: dict[str, str] = {}
        self._children: dict[str, list[str]] = {uid: [] for uid in self.nodes}
        self._unfinished_parents: dict[str, set[str]] = {}
        for node in nodes:
            parents = {nodes[position].unique_id for position in node.parents}
            self._unfinished_parents[node.unique_id] = parents
            for parent in parents:
                self._children[parent].append(node.unique_id)
        self._ready: list[tuple[int, str]] = []
        for uid in self.nodes:
            if not self._unfinished_parents[uid]:
                self._push_ready(uid)
        self.running: set[str] = set()

    def resume_running(self, uids: list[str]) -> None:
        """Nodes a previous workflow run left running at its handover (continue-as-new): running here too."""
        for uid in uids:
            self.status[uid] = NodeStatus.running
            self.running.add(uid)

    def start_ready(self) -> list[PlannedNode]:
        """Nodes to start now, marked running, within the concurrency limit."""
        started: list[PlannedNode] = []
        while self._ready and len(self.running) < self.concurrency:
            uid = self._pop_ready()
            if self.status[uid] != NodeStatus.pending:
                continue
            self.status[uid] = NodeStatus.running
            self.running.add(uid)
            started.append(self.nodes[uid])
        return started

    def finish(self, uid: str, status: NodeStatus) -> list[str]:
        """Record a finished node; returns the nodes skipped because of it."""
        self.running.discard(uid)
        self.status[uid] = status
        if status != NodeStatus.success:
            return self._skip_descendants(uid)
        for child in self._children[uid]:
            waiting = self._unfinished_parents[child]
            waiting.discard(uid)
            if not waiting and self.status[child] == NodeStatus.pending:
                self._push_ready(child)
        return []

    def skip_pending(self, reason: str) -> list[str]:
        """Skip every node that has not started (fail-fast)."""
        skipped = [uid for uid, s in self.status.items() if s == NodeStatus.pending]
        for uid in skipped:
            self.status[uid] = NodeStatus.skipped
            self.skip_cause[uid] = reason
        self._ready.clear()
        return skipped

    def cancel_unfinished(self) -> list[str]:
        """Mark every pending or running node cancelled (the run itself was cancelled)."""
        cancelled = [uid for uid, s in self.status.items() if not s.finished]
        for uid in cancelled:
            self.status[uid] = NodeStatus.cancelled
        self.running.clear()
        self._ready.clear()
        return cancelled

    def restore(self, finished: dict[str, NodeStatus]) -> None:
        """Replay the outcome of nodes a previous workflow run finished (continue-as-new)."""
        for uid, status in finished.items():
            if self.status[uid] == NodeStatus.pending or status != NodeStatus.skipped:
                self.finish(uid, status)

    @property
    def pending(self) -> bool:
        return any(s == NodeStatus.pending for s in self.status.values())

    @property
    def done(self) -> bool:
        return not self.running and not self._ready

    def _push_ready(self, uid: str) -> None:
        heapq.heappush(self._ready, (self._ready_key(uid), uid))

    def _pop_ready(self) -> str:
        return heapq.heappop(self._ready)[1]

    def _skip_descendants(self, failed: str) -> list[str]:
        skipped: list[str] = []
        stack = list(self._children[failed])
        while stack:
            uid = stack.pop()
            if self.status[uid] != NodeStatus.pending:
                continue
            self.status[uid] = NodeStatus.skipped
            self.skip_cause[uid] = failed
            skipped.append(uid)
            stack.extend(self._children[uid])
        return skipped

"""One dbt invocation (one workflow run) on a warm session.

A session is long-lived and shared by every run with the same settings; an
invocation holds what dbt itself keeps per run: its `invocation_id` and
`run_started_at`, dbt's task object for the command (runners such as
microbatch's need it as their parent), and the run's own compiled copies of
ephemeral models and project hooks, so concurrent runs never compile into the
shared manifest. Any worker rebuilds it from a node request; each keeps the
recent ones.
"""

from __future__ import annotations

import copy
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dbt.contracts.graph.nodes import CompiledNode
from dbt.node_types import NodeType
from dbt.parser.manifest import process_node
from dbt.parser.sql import SqlBlockParser

from dbt_temporal.contract import InvocationSpec
from dbt_temporal.engine.isolation import ActiveState, RunIdentity, activated
from dbt_temporal.engine.planner import INLINE_QUERY, TASKS, run_flags
from dbt_temporal.engine.session import DbtSession

# Invocations kept per worker; a run's nodes usually arrive within seconds of each other.
MAX_CACHED_INVOCATIONS = 64


def fresh_copy(node: Any) -> Any:
    """A private copy of a manifest node with its compiled state cleared.

    dbt compiles nodes in place; a node reused from an earlier run would keep
    `extra_ctes_injected` and skip ephemeral CTE injection, and two runs
    compiling one node object would race.
    """
    node = copy.deepcopy(node)
    if isinstance(node, CompiledNode):
        node.compiled = False
        node.compiled_code = None
        node.extra_ctes_injected = False
        node.extra_ctes = []
    return node


def _compiled_per_run(node: Any) -> bool:
    return node.resource_type == NodeType.Operation or getattr(node, "is_ephemeral_model", False)


class _RunNodes(dict):  # type: ignore[type-arg]
    """The manifest's nodes as one run sees them.

    dbt compiles an ephemeral parent in place while compiling its child, and
    keeps the result for later children; here each run gets its own copy on
    first use, so its CTEs carry its own `run_started_at` and vars.
    """

    def __init__(self, shared: dict[str, Any]) -> None:
        super().__init__(shared)
        self._own: dict[str, Any] = {}
        self._lock = threading.Lock()

    def __getitem__(self, unique_id: str) -> Any:
        node = super().__getitem__(unique_id)
        if not _compiled_per_run(node):
            return node
        with self._lock:
            if unique_id not in self._own:
                self._own[unique_id] = fresh_copy(node)
            return self._own[unique_id]


def run_manifest(shared: Any) -> Any:
    """A view of the session's manifest for one run: shared lookups, the run's own compiled nodes.

    Its node and function maps are the run's own, so --defer (which replaces entries with copies that
    point at the state run's relations) changes only this run's view.
    """
    view = object.__new__(type(shared))
    view.__dict__.update(shared.__dict__)
    view.nodes = _RunNodes(shared.nodes)
    view.functions = dict(shared.functions)
    return view


class _SequentialPool:
    """What a microbatch runner asks of dbt's thread pool when batches run one after another.

    With no job queue, dbt runs each batch on the calling thread; the pool is
    only asked whether it is closed.
    """

    max_threads = 1

    def is_closed(self) -> bool:
        return False


SEQUENTIAL_POOL = _SequentialPool()


@dataclass
class Invocation:
    session: DbtSession
    run: RunIdentity
    command: str
    flags: Any
    # The session's runtime config as this run's dbt sees it: its `args` are the run's flags
    # (dbt reads --empty there), the rest is shared.
    config: Any
    manifest: Any
    task: Any

    def state(self) -> ActiveState:
        return ActiveState(flags=self.flags, adapter=self.session.adapter, env=self.session.env, run=self.run)


def open_invocation(
    session: DbtSession, command: str, spec: InvocationSpec, state_dir: Path | None = None
) -> Invocation:
    flags = run_flags(session, command, spec.dbt_flags, state_dir)
    config = copy.copy(session.config)
    config.args = flags
    manifest = run_manifest(session.manifest)
    if spec.dbt_flags.inline is not None:
        with activated(ActiveState(flags=flags, adapter=session.adapter, env=session.env)):
            _add_inline_node(config, manifest, spec.dbt_flags.inline)
    task = TASKS[command](flags, config, manifest)
    _own_hook_copies(task)
    if state_dir is not None:
        # dbt's own rule: with --defer (and always for clone) nodes learn the state run's relations.
        with activated(ActiveState(flags=flags, adapter=session.adapter, env=session.env)):
            task.defer_to_manifest()
    return Invocation(
        session=session,
        run=RunIdentity(invocation_id=spec.invocation_id, started_at=spec.run_started_at),
        command=command,
        flags=flags,
        config=config,
        manifest=manifest,
        task=task,
    )


def _add_inline_node(config: Any, manifest: Any, sql: str) -> None:
    """show --inline's query as dbt makes it a node: parsed into this run's view of the manifest only."""
    node = SqlBlockParser(project=config, manifest=manifest, root_project=config).parse_remote(sql, INLINE_QUERY)
    process_node(config, manifest, node)
    manifest.nodes[node.unique_id] = node


def _own_hook_copies(task: Any) -> None:
    """dbt numbers and compiles hook nodes in place: give the run its own copies."""
    find_hooks = getattr(task, "get_hooks_by_type", None)
    if find_hooks is not None:
        task.get_hooks_by_type = lambda hook_type: [task.manifest.nodes[h.unique_id] for h in find_hooks(hook_type)]


class ManifestMismatch(RuntimeError):
    """The run was planned on another version of the project than this worker serves."""


def check_manifest(session: DbtSession, planned_digest: str) -> None:
    if planned_digest and planned_digest != session.manifest_digest:
        raise ManifestMismatch(
            f"this worker's {session.config.project_name} (version {session.manifest_digest}) differs from the one "
            f"the run was planned on ({planned_digest}): run it again once every worker on the queue serves the "
            "same project version"
        )


class InvocationCache:
    """The worker's recent invocations, least recently used dropped first."""

    def __init__(self, limit: int = MAX_CACHED_INVOCATIONS) -> None:
        self.limit = limit
        self._items: OrderedDict[tuple[str, str, str], Invocation] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, session: DbtSession, command: str, spec: InvocationSpec, state_dir: Path | None = None) -> Invocation:
        key = (session.key, command, spec.invocation_id)
        with self._lock:
            self._forget_closed_sessions()
            invocation = self._items.get(key)
            # A session evicted and parsed again is a new object: the run continues on the new one.
            if invocation is None or invocation.session is not session:
                invocation = open_invocation(session, command, spec, state_dir)
                self._items[key] = invocation
            self._items.move_to_end(key)
            while len(self._items) > self.limit:
                self._items.popitem(last=False)
            return invocation

    def _forget_closed_sessions(self) -> None:
        """An invocation holds its session's manifest and adapter: once the pool has closed that session,
        keeping the invocation would keep them all in memory."""
        for key in [key for key, invocation in self._items.items() if invocation.session.closed]:
            del self._items[key]

"""A project's on-run-start and on-run-end hooks, run once per invocation as `dbt build` runs them."""

from __future__ import annotations

import time
from typing import Any

from dbt.artifacts.schemas.results import NodeStatus as DbtNodeStatus
from dbt.artifacts.schemas.run import RunResult
from dbt.node_types import NodeType, RunHookType
from dbt.task.run import RunTask
from dbt.task.test import TestRunner

from dbt_temporal.contract import HookType, NodeResult
from dbt_temporal.engine.artifacts import compiled_node, dbt_run_result
from dbt_temporal.engine.executor import to_node_result
from dbt_temporal.engine.invocation import Invocation
from dbt_temporal.engine.isolation import activated
from dbt_temporal.engine.planner import manifest_entry

# dbt's statuses where a result's relation was not built; on-run-end's `schemas` leaves those out.
_NOT_BUILT = {DbtNodeStatus.Error, DbtNodeStatus.Fail, DbtNodeStatus.Skipped}


def run_project_hooks(invocation: Invocation, hook_type: HookType, results: list[NodeResult]) -> list[NodeResult]:
    """Run the project's hooks of one type, in dbt's order; after a failure the rest are skipped."""
    task = invocation.task
    if not isinstance(task, RunTask):
        return []
    kind = RunHookType.Start if hook_type == "on-run-start" else RunHookType.End
    extra_context = {} if kind == RunHookType.Start else end_context(invocation, results)
    adapter = invocation.session.adapter
    # safe_run_hooks appends to the task's results; one hook type runs at a time per invocation.
    task.node_results = []
    with activated(invocation.state()), adapter.connection_named("master"):
        started = time.time()
        task.safe_run_hooks(adapter, kind, extra_context)
        finished = time.time()
    return [to_node_result(result, result.node, started, finished) for result in task.node_results]


def end_context(invocation: Invocation, results: list[NodeResult]) -> dict[str, Any]:
    """What dbt hands on-run-end hooks: `results`, and the schemas the run built into."""
    dbt_results = [_as_dbt_result(invocation, result) for result in results]
    built = {
        (r.node.database, r.node.schema)
        for r in dbt_results
        if getattr(r.node, "is_relational", False) and r.status not in _NOT_BUILT
    }
    return {
        "schemas": list({schema for _, schema in built}),
        "results": dbt_results,
        "database_schemas": list(built),
    }


def _unit_test_node(invocation: Invocation, definition: Any) -> Any:
    """What dbt's results hold for a unit test: the node it executed (materialized `unit`), not its definition."""
    session = invocation.session
    runner = TestRunner(invocation.config, session.adapter, definition, 1, 1)
    with activated(invocation.state()):
        return runner.build_unit_test_manifest_from_test(definition, invocation.manifest).nodes[definition.unique_id]


def _as_dbt_result(invocation: Invocation, result: NodeResult) -> RunResult:
    node = manifest_entry(invocation.session.manifest, result.unique_id)
    if node.resource_type == NodeType.Unit:
        node = _unit_test_node(invocation, node)
    if result.compiled_code is not None and hasattr(node, "compiled_code"):
        # As dbt's `results` carry it: elementary and dbt_artifacts read each node's compiled code.
        node = compiled_node(node, result.compiled_code)
    return dbt_run_result(result, node)

"""dbt's own artifacts for a run: run_results.json, manifest.json and the compiled/ tree.

They are written with dbt's classes, from the run's results and the session's
manifest, so the dbt CLI reads them like its own: `--state DIR` with `result:`
and `state:modified` selectors, `dbt retry --state DIR`, dbt docs, elementary.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dbt.artifacts.resources.types import NodeType
from dbt.artifacts.schemas.freshness import FreshnessResult, PartialSourceFreshnessResult, SourceFreshnessResult
from dbt.artifacts.schemas.results import FreshnessStatus, TimingInfo
from dbt.artifacts.schemas.results import NodeStatus as DbtNodeStatus
from dbt.artifacts.schemas.run import RunExecutionResult, RunResult
from dbt.contracts.files import FileHash
from dbt.contracts.graph.nodes import CompiledNode, HookNode
from dbt.utils import args_to_dict

from dbt_temporal.artifact_store import COMPILED, MANIFEST, RUN_RESULTS, SOURCES
from dbt_temporal.contract import FRESHNESS_COMMAND, NodeResult
from dbt_temporal.engine.invocation import Invocation
from dbt_temporal.engine.isolation import activated
from dbt_temporal.engine.planner import manifest_entry

# Arguments that are the worker's own business: its paths (session directory, project checkout) and
# the switches every session sets (see session.make_flags). `dbt retry` reuses the recorded arguments,
# and a user's retry must write its own artifacts and parse as it usually does.
WORKER_ONLY_ARGS = (
    "project_dir",
    "profiles_dir",
    "target_path",
    "log_path",
    "state",
    "defer_state",
    "write_json",
    "partial_parse",
    "send_anonymous_usage_stats",
    "version_check",
    "populate_cache",
)


def dbt_status(result: NodeResult) -> DbtNodeStatus:
    try:
        return DbtNodeStatus(result.dbt_status)
    except ValueError:  # dbtt's own `cancelled`: the node did not run to its end, so it is retried like a skip
        return DbtNodeStatus.Skipped


def dbt_run_result(result: NodeResult, node: Any) -> RunResult:
    """A node result as dbt's own RunResult, for its artifacts and for on-run-end's `results`."""
    return RunResult(
        status=dbt_status(result),
        timing=[
            TimingInfo(
                name=entry.name,
                started_at=datetime.fromisoformat(entry.started_at) if entry.started_at else None,
                completed_at=datetime.fromisoformat(entry.completed_at) if entry.completed_at else None,
            )
            for entry in result.timing
        ],
        thread_id=result.thread_id or "",
        execution_time=result.execution_time,
        adapter_response=result.adapter_response,
        message=result.message,
        failures=result.failures,
        node=node,
        batch_results=None,
    )


def compiled_node(node: Any, code: str) -> Any:
    """The manifest node as this run compiled it (a copy: the session's manifest is shared)."""
    return dataclasses.replace(node, compiled=True, compiled_code=code)


def _known_node(invocation: Invocation, unique_id: str) -> Any | None:
    manifest = invocation.session.manifest
    if unique_id in manifest.macros:
        return _operation_node(invocation, manifest.macros[unique_id])
    try:
        return manifest_entry(manifest, unique_id)
    except KeyError:  # a hook failure the workflow reported itself has no manifest node
        return None


def _operation_node(invocation: Invocation, macro: Any) -> HookNode:
    """What dbt's run_results.json names for run-operation: an operation node standing for the macro."""
    credentials = invocation.session.config.credentials
    return HookNode(
        alias=macro.name,
        checksum=FileHash.from_contents(macro.unique_id),
        database=credentials.database,
        schema=credentials.schema,
        resource_type=NodeType.Operation,
        fqn=macro.unique_id.split("."),
        name=macro.name,
        unique_id=macro.unique_id,
        package_name=macro.package_name,
        path="",
        original_file_path="",
    )


def run_args(invocation: Invocation) -> dict[str, Any]:
    """What dbt records as the invocation's arguments; `dbt retry` reruns the command they name."""
    args = {key: value for key, value in args_to_dict(invocation.flags).items() if key not in WORKER_ONLY_ARGS}
    args["invocation_command"] = f"dbt {args.get('which', invocation.command)}"
    args.setdefault("vars", {})
    return args


def write_dbt_artifacts(
    invocation: Invocation, results: list[NodeResult], elapsed_time: float, directory: Path
) -> list[str]:
    """Write run_results.json (sources.json for `source freshness`), manifest.json and
    compiled/<package>/<path> for the run into `directory`; returns the names of dbt's two files."""
    if invocation.command == FRESHNESS_COMMAND:
        return _write_freshness(invocation, results, elapsed_time, directory)
    nodes: dict[str, Any] = {}
    dbt_results = []
    for result in results:
        node = _known_node(invocation, result.unique_id)
        if node is None:
            continue
        if result.compiled_code and isinstance(node, CompiledNode):
            node = compiled_node(node, result.compiled_code)
            nodes[result.unique_id] = node
        dbt_results.append(dbt_run_result(result, node))
    generated_at = datetime.now(UTC).replace(tzinfo=None)
    with activated(invocation.state()):
        run_results = RunExecutionResult(
            results=dbt_results, elapsed_time=elapsed_time, generated_at=generated_at, args=run_args(invocation)
        )
        run_results.write(str(directory / RUN_RESULTS))
        _writable_manifest(invocation, nodes, generated_at).write(str(directory / MANIFEST))
    for node in nodes.values():
        path = directory / node.get_target_write_path("", COMPILED)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(node.compiled_code)
    return [RUN_RESULTS, MANIFEST]


def _write_freshness(
    invocation: Invocation, results: list[NodeResult], elapsed_time: float, directory: Path
) -> list[str]:
    """sources.json as `dbt source freshness` writes it (what `source_status:` selectors read)."""
    checked = [
        _freshness_result(result, invocation.session.manifest.sources[result.unique_id])
        for result in results
        if result.unique_id in invocation.session.manifest.sources
    ]
    generated_at = datetime.now(UTC).replace(tzinfo=None)
    with activated(invocation.state()):
        FreshnessResult.from_node_results(checked, elapsed_time, generated_at).write(str(directory / SOURCES))
        _writable_manifest(invocation, {}, generated_at).write(str(directory / MANIFEST))
    return [SOURCES, MANIFEST]


def _freshness_result(result: NodeResult, source: Any) -> Any:
    run = dbt_run_result(result, source)
    try:
        status = FreshnessStatus(result.dbt_status)
    except ValueError:  # dbtt's own `cancelled`: the check did not finish
        status = FreshnessStatus.RuntimeErr
    common = {
        "status": status,
        "timing": run.timing,
        "thread_id": run.thread_id,
        "execution_time": run.execution_time,
        "adapter_response": run.adapter_response,
        "message": run.message,
        "failures": run.failures,
        "node": source,
    }
    measured = result.freshness
    if measured is None:
        return PartialSourceFreshnessResult(**common)
    return SourceFreshnessResult(
        **common,
        max_loaded_at=measured.max_loaded_at,
        snapshotted_at=measured.snapshotted_at,
        age=measured.age,
    )


def _writable_manifest(invocation: Invocation, compiled: dict[str, Any], generated_at: datetime) -> Any:
    # A view of the run's manifest: building the parent and child maps must not touch the shared one.
    run_manifest = invocation.manifest
    view = object.__new__(type(run_manifest))
    view.__dict__.update(run_manifest.__dict__)
    view.metadata = dataclasses.replace(
        run_manifest.metadata, invocation_id=invocation.run.invocation_id, generated_at=generated_at
    )
    writable = view.writable_manifest()
    writable.nodes.update({uid: node.to_resource() for uid, node in compiled.items()})
    return writable

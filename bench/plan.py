"""Planning a project in-process, as the worker does, and what the plan costs on the wire."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from bench.approaches import project_env
from dbt_temporal.client.codec import encoded_size
from dbt_temporal.config.project_config import ProjectConfig
from dbt_temporal.config.projects import discover_projects
from dbt_temporal.config.settings import WorkerSettings
from dbt_temporal.contract import PlanRequest, SessionSpec
from dbt_temporal.engine.planner import plan_selection
from dbt_temporal.engine.pool import SessionPool


@dataclass
class PlanFigures:
    nodes: int
    dbt_edges: int  # edges of dbt's build graph (test edges included) over the whole project
    plan_edges: int  # parents kept in the plan (transitive reduction)
    payload_bytes: int  # the plan as the client codec encodes it (compressed when large)
    parse_seconds: float
    plan_seconds: float


def measure_plan(project: Path) -> PlanFigures:
    """Parse `project` once and plan `build` of everything, timing the plan alone."""
    settings = WorkerSettings(dbt_project_dir=project)
    pool = SessionPool(discover_projects(settings), settings.work_root)
    spec = SessionSpec(env=project_env(project))
    try:
        with pool.lease(spec) as session:
            started = time.perf_counter()
            plan = plan_selection(session, PlanRequest(session=spec, command="build"), ProjectConfig())
            plan_seconds = time.perf_counter() - started
            return PlanFigures(
                nodes=len(plan.nodes),
                dbt_edges=session.graph(with_test_edges=True).graph.number_of_edges(),
                plan_edges=sum(len(node.parents) for node in plan.nodes),
                payload_bytes=encoded_size(plan),
                parse_seconds=session.parse_seconds,
                plan_seconds=plan_seconds,
            )
    finally:
        pool.close()

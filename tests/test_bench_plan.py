"""bench's `plan` approach on a real-shaped project: the planner keeps dbt's reachability with far fewer edges."""

from __future__ import annotations

from pathlib import Path

from bench.plan import measure_plan
from bench.project import RealSpec, generate_real


def test_a_real_shaped_project_plans_with_its_edges_reduced(tmp_path: Path) -> None:
    project = generate_real(tmp_path / "real", RealSpec(models=30))

    figures = measure_plan(project)

    # The seed, 27 table models (every tenth is ephemeral: bridged over, never run) and 90 tests.
    assert figures.nodes >= 1 + 27 + 90
    assert 0 < figures.plan_edges < figures.dbt_edges / 2
    assert 0 < figures.payload_bytes < 100_000

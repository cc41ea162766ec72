"""The warm session pool keeps a bounded number of real DuckDB sessions."""

from __future__ import annotations

from pathlib import Path

from dbt_temporal.config.projects import discover_projects
from dbt_temporal.config.settings import Settings
from dbt_temporal.contract import SessionSpec
from dbt_temporal.engine.pool import SessionPool
from dbt_temporal.engine.session import DbtSession


def open_connections(session: DbtSession) -> list[object]:
    """Connect the session to its warehouse (creating its schemas) and return its connections."""
    session.ensure_schemas()
    return list(session.adapter.connections.thread_connections.values())


def test_least_recently_used_idle_session_is_closed_and_leased_ones_survive(shop: Path, tmp_path: Path) -> None:
    pool = SessionPool(discover_projects(Settings(dbt_project_dir=shop)), tmp_path / "work", max_sessions=2)
    env = {"SHOP_DUCKDB_PATH": str(tmp_path / "shop.duckdb")}
    first, second, third = (SessionSpec(vars={"run": n}, env=env) for n in (1, 2, 3))
    try:
        with pool.lease(first) as leased:  # in use throughout, and the least recently used
            with pool.lease(second) as idle:
                connections = open_connections(idle)
            assert pool.keys == [leased.key, idle.key]

            with pool.lease(third) as newest:
                assert pool.keys == [leased.key, newest.key]
            assert connections and all(connection.state == "closed" for connection in connections)
            assert pool.get(first) is leased  # still warm: not parsed again
        assert len(pool.keys) == 2
    finally:
        pool.close()


def test_a_closed_sessions_manifest_is_released_though_a_run_of_it_was_cached(shop: Path, tmp_path: Path) -> None:
    """A worker serving runs with ever new --vars keeps at most WORKER_MAX_SESSIONS manifests in memory."""
    import gc
    import weakref
    from datetime import UTC, datetime

    from dbt_temporal.contract import InvocationSpec
    from dbt_temporal.engine.invocation import InvocationCache

    pool = SessionPool(discover_projects(Settings(dbt_project_dir=shop)), tmp_path / "work", max_sessions=1)
    invocations = InvocationCache()
    env = {"SHOP_DUCKDB_PATH": str(tmp_path / "shop.duckdb")}
    started = datetime.now(UTC)
    try:
        with pool.lease(SessionSpec(vars={"run": 1}, env=env)) as first:
            invocations.get(first, "build", InvocationSpec(invocation_id="run-1", run_started_at=started))
            first_manifest = weakref.ref(first.manifest)
        del first
        with pool.lease(SessionSpec(vars={"run": 2}, env=env)) as second:  # the pool closes the first
            invocations.get(second, "build", InvocationSpec(invocation_id="run-2", run_started_at=started))
        gc.collect()

        assert first_manifest() is None
    finally:
        pool.close()

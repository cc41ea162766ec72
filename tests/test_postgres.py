"""End to end on PostgreSQL: many projects and many runs on one worker, and many workers on one run.

Everything is real: a private PostgreSQL cluster, a Temporal dev server and `dbtt worker`
subprocesses. Runs that must overlap in time are held at a gate (a PostgreSQL advisory
lock the test holds) until every one of them is waiting there, so their nodes provably
run at the same time on one worker.
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from pathlib import Path

import pytest
from temporalio.client import WorkflowFailureError

from dbt_temporal.client.runs import RunView, fetch_view, start_run
from dbt_temporal.contract import DbtRunInput, DbtRunOutput, NodeResult, NodeStatus
from tests.postgres import PostgresServer
from tests.support import EXAMPLES, WorkerProcess, copy_project, dbtt, output_of, run_and_wait, wait_until
from tests.support import _connect as connect_client

GATE_KEY = 734_101
GATE_HOOK = f"select pg_advisory_xact_lock_shared({GATE_KEY})"
GATE_ID = "model.env_override.gate"
EU_IDS, US_IDS = [1, 3, 6], [2, 4, 7]
EU_REVENUE = {"ada": 12.5, "grace": 42.0, "linus": 150.0}


# --- fixtures and helpers -------------------------------------------------------------------


@pytest.fixture
def env_project(tmp_path: Path) -> Path:
    """The env_override example with a gate node that its models wait behind."""
    project = copy_project(EXAMPLES / "env_override", tmp_path / "env_override")
    models = project / "models"
    gate = f"{{{{ config(materialized='view', pre_hook=\"{GATE_HOOK}\") }}}}\nselect 1 as open\n"
    (models / "gate.sql").write_text(gate)
    for name in ("customer_revenue.sql", "order_log.sql"):
        model = models / name
        model.write_text("-- depends_on: {{ ref('gate') }}\n" + model.read_text())
    return project


class Gate:
    """An exclusive advisory lock; gated nodes take it shared, so they wait until the test opens it."""

    def __init__(self, postgres: PostgresServer, database: str) -> None:
        self._connections = postgres.connect(database)
        self.connection = self._connections.__enter__()
        with self.connection.cursor() as cursor:
            cursor.execute("select pg_advisory_lock(%s)", (GATE_KEY,))

    def waiting(self) -> int:
        with self.connection.cursor() as cursor:
            cursor.execute(
                "select count(*) from pg_locks where locktype = 'advisory' and objid = %s and not granted"
                " and database = (select oid from pg_database where datname = current_database())",
                (GATE_KEY,),
            )
            return cursor.fetchone()[0]

    def open_when_waiting(self, count: int, timeout: float = 120) -> None:
        """Open once `count` nodes wait at the gate (it opens on failure too, so nothing hangs)."""
        try:
            wait_until(lambda: self.waiting() >= count, timeout=timeout)
        finally:
            self.close()

    def close(self) -> None:
        if not self.connection.closed:
            self._connections.__exit__(None, None, None)


def run_together(worker: WorkerProcess, runs: list[DbtRunInput], gate: Gate | None = None) -> list[RunView]:
    """Start all runs at once; if gated, open the gate only when one node of each run waits at it."""

    async def main() -> list[RunView]:
        client = await connect_client(worker.address)
        handles = [await start_run(client, worker.settings, run, f"pg-{uuid.uuid4().hex[:10]}") for run in runs]
        if gate is not None:
            await asyncio.to_thread(gate.open_when_waiting, len(runs))
        for handle in handles:
            try:
                await handle.result()
            except WorkflowFailureError:
                pass
        return [await fetch_view(client, handle) for handle in handles]

    return asyncio.run(main())


def succeeded(view: RunView) -> DbtRunOutput:
    output = output_of(view)
    assert output.success, [(r.unique_id, r.status, r.message) for r in output.node_results]
    return output


def node(output: DbtRunOutput, name: str) -> NodeResult:
    return next(r for r in output.node_results if r.unique_id.split(".")[-1] == name)


def assert_overlap(first: NodeResult, second: NodeResult) -> None:
    assert first.started_at and first.completed_at and second.started_at and second.completed_at
    assert first.started_at < second.completed_at and second.started_at < first.completed_at


def rows(postgres: PostgresServer, database: str, sql: str) -> list[tuple]:
    return sorted(postgres.query(database, sql), key=repr)


def revenue(postgres: PostgresServer, database: str, schema: str) -> dict[str, float]:
    found = postgres.query(database, f"select customer, revenue from {schema}.customer_revenue")
    return {customer: float(amount) for customer, amount in found}


def start_pg_worker(start_worker, project: Path, postgres: PostgresServer, database: str, **env: str) -> WorkerProcess:  # noqa: ANN001
    return start_worker(project, **postgres.env(database), **env)


# --- per-run settings on one worker ---------------------------------------------------------


def add_run_stamp(project: Path) -> None:
    """A model that renders the run's invocation directly and through an ephemeral parent, behind the gate."""
    models = project / "models"
    (models / "eph_stamp.sql").write_text(
        "{{ config(materialized='ephemeral') }}\nselect '{{ run_started_at }}' as eph_started, "
        "'{{ invocation_id }}' as eph_invocation\n"
    )
    (models / "stamp.sql").write_text(
        "-- depends_on: {{ ref('gate') }}\n{{ config(materialized='view') }}\n"
        "select '{{ run_started_at }}' as started, '{{ invocation_id }}' as invocation, eph_started, eph_invocation"
        " from {{ ref('eph_stamp') }}\n"
    )


def test_runs_with_different_env_write_their_own_schemas(postgres, database, env_project, start_worker) -> None:  # noqa: ANN001
    add_run_stamp(env_project)
    worker = start_pg_worker(start_worker, env_project, postgres, database, PG_SCHEMA="worker_default")
    run_a = DbtRunInput(env={"PG_SCHEMA": "team_a", "DBTT_REGION": "eu", "DBTT_RUN_LABEL": "label-a"})
    run_b = DbtRunInput(env={"PG_SCHEMA": "team_b", "DBTT_REGION": "us", "DBTT_RUN_LABEL": "label-b"})

    view_a, view_b = run_together(worker, [run_a, run_b], Gate(postgres, database))
    out_a, out_b = succeeded(view_a), succeeded(view_b)

    assert_overlap(node(out_a, "gate"), node(out_b, "gate"))
    assert rows(postgres, database, "select id from team_a.stg_orders") == [(i,) for i in EU_IDS]
    assert rows(postgres, database, "select id from team_b.stg_orders") == [(i,) for i in US_IDS]
    assert rows(postgres, database, "select distinct run_label from team_a.customer_revenue") == [("label-a",)]
    assert rows(postgres, database, "select distinct run_label from team_b.customer_revenue") == [("label-b",)]
    for output, mine, theirs in ((out_a, ("team_a", "'eu'", "label-a"), ("team_b", "'us'", "label-b")),
                                 (out_b, ("team_b", "'us'", "label-b"), ("team_a", "'eu'", "label-a"))):  # fmt: skip
        compiled = node(output, "stg_orders").compiled_code + node(output, "customer_revenue").compiled_code
        assert all(value in compiled for value in mine), compiled
        assert not any(value in compiled for value in theirs), compiled

    # Concurrent runs each see their own invocation, in a model and in its ephemeral parent alike.
    stamps = {
        output.invocation_id: rows(postgres, database, f"select * from {schema}.stamp")[0]
        for output, schema in ((out_a, "team_a"), (out_b, "team_b"))
    }
    for invocation_id, (started, invocation, eph_started, eph_invocation) in stamps.items():
        assert invocation == eph_invocation == invocation_id
        assert started == eph_started
    assert len({started for started, *_ in stamps.values()}) == 2

    # A run without env falls back to the worker's environment, untouched by the runs before it.
    plain = succeeded(run_and_wait(worker, DbtRunInput()))
    assert "worker_default" in node(plain, "customer_revenue").compiled_code
    assert rows(postgres, database, "select distinct run_label from worker_default.customer_revenue") == [
        ("unlabelled",)
    ]


def test_runs_with_different_vars_write_their_own_schemas(postgres, database, env_project, start_worker) -> None:  # noqa: ANN001
    worker = start_pg_worker(start_worker, env_project, postgres, database)
    run_a = DbtRunInput(vars={"schema": "vars_a", "fx_rate": 2})
    run_b = DbtRunInput(vars={"schema": "vars_b", "fx_rate": 3})

    view_a, view_b = run_together(worker, [run_a, run_b], Gate(postgres, database))
    out_a, out_b = succeeded(view_a), succeeded(view_b)

    assert_overlap(node(out_a, "gate"), node(out_b, "gate"))
    assert revenue(postgres, database, "vars_a") == {c: v * 2 for c, v in EU_REVENUE.items()}
    assert revenue(postgres, database, "vars_b") == {c: v * 3 for c, v in EU_REVENUE.items()}
    compiled_a = node(out_a, "customer_revenue").compiled_code
    compiled_b = node(out_b, "customer_revenue").compiled_code
    assert "* 2 /" in compiled_a and '"vars_a"' in compiled_a and "vars_b" not in compiled_a
    assert "* 3 /" in compiled_b and '"vars_b"' in compiled_b and "vars_a" not in compiled_b


def test_runs_for_two_targets_write_their_own_schemas(postgres, database, env_project, start_worker) -> None:  # noqa: ANN001
    worker = start_pg_worker(start_worker, env_project, postgres, database, PG_SCHEMA="shared")

    view_dev, view_prod = run_together(
        worker, [DbtRunInput(target="dev"), DbtRunInput(target="prod")], Gate(postgres, database)
    )
    out_dev, out_prod = succeeded(view_dev), succeeded(view_prod)

    assert_overlap(node(out_dev, "gate"), node(out_prod, "gate"))
    assert rows(postgres, database, "select distinct target_name from shared.customer_revenue") == [("dev",)]
    assert rows(postgres, database, "select distinct target_name from shared_prod.customer_revenue") == [("prod",)]
    assert revenue(postgres, database, "shared") == revenue(postgres, database, "shared_prod") == EU_REVENUE
    assert "'dev'" in node(out_dev, "customer_revenue").compiled_code
    assert "'prod'" in node(out_prod, "customer_revenue").compiled_code
    assert '"shared_prod"' in node(out_prod, "stg_orders").compiled_code
    assert "shared_prod" not in node(out_dev, "stg_orders").compiled_code


def test_full_refresh_run_beside_a_normal_run(postgres, database, env_project, start_worker) -> None:  # noqa: ANN001
    worker = start_pg_worker(start_worker, env_project, postgres, database)
    first = {"PG_SCHEMA": "log_a"}, {"PG_SCHEMA": "log_b"}
    for view in run_together(worker, [DbtRunInput(env=env) for env in first]):
        succeeded(view)  # each log now holds the three eu orders once

    refresh = DbtRunInput(env={"PG_SCHEMA": "log_a"}, full_refresh=True)
    append = DbtRunInput(env={"PG_SCHEMA": "log_b"})
    view_refresh, view_append = run_together(worker, [refresh, append], Gate(postgres, database))
    out_refresh, out_append = succeeded(view_refresh), succeeded(view_append)

    assert_overlap(node(out_refresh, "gate"), node(out_append, "gate"))
    count = "select count(*), count(distinct loaded_at) from {}.order_log"
    assert rows(postgres, database, count.format("log_a")) == [(3, 1)]  # rebuilt: one load
    assert rows(postgres, database, count.format("log_b")) == [(6, 2)]  # appended: two loads
    assert "appended" not in node(out_refresh, "order_log").compiled_code
    assert "appended" in node(out_append, "order_log").compiled_code


# --- secrets --------------------------------------------------------------------------------


async def _history_and_attributes(address: str, workflow_id: str) -> tuple[list[bytes], str]:
    """Every history event we produce (not the inputs, which carry env by design), and the search attributes."""
    client = await connect_client(address)
    handle = client.get_workflow_handle(workflow_id)
    history = await handle.fetch_history()
    produced = [
        event.SerializeToString()
        for event in history.events
        if not event.HasField("workflow_execution_started_event_attributes")
        and not event.HasField("activity_task_scheduled_event_attributes")
    ]
    description = await handle.describe()
    return produced, repr(description.raw_description.workflow_execution_info.search_attributes)


def assert_secret_absent(secret: str, worker: WorkerProcess, view: RunView, project: Path) -> None:
    assert secret not in view.model_dump_json()  # memos (command, node_status, log), output, error
    produced, attributes = asyncio.run(_history_and_attributes(worker.address, view.workflow_id))
    assert produced and not any(secret.encode() in event for event in produced)
    assert secret not in attributes
    assert secret not in "".join(worker.lines)
    for path in project.rglob("*"):  # dbt's target/ and logs/, whatever the run wrote
        assert not path.is_file() or secret.encode() not in path.read_bytes(), path


def test_a_secret_in_env_is_used_but_never_shown(postgres, database, env_project, start_worker) -> None:  # noqa: ANN001
    secret = f"s3cret-{uuid.uuid4().hex}"
    wrong = f"wrong-{uuid.uuid4().hex}"
    postgres.execute(database, f"create role analyst login password '{secret}'")
    postgres.execute(database, f'grant create on database "{database}" to analyst')
    worker = start_pg_worker(start_worker, env_project, postgres, database, PG_SCHEMA="by_worker")

    good = DbtRunInput(env={"PG_USER": "analyst", "PG_PASSWORD": secret, "PG_SCHEMA": "analyst_space"})
    bad = DbtRunInput(env={"PG_USER": "analyst", "PG_PASSWORD": wrong, "PG_SCHEMA": "nowhere"})
    view_good, view_bad = run_together(worker, [good, bad])

    succeeded(view_good)
    owners = rows(postgres, database, "select distinct tableowner from pg_tables where schemaname = 'analyst_space'")
    assert owners == [("analyst",)]  # the run connected as the user its env named
    assert view_good.command["env"] == ["PG_PASSWORD", "PG_SCHEMA", "PG_USER"]
    failed = output_of(view_bad)
    assert not failed.success
    messages = " ".join(r.message or "" for r in failed.node_results)
    assert "password authentication failed" in messages
    assert_secret_absent(secret, worker, view_good, env_project)
    assert_secret_absent(wrong, worker, view_bad, env_project)


# --- many workers, many projects ------------------------------------------------------------


def add_fan_out(project: Path, width: int) -> list[str]:
    """`width` gated models side by side, so a run has that many nodes in flight at once."""
    names = [f"part_{i:02d}" for i in range(width)]
    for i, name in enumerate(names):
        (project / "models" / f"{name}.sql").write_text(
            f'{{{{ config(pre_hook="{GATE_HOOK}") }}}}\n'
            f"select customer, amount_cents % {i + 2} as bucket from {{{{ ref('stg_orders') }}}}\n"
        )
    return names


def identity(worker: WorkerProcess) -> str:
    assert worker.process is not None
    return f"{worker.process.pid}@{socket.gethostname()}"


def test_two_workers_share_one_run(postgres, database, env_project, start_worker) -> None:  # noqa: ANN001
    parts = add_fan_out(env_project, 12)
    first = start_pg_worker(start_worker, env_project, postgres, database)
    single_run = DbtRunInput(env={"PG_SCHEMA": "single"}, threads=16)
    gate = Gate(postgres, database)
    (single,) = run_together_gated(first, single_run, gate, len(parts) + 1)

    second = WorkerProcess(address=first.address, env=first.env, task_queue=first.task_queue).start()
    try:
        scaled_run = DbtRunInput(env={"PG_SCHEMA": "scaled"}, threads=16)
        (scaled,) = run_together_gated(first, scaled_run, Gate(postgres, database), len(parts) + 1)
    finally:
        second.stop()

    single_out, scaled_out = succeeded(single), succeeded(scaled)
    assert {r.worker for r in single_out.node_results} == {identity(first)}
    assert {r.worker for r in scaled_out.node_results} == {identity(first), identity(second)}
    assert {r.unique_id: r.dbt_status for r in scaled_out.node_results} == {
        r.unique_id: r.dbt_status for r in single_out.node_results
    }
    for table in ("stg_orders", "customer_revenue", *parts):
        select = "select * from {}." + table
        assert rows(postgres, database, select.format("scaled")) == rows(postgres, database, select.format("single"))


def run_together_gated(worker: WorkerProcess, run: DbtRunInput, gate: Gate, waiting: int) -> list[RunView]:
    """One run whose gated nodes (`waiting` of them) must all be in flight before any proceeds."""

    async def main() -> list[RunView]:
        client = await connect_client(worker.address)
        handle = await start_run(client, worker.settings, run, f"pg-{uuid.uuid4().hex[:10]}")
        await asyncio.to_thread(gate.open_when_waiting, waiting)
        try:
            await handle.result()
        except WorkflowFailureError:
            pass
        return [await fetch_view(client, handle)]

    return asyncio.run(main())


@pytest.fixture
def multi(tmp_path: Path) -> Path:
    return copy_project(EXAMPLES / "multi", tmp_path / "multi")


def test_one_worker_serves_two_projects(postgres, database, multi, start_worker) -> None:  # noqa: ANN001
    dirs = f"{multi / 'analytics'},{multi / 'marketing'}"
    worker = start_pg_worker(start_worker, multi / "analytics", postgres, database, DBT_PROJECT_DIRS=dirs)

    analytics, marketing = run_together(worker, [DbtRunInput(project="analytics"), DbtRunInput(project="marketing")])

    assert succeeded(analytics).project == "analytics"
    assert succeeded(marketing).project == "marketing"
    engagement = "select user_id, sessions, page_views from analytics.user_engagement"
    assert rows(postgres, database, engagement) == [(10, 2, 10), (11, 1, 1), (12, 2, 14)]
    cost = "select campaign, cost_per_signup::float from marketing.cost_per_signup"
    assert rows(postgres, database, cost) == [("spring", 4.42), ("summer", 4.46)]

    unnamed = run_and_wait(worker, DbtRunInput())
    assert unnamed.status == "failed" and unnamed.error_type == "ProjectNotFound"
    assert "analytics, marketing" in (unnamed.error or "")
    unknown = run_and_wait(worker, DbtRunInput(project="finance"))
    assert "unknown project 'finance'" in (unknown.error or "") and "analytics, marketing" in (unknown.error or "")


def test_a_projects_directory_is_scanned(postgres, database, multi, start_worker) -> None:  # noqa: ANN001
    worker = start_pg_worker(start_worker, multi / "analytics", postgres, database, DBT_PROJECTS_DIR=str(multi))

    assert any("for analytics, marketing" in line for line in worker.lines)
    output = succeeded(run_and_wait(worker, DbtRunInput(project="marketing", select="+cost_per_signup")))
    built = [r.unique_id for r in output.node_results]
    assert built == ["seed.marketing.raw_campaigns", "model.marketing.cost_per_signup"]
    assert node(output, "cost_per_signup").status == NodeStatus.success


def test_two_projects_with_one_name_stop_the_worker(multi: Path, tmp_path: Path, temporal) -> None:  # noqa: ANN001
    twin = copy_project(multi / "analytics", tmp_path / "analytics_copy")
    dirs = f"{multi / 'analytics'},{twin}"

    started = dbtt("worker", env={"DBT_PROJECT_DIRS": dirs, "TEMPORAL_ADDRESS": temporal.address}, timeout=60)

    assert started.returncode == 2
    said = started.stdout + started.stderr
    assert "'analytics'" in said and str(multi / "analytics") in said and str(twin) in said, said

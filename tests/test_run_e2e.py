"""End to end: real Temporal dev server, real `dbtt worker` processes, real DuckDB."""

from __future__ import annotations

import json
from pathlib import Path

from dbt_temporal.contract import DbtRunInput, DbtRunOutput, NodeReport, NodeResult, NodeStatus
from tests.support import (
    EXAMPLES,
    SLOW_PYTHON_MODEL,
    TEST_PROJECTS,
    copy_project,
    dbt_build,
    dbtt,
    memo_of,
    output_of,
    query_status,
    run_and_wait,
    search_attributes_of,
    table_rows,
    wait_until,
)

MARTS = ("orders", "customers", "order_facts")


def add_broken_branch(project: Path) -> None:
    """A model with a SQL error and a child of it, beside the healthy marts."""
    marts = project / "models" / "marts"
    (marts / "broken.sql").write_text("select no_such_column from {{ ref('stg_orders') }}\n")
    (marts / "broken_child.sql").write_text("select * from {{ ref('broken') }}\n")


def test_build_gives_what_dbt_build_gives(shop: Path, tmp_path: Path, start_worker) -> None:
    reference = copy_project(EXAMPLES / "shop", tmp_path / "reference")
    expected = dbt_build(reference, {"SHOP_DUCKDB_PATH": str(reference / "shop.duckdb")})

    worker = start_worker(shop)
    output = output_of(run_and_wait(worker, DbtRunInput()))

    assert output.success
    assert {r.unique_id: r.dbt_status for r in output.node_results} == expected
    orders = next(r for r in output.node_results if r.unique_id == "model.shop.orders")
    assert "__dbt__cte__stg_payments" in (orders.compiled_code or "")  # the ephemeral model was inlined
    seed = next(r for r in output.node_results if r.unique_id == "seed.shop.raw_orders")
    assert seed.adapter_response.get("rows_affected") == 7
    worker.stop()  # DuckDB lets one process hold the file
    for table in MARTS:
        assert table_rows(shop / "shop.duckdb", table) == table_rows(reference / "shop.duckdb", table)


def test_failed_model_skips_its_descendants_only(shop: Path, tmp_path: Path, start_worker) -> None:
    add_broken_branch(shop)
    reference = copy_project(shop, tmp_path / "reference")
    expected = dbt_build(reference, {"SHOP_DUCKDB_PATH": str(reference / "shop.duckdb")})
    worker = start_worker(shop)

    view = run_and_wait(worker, DbtRunInput(), workflow_id="broken-branch")
    output = output_of(view)

    assert not output.success
    results = {r.unique_id: r for r in output.node_results}
    assert {uid: r.dbt_status for uid, r in results.items()} == expected
    assert results["model.shop.broken"].status == NodeStatus.error
    assert "no_such_column" in (results["model.shop.broken"].message or "")
    assert results["model.shop.broken_child"].status == NodeStatus.skipped
    assert results["model.shop.broken_child"].message is None  # as in dbt's run_results.json
    assert results["model.shop.customers"].status == NodeStatus.success

    shown = dbtt("status", "broken-branch", "--output", "json", env={"TEMPORAL_ADDRESS": worker.address})
    assert shown.returncode == 1
    statuses = {r["unique_id"]: r["status"] for r in json.loads(shown.stdout)["node_results"]}
    assert statuses["model.shop.broken"] == "error"
    assert statuses["model.shop.broken_child"] == "skipped"

    text = dbtt("status", "broken-branch", env={"TEMPORAL_ADDRESS": worker.address})
    assert text.returncode == 1
    assert "model broken: " in text.stdout and "no_such_column" in text.stdout
    assert "skipped: model broken_child" in text.stdout


def test_fail_fast_starts_nothing_after_the_first_failure(shop: Path, start_worker) -> None:
    add_broken_branch(shop)
    worker = start_worker(shop)

    output = output_of(run_and_wait(worker, DbtRunInput(fail_fast=True, threads=1)))

    results = {r.unique_id: r for r in output.node_results}
    failed = results["model.shop.broken"]
    assert failed.status == NodeStatus.error
    assert failed.completed_at is not None
    started_later = [r.unique_id for r in output.node_results if r.started_at and r.started_at > failed.completed_at]
    assert started_later == []
    skipped = [r for r in output.node_results if r.status == NodeStatus.skipped]
    assert skipped and all(
        r.message == "Skipping due to fail_fast" for r in skipped if r.unique_id != "model.shop.broken_child"
    )


def test_a_chain_runs_beside_a_slow_node_without_waiting_for_its_level(tmp_path: Path, start_worker) -> None:
    project = copy_project(TEST_PROJECTS / "uneven", tmp_path / "uneven")
    worker = start_worker(project, UNEVEN_DUCKDB_PATH=str(project / "uneven.duckdb"))

    output = output_of(run_and_wait(worker, DbtRunInput(command="run")))

    results = {r.unique_id.split(".")[-1]: r for r in output.node_results}
    slow = results["slow"]
    assert slow.status == NodeStatus.success
    # fast_b and fast_c sit one and two levels below slow's level: a level barrier would hold them.
    for name in ("fast_b", "fast_c"):
        assert results[name].status == NodeStatus.success
        assert results[name].completed_at < slow.completed_at, name


def test_memos_show_the_run_and_keep_env_values_secret(shop: Path, start_worker) -> None:
    worker = start_worker(shop)
    run = DbtRunInput(select="+orders", env={"SOME_API_TOKEN": "hunter2-do-not-leak"})

    output = output_of(run_and_wait(worker, run, workflow_id="memo-check"))
    memo = memo_of(worker.address, "memo-check")

    assert output.success, [(r.unique_id, r.message) for r in output.node_results]
    assert memo["command"]["select"] == "+orders"
    assert memo["command"]["env"] == ["SOME_API_TOKEN"]
    assert memo["node_status"] == {r.unique_id: "success" for r in output.node_results}
    assert memo["progress"]["total"] == len(output.node_results) == memo["progress"]["success"]
    log = memo["log"]
    assert any(" START sql view model main.stg_customers " in line for line in log)
    assert log[-1].startswith("Done. PASS=") and log[-1].endswith(f"TOTAL={len(output.node_results)}")
    assert "hunter2" not in json.dumps(memo)
    # Node requests leave the run's env and vars out (workers ask the run once): history holds them
    # in the plan and store requests, not once per node.
    carrying = scheduled_inputs_containing(worker.address, "memo-check", b"hunter2-do-not-leak")
    assert carrying and all(":" not in activity_type for activity_type in carrying), carrying
    state = query_status(worker.address, "memo-check")
    assert state.finished and state.output is not None and state.output.success
    assert {uid: str(s) for uid, s in state.node_status.items()} == memo["node_status"]
    assert state.log[-1] == log[-1]


def test_a_long_run_continues_as_new_and_keeps_every_result(shop: Path, start_worker) -> None:
    worker = start_worker(shop)

    view = run_and_wait(worker, DbtRunInput(continue_as_new_after_events=100, threads=1), workflow_id="handover")
    output = output_of(view)

    assert output.success
    assert len(output.node_results) == 21
    assert {r.unique_id: r.dbt_status for r in output.node_results}["model.shop.customers"] == "success"
    indexes = [line.split(" of ")[0] for line in view.log if " START " in line]
    assert len(indexes) == len(set(indexes))  # every node numbered once across runs
    assert view.log[-1] == "Done. PASS=21 WARN=0 ERROR=0 SKIP=0 NO-OP=0 TOTAL=21"
    assert handovers(worker.address, "handover") >= 1
    # The workflow carries lean results; the report reads each node's SQL back from the run it ran in.
    assert all(r.compiled_code is None and not r.timing for r in workflow_result(worker.address, "handover"))
    assert all(r.timing for r in output.node_results)
    assert all(r.compiled_code for r in output.node_results if not r.unique_id.startswith("seed."))


def test_a_handover_does_not_wait_for_a_slow_node(shop: Path, start_worker) -> None:
    # Long enough that the node's heartbeat finds its run gone and it reports to the next run.
    (shop / "models" / "slow.py").write_text(SLOW_PYTHON_MODEL)
    worker = start_worker(shop, SHOP_SLOW_SECONDS="15")

    view = run_and_wait(worker, DbtRunInput(continue_as_new_after_events=100, threads=2), workflow_id="outlived")
    output = output_of(view)

    assert output.success, [(r.unique_id, r.message) for r in output.node_results if r.status != NodeStatus.success]
    results = {r.unique_id: r for r in output.node_results}
    slow = results.pop("model.shop.slow")
    assert handovers(worker.address, "outlived") >= 1
    # Every other node ran beside it, through the handover: none waited for the slow one.
    assert all(result.completed_at < slow.completed_at for result in results.values())
    assert view.log[-1] == "Done. PASS=22 WARN=0 ERROR=0 SKIP=0 NO-OP=0 TOTAL=22"
    # It said it was still running, then sent its result, to the run that followed the handover.
    reports = node_reports(worker.address, "outlived")
    assert [report.unique_id for report in reports] == ["model.shop.slow"] * len(reports)
    assert reports[-1].result is not None and all(report.result is None for report in reports[:-1])
    assert len(reports) >= 2
    worker.stop()
    assert table_rows(shop / "shop.duckdb", "slow") == [(1,)]


def scheduled_inputs_containing(address: str, workflow_id: str, needle: bytes) -> list[str]:
    """The types of the run's scheduled activities whose input holds `needle` (node types are `kind:name`)."""
    import asyncio

    from temporalio.client import Client

    async def main() -> list[str]:
        client = await Client.connect(address)
        found = []
        async for event in client.get_workflow_handle(workflow_id).fetch_history_events():
            if event.HasField("activity_task_scheduled_event_attributes"):
                scheduled = event.activity_task_scheduled_event_attributes
                if any(needle in payload.data for payload in scheduled.input.payloads):
                    found.append(scheduled.activity_type.name)
        return found

    return asyncio.run(main())


def node_reports(address: str, workflow_id: str) -> list[NodeReport]:
    """The reports handed-over nodes signalled to the workflow's last run."""
    import asyncio

    from temporalio.client import Client

    from dbt_temporal.client.codec import data_converter

    async def main() -> list[NodeReport]:
        client = await Client.connect(address, data_converter=data_converter)
        reports = []
        async for event in client.get_workflow_handle(workflow_id).fetch_history_events():
            if event.HasField("workflow_execution_signaled_event_attributes"):
                payloads = event.workflow_execution_signaled_event_attributes.input.payloads
                [report] = await data_converter.decode(payloads, [NodeReport])
                reports.append(report)
        return reports

    return asyncio.run(main())


def workflow_result(address: str, workflow_id: str) -> list[NodeResult]:
    """The node results of the workflow's own output, as its history holds it."""
    import asyncio

    from temporalio.client import Client

    from dbt_temporal.client.codec import data_converter

    async def main() -> list[NodeResult]:
        client = await Client.connect(address, data_converter=data_converter)
        return (await client.get_workflow_handle(workflow_id, result_type=DbtRunOutput).result()).node_results

    return asyncio.run(main())


def handovers(address: str, workflow_id: str) -> int:
    """How many times the run continued as new: walk the chain of runs back from the latest."""
    import asyncio

    from temporalio.client import Client

    from dbt_temporal.client.codec import data_converter

    async def main() -> int:
        client = await Client.connect(address, data_converter=data_converter)
        count, run_id = 0, None
        while True:
            handle = client.get_workflow_handle(workflow_id, run_id=run_id)
            async for event in handle.fetch_history_events():
                previous = event.workflow_execution_started_event_attributes.continued_execution_run_id
                break
            if not previous:
                return count
            count, run_id = count + 1, previous

    return asyncio.run(main())


def test_runs_are_searchable_by_project_command_and_worker_attributes(shop: Path, start_worker) -> None:
    # DbtTarget is registered on the dev server; "team" is not, so the worker leaves it out.
    worker = start_worker(shop, TEMPORAL_SEARCH_ATTRIBUTES='{"DbtTarget": "nightly", "team": "data"}')
    run = DbtRunInput(select="+orders", env={"SOME_API_TOKEN": "hunter2-do-not-leak"})

    assert output_of(run_and_wait(worker, run, workflow_id="searchable")).success

    attributes = search_attributes_of(worker.address, "searchable")
    ours = {name: value for name, value in attributes.items() if name.startswith("Dbt") or name == "team"}
    assert ours == {"DbtProject": "shop", "DbtCommand": "build", "DbtTarget": "nightly", "DbtStatus": "success"}
    assert "hunter2" not in repr(attributes)

    # `dbtt status` lists runs by those attributes (the server indexes them shortly after the run).
    env = {"TEMPORAL_ADDRESS": worker.address}

    def listed(*filters: str) -> list[str]:
        result = dbtt("status", *filters, "--output", "json", env=env)
        assert result.returncode == 0, result.stderr
        return [run["workflow_id"] for run in json.loads(result.stdout)]

    wait_until(lambda: "searchable" in listed("--project", "shop", "--status", "success", "--target", "nightly"))
    assert "searchable" not in listed("--status", "failed")


def test_leftovers_of_an_interrupted_materialization_are_found_and_dropped(shop: Path, start_worker) -> None:
    """A node killed between creating its temporary relation and the swap leaves `__dbt_tmp` and
    `__dbt_backup` behind; the next run must see them (one lookup answers for all three names)."""
    import duckdb

    database = shop / "shop.duckdb"
    worker = start_worker(shop)
    assert output_of(run_and_wait(worker, DbtRunInput(select="+orders"))).success
    worker.stop()
    with duckdb.connect(str(database)) as connection:
        connection.execute("create table main.orders__dbt_tmp as select 1 as leftover")
        connection.execute("create table main.orders__dbt_backup as select 1 as leftover")
    expected = table_rows(database, "main.orders")

    worker = start_worker(shop)
    output = output_of(run_and_wait(worker, DbtRunInput(select="orders")))
    worker.stop()

    assert output.success, [r.message for r in output.node_results if r.message]
    assert table_rows(database, "main.orders") == expected
    with duckdb.connect(str(database), read_only=True) as connection:
        names = {row[0] for row in connection.execute("select table_name from information_schema.tables").fetchall()}
    assert "orders" in names and not {"orders__dbt_tmp", "orders__dbt_backup"} & names

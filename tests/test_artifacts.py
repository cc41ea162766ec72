"""A run's record in the artifact store: written by a real worker, read by `dbtt artifacts` and by dbt itself."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from dbt_temporal.contract import DbtRunInput, NodeStatus
from tests.support import BIN, copy_project, dbtt, output_of, run_and_wait
from tests.test_run_e2e import add_broken_branch

BUCKET = "dbtt-runs"
SECRET = "tok-8c1f-secret"


def dbt_ls(project: Path, state: Path, selector: str) -> set[str]:
    """The models the real dbt CLI selects with `--state` pointing at a run's downloaded artifacts."""
    listed = subprocess.run(
        [str(BIN / "dbt"), "-q", "ls", "--select", selector, "--state", str(state), "--output", "name"]
        + ["--resource-type", "model"]
        + ["--project-dir", str(project), "--profiles-dir", str(project)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=project,
    )
    assert listed.returncode == 0, listed.stdout + listed.stderr
    return {line.strip() for line in listed.stdout.splitlines() if line.strip()}


def test_a_failed_run_keeps_artifacts_that_dbt_reads(shop: Path, tmp_path: Path, start_worker) -> None:
    add_broken_branch(shop)
    (shop / "models" / "marts" / "token_echo.sql").write_text("select '{{ env_var('SHOP_TOKEN', 'none') }}' as t\n")
    store = tmp_path / "store"
    worker = start_worker(shop, WRITE_ARTIFACTS="true", ARTIFACT_STORE=str(store))

    run = DbtRunInput(select="+broken+ token_echo", env={"SHOP_TOKEN": SECRET})
    output = output_of(run_and_wait(worker, run, workflow_id="kept-broken"))

    run_dir = store / "kept-broken"
    assert not output.success and output.store_error is None
    assert output.artifacts == [str(run_dir / "run_results.json"), str(run_dir / "manifest.json")]
    assert output.log_path == str(run_dir / "log.txt")
    log = (run_dir / "log.txt").read_text()
    assert "broken" in log and "Done. PASS=" in log
    run_results = json.loads((run_dir / "run_results.json").read_text())
    assert run_results["metadata"]["dbt_schema_version"].endswith("/run-results/v6.json")
    assert {r["unique_id"]: r["status"] for r in run_results["results"]}["model.shop.broken"] == "error"
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["metadata"]["dbt_schema_version"].endswith("/manifest/v12.json")
    assert manifest["metadata"]["invocation_id"] == output.invocation_id
    assert "'****' as t" in (run_dir / "compiled/shop/models/marts/token_echo.sql").read_text()
    assert not [path for path in run_dir.rglob("*") if path.is_file() and SECRET in path.read_text()]
    env = {"ARTIFACT_STORE": str(store), "TEMPORAL_ADDRESS": worker.address}

    compiled = dbtt("artifacts", "kept-broken", "--show", "compiled", "broken", env=env)
    assert compiled.returncode == 0, compiled.stderr
    assert compiled.stdout.startswith('select no_such_column from "') and "ref(" not in compiled.stdout  # as it ran
    listed = json.loads(dbtt("artifacts", "kept-broken", "--output", "json", env=env).stdout)
    assert {"run_results.json", "manifest.json", "log.txt", "compiled/shop/models/marts/broken.sql"} <= {
        row["name"] for row in listed
    }
    state = tmp_path / "state"
    assert dbtt("artifacts", "kept-broken", "--download", str(state), env=env).returncode == 0

    # The project as a user has it beside the downloaded state: dbt's own selectors read the run.
    reader = copy_project(shop, tmp_path / "reader")
    assert dbt_ls(reader, state, "result:error") == {"broken"}
    orders = reader / "models" / "marts" / "orders.sql"
    orders.write_text(orders.read_text() + "\n-- changed since the run\n")
    assert dbt_ls(reader, state, "state:modified") == {"orders"}

    # The fix lands; `dbt retry` reruns just what failed or was skipped, on the same warehouse.
    worker.stop()  # DuckDB lets one process hold the file
    fixed = copy_project(shop, tmp_path / "fixed")
    (fixed / "models" / "marts" / "broken.sql").write_text("select order_id from {{ ref('stg_orders') }}\n")
    retried = subprocess.run(
        [str(BIN / "dbt"), "retry", "--state", str(state), "--project-dir", str(fixed), "--profiles-dir", str(fixed)],
        env={**os.environ, "SHOP_DUCKDB_PATH": str(shop / "shop.duckdb")},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=fixed,
    )
    assert retried.returncode == 0, retried.stdout + retried.stderr
    rerun = json.loads((fixed / "target" / "run_results.json").read_text())
    assert {r["unique_id"]: r["status"] for r in rerun["results"]} == {
        "model.shop.broken": "success",
        "model.shop.broken_child": "success",
    }

    unknown = dbtt("artifacts", "no-such-run", env=env)
    assert unknown.returncode == 2
    assert unknown.stderr.strip() == "error: no run with workflow id 'no-such-run'; list recent runs with: dbtt status"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[ThreadedMotoServer, dict[str, str]]]:
    """An S3 server (moto) on loopback with a bucket, and the AWS settings that reach it."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    env = {
        "AWS_ACCESS_KEY_ID": "dbtt-test-key",
        "AWS_SECRET_ACCESS_KEY": "dbtt-test-secret",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    yield server, env
    server.stop()


def test_an_s3_store_keeps_runs_and_an_unreachable_one_fails_the_run_keeping_results(
    shop: Path, start_worker, s3: tuple[ThreadedMotoServer, dict[str, str]]
) -> None:
    server, aws = s3
    store = f"s3://{BUCKET}/runs"
    worker = start_worker(shop, WRITE_ARTIFACTS="true", ARTIFACT_STORE=store, **aws)
    selection = DbtRunInput(select="+stg_orders", exclude="resource_type:test")

    output = output_of(run_and_wait(worker, selection, workflow_id="kept-in-s3"))

    assert output.success
    assert output.artifacts == [f"{store}/kept-in-s3/run_results.json", f"{store}/kept-in-s3/manifest.json"]
    assert output.log_path == f"{store}/kept-in-s3/log.txt"
    keys = {item["Key"] for item in boto3.client("s3").list_objects_v2(Bucket=BUCKET)["Contents"]}
    assert "runs/kept-in-s3/compiled/shop/models/staging/stg_orders.sql" in keys
    env = {"ARTIFACT_STORE": store, "TEMPORAL_ADDRESS": worker.address, **aws}
    results = dbtt("artifacts", "kept-in-s3", "--show", "run_results", env=env)
    assert results.returncode == 0, results.stderr
    kept = {r["unique_id"]: r["status"] for r in json.loads(results.stdout)["results"]}
    assert kept == {"seed.shop.raw_orders": "success", "model.shop.stg_orders": "success"}

    server.stop()
    down = output_of(run_and_wait(worker, selection, workflow_id="store-down"))

    assert not down.success
    assert {r.unique_id: r.status for r in down.node_results} == {
        "seed.shop.raw_orders": NodeStatus.success,
        "model.shop.stg_orders": NodeStatus.success,
    }
    assert down.store_error is not None and store in down.store_error
    assert down.artifacts == [] and down.log_path is None
    unreachable = dbtt("artifacts", "kept-in-s3", env=env)
    assert unreachable.returncode == 2
    assert len(unreachable.stderr.strip().splitlines()) == 1 and store in unreachable.stderr
    assert os.environ["AWS_SECRET_ACCESS_KEY"] not in unreachable.stderr + " ".join(down.store_error.split())

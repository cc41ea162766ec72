"""`dbtt submit docs generate` against plain `dbt docs generate`, and `dbtt artifacts ID --show docs`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import urllib.request
from pathlib import Path

import pytest

from dbt_temporal.client.devserver import DevServer
from tests.postgres import free_port
from tests.support import BIN, EXAMPLES, copy_project, dbtt, shop_worker_keeping_artifacts, wait_until


def columns_by_node(catalog: dict) -> dict[str, dict[str, str]]:
    return {
        uid: {name: column["type"] for name, column in entry["columns"].items()}
        for uid, entry in {**catalog["nodes"], **catalog["sources"]}.items()
    }


def with_seeds_apart(destination: Path) -> Path:
    """The shop with its seeds in a schema of their own: the catalog spans two schemas."""
    project = copy_project(EXAMPLES / "shop", destination)
    config = project / "dbt_project.yml"
    config.write_text(config.read_text() + "\nseeds:\n  shop:\n    +schema: raw\n")
    return project


@pytest.fixture(scope="module")
def runs(temporal: DevServer, tmp_path_factory: pytest.TempPathFactory) -> dict:
    base = tmp_path_factory.mktemp("docs")
    reference = with_seeds_apart(base / "reference")
    env = {**os.environ, "SHOP_DUCKDB_PATH": str(base / "reference.duckdb")}
    for command in (["build"], ["docs", "generate"]):
        subprocess.run(
            [str(BIN / "dbt"), *command, "--project-dir", str(reference), "--profiles-dir", str(reference)],
            capture_output=True, text=True, timeout=300, cwd=reference, env=env, check=True,
        )  # fmt: skip
    project = with_seeds_apart(base / "project")
    worker = shop_worker_keeping_artifacts(temporal.address, project, base)
    client = {"TEMPORAL_ADDRESS": worker.address, "TEMPORAL_TASK_QUEUE": worker.task_queue}
    try:
        assert dbtt("submit", "build", env=client).returncode == 0
        # Another session than the build's (an env override differs): the catalog must use its own adapter.
        generated = dbtt("submit", "docs", "generate", "--env", "DOCS_RUN=separate-session", "-o", "json", env=client)
    finally:
        worker.stop()
    return {"reference": reference, "generated": generated, "report": json.loads(generated.stdout), "env": worker.env}


def test_docs_generate_keeps_dbts_catalog_and_site(runs: dict) -> None:
    assert runs["generated"].returncode == 0, runs["generated"].stderr
    kept = {Path(path).name: Path(path) for path in runs["report"]["artifacts"]}
    expected = json.loads((runs["reference"] / "target" / "catalog.json").read_text())
    catalog = json.loads(kept["catalog.json"].read_text())

    assert columns_by_node(catalog) == columns_by_node(expected)
    assert catalog["errors"] is None
    assert {"model.shop.orders", "seed.shop.raw_orders"} <= set(catalog["nodes"])
    assert kept["index.html"].read_bytes() == (runs["reference"] / "target" / "index.html").read_bytes()
    manifest = json.loads(kept["manifest.json"].read_text())
    assert "select" in manifest["nodes"]["model.shop.orders"]["compiled_code"]


def test_show_docs_serves_the_runs_site_until_ctrl_c(runs: dict) -> None:
    port = free_port()
    server = subprocess.Popen(
        [str(BIN / "dbtt"), "artifacts", runs["report"]["workflow_id"], "--show", "docs", "--port", str(port)],
        env={**os.environ, "ARTIFACT_STORE": runs["env"]["ARTIFACT_STORE"]},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip

    def fetch(name: str) -> bytes | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/{name}", timeout=2) as response:
                return response.read()
        except OSError:
            return None

    try:
        wait_until(lambda: fetch("index.html") is not None or server.poll() is not None, timeout=60)
        catalog = fetch("catalog.json")
        index = fetch("index.html")
    finally:
        server.send_signal(signal.SIGINT)
        _, stderr = server.communicate(timeout=30)

    kept = {Path(path).name: Path(path) for path in runs["report"]["artifacts"]}
    assert catalog == kept["catalog.json"].read_bytes()
    assert index == kept["index.html"].read_bytes()
    assert server.returncode == 0
    assert f"http://127.0.0.1:{port}" in stderr

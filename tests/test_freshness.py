"""`dbtt submit source freshness` against plain `dbt source freshness` on the same project.

Three sources read tables whose newest row is now, two days old and years old; with warn after a
day and error after thirty, dbt says pass, warn and error (stale). dbtt checks each source as its
own activity and must say the same words, exit 1 as dbt does, and keep dbt's sources.json.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from dbt_temporal.client.devserver import DevServer
from tests.support import BIN, EXAMPLES, copy_project, dbtt, shop_worker_keeping_artifacts

SOURCES_YML = """
version: 2
sources:
  - name: feeds
    schema: main
    loaded_at_field: loaded_at
    freshness:
      warn_after: {count: 1, period: day}
      error_after: {count: 30, period: day}
    tables:
      - name: fresh_feed
      - name: aging_feed
      - name: stale_feed
      - name: unchecked_feed
        freshness: null
"""
FEEDS = {
    "fresh_feed": "select cast(current_timestamp as timestamp) as loaded_at",
    "aging_feed": "select cast(current_timestamp as timestamp) - interval 2 day as loaded_at",
    "stale_feed": "select timestamp '2020-01-01 00:00:00' as loaded_at",
    "unchecked_feed": "select timestamp '2020-01-01 00:00:00' as loaded_at",
}
EXPECTED = {
    "source.shop.feeds.fresh_feed": "pass",
    "source.shop.feeds.aging_feed": "warn",
    "source.shop.feeds.stale_feed": "error",
}


def with_feeds(destination: Path) -> Path:
    project = copy_project(EXAMPLES / "shop", destination)
    (project / "models" / "feeds").mkdir()
    (project / "models" / "feeds" / "sources.yml").write_text(SOURCES_YML)
    for name, sql in FEEDS.items():
        (project / "models" / "feeds" / f"{name}.sql").write_text(f"{{{{ config(materialized='table') }}}}\n{sql}\n")
    # The comment makes dbt build the feed's table first (the source names the same table).
    rollup = (
        "-- depends_on: {{ ref('fresh_feed') }}\nselect count(*) as loads from {{ source('feeds', 'fresh_feed') }}\n"
    )
    (project / "models" / "feeds" / "fresh_feed_rollup.sql").write_text(rollup)
    return project


def plain_dbt(project: Path, env: dict[str, str], *args: str) -> int:
    return subprocess.run(
        [str(BIN / "dbt"), *args, "--project-dir", str(project), "--profiles-dir", str(project)],
        capture_output=True, text=True, timeout=300, env={**os.environ, **env}, cwd=project,
    ).returncode  # fmt: skip


@pytest.fixture(scope="module")
def runs(temporal: DevServer, tmp_path_factory: pytest.TempPathFactory) -> dict:
    base = tmp_path_factory.mktemp("freshness")
    reference = with_feeds(base / "reference")
    reference_env = {"SHOP_DUCKDB_PATH": str(base / "reference.duckdb")}
    assert plain_dbt(reference, reference_env, "run", "-s", "path:models/feeds") == 0
    dbt_exit = plain_dbt(reference, reference_env, "source", "freshness")
    expected = json.loads((reference / "target" / "sources.json").read_text())

    project = with_feeds(base / "project")
    worker = shop_worker_keeping_artifacts(temporal.address, project, base)
    client = {"TEMPORAL_ADDRESS": worker.address, "TEMPORAL_TASK_QUEUE": worker.task_queue}
    try:
        assert dbtt("submit", "run", "-s", "path:models/feeds", env=client).returncode == 0
        checked = dbtt("submit", "source", "freshness", "-o", "json", env=client)
        # New rows arrive in one feed only; the next freshness check sees them.
        assert dbtt("submit", "run", "-s", "fresh_feed", env=client).returncode == 0
        second_check = json.loads(dbtt("submit", "source", "freshness", "-o", "json", env=client).stdout)
        first_check = json.loads(checked.stdout)["workflow_id"]
        fresher = dbtt("submit", "ls", "-s", "source_status:fresher+", "--state", first_check, env=client)
    finally:
        worker.stop()
    # Plain dbt's view of the same two checks: the first as --state, the second as its target's sources.json.
    current = base / "current-target"
    current.mkdir()
    shutil.copy(next(p for p in second_check["artifacts"] if p.endswith("sources.json")), current / "sources.json")
    state = base / "store" / first_check
    listed = subprocess.run(
        [str(BIN / "dbt"), "-q", "ls", "-s", "source_status:fresher+", "--state", str(state)]
        + ["--target-path", str(current), "--output", "json", "--output-keys", "unique_id"]
        + ["--project-dir", str(project), "--profiles-dir", str(project)],
        capture_output=True, text=True, timeout=120, cwd=project, env={**os.environ, **worker.env},
    )  # fmt: skip
    report = json.loads(checked.stdout)
    return {
        "dbt_exit": dbt_exit,
        "expected": expected,
        "checked": checked,
        "report": report,
        "fresher": fresher,
        "dbt_fresher": sorted(json.loads(line)["unique_id"] for line in listed.stdout.splitlines() if line.strip()),
    }


def test_each_source_gets_dbts_freshness_word_and_the_same_exit_code(runs: dict) -> None:
    report = runs["report"]
    statuses = {r["unique_id"]: r["dbt_status"] for r in report["node_results"]}

    assert statuses == {r["unique_id"]: r["status"] for r in runs["expected"]["results"]} == EXPECTED
    assert runs["checked"].returncode == runs["dbt_exit"] == 1
    assert report["command"] == "source freshness"


def test_the_run_keeps_sources_json_as_dbt_writes_it(runs: dict) -> None:
    report = runs["report"]
    sources_json = next(path for path in report["artifacts"] if path.endswith("sources.json"))
    kept = json.loads(Path(sources_json).read_text())

    assert kept["metadata"]["dbt_schema_version"] == runs["expected"]["metadata"]["dbt_schema_version"]
    by_source = {r["unique_id"]: r for r in kept["results"]}
    assert {uid: r["status"] for uid, r in by_source.items()} == EXPECTED
    assert by_source["source.shop.feeds.stale_feed"]["max_loaded_at"].startswith("2020-01-01")
    assert by_source["source.shop.feeds.aging_feed"]["criteria"]["warn_after"] == {"count": 1, "period": "day"}


def test_source_status_fresher_selects_the_source_with_new_rows_and_its_children(runs: dict) -> None:
    fresher = runs["fresher"]

    assert fresher.returncode == 0, fresher.stderr
    assert (
        fresher.stdout.split()
        == runs["dbt_fresher"]
        == ["model.shop.fresh_feed_rollup", "source.shop.feeds.fresh_feed"]
    )


def test_the_run_log_says_each_sources_freshness_as_dbt_does(runs: dict) -> None:
    log = Path(runs["report"]["log_path"]).read_text()

    assert "PASS freshness of feeds.fresh_feed" in log
    assert "WARN freshness of feeds.aging_feed" in log
    assert "ERROR STALE freshness of feeds.stale_feed" in log

"""`dbtt schedule`: Temporal Schedules that start dbt runs, driven through the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support import TEST_PROJECTS, copy_project, dbtt, wait_until


def test_a_schedule_starts_runs_that_status_names_and_skips_overlaps(tmp_path: Path, start_worker) -> None:
    project = copy_project(TEST_PROJECTS / "crash", tmp_path / "crash")
    worker = start_worker(project, CRASH_DUCKDB_PATH=str(tmp_path / "crash.duckdb"))
    env = {"TEMPORAL_ADDRESS": worker.address, "TEMPORAL_TASK_QUEUE": worker.task_queue}

    def cli(*args: str):  # noqa: ANN202
        return dbtt(*args, env=env)

    def described() -> dict:
        result = cli("schedule", "describe", "nightly", "--output", "json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    created = cli("schedule", "create", "nightly", "run", "-s", "first", "slow", "--cron", "0 6 * * *")
    assert created.returncode == 0, created.stderr
    summary = described()
    assert (summary["cron"], summary["command"], summary["select"]) == (["0 6 * * *"], "run", "first slow")
    assert (summary["paused"], summary["overlap"]) == (False, "skip")
    assert len(summary["next_runs"]) == 5

    # Triggered twice while the first run is busy with its 8-second node: the second is skipped.
    assert cli("schedule", "trigger", "nightly").returncode == 0
    wait_until(lambda: described()["runs_started"] == 1)
    assert cli("schedule", "trigger", "nightly").returncode == 0
    wait_until(lambda: described()["skipped_for_overlap"] == 1)

    def scheduled_runs() -> list[dict]:
        listed = json.loads(cli("status", "--output", "json").stdout)
        return [run for run in listed if run["scheduled_by"] == "nightly"]

    wait_until(lambda: [run["status"] for run in scheduled_runs()] == ["completed"], timeout=120)
    [run] = scheduled_runs()
    assert run["workflow_id"].startswith("dbt-nightly-")
    shown = cli("status", run["workflow_id"])
    assert "started by schedule nightly" in shown.stdout + shown.stderr

    assert cli("schedule", "pause", "nightly").returncode == 0
    assert described()["paused"] is True
    listed = cli("schedule", "list", "--output", "json")
    assert [(s["name"], s["paused"]) for s in json.loads(listed.stdout)] == [("nightly", True)]

    bad = cli("schedule", "create", "broken", "--cron", "61 * * * *")
    assert bad.returncode == 2 and "Temporal refused schedule 'broken'" in bad.stderr
    assert cli("schedule", "delete", "nightly").returncode == 0
    gone = cli("schedule", "describe", "nightly")
    assert gone.returncode == 2 and "no schedule named 'nightly'" in gone.stderr

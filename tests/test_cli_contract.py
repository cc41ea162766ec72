"""What CI scripts rely on, driven through the real `dbtt` process: stdout, stderr, exit codes.

stdout carries only what a script reads (the run log, the JSON, or the workflow id alone);
every command's JSON has the one shape committed in docs/run-output.schema.json.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest

from dbt_temporal.client.devserver import DevServer
from dbt_temporal.client.runs import run_report_schema
from tests.support import (
    BIN,
    EXAMPLES,
    REPO,
    TEST_PROJECTS,
    WorkerProcess,
    copy_project,
    dbtt,
    identity_of,
    node_status_is,
    output_of,
    view_of,
    wait_until,
)

SCHEMA_FILE = REPO / "docs" / "run-output.schema.json"
BAD_MODEL = "select nope from {{ ref('stg_orders') }}\n"
# A table whose query runs for minutes on DuckDB, until a cancel interrupts it.
LONG_QUERY_MODEL = (
    "{{ config(materialized='table') }}\nselect count(*) as n from range(100000000000) t(i) where i % 7 = 3\n"
)
# The warning must come within ~10 s of the run being waited on.
IDLE_WARNING_SECONDS = 15
# A Python model (it cannot be interrupted) that is still running when its worker gets SIGTERM.
PATIENT_MODEL = (
    "import time\n\n\ndef model(dbt, session):\n    time.sleep(12)\n    return session.sql('select 1 as id')\n"
)

SELECTORS = "selectors:\n  - name: marts_only\n    definition:\n      method: path\n      value: models/marts\n"


@pytest.fixture(scope="module")
def worker(temporal: DevServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerProcess]:
    """One worker for the module: the example project plus a failing model and a long query."""
    project = copy_project(EXAMPLES / "shop", tmp_path_factory.mktemp("contract") / "shop")
    (project / "models" / "marts" / "bad.sql").write_text(BAD_MODEL)
    (project / "models" / "marts" / "long_query.sql").write_text(LONG_QUERY_MODEL)
    (project / "selectors.yml").write_text(SELECTORS)
    env = {"DBT_PROJECT_DIR": str(project), "SHOP_DUCKDB_PATH": str(project / "shop.duckdb")}
    process = WorkerProcess(address=temporal.address, env=env).start()
    yield process
    process.stop()


def env_for(worker: WorkerProcess, **extra: str) -> dict[str, str]:
    return {"TEMPORAL_ADDRESS": worker.address, "TEMPORAL_TASK_QUEUE": worker.task_queue, **extra}


def report_of(result: subprocess.CompletedProcess[str]) -> dict:
    """The command's stdout, which must be one JSON document of the committed schema."""
    report = json.loads(result.stdout)
    jsonschema.validate(report, json.loads(SCHEMA_FILE.read_text()))
    return report


def new_id(label: str) -> str:
    return f"contract-{label}-{uuid.uuid4().hex[:6]}"


class Watching:
    """A `dbtt` command left running, its stderr read line by line as it comes."""

    def __init__(self, *args: str, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [str(BIN / "dbtt"), *args],
            env={**os.environ, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.stderr_lines: list[str] = []
        self._pump_thread = threading.Thread(target=self._pump, daemon=True)
        self._pump_thread.start()

    def _pump(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.stderr_lines.append(line)

    @property
    def stderr(self) -> str:
        return "".join(self.stderr_lines)

    def interrupt(self) -> tuple[int, str]:
        """Ctrl-C; returns the exit code and stdout, once stderr has been read to its end."""
        assert self.process.stdout is not None
        self.process.send_signal(signal.SIGINT)
        code = self.process.wait(timeout=30)
        stdout = self.process.stdout.read()
        self._pump_thread.join(timeout=10)
        return code, stdout


def test_the_committed_schema_is_the_models_schema() -> None:
    assert SCHEMA_FILE.read_text() == run_report_schema(), (
        "docs/run-output.schema.json is stale: python -m dbt_temporal.client.schema"
    )


def test_success_prints_one_shape_from_submit_status_and_watch(worker: WorkerProcess) -> None:
    run_id = new_id("ok")

    submitted = dbtt("submit", "-s", "+orders", "-o", "json", "--workflow-id", run_id, env=env_for(worker))
    shown = dbtt("status", run_id, "-o", "json", env=env_for(worker))
    watched = dbtt("status", run_id, "--watch", "-o", "json", env=env_for(worker))

    assert (submitted.returncode, shown.returncode, watched.returncode) == (0, 0, 0), submitted.stderr
    reports = [report_of(result) for result in (submitted, shown, watched)]
    for report in reports:
        assert report["workflow_id"] == run_id
        assert report["status"] == "completed" and report["success"] is True
        assert report["task_queue"] == worker.task_queue
        assert report["node_status"]["model.shop.orders"] == "success"
    assert reports[0]["node_results"] == reports[1]["node_results"] == reports[2]["node_results"]
    assert "Started" not in submitted.stderr  # json mode: nothing for people on stderr either

    listed = dbtt("status", "-o", "json", env=env_for(worker))
    runs = {run["workflow_id"]: run for run in json.loads(listed.stdout)}
    jsonschema.validate(runs[run_id], json.loads(SCHEMA_FILE.read_text()))


def test_a_failed_run_has_the_same_shape_and_exits_1(worker: WorkerProcess) -> None:
    result = dbtt("submit", "-s", "bad", "-o", "json", env=env_for(worker))

    assert result.returncode == 1, result.stderr
    report = report_of(result)
    assert report["status"] == "failed" and report["success"] is False
    assert report["error_type"] == "DbtRunFailed"
    assert report["node_status"]["model.shop.bad"] == "error"
    assert [r["status"] for r in report["node_results"] if r["unique_id"] == "model.shop.bad"] == ["error"]


def test_a_plan_error_has_the_same_shape_and_exits_2(worker: WorkerProcess) -> None:
    result = dbtt("submit", "-s", "nosuchmethod:foo", "-o", "json", env=env_for(worker))

    assert result.returncode == 2, result.stderr
    report = report_of(result)
    assert report["status"] == "failed" and report["node_results"] == []
    assert "nosuchmethod" in report["error"]


def test_cancel_stops_a_long_query_and_a_second_cancel_exits_2(worker: WorkerProcess) -> None:
    run_id = new_id("cancel")
    started = dbtt("submit", "-s", "long_query", "--no-wait", "--workflow-id", run_id, env=env_for(worker))
    assert started.returncode == 0, started.stderr
    wait_until(lambda: node_status_is(worker.address, run_id, "model.shop.long_query", "running"), timeout=60)

    cancelled = dbtt("cancel", run_id, "-o", "json", env=env_for(worker), timeout=60)

    assert cancelled.returncode == 0, cancelled.stderr
    report = report_of(cancelled)
    assert report["status"] == "cancelled" and report["cancelled"] is True
    assert report["node_status"]["model.shop.long_query"] == "cancelled"
    assert report_of(dbtt("status", run_id, "-o", "json", env=env_for(worker)))["status"] == "cancelled"

    again = dbtt("cancel", run_id, env=env_for(worker))
    assert again.returncode == 2
    assert again.stdout == ""
    assert f"run {run_id} already ended (cancelled); there is nothing to cancel" in again.stderr


def test_no_wait_prints_the_workflow_id_alone(worker: WorkerProcess) -> None:
    result = dbtt("submit", "-s", "stg_customers", "--no-wait", env=env_for(worker))

    assert result.returncode == 0, result.stderr
    run_id = result.stdout.strip()
    assert result.stdout == run_id + "\n" and run_id.startswith("dbt-")
    assert f"Started {run_id}" in result.stderr
    followed = dbtt("status", run_id, "--watch", "-o", "json", env=env_for(worker))
    assert followed.returncode == 0
    assert report_of(followed)["status"] == "completed"


def test_ls_prints_the_listed_nodes_in_text_mode(worker: WorkerProcess) -> None:
    as_json = dbtt("submit", "ls", "-s", "+orders", "-o", "json", env=env_for(worker))
    as_text = dbtt("submit", "ls", "-s", "+orders", env=env_for(worker))

    assert as_text.returncode == 0, as_text.stderr
    expected = report_of(as_json)["selected"]
    assert "model.shop.orders" in expected
    assert as_text.stdout.splitlines() == expected


@pytest.mark.parametrize(
    "flags",
    [
        ["--resource-type", "model"],
        ["--selector", "marts_only"],
        ["-s", "path:models/staging"],  # relative to the project, whatever the worker's directory
        ["-s", "+orders", "--exclude-resource-type", "test", "--exclude-resource-type", "seed"],
        ["-s", "orders", "--indirect-selection", "empty"],
        ["-s", "stg_orders", "--indirect-selection", "cautious"],
    ],
)
def test_selection_flags_select_what_dbt_selects(worker: WorkerProcess, flags: list[str]) -> None:
    listed = dbtt("submit", "ls", *flags, env=env_for(worker))
    project = Path(worker.env["DBT_PROJECT_DIR"])
    plain_dbt = subprocess.run(
        [str(BIN / "dbt"), "-q", "ls", *flags, "--output", "json", "--output-keys", "unique_id"]
        + ["--project-dir", str(project), "--profiles-dir", str(project)]
        + ["--target-path", str(project.parent / "dbt-ls-target")],
        capture_output=True, text=True, timeout=120, env={**os.environ, **worker.env},
    )  # fmt: skip

    assert listed.returncode == 0, listed.stderr
    assert plain_dbt.returncode == 0, plain_dbt.stdout + plain_dbt.stderr
    expected = [json.loads(line)["unique_id"] for line in plain_dbt.stdout.splitlines() if line.strip()]
    assert expected and listed.stdout.splitlines() == expected, listed.stderr  # the same nodes, in dbt's order


def test_several_values_after_one_select_flag_as_dbt_spells_them(worker: WorkerProcess) -> None:
    spaced = dbtt(
        "submit", "ls", "-s", "stg_orders", "stg_customers", "--select", "orders", "-o", "json", env=env_for(worker)
    )
    quoted = dbtt("submit", "ls", "-s", "stg_orders stg_customers orders", "-o", "json", env=env_for(worker))

    assert spaced.returncode == 0, spaced.stderr
    assert report_of(spaced)["input"]["select"] == "stg_orders stg_customers orders"
    assert report_of(spaced)["selected"] == report_of(quoted)["selected"]
    assert {"model.shop.stg_orders", "model.shop.stg_customers", "model.shop.orders"} <= set(
        report_of(spaced)["selected"]
    )


def test_a_selection_matching_nothing_warns_and_exits_0_as_dbt_does(worker: WorkerProcess) -> None:
    result = dbtt("submit", "-s", "nonexistent_model", env=env_for(worker))

    assert result.returncode == 0, result.stderr
    assert "warning: the selection --select nonexistent_model matches no enabled node; nothing ran" in result.stderr
    assert "0 nodes selected" in result.stdout


def test_reset_runs_on_the_original_runs_task_queue(worker: WorkerProcess) -> None:
    run_id = new_id("reset")
    failed = dbtt("submit", "-s", "+bad", "--workflow-id", run_id, env=env_for(worker))
    assert failed.returncode == 1, failed.stderr

    # TEMPORAL_TASK_QUEUE points elsewhere: the re-run must still go where the run's worker is.
    result = dbtt("reset", run_id, "-o", "json", env=env_for(worker, TEMPORAL_TASK_QUEUE="no-worker-here"))

    assert result.returncode == 1, result.stderr
    report = report_of(result)
    assert report["task_queue"] == worker.task_queue
    assert report["workflow_id"].startswith(f"{run_id}-retry-")
    assert [r["unique_id"] for r in report["node_results"] if r["status"] == "error"] == ["model.shop.bad"]


def test_a_run_no_worker_polls_warns_and_ctrl_c_says_it_goes_on(worker: WorkerProcess) -> None:
    queue = f"unpolled-{uuid.uuid4().hex[:6]}"
    run_id = new_id("idle")
    env = env_for(worker, TEMPORAL_TASK_QUEUE=queue)

    submitting = Watching("submit", "--workflow-id", run_id, env=env)
    wait_until(lambda: "warning: no worker polls task queue" in submitting.stderr, timeout=IDLE_WARNING_SECONDS)
    code, stdout = submitting.interrupt()

    assert code == 130
    assert stdout == ""
    assert f"run {run_id} goes on" in submitting.stderr
    assert f"dbtt status {run_id} --watch" in submitting.stderr and f"dbtt cancel {run_id}" in submitting.stderr

    watching = Watching("status", run_id, "--watch", env=env)
    wait_until(lambda: f"task queue '{queue}'" in watching.stderr, timeout=IDLE_WARNING_SECONDS)
    assert watching.interrupt()[0] == 130

    started = time.monotonic()
    cancelled = dbtt("cancel", run_id, "-o", "json", env=env, timeout=60)
    assert cancelled.returncode == 0, cancelled.stderr
    assert time.monotonic() - started < 20
    assert "the run stops when a worker picks it up" in cancelled.stderr
    assert report_of(cancelled)["status"] == "running"


def test_graceful_shutdown_by_default_lets_a_running_node_finish(
    start_worker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGTERM without WORKER_GRACEFUL_SHUTDOWN_SECS: the slow node finishes on the stopping worker.

    The same run then shows `reset` asking the run's own queue, whose new worker's project
    lost the run's failed node: refused, not silently dropped.
    """
    monkeypatch.delenv("WORKER_GRACEFUL_SHUTDOWN_SECS", raising=False)
    project = copy_project(TEST_PROJECTS / "uneven", tmp_path / "uneven")
    (project / "models" / "patient.py").write_text(PATIENT_MODEL)
    broken = project / "models" / "broken.sql"
    broken.write_text("select nope\n")
    first = start_worker(project, UNEVEN_DUCKDB_PATH=str(project / "uneven.duckdb"))
    env = env_for(first)
    run_id = new_id("sigterm")
    assert dbtt("submit", "--threads", "8", "--no-wait", "--workflow-id", run_id, env=env).returncode == 0
    wait_until(lambda: node_status_is(first.address, run_id, "model.uneven.patient", "running"), timeout=60)
    wait_until(lambda: node_status_is(first.address, run_id, "model.uneven.broken", "error"), timeout=30)

    assert first.process is not None
    assert node_status_is(first.address, run_id, "model.uneven.patient", "running")
    first.process.send_signal(signal.SIGTERM)
    assert first.process.wait(timeout=60) == 0
    broken.unlink()
    start_worker(project, UNEVEN_DUCKDB_PATH=str(project / "uneven.duckdb"), TEMPORAL_TASK_QUEUE=first.task_queue)

    results = {r.unique_id: r for r in output_of(view_of(first.address, run_id)).node_results}
    patient = results["model.uneven.patient"]
    assert (patient.status, patient.attempt, patient.worker) == ("success", 1, identity_of(first))

    reset = dbtt("reset", run_id, env=env_for(first, TEMPORAL_TASK_QUEUE="no-worker-here"))
    assert reset.returncode == 2
    assert f"the project on task queue '{first.task_queue}' no longer has model.uneven.broken" in reset.stderr
    assert len(reset.stderr.strip().splitlines()) == 1

"""The `dbtt` command as users and CI scripts run it: output shapes and exit codes."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import time
from pathlib import Path

import pytest
from temporalio.client import Client

from dbt_temporal.cli.args import join_selection_values
from dbt_temporal.client.codec import data_converter
from dbt_temporal.client.runs import new_workflow_id
from dbt_temporal.contract import WORKFLOW_TYPE, DbtRunInput
from tests.support import BIN, dbtt, wait_until


def env_for(worker) -> dict[str, str]:  # noqa: ANN001
    return {"TEMPORAL_ADDRESS": worker.address, "TEMPORAL_TASK_QUEUE": worker.task_queue}


def test_submit_json_prints_the_run_output_and_exits_0(shop: Path, tmp_path: Path, start_worker) -> None:
    worker = start_worker(shop)

    result = dbtt("submit", "-s", "+orders", "--output", "json", "--workflow-id", "cli-json", env=env_for(worker))

    assert result.returncode == 0, result.stderr
    output = json.loads(result.stdout)
    assert output["success"] is True
    assert output["project"] == "shop"
    assert output["summary"].startswith("Done. PASS=")
    statuses = {r["unique_id"]: r["status"] for r in output["node_results"]}
    assert statuses["model.shop.orders"] == "success"
    assert set(statuses.values()) == {"success"}
    assert {"invocation_id", "elapsed_time", "selected", "artifacts", "log_path"} <= output.keys()

    listed = dbtt("status", "--output", "json", env=env_for(worker))
    assert listed.returncode == 0
    runs = {run["workflow_id"]: run for run in json.loads(listed.stdout)}
    assert runs["cli-json"]["project"] == "shop"
    assert runs["cli-json"]["status"] == "completed"

    # The run's picture: every node with its status, in the terminal and in each file format.
    drawn = dbtt("status", "cli-json", "--graph", env=env_for(worker))
    assert drawn.returncode == 0, drawn.stderr
    assert "critical path" in drawn.stdout and "★" in drawn.stdout
    for unique_id in statuses:
        assert f"{unique_id.split('.')[0]} {unique_id.split('.')[2]} success" in drawn.stdout
    for suffix in (".mmd", ".svg", ".html"):
        path = tmp_path / f"run{suffix}"
        written = dbtt("status", "cli-json", "--graph-file", str(path), env=env_for(worker))
        assert written.returncode == 0, written.stderr
        text = path.read_text()
        assert all(unique_id.split(".")[2] in text for unique_id in statuses) and "success" in text
    wrong = dbtt("status", "cli-json", "--graph-file", str(tmp_path / "run.png"), env=env_for(worker))
    assert wrong.returncode == 2 and "--graph-file writes .mmd, .svg, .html" in wrong.stderr


def test_submit_text_streams_the_log_and_exits_1_on_failure(shop: Path, start_worker) -> None:
    (shop / "models" / "marts" / "bad.sql").write_text("select nope from {{ ref('stg_orders') }}\n")
    worker = start_worker(shop)

    result = dbtt("submit", "build", "-s", "+bad", env=env_for(worker))

    assert result.returncode == 1
    assert "START sql view model main.stg_orders" in result.stdout
    assert "Done. PASS=5 WARN=0 ERROR=1 SKIP=0 NO-OP=0 TOTAL=6" in result.stdout
    assert "model bad:" in result.stdout
    assert "Started dbt-" in result.stderr


def test_ls_returns_the_selection_dbt_ls_gives(shop: Path, start_worker) -> None:
    worker = start_worker(shop)
    selection = ["-s", "+orders", "--exclude", "stg_customers"]

    ours = dbtt("submit", "ls", *selection, "--output", "json", env=env_for(worker))
    theirs = subprocess.run(
        [
            str(BIN / "dbt"),
            "ls",
            *selection,
            "--output",
            "json",
            "--output-keys",
            "unique_id",
            "--quiet",
            "--project-dir",
            str(shop),
            "--profiles-dir",
            str(shop),
        ],
        capture_output=True,
        text=True,
        cwd=shop,
    )

    assert ours.returncode == 0, ours.stderr
    expected = {json.loads(line)["unique_id"] for line in theirs.stdout.splitlines() if line.startswith("{")}
    assert expected and set(json.loads(ours.stdout)["selected"]) == expected
    assert json.loads(ours.stdout)["node_results"] == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-s", "nosuchmethod:foo"], "nosuchmethod"),
        (["--project", "nope"], "unknown project 'nope'; this worker has: shop"),
    ],
)
def test_requests_the_worker_rejects_fail_at_once_with_exit_2(shop: Path, start_worker, args, message) -> None:
    worker = start_worker(shop)
    started = time.monotonic()

    result = dbtt("submit", *args, env=env_for(worker))

    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert time.monotonic() - started < 30  # not retried


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["submit", "explode"], "unknown dbt command 'explode'"),
        (["submit", "--vars", "[1, 2"], "--vars must be a YAML or JSON mapping"),
        (["submit", "--env", "NOT_SET_HERE"], "--env number 1 is neither KEY=VALUE nor the name of a variable"),
        (["submit", "--env", "PIN=12"], "the value of PIN is shorter than 4 characters"),
        (["submit", "--env-file", "/no/such.env"], "cannot read --env-file /no/such.env"),
        (["submit", "--select", "x --exclude-resource-type model"], "which is a flag, not a selector"),
        (["submit", "--exclude", "-x"], "--exclude '-x' holds '-x', which is a flag"),
        (["submit", "--address", "not an address"], "TEMPORAL_ADDRESS: 'not an address' is not host:port"),
        (["worker", "--project-dir", "/no/such/dir"], "/no/such/dir is not a dbt project"),
    ],
)
def test_bad_input_gets_one_line_and_exit_2(args: list[str], message: str) -> None:
    result = dbtt(*args)

    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_cert_without_key_is_rejected() -> None:
    result = dbtt("submit", env={"TEMPORAL_TLS_CERT": "/tmp/cert.pem"})

    assert result.returncode == 2
    assert "TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY must be set together" in result.stderr


def test_unreachable_server_exits_3_quickly() -> None:
    started = time.monotonic()

    result = dbtt("submit", "--address", "127.0.0.1:1")

    assert result.returncode == 3
    assert "cannot reach Temporal at 127.0.0.1:1" in result.stderr
    assert time.monotonic() - started < 20


def test_status_of_unknown_run_exits_2(temporal) -> None:  # noqa: ANN001
    result = dbtt("status", "no-such-run", env={"TEMPORAL_ADDRESS": temporal.address})

    assert result.returncode == 2
    assert "no run with workflow id 'no-such-run'" in result.stderr


def test_help_names_the_environment_variables() -> None:
    result = dbtt("worker", "--help")

    assert result.returncode == 0
    for name in (
        "TEMPORAL_ADDRESS",
        "TEMPORAL_NAMESPACE",
        "TEMPORAL_TASK_QUEUE",
        "DBT_PROJECT_DIR",
        "DBT_PROFILES_DIR",
    ):
        assert name in result.stdout


@pytest.mark.parametrize(
    "args",
    [["submit"], ["status"], ["cancel", "some-run"], ["reset", "some-run"], ["worker"], ["dev"]],
)
def test_a_bad_setting_is_one_line_and_exit_2_from_every_subcommand(args: list[str]) -> None:
    result = dbtt(*args, env={"TEMPORAL_SEARCH_ATTRIBUTES": "not json"})

    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        'error: TEMPORAL_SEARCH_ATTRIBUTES: must be a JSON object of strings, like {"team": "data"}'
    ]
    assert result.stdout == ""


def test_healthcheck_reads_only_the_health_file_so_a_bad_setting_never_fails_the_probe(tmp_path: Path) -> None:
    probe = tmp_path / "health"
    probe.touch()

    result = dbtt("healthcheck", "--health-file", str(probe), env={"TEMPORAL_SEARCH_ATTRIBUTES": "not json"})

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("healthy: ")
    assert result.stderr == ""


def test_client_commands_ignore_worker_only_settings_the_worker_rejects(temporal) -> None:  # noqa: ANN001
    env = {"TEMPORAL_ADDRESS": temporal.address, "WORKER_TUNER": "magic"}

    assert dbtt("status", env=env).returncode == 0
    worker = dbtt("worker", env=env)

    assert worker.returncode == 2
    assert worker.stderr.startswith("error: WORKER_TUNER: ")
    assert len(worker.stderr.strip().splitlines()) == 1


def test_error_messages_are_printed_literally_even_with_markup_in_them() -> None:
    result = dbtt("submit", "--vars", "[/x]")

    assert result.returncode == 2
    assert "got '[/x]'" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_ui_link_comes_from_temporal_ui_url_never_a_guess(temporal) -> None:  # noqa: ANN001
    env = {"TEMPORAL_ADDRESS": temporal.address, "TEMPORAL_TASK_QUEUE": "nobody-polls-links"}

    linked = dbtt("submit", "--no-wait", env={**env, "TEMPORAL_UI_URL": "http://ui.example:8080/"})
    plain = dbtt("submit", "--no-wait", env=env)

    run_id = linked.stdout.strip()
    assert linked.returncode == 0, linked.stderr
    assert f"Started {run_id}  http://ui.example:8080/namespaces/default/workflows/{run_id}" in linked.stderr
    assert plain.returncode == 0
    assert plain.stderr.strip() == f"Started {plain.stdout.strip()}"


@pytest.mark.parametrize(
    ("argv", "joined"),
    [
        (["submit", "-s", "a", "b", "c"], ["submit", "--select", "a b c"]),
        (
            ["submit", "ls", "-s", "a", "--exclude", "b", "c", "-s", "d", "-o", "json"],
            ["submit", "ls", "-o", "json", "--select", "a d", "--exclude", "b c"],
        ),
        (["submit", "--select=+orders", "-x"], ["submit", "-x", "--select", "+orders"]),
        (["status", "-s", "a", "b"], ["status", "-s", "a", "b"]),
        (["submit", "-s"], ["submit", "-s"]),
    ],
)
def test_selection_flags_take_several_values_as_in_dbt(argv: list[str], joined: list[str]) -> None:
    assert join_selection_values(argv) == joined


HOSTILE_IDS = ["[/boom] markup", "\x1b[31mred\x1b[0m escape"]


async def _terminate(address: str, workflow_ids: list[str]) -> None:
    client = await Client.connect(address)
    for workflow_id in workflow_ids:
        await client.get_workflow_handle(workflow_id).terminate("test over")


def test_status_lists_hostile_workflow_ids_literally(temporal, request: pytest.FixtureRequest) -> None:  # noqa: ANN001
    """Anyone who can start a workflow picks its id: the list must neither crash nor drive the terminal."""

    async def start() -> None:
        client = await Client.connect(temporal.address, data_converter=data_converter)
        for workflow_id in HOSTILE_IDS:
            await client.start_workflow(
                WORKFLOW_TYPE, DbtRunInput(select="+orders"), id=workflow_id, task_queue="nobody-polls-this"
            )

    asyncio.run(start())
    request.addfinalizer(lambda: asyncio.run(_terminate(temporal.address, HOSTILE_IDS)))

    def listed() -> subprocess.CompletedProcess[str]:
        return dbtt("status", env={"TEMPORAL_ADDRESS": temporal.address, "COLUMNS": "200"})

    wait_until(lambda: all(workflow_id[:5] in listed().stdout for workflow_id in ("[/boo", "\\x1b")))
    result = listed()
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "[/boom] markup" in result.stdout
    assert "\\x1b[31mred\\x1b[0m escape" in result.stdout
    assert "\x1b" not in result.stdout


def test_a_secret_that_is_a_run_log_word_gets_a_warning_at_submit() -> None:
    result = dbtt("submit", "--env", "SCHEMA_WORD=table", "--address", "127.0.0.1:1", timeout=60)

    assert "the value of SCHEMA_WORD is part of words the run log prints" in result.stderr
    assert result.returncode == 3  # and then the unreachable server, as usual


def test_generated_ids_name_the_project_when_it_is_known() -> None:
    assert new_workflow_id(DbtRunInput(command="run", project="finance"), "shop").startswith("dbt-finance-run-20")
    assert new_workflow_id(DbtRunInput(), "shop").startswith("dbt-shop-build-20")
    assert new_workflow_id(DbtRunInput(command="docs generate"), "shop").startswith("dbt-shop-docs-generate-20")
    assert re.fullmatch(r"dbt-build-\d{8}-\d{6}-[0-9a-f]{4}", new_workflow_id(DbtRunInput()))


def test_config_shows_each_setting_with_its_source_and_masks_secrets() -> None:
    result = dbtt(
        "config", "--namespace", "prod", "--output", "json",
        env={"TEMPORAL_API_KEY": "sekrit-api-key-42", "TEMPORAL_TASK_QUEUE": "nightly", "WORKER_MAX_SESSIONS": "3"},
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    rows = {row["name"]: (row["value"], row["source"]) for row in json.loads(result.stdout)}
    assert rows["TEMPORAL_NAMESPACE"] == ("prod", "flag")
    assert rows["TEMPORAL_TASK_QUEUE"] == ("nightly", "env")
    assert rows["WORKER_MAX_SESSIONS"] == (3, "env")
    assert rows["TEMPORAL_ADDRESS"] == ("localhost:7233", "default")
    assert rows["TEMPORAL_API_KEY"] == ("****", "env")
    assert "sekrit-api-key-42" not in result.stdout + result.stderr


def test_connection_failures_are_one_plain_line(temporal) -> None:  # noqa: ANN001
    refused = dbtt("status", "--address", "127.0.0.1:1")
    tls_to_plain = dbtt("status", env={"TEMPORAL_ADDRESS": temporal.address, "TEMPORAL_API_KEY": "key-for-cloud"})

    assert refused.returncode == 3 and "(connection refused)" in refused.stderr
    assert tls_to_plain.returncode == 3, tls_to_plain.stderr
    assert "the TLS handshake failed; TEMPORAL_API_KEY or TEMPORAL_TLS_CERT turn TLS on" in tls_to_plain.stderr
    for result in (refused, tls_to_plain):
        assert "tonic" not in result.stderr and "key-for-cloud" not in result.stderr

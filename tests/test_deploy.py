"""The deployment files in deploy/ agree with the code (Docker and Kubernetes are not run here)."""

from __future__ import annotations

import configparser
import json
import re
from pathlib import Path

import typer.main
import yaml

from dbt_temporal.cli.app import app
from dbt_temporal.config.settings import DEFAULT_GRACEFUL_SHUTDOWN_SECS, Settings, WorkerSettings
from dbt_temporal.worker.health import HEALTH_PATH

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
SETTINGS = {Settings.env_name(field) for field in WorkerSettings.model_fields}
# Read by what dbtt runs rather than by its settings model.
OTHER_VARIABLES = {"GITHUB_TOKEN", "GIT_TOKEN"}
SUBCOMMANDS = set(typer.main.get_command(app).commands)  # type: ignore[attr-defined]


def _is_dbtt_command(argv: list[str]) -> bool:
    return argv[0] == "dbtt" and argv[1] in SUBCOMMANDS


def test_the_kubernetes_worker_matches_the_settings_and_the_health_endpoint() -> None:
    documents = {doc["kind"]: doc for doc in yaml.safe_load_all((DEPLOY / "kubernetes" / "worker.yaml").read_text())}
    pod = documents["Deployment"]["spec"]["template"]["spec"]
    [container] = pod["containers"]
    env = {item["name"]: item["value"] for item in container["env"]}

    assert set(env) | set(documents["Secret"]["stringData"]) <= SETTINGS | OTHER_VARIABLES
    assert pod["terminationGracePeriodSeconds"] > float(env["WORKER_GRACEFUL_SHUTDOWN_SECS"])
    assert pod["terminationGracePeriodSeconds"] > DEFAULT_GRACEFUL_SHUTDOWN_SECS
    probe = container["readinessProbe"]["httpGet"]
    assert (probe["path"], str(probe["port"])) == (HEALTH_PATH, env["HEALTH_PORT"])
    assert env["HEALTH_HOST"] == "0.0.0.0"
    assert _is_dbtt_command(container["livenessProbe"]["exec"]["command"])
    assert container["envFrom"][0]["secretRef"]["name"] == documents["Secret"]["metadata"]["name"]
    WorkerSettings(**{name.lower(): value for name, value in env.items() if name in SETTINGS})  # valid values


def test_the_dockerfile_runs_dbtt_commands_with_known_settings() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    entrypoint = json.loads(re.search(r"^ENTRYPOINT (\[.*\])$", text, re.M).group(1))
    healthcheck = json.loads(re.search(r"^HEALTHCHECK .* CMD (\[.*\])$", text, re.M).group(1))
    env_block = re.search(r"^ENV ((?:.*\\\n)*.*)$", text, re.M).group(1)
    names = set(re.findall(r"([A-Z_]+)=", env_block))

    assert _is_dbtt_command(entrypoint) and entrypoint[1] == "worker"
    assert _is_dbtt_command(healthcheck) and healthcheck[1] == "healthcheck"
    assert names and names <= SETTINGS
    assert re.search(r"^USER (?!root)\S+$", text, re.M)


def test_the_systemd_unit_stops_gracefully() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.read_string((DEPLOY / "dbtt-worker.service").read_text())
    command = unit["Service"]["ExecStart"].split()

    assert command[0].endswith("/dbtt") and command[1] in SUBCOMMANDS
    assert int(unit["Service"]["TimeoutStopSec"]) > DEFAULT_GRACEFUL_SHUTDOWN_SECS
    assert unit["Service"]["KillSignal"] == "SIGTERM"

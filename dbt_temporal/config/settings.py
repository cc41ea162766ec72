"""The configuration every subcommand reads.

Environment variables first (names from the reference implementation), then
CLI flags, which the CLI passes in as overrides. `Settings` is what every
command needs; `WorkerSettings` adds what only a worker reads, so a client
command never fails on a worker variable it does not use.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from dbt_temporal.config.defaults import DEFAULT_HEALTH_FILE

# On SIGTERM a worker lets running nodes finish for this long before cancelling them. The SDK's
# own default (0) would cancel them at once and make them run again elsewhere.
DEFAULT_GRACEFUL_SHUTDOWN_SECS = 300.0
# Stores other than a local directory (gcs:// is gcsfs's other name for gs://).
STORE_SCHEMES = ("file", "s3", "gs", "gcs")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    temporal_address: str = Field(default="localhost:7233", description="Temporal server address, host:port.")
    temporal_namespace: str = Field(default="default", description="Temporal namespace.")
    temporal_task_queue: str = Field(default="dbt-tasks", description="Task queue the worker polls.")
    temporal_api_key: str | None = Field(
        default=None, description="API key for Temporal Cloud (sent as a bearer token).", repr=False
    )
    temporal_tls_cert: Path | None = Field(default=None, description="Client certificate PEM for mTLS.")
    temporal_tls_key: Path | None = Field(default=None, description="Client private key PEM for mTLS.")

    dbtt_payload_key: SecretStr | None = Field(
        default=None,
        description="AES-256 key(s), base64, comma-separated (the last encrypts): every payload, "
        "--env values and vars included, is encrypted before it reaches Temporal. The same value on "
        "workers and clients.",
    )
    dbtt_payload_key_file: Path | None = Field(
        default=None, description="File holding the payload key(s), one per line, instead of DBTT_PAYLOAD_KEY."
    )

    codec_server_token: SecretStr | None = Field(
        default=None,
        description="Bearer token `dbtt codec-server` requires of every request (default: none, loopback only).",
    )

    dbt_project_dirs: str | None = Field(
        default=None,
        description="Comma-separated projects: directories, git+https://...#ref:subdir, git+ssh://..., "
        "s3://bucket/prefix or gs://bucket/prefix.",
    )
    dbt_projects_dir: Path | None = Field(
        default=None, description="Directory scanned for subdirectories holding dbt_project.yml."
    )
    dbt_project_dir: Path | None = Field(default=None, description="A single dbt project directory.")
    dbt_profiles_dir: Path | None = Field(
        default=None, description="Directory holding profiles.yml (default: each project's own directory)."
    )
    dbt_target: str | None = Field(default=None, description="Profile target used when a run names none.")

    temporal_ui_url: str | None = Field(
        default=None,
        description="Base URL of the Temporal Web UI, for links to runs, e.g. http://localhost:8233 "
        "(Temporal Cloud needs none).",
    )

    # Parsed here (NoDecode) rather than by pydantic-settings, whose JSON error is a traceback.
    temporal_search_attributes: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=dict,
        description='Static search attributes for every run, as a JSON object, e.g. {"team": "data"}.',
    )

    health_port: int | None = Field(
        default=None, ge=1, le=65535, description="Port of the worker's HTTP health endpoint (200 healthy, 503 stale)."
    )
    health_host: str = Field(
        default="127.0.0.1",
        description="Address the health endpoint listens on; 0.0.0.0 for a Kubernetes httpGet probe.",
    )
    health_file: Path | None = Field(
        default=None, description="File the worker touches while healthy (default /tmp/health with HEALTH_PORT)."
    )

    # Read by the workers, which write runs there, and by `dbtt artifacts`.
    artifact_store: str | None = Field(
        default=None,
        description="Where runs are kept, under <store>/<workflow id>/: a directory, s3://bucket/prefix or "
        "gs://bucket/prefix (default: dbtt-<uid>/artifacts under the system temp dir).",
    )

    @field_validator("artifact_store")
    @classmethod
    def _known_store(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        scheme, sep, _ = value.strip().partition("://")
        if sep and scheme not in STORE_SCHEMES:
            raise ValueError(f"'{value}' is not a directory, s3://bucket/prefix or gs://bucket/prefix")
        return value.strip()

    @field_validator("temporal_address")
    @classmethod
    def _valid_address(cls, value: str) -> str:
        address = value.strip()
        for scheme in ("http://", "https://", "grpc://"):
            if address.startswith(scheme):
                address = address[len(scheme) :]
        address = address.rstrip("/")
        host, sep, port = address.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"'{value}' is not host:port (for example localhost:7233)")
        return address

    @model_validator(mode="after")
    def _cert_and_key_together(self) -> Settings:
        if (self.temporal_tls_cert is None) != (self.temporal_tls_key is None):
            raise ValueError("TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY must be set together")
        return self

    @field_validator("temporal_search_attributes", mode="before")
    @classmethod
    def _search_attributes_json(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        try:
            parsed = json.loads(value) if value.strip() else {}
        except json.JSONDecodeError:
            parsed = None
        if not isinstance(parsed, dict) or not all(isinstance(v, str) for v in parsed.values()):
            raise ValueError('must be a JSON object of strings, like {"team": "data"}')
        return parsed

    @property
    def worker_health_file(self) -> Path | None:
        """Where the worker reports health: HEALTH_FILE, or /tmp/health when only HEALTH_PORT is set."""
        if self.health_file is None and self.health_port is not None:
            return DEFAULT_HEALTH_FILE
        return self.health_file

    @property
    def artifact_root(self) -> str:
        """The artifact store; a local one as an absolute path, so plans carry the same one to every worker."""
        store = self.artifact_store
        if store is None:
            return str(Path(tempfile.gettempdir()) / f"dbtt-{os.getuid()}" / "artifacts")
        if store.startswith("file://"):
            store = store.removeprefix("file://")
        if "://" in store:
            return store.rstrip("/")
        return str(Path(store).expanduser().resolve())

    @property
    def tls_enabled(self) -> bool:
        return bool(self.temporal_api_key or self.temporal_tls_cert)

    @classmethod
    def env_name(cls, field: str) -> str:
        return field.upper()


class WorkerSettings(Settings):
    """What `dbtt worker` (and `dbtt dev`, which runs one) reads on top of `Settings`."""

    # Worker tuning, mapped onto the Temporal SDK's own worker options.
    worker_tuner: Literal["fixed", "resource-based"] = Field(
        default="fixed", description="Slot supply: fixed or resource-based."
    )
    worker_max_concurrent_workflow_tasks: int = Field(
        default=200, ge=2, description="Fixed tuner: workflow tasks at once."
    )
    worker_max_concurrent_activities: int = Field(
        default=100, ge=1, description="Fixed tuner: nodes at once on this worker (also its node thread count)."
    )
    worker_max_concurrent_local_activities: int = Field(
        default=100, ge=1, description="Fixed tuner: local activities at once."
    )
    worker_resource_target_mem: float = Field(
        default=0.8, gt=0, le=1, description="Resource-based tuner: memory use to aim for (0-1)."
    )
    worker_resource_target_cpu: float = Field(
        default=0.9, gt=0, le=1, description="Resource-based tuner: CPU use to aim for (0-1)."
    )
    worker_resource_activity_min_slots: int = Field(
        default=1, ge=0, description="Resource-based tuner: nodes always allowed."
    )
    worker_resource_activity_max_slots: int = Field(
        default=500, ge=1, description="Resource-based tuner: most nodes at once (also the node thread count)."
    )
    worker_max_cached_workflows: int = Field(default=1000, ge=0, description="Runs kept in the sticky cache.")
    worker_max_sessions: int = Field(
        default=8, ge=1, description="Warm dbt sessions kept (one per project, target, vars, env and full-refresh)."
    )
    worker_sticky_queue_timeout_secs: float = Field(
        default=10, gt=0, description="Sticky queue schedule-to-start timeout, in seconds."
    )
    worker_nonsticky_to_sticky_poll_ratio: float = Field(
        default=0.2, gt=0, le=1, description="Pollers of the shared queue per sticky-queue poller (0-1]."
    )
    worker_max_activities_per_second: float | None = Field(
        default=None, gt=0, description="Nodes started per second on this worker (unlimited when unset)."
    )
    worker_max_task_queue_activities_per_second: float | None = Field(
        default=None, gt=0, description="Nodes started per second on the whole task queue (unlimited when unset)."
    )
    worker_graceful_shutdown_secs: float = Field(
        default=DEFAULT_GRACEFUL_SHUTDOWN_SECS,
        ge=0,
        description="On SIGTERM, how long running nodes may finish before they are cancelled.",
    )
    worker_work_dir: Path | None = Field(
        default=None,
        description="Private directory (mode 0700) for dbt's per-session files, target/ and logs/; "
        "the project directory is never written (default: dbtt-<uid> under the system temp dir).",
    )
    worker_deployment_name: str | None = Field(
        default=None,
        description="Worker deployment (Temporal worker versioning); with WORKER_BUILD_ID, runs are pinned to "
        "the version of the workers that started them.",
    )
    worker_build_id: str | None = Field(
        default=None, description="This worker's version within WORKER_DEPLOYMENT_NAME, e.g. an image tag."
    )
    commit_markers: bool = Field(
        default=True,
        description="Record, in the node's own transaction, that a node whose re-run is not harmless (an "
        "append) committed, so a retry never applies it twice; off: such retries are refused.",
    )
    commit_marker_schema: str = Field(default="dbtt_meta", description="Schema of the commit marker table.")
    commit_marker_table: str = Field(default="dbtt_commits", description="Name of the commit marker table.")
    worker_log_format: Literal["text", "json"] = Field(
        default="text", description="The worker's log lines on stderr: text, or one JSON object per line."
    )
    project_refresh: Literal["warn", "refresh"] = Field(
        default="warn",
        description="Before each run, when a git or object-store project has moved: warn in the run log, or "
        "fetch it and parse it again (runs in flight keep their version).",
    )
    write_artifacts: bool = Field(
        default=False,
        description="Keep each run's run_results.json, manifest.json and compiled SQL in ARTIFACT_STORE.",
    )
    write_run_log: bool = Field(default=True, description="Keep each run's full log (log.txt) in ARTIFACT_STORE.")

    @model_validator(mode="after")
    def _deployment_and_build_together(self) -> WorkerSettings:
        if bool(self.worker_deployment_name) != bool(self.worker_build_id):
            raise ValueError("WORKER_DEPLOYMENT_NAME and WORKER_BUILD_ID must be set together")
        return self

    @model_validator(mode="after")
    def _slot_range(self) -> WorkerSettings:
        if self.worker_resource_activity_min_slots > self.worker_resource_activity_max_slots:
            raise ValueError("WORKER_RESOURCE_ACTIVITY_MIN_SLOTS must not exceed WORKER_RESOURCE_ACTIVITY_MAX_SLOTS")
        return self

    @property
    def work_root(self) -> Path:
        return self.worker_work_dir or Path(tempfile.gettempdir()) / f"dbtt-{os.getuid()}"

"""The worker's side of a run's record: what it keeps, and the store step that writes it."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

from dbt_temporal import artifact_store
from dbt_temporal.artifact_store import LOG
from dbt_temporal.config.settings import WorkerSettings
from dbt_temporal.contract import (
    DOCS_COMMAND,
    EXECUTING_COMMANDS,
    FRESHNESS_COMMAND,
    ArtifactOptions,
    NodeStatus,
    StoreArtifactsRequest,
    StoredArtifacts,
)
from dbt_temporal.engine.artifacts import write_dbt_artifacts
from dbt_temporal.engine.docs import write_docs
from dbt_temporal.engine.invocation import Invocation
from dbt_temporal.redaction import redact
from dbt_temporal.worker.run_state import FRESHNESS, LAST, LAST_SUCCESS, record_latest


def artifact_options(settings: WorkerSettings) -> ArtifactOptions | None:
    """What this worker's runs keep, from WRITE_ARTIFACTS, WRITE_RUN_LOG and ARTIFACT_STORE."""
    if not (settings.write_artifacts or settings.write_run_log):
        return None
    return ArtifactOptions(
        store=settings.artifact_root, dbt_artifacts=settings.write_artifacts, run_log=settings.write_run_log
    )


def store_run(
    request: StoreArtifactsRequest,
    invocation: Callable[[], AbstractContextManager[Invocation]],
    secrets: list[str],
) -> StoredArtifacts:
    """Write the run's files to a private staging directory, then put them in the store.

    Every attempt writes the whole record again, so a retry after a partial upload ends complete.
    """
    options = request.options
    written: list[str] = []
    with tempfile.TemporaryDirectory(prefix="dbtt-artifacts-") as staging_dir:
        staging = Path(staging_dir)
        # docs generate exists to leave the docs site behind, whatever the worker keeps otherwise.
        if options.dbt_artifacts or request.command == DOCS_COMMAND:
            with invocation() as run:
                written = write_dbt_artifacts(run, request.results, request.elapsed_time, staging)
                if request.command == DOCS_COMMAND:
                    written += write_docs(run, staging)
                project, target = run.session.config.project_name, run.session.config.target_name
        if options.run_log:
            (staging / LOG).write_text("".join(f"{line}\n" for line in request.log))
        _mask_secrets(staging, secrets)
        artifact_store.upload(staging, options.store, request.workflow_id)
    if options.dbt_artifacts and request.command in EXECUTING_COMMANDS:
        # What a later run's --state last / last-success compares with.
        succeeded = all(result.status == NodeStatus.success for result in request.results)
        kinds = (
            [LAST]
            + ([LAST_SUCCESS] if succeeded else [])
            + ([FRESHNESS] if request.command == FRESHNESS_COMMAND else [])
        )
        record_latest(options.store, project, target, request.workflow_id, kinds)

    def place(name: str) -> str:
        return artifact_store.location(options.store, request.workflow_id, name)

    return StoredArtifacts(
        artifacts=[place(name) for name in written],
        log_path=place(LOG) if options.run_log else None,
    )


def _mask_secrets(staging: Path, secrets: list[str]) -> None:
    """The run's env override values stay secret in its record too (dbt renders them into SQL and configs)."""
    if not secrets:
        return
    for path in staging.rglob("*"):
        if path.is_file():
            text = path.read_text()
            masked = redact(text, secrets)
            if masked != text:
                path.write_text(masked)

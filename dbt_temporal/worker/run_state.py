"""dbt's --state for a run: the manifest of an earlier run, fixed at planning and fetched to each worker.

The store step records, per project and target, the latest run that kept its
dbt artifacts (`last`) and the latest one that also succeeded (`last-success`),
under `<store>/_latest/<project>/<target>/`. Planning turns the user's word
into a fixed location (a workflow id, a store URL or a directory), so every
worker of the run, and a retry an hour later, compares with the same manifest.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from pathlib import Path

from dbt_temporal import artifact_store
from dbt_temporal.artifact_store import MANIFEST, RUN_RESULTS, SOURCES
from dbt_temporal.contract import ArtifactOptions

POINTERS = "_latest"
LAST, LAST_SUCCESS = "last", "last-success"
# The latest `source freshness` run: the current results `source_status:` selectors compare with --state's.
FRESHNESS = "freshness"
# What dbt's state selectors read: state:modified the manifest, result: the run results, source_status: sources.
STATE_FILES = (MANIFEST, RUN_RESULTS, SOURCES)


class StateNotFound(Exception):
    """The --state named has no manifest to compare with; no retry helps."""


def pointer_dir(project: str, target: str) -> str:
    return f"{POINTERS}/{project}/{target}"


def record_latest(store: str, project: str, target: str, workflow_id: str, names: list[str]) -> None:
    """Note a run that kept its manifest as the latest of its project and target of each kind named."""
    for name in names:
        artifact_store.write(store, pointer_dir(project, target), name, workflow_id.encode())


def latest_freshness(store: ArtifactOptions | None, project: str, target: str, cache_root: Path) -> Path | None:
    """A directory holding the sources.json of the project and target's latest freshness run, if any."""
    if store is None or not store.dbt_artifacts:
        return None
    pointers = pointer_dir(project, target)
    if FRESHNESS not in artifact_store.run_files(store.store, pointers):
        return None
    run = artifact_store.read(store.store, pointers, FRESHNESS).decode().strip()
    return fetch(run, store, cache_root)


def resolve(state: str, store: ArtifactOptions | None, project: str, target: str) -> str:
    """The user's --state as a fixed location: last-success and last become a workflow id."""
    if state not in (LAST, LAST_SUCCESS):
        return state
    if store is None or not store.dbt_artifacts:
        raise StateNotFound(
            f"--state {state} reads the manifests runs keep in the artifact store, and this worker keeps none: "
            "start the workers with WRITE_ARTIFACTS=true (and ARTIFACT_STORE shared by them)"
        )
    pointers = pointer_dir(project, target)
    if state not in artifact_store.run_files(store.store, pointers):
        kind = "successful run" if state == LAST_SUCCESS else "run"
        raise StateNotFound(
            f"--state {state}: no {kind} of {project} (target {target}) has kept its manifest in {store.store} yet; "
            "run it once without --state first"
        )
    return artifact_store.read(store.store, pointers, state).decode().strip()


def fetch(location: str, store: ArtifactOptions | None, cache_root: Path) -> Path:
    """A directory on this worker holding the location's manifest.json (and run results when kept)."""
    if "://" not in location and Path(location).is_absolute():
        directory = Path(location)
        if not (directory / MANIFEST).is_file():
            raise StateNotFound(f"--state {location} holds no {MANIFEST} on this worker")
        return directory
    store_root, run = _store_and_run(location, store)
    destination = cache_root / hashlib.sha256(f"{store_root}|{run}".encode()).hexdigest()[:16]
    if (destination / MANIFEST).is_file():
        return destination
    kept = artifact_store.run_files(store_root, run)
    if MANIFEST not in kept:
        raise StateNotFound(
            f"--state {location}: the run kept no {MANIFEST} in {store_root} "
            "(runs keep it when the workers have WRITE_ARTIFACTS=true)"
        )
    cache_root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="state-", dir=cache_root))
    artifact_store.download(store_root, run, [name for name in STATE_FILES if name in kept], staging)
    try:
        staging.rename(destination)
    except OSError:  # another node of the run fetched it first
        shutil.rmtree(staging, ignore_errors=True)
    return destination


def _store_and_run(location: str, store: ArtifactOptions | None) -> tuple[str, str]:
    if "://" in location:
        store_root, _, run = location.rstrip("/").rpartition("/")
        return store_root, run
    if store is None:
        raise StateNotFound(
            f"--state {location} names a run in the artifact store, and this worker keeps none: "
            "give a directory or URL, or start the workers with WRITE_ARTIFACTS=true"
        )
    return store.store, location

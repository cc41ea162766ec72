"""The artifact store: where a run keeps its record, under `<store>/<workflow id>/`.

A store is a local directory, `s3://bucket/prefix` (s3fs) or `gs://bucket/prefix`
(gcsfs), all reached through fsspec; the remote ones take their credentials
the way their SDKs do (AWS_* variables and profiles, Google application
default credentials). The worker writes here and `dbtt artifacts` reads.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fsspec import AbstractFileSystem
from fsspec.core import url_to_fs

# A run's files under <store>/<workflow id>/, named as dbt names them in its target directory.
RUN_RESULTS = "run_results.json"
MANIFEST = "manifest.json"
SOURCES = "sources.json"
CATALOG = "catalog.json"
DOCS_INDEX = "index.html"
COMPILED = "compiled"
LOG = "log.txt"
# The extra that brings each remote store's fsspec package.
EXTRAS = {"s3": "s3", "gs": "gcs", "gcs": "gcs"}


class StoreError(Exception):
    """The store could not be reached or written; retrying may help."""


class StoreMisconfigured(StoreError):
    """The store cannot work on this machine as configured (a missing package); no retry helps."""


def _scheme(store: str) -> str:
    scheme, sep, _ = store.partition("://")
    return scheme if sep else "file"


def _options(store: str) -> dict[str, Any]:
    scheme = _scheme(store)
    if scheme == "file":
        return {"auto_mkdir": True}
    if scheme == "s3":
        # Temporal retries the store step as a whole; botocore retrying inside each attempt would multiply the wait.
        return {"config_kwargs": {"retries": {"max_attempts": 1}}}
    return {}


@contextmanager
def reaching(store: str) -> Iterator[None]:
    """Turn whatever the store's client raises into one line that names the store."""
    try:
        yield
    except StoreError:
        raise
    except ImportError:
        extra = EXTRAS.get(_scheme(store), "s3")
        raise StoreMisconfigured(f"the artifact store {store} needs pip install 'dbtt[{extra}]'") from None
    except Exception as err:  # noqa: BLE001 - every client error becomes the same one-line report
        detail = (str(err).strip().splitlines() or [""])[0]
        kind = type(err).__name__
        raise StoreError(f"cannot write to or read the artifact store {store}: {kind}: {detail}") from None


def _open(store: str) -> tuple[AbstractFileSystem, str]:
    with reaching(store):
        return url_to_fs(store, **_options(store))


def location(store: str, workflow_id: str, name: str = "") -> str:
    """Where a file of a run lives, as users name it (a path, or a URL for remote stores)."""
    run = f"{store.rstrip('/')}/{workflow_id}"
    return f"{run}/{name}" if name else run


def upload(staging: Path, store: str, workflow_id: str) -> list[str]:
    """Put every file under `staging` into the run's place, replacing what an earlier attempt left."""
    fs, root = _open(store)
    run_root = f"{root.rstrip('/')}/{workflow_id}"
    names = sorted(str(path.relative_to(staging)) for path in staging.rglob("*") if path.is_file())
    with reaching(store):
        stale = set(_relative_files(fs, run_root)) - set(names)
        for name in names:
            fs.put_file(str(staging / name), f"{run_root}/{name}")
        for name in sorted(stale):
            fs.rm_file(f"{run_root}/{name}")
    return [location(store, workflow_id, name) for name in names]


def run_files(store: str, workflow_id: str) -> dict[str, int]:
    """The run's files (relative name -> size in bytes); empty when the run wrote nothing there."""
    fs, root = _open(store)
    with reaching(store):
        return _relative_files(fs, f"{root.rstrip('/')}/{workflow_id}")


def _relative_files(fs: AbstractFileSystem, run_root: str) -> dict[str, int]:
    if not fs.exists(run_root):
        return {}
    found = fs.find(run_root, detail=True)
    prefix = fs._strip_protocol(run_root).rstrip("/") + "/"
    return {path.removeprefix(prefix): int(info.get("size") or 0) for path, info in found.items()}


def write(store: str, workflow_id: str, name: str, data: bytes) -> None:
    fs, root = _open(store)
    with reaching(store):
        fs.pipe_file(f"{root.rstrip('/')}/{workflow_id}/{name}", data)


def read(store: str, workflow_id: str, name: str) -> bytes:
    fs, root = _open(store)
    with reaching(store):
        return fs.cat_file(f"{root.rstrip('/')}/{workflow_id}/{name}")


def download(store: str, workflow_id: str, names: list[str], destination: Path) -> list[Path]:
    """Copy the run's files into `destination`, keeping their layout (run_results.json at its top)."""
    fs, root = _open(store)
    copied = []
    with reaching(store):
        for name in names:
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            fs.get_file(f"{root.rstrip('/')}/{workflow_id}/{name}", str(target))
            copied.append(target)
    return copied

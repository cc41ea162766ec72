"""Projects kept in git or object storage: fetched at worker start, checked for news before each run.

A `DBT_PROJECT_DIRS` entry may be, besides a directory:
- `git+https://host/repo.git#ref:subdir` (also `git+http://`, `git+ssh://`, `git+file://`); `ref` is
  a branch, tag or commit (default: the remote's HEAD), `subdir` the project inside the repository;
- `s3://bucket/prefix` or `gs://bucket/prefix` (every object under the prefix).

Each is fetched into the worker's work directory, which then serves as the project's directory.
HTTPS git authenticates with GITHUB_TOKEN (else GIT_TOKEN), handed to git through its environment:
never on a command line, in `.git/config`, a log line or an error message.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

log = logging.getLogger("dbtt.sources")

GIT_SCHEMES = ("git+https://", "git+http://", "git+ssh://", "git+file://")
STORE_SCHEMES = ("s3://", "gs://", "gcs://")
FETCH_ATTEMPTS = 3
GIT_TIMEOUT_SECONDS = 120
_COMMIT = re.compile(r"[0-9a-f]{40}")
_USERINFO = re.compile(r"(://)[^/@\s]+@")


class SourceError(Exception):
    """A project source that cannot be fetched or checked; the message names it, never a token."""


@dataclass(frozen=True)
class ProjectSource:
    entry: str  # as configured
    kind: Literal["git", "store"]
    remote: str  # what git or the store client is given
    ref: str = ""
    subdir: str = ""

    @property
    def shown(self) -> str:
        return masked_url(self.entry)


def masked_url(text: str) -> str:
    """`text` with credentials written into URLs (user:password@) masked."""
    return _USERINFO.sub(r"\1****@", text)


def parse_source(entry: str) -> ProjectSource | None:
    """The remote source an entry names, or None for a local directory."""
    if entry.startswith(GIT_SCHEMES):
        remote, _, fragment = entry.removeprefix("git+").partition("#")
        ref, _, subdir = fragment.partition(":")
        return ProjectSource(entry, "git", remote, ref.strip(), subdir.strip().strip("/"))
    if entry.startswith(STORE_SCHEMES):
        return ProjectSource(entry, "store", entry.rstrip("/"))
    if "://" in entry or entry.startswith("git+"):
        raise SourceError(
            f"'{masked_url(entry)}' is not a project source dbtt knows: use a directory, "
            "git+https://host/repo.git#ref:subdir, git+ssh://..., s3://bucket/prefix or gs://bucket/prefix"
        )
    return None


@dataclass
class FetchedSource:
    source: ProjectSource
    checkout: Path
    revision: str

    @property
    def project_dir(self) -> Path:
        return self.checkout / self.source.subdir if self.source.subdir else self.checkout


def fetch(source: ProjectSource, root: Path) -> FetchedSource:
    """Fetch `source` into its directory under `root`, retrying a few times before giving up."""
    checkout = root / "sources" / hashlib.sha256(source.entry.encode()).hexdigest()[:12]
    for attempt in range(1, FETCH_ATTEMPTS + 1):
        try:
            revision = _fetch_git(source, checkout) if source.kind == "git" else _fetch_store(source, checkout)
            fetched = FetchedSource(source, checkout, revision)
            _check_project(fetched)
            return fetched
        except SourceError:
            if attempt == FETCH_ATTEMPTS:
                raise
            log.warning("fetching %s failed (attempt %d of %d); trying again", source.shown, attempt, FETCH_ATTEMPTS)
            time.sleep(attempt)
    raise AssertionError("unreachable")


def remote_revision(source: ProjectSource) -> str:
    """The revision the source holds now, without fetching it."""
    if source.kind == "store":
        return _store_revision(source)
    if _COMMIT.fullmatch(source.ref):
        return source.ref
    ref = source.ref or "HEAD"
    # An annotated tag lists its own object first; the commit it points to is on its `^{}` line.
    lines = _git(source, "ls-remote", source.remote, ref, f"{ref}^{{}}").stdout.splitlines()
    listed = sorted((line.split() for line in lines if line.strip()), key=lambda p: not p[1].endswith("^{}"))
    if not listed:
        raise SourceError(f"{source.shown}: the remote has no ref '{ref}'")
    return listed[0][0]


def _check_project(fetched: FetchedSource) -> None:
    if not (fetched.project_dir / "dbt_project.yml").is_file():
        where = f"'{fetched.source.subdir}' of " if fetched.source.subdir else ""
        raise SourceError(f"{fetched.source.shown}: {where}revision {fetched.revision[:12]} holds no dbt_project.yml")
    install_packages(fetched)


# -- git ---------------------------------------------------------------------------------------


def _git_env() -> dict[str, str]:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
    token = os.environ.get("GITHUB_TOKEN") or os.environ.get("GIT_TOKEN")
    if token:
        # Sent only over HTTP(S), as a header git adds to every request it makes.
        basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
        env.update(GIT_CONFIG_COUNT="1", GIT_CONFIG_KEY_0="http.extraHeader")
        env["GIT_CONFIG_VALUE_0"] = f"Authorization: Basic {basic}"
    return env


def _git(source: ProjectSource, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    try:
        done = subprocess.run(
            ["git", *args], cwd=cwd, env=_git_env(), capture_output=True, text=True, timeout=GIT_TIMEOUT_SECONDS
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        raise SourceError(f"{source.shown}: git failed ({type(err).__name__})") from None
    if done.returncode != 0:
        raise SourceError(f"cannot fetch {source.shown}: {_last_line(done.stderr)}")
    return done


def _fetch_git(source: ProjectSource, checkout: Path) -> str:
    if not (checkout / ".git").is_dir():
        shutil.rmtree(checkout, ignore_errors=True)
        checkout.mkdir(parents=True, mode=0o700)
        _git(source, "init", "--quiet", cwd=checkout)
    # The URL is given to each command, never stored as a remote: nothing of it stays in .git/config.
    _git(source, "fetch", "--quiet", "--depth", "1", source.remote, source.ref or "HEAD", cwd=checkout)
    _git(source, "checkout", "--quiet", "--force", "FETCH_HEAD", cwd=checkout)
    return _git(source, "rev-parse", "HEAD", cwd=checkout).stdout.strip()


def _last_line(stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    masked = masked_url(lines[-1] if lines else "no message")
    for name in ("GITHUB_TOKEN", "GIT_TOKEN"):
        if os.environ.get(name):
            masked = masked.replace(os.environ[name], "****")
    return masked


# -- object stores -----------------------------------------------------------------------------


def _store_listing(source: ProjectSource) -> dict[str, str]:
    """Every object under the prefix, by path below it, with its etag."""
    from fsspec.core import url_to_fs

    try:
        fs, root = url_to_fs(source.remote)
        found = fs.find(root, detail=True)
    except ImportError:
        raise SourceError(f"{source.shown} needs pip install 'dbtt[s3]' (or [gcs])") from None
    except Exception as err:  # noqa: BLE001 - every client error becomes one line naming the source
        raise SourceError(f"cannot read {source.shown}: {_last_line(str(err))}") from None
    if not found:
        raise SourceError(f"{source.shown} holds no objects")
    return {name[len(root) :].lstrip("/"): _etag(info) for name, info in found.items()}


def _etag(info: dict) -> str:
    return str(info.get("ETag") or info.get("etag") or info.get("md5Hash") or info.get("size"))


def _store_revision(source: ProjectSource) -> str:
    return _listing_digest(_store_listing(source))


def _listing_digest(listing: dict[str, str]) -> str:
    """The revision of a store prefix: a digest of its objects' paths and ETags."""
    return hashlib.sha256(repr(sorted(listing.items())).encode()).hexdigest()[:16]


def _fetch_store(source: ProjectSource, checkout: Path) -> str:
    from fsspec.core import url_to_fs

    listing = _store_listing(source)
    fs, root = url_to_fs(source.remote)
    checkout.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        for relative in listing:
            target = checkout / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            fs.get_file(f"{root}/{relative}", str(target))
    except Exception as err:  # noqa: BLE001
        raise SourceError(f"cannot read {source.shown}: {_last_line(str(err))}") from None
    for stale in [p for p in checkout.rglob("*") if p.is_file() and str(p.relative_to(checkout)) not in listing]:
        if stale.relative_to(checkout).parts[0] not in ("dbt_packages", "target", "logs"):
            stale.unlink()
    return _listing_digest(listing)


# -- packages ----------------------------------------------------------------------------------


def install_packages(fetched: FetchedSource) -> None:
    """`dbt deps` for a fetched project whose packages are declared but not installed."""
    project = fetched.project_dir
    declared = [name for name in ("packages.yml", "dependencies.yml") if (project / name).is_file()]
    if not declared or (project / "dbt_packages").is_dir():
        return
    dbt = Path(sys.executable).parent / "dbt"
    done = subprocess.run(
        [str(dbt), "deps", "--project-dir", str(project), "--profiles-dir", str(project)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"},
    )
    if done.returncode != 0:
        raise SourceError(
            f"{fetched.source.shown}: dbt deps failed for {declared[0]}: {_last_line(done.stdout + done.stderr)}"
        )


# -- the worker's sources ----------------------------------------------------------------------


@dataclass(frozen=True)
class SourceCheck:
    revision: str
    # A line for the run log when there is news: the source moved, was refreshed, or could not be asked.
    note: str = ""


class ProjectSources:
    """A worker's fetched projects, by directory, and the check each run's planning makes first."""

    def __init__(self, fetched: list[FetchedSource], root: Path, refresh: bool) -> None:
        self._by_dir = {f.project_dir.resolve(): f for f in fetched}
        self._root = root
        self._refresh = refresh
        self._lock = threading.Lock()

    def check(self, project_dir: Path) -> SourceCheck | None:
        """Whether the source moved since it was fetched; with PROJECT_REFRESH=refresh, fetch it again.

        The new files land in the same directory, so the pool parses them before this run is
        planned, while runs planned before keep the manifest they were planned on.
        """
        fetched = self._by_dir.get(project_dir.resolve())
        if fetched is None:
            return None
        with self._lock:
            shown, serving = fetched.source.shown, fetched.revision
            try:
                latest = remote_revision(fetched.source)
            except SourceError as err:
                return SourceCheck(serving, f"could not check {shown} ({err}); serving revision {serving[:12]}")
            if latest == serving:
                return SourceCheck(serving)
            if not self._refresh:
                return SourceCheck(
                    serving,
                    f"{shown} moved to revision {latest[:12]}; this run uses {serving[:12]} "
                    "(set PROJECT_REFRESH=refresh to follow it, or restart the worker)",
                )
            try:
                refreshed = fetch(fetched.source, self._root)
            except SourceError as err:
                return SourceCheck(serving, f"could not refresh {shown} ({err}); serving revision {serving[:12]}")
            self._by_dir[project_dir.resolve()] = refreshed
            return SourceCheck(refreshed.revision, f"{shown} refreshed to revision {refreshed.revision[:12]}")


def fetch_sources(entries: list[str], root: Path, refresh: bool) -> tuple[list[Path], ProjectSources]:
    """Every DBT_PROJECT_DIRS entry as a local directory (remote ones fetched), and the sources found."""
    directories: list[Path] = []
    fetched: list[FetchedSource] = []
    for entry in entries:
        source = parse_source(entry)
        if source is None:
            directories.append(Path(entry))
            continue
        log.info("fetching %s", source.shown)
        fetched.append(fetch(source, root))
        directories.append(fetched[-1].project_dir)
        log.info("fetched %s at revision %s", source.shown, fetched[-1].revision[:12])
    return directories, ProjectSources(fetched, root, refresh)

"""The worker's warm sessions, one per project and combination of run settings.

Each distinct `vars`/`env`/target combination keeps a parsed manifest, an
adapter and its connections; the pool keeps at most `max_sessions` of them and
evicts the least recently used, never one that is leased (in use by a plan or a
node). Evicting closes the session's warehouse connections.

Planning first checks the project's files (`source_stamp`): after an edit the
session is parsed again, and the old one is kept aside, under its manifest
digest, for the nodes of runs planned on it, until it is evicted like any other.

Each parse ends by freezing the heap out of the garbage collector's reach, and each
closed session thaws it so that its manifest can be reclaimed (`heap`).
"""

from __future__ import annotations

import logging
import threading
from collections import Counter, OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dbt_temporal.config.projects import ProjectDir
from dbt_temporal.contract import SessionSpec
from dbt_temporal.engine import heap
from dbt_temporal.engine.session import DbtSession, open_session, session_key, session_work_dir
from dbt_temporal.engine.source_stamp import source_stamp
from dbt_temporal.redaction import redact

log = logging.getLogger("dbtt.pool")

DEFAULT_MAX_SESSIONS = 8


class UnknownProject(LookupError):
    pass


class SessionPool:
    def __init__(
        self,
        projects: dict[str, ProjectDir],
        work_root: Path,
        default_target: str | None = None,
        max_sessions: int = DEFAULT_MAX_SESSIONS,
    ) -> None:
        self.projects = projects
        self.work_root = work_root
        self.default_target = default_target
        self.max_sessions = max(1, max_sessions)
        # Least recently used first.
        self._sessions: OrderedDict[str, DbtSession] = OrderedDict()
        self._leases: Counter[int] = Counter()  # by id(session): a retired session changes its key
        self._opening: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def resolve_project(self, name: str | None) -> ProjectDir:
        names = ", ".join(sorted(self.projects)) or "none"
        if name is None:
            if len(self.projects) == 1:
                return next(iter(self.projects.values()))
            raise UnknownProject(f"this worker has several projects ({names}); name one with --project")
        if name not in self.projects:
            raise UnknownProject(f"unknown project '{name}'; this worker has: {names}")
        return self.projects[name]

    @contextmanager
    def lease(self, spec: SessionSpec, manifest_digest: str = "") -> Iterator[DbtSession]:
        """The warm session for `spec`, kept from eviction until the block ends.

        With `manifest_digest`, the session parsed from that version of the project if the
        worker still has it (a run planned before an edit), else the current one.
        """
        session = self._session(spec, leased=True, manifest_digest=manifest_digest)
        try:
            yield session
        finally:
            with self._lock:
                self._leases[id(session)] -= 1
                if self._leases[id(session)] <= 0:
                    del self._leases[id(session)]
                evicted = self._take_overflow()
            _close(evicted)

    def refresh(self, spec: SessionSpec) -> float | None:
        """Parse `spec`'s project again if its files changed since its session was parsed.

        Returns the seconds the new parse took, or None when the session was current (or not
        parsed yet: its first parse is no news).
        """
        project = self.resolve_project(spec.project)
        key = session_key(project.name, self._effective(spec, project))
        with self._lock:
            current = self._sessions.get(key)
        if current is None or current.source_stamp == source_stamp(project.path, project.profiles_dir):
            return None
        with self._lock:
            if self._sessions.get(key) is current:
                # Runs planned on it may still have nodes to run: keep it, under its version.
                del self._sessions[key]
                alias = f"{key}@{current.manifest_digest}"
                self._sessions[alias if alias not in self._sessions else f"{alias}#{id(current)}"] = current
        session = self._session(spec, leased=False)
        log.info("project %s changed; re-parsed in %.2f s", project.name, session.parse_seconds)
        return session.parse_seconds

    def get(self, spec: SessionSpec) -> DbtSession:
        """The warm session for `spec`, parsing the project on first use.

        Unlike `lease`, nothing keeps the session from eviction once other specs
        are leased; it never evicts on its own.
        """
        return self._session(spec, leased=False)

    @property
    def keys(self) -> list[str]:
        """Keys of the warm sessions, least recently used first."""
        with self._lock:
            return list(self._sessions)

    def _effective(self, spec: SessionSpec, project: ProjectDir) -> SessionSpec:
        return spec.model_copy(update={"project": project.name, "target": spec.target or self.default_target})

    def _session(self, spec: SessionSpec, leased: bool, manifest_digest: str = "") -> DbtSession:
        project = self.resolve_project(spec.project)
        spec = self._effective(spec, project)
        key = session_key(project.name, spec)
        with self._lock:
            current = self._sessions.get(key)
            if manifest_digest and (current is None or current.manifest_digest != manifest_digest):
                if f"{key}@{manifest_digest}" in self._sessions:
                    return self._use(f"{key}@{manifest_digest}", leased)
            if current is not None:
                return self._use(key, leased)
            opening = self._opening.setdefault(key, threading.Lock())
        # Parse outside the pool lock so warm sessions stay available meanwhile.
        with opening:
            with self._lock:
                if key in self._sessions:
                    return self._use(key, leased)
            stamp = source_stamp(project.path, project.profiles_dir)  # before parsing: an edit meanwhile shows
            work_dir = session_work_dir(self.work_root, project.name, f"{key}-{stamp[:8]}")
            session = open_session(project.path, project.profiles_dir, spec, key, work_dir, stamp)
            heap.freeze_after_parse()
            with self._lock:
                self._sessions[key] = session
                self._opening.pop(key, None)
                self._use(key, leased)
                evicted = self._take_overflow() if leased else []
        _close(evicted)
        return session

    def _use(self, key: str, leased: bool) -> DbtSession:
        """Mark a session most recently used (and leased); call with the pool lock held."""
        self._sessions.move_to_end(key)
        session = self._sessions[key]
        if leased:
            self._leases[id(session)] += 1
        return session

    def _take_overflow(self) -> list[DbtSession]:
        """Remove the least recently used unleased sessions beyond the bound; call with the lock held."""
        idle = [key for key, session in self._sessions.items() if not self._leases[id(session)]]
        excess = len(self._sessions) - self.max_sessions
        return [self._sessions.pop(key) for key in idle[: max(0, excess)]]

    def close(self) -> None:
        with self._lock:
            sessions = list(self._sessions.values())
            self._sessions.clear()
        _close(sessions)


def _close(sessions: list[DbtSession]) -> None:
    if sessions:
        heap.thaw()
    for session in sessions:
        log.info("closing the warm session %s of %s", session.key, session.config.project_name)
        try:
            session.close()
        except Exception as err:  # noqa: BLE001 - a connection that fails to close must not fail the node
            log.warning("could not close the connections of session %s: %s", session.key, type(err).__name__)


def ensure_schemas(session: DbtSession, flags: Any = None) -> None:
    """Create the session's schemas (as the run's `flags` see them: --store-failures adds the tests'
    audit schemas); on failure, say so and let the nodes report the real error.

    A failure here is often a warehouse that is down or a credential that is wrong;
    the node that then fails carries dbt's own message (and its own retry policy),
    and the next use of the session tries again.
    """
    try:
        session.ensure_schemas(flags)
    except Exception as err:  # noqa: BLE001 - reported here, and by the nodes that need the schemas
        first_line = (str(err).strip().splitlines() or [type(err).__name__])[0]
        log.warning(
            "could not create schemas for %s: %s",
            session.config.project_name,
            redact(first_line, session.spec.env.values()),
        )

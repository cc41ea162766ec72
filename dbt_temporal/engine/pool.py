"""The worker's warm sessions, one per project and combination of run settings."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from dbt_temporal.config.projects import ProjectDir
from dbt_temporal.contract import SessionSpec
from dbt_temporal.engine.session import DbtSession, open_session, session_key, session_work_dir
from dbt_temporal.redaction import redact

log = logging.getLogger("dbtt.pool")


class UnknownProject(LookupError):
    pass


class SessionPool:
    def __init__(self, projects: dict[str, ProjectDir], work_root: Path, default_target: str | None = None) -> None:
        self.projects = projects
        self.work_root = work_root
        self.default_target = default_target
        self._sessions: dict[str, DbtSession] = {}
        self._opening: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def resolve_project(self, name: str | None) -> ProjectDir:
        names = ", ".join(sorted(self.projects)) or "none"
        if name is None:
            if len(self.projects) == 1:
                return next(iter(self.projects.values()))
            raise UnknownProject(f"this worker has several projects ({names}); say which with 'project'")
        if name not in self.projects:
            raise UnknownProject(f"unknown project '{name}'; this worker has: {names}")
        return self.projects[name]

    def get(self, spec: SessionSpec) -> DbtSession:
        """The warm session for `spec`, parsing the project on first use."""
        project = self.resolve_project(spec.project)
        spec = spec.model_copy(update={"project": project.name, "target": spec.target or self.default_target})
        key = session_key(project.name, spec)
        with self._lock:
            if key in self._sessions:
                return self._sessions[key]
            opening = self._opening.setdefault(key, threading.Lock())
        # Parse outside the pool lock so warm sessions stay available meanwhile.
        with opening:
            with self._lock:
                if key in self._sessions:
                    return self._sessions[key]
            work_dir = session_work_dir(self.work_root, project.name, key)
            session = open_session(project.path, project.profiles_dir, spec, key, work_dir)
            with self._lock:
                self._sessions[key] = session
                self._opening.pop(key, None)
            return session

    def close(self) -> None:
        with self._lock:
            for session in self._sessions.values():
                session.close()
            self._sessions.clear()


def ensure_schemas(session: DbtSession) -> None:
    """Create the session's schemas; on failure, say so and let the nodes report the real error.

    A failure here is often a warehouse that is down or a credential that is wrong;
    the node that then fails carries dbt's own message (and its own retry policy),
    and the next use of the session tries again.
    """
    try:
        session.ensure_schemas()
    except Exception as err:  # noqa: BLE001 - reported here, and by the nodes that need the schemas
        first_line = (str(err).strip().splitlines() or [type(err).__name__])[0]
        log.warning(
            "could not create schemas for %s: %s",
            session.config.project_name,
            redact(first_line, session.spec.env.values()),
        )

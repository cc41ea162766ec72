"""A warm dbt session: one project parsed once, with its own adapter.

A session is keyed by everything that changes parse results or connections
(target, vars, full_refresh, env overrides). Runs with equal keys share it;
a new combination pays one parse on first use.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from dbt.adapters.cache import RelationsCache
from dbt.adapters.factory import FACTORY, get_adapter_class_by_name
from dbt.cli.flags import Flags, args_to_context
from dbt.compilation import Compiler
from dbt.config.runtime import RuntimeConfig, load_profile, load_project
from dbt.context.providers import generate_runtime_macro_context
from dbt.context.query_header import generate_query_header_context
from dbt.graph import Graph
from dbt.parser.manifest import ManifestLoader
from dbt.tracking import initialize_from_flags
from dbt_common.exceptions import DbtDatabaseError

from dbt_temporal.contract import SessionSpec
from dbt_temporal.engine.isolation import ActiveState, activated, merged_env, track_runs
from dbt_temporal.engine.relations import forget_lookups, use_targeted_lookup

# Adapters take their connection lock from a multiprocessing context; nodes run on threads of
# this process only, so a thread lock does, without a semaphore left for the resource tracker.
_THREAD_LOCKS = SimpleNamespace(RLock=threading.RLock)

# dbt parses one project at a time per process: parsing touches globals that the
# isolation layer does not cover (the Jinja environment, plugin manager, tracking).
_PARSE_LOCK = threading.Lock()


def session_key(project: str, spec: SessionSpec) -> str:
    """A stable digest of what makes sessions differ; env values are hashed, never kept in clear."""
    material = json.dumps(
        {
            "project": project,
            "target": spec.target,
            "vars": spec.vars,
            "full_refresh": spec.full_refresh,
            "env": spec.env,
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(material.encode()).hexdigest()[:16]


def make_flags(
    command: str, project_dir: Path, profiles_dir: Path, spec: SessionSpec, work_dir: Path, *extra: str
) -> Flags:
    """dbt's own Flags for a command line, parsed the way `dbt <command> ...` would.

    dbt writes compiled SQL, graph summaries and parse state into its target
    path even when asked not to write artifacts: that is the session's own
    directory, never the project (which may be read-only, and must not hold
    rendered env values).
    """
    args = [
        *command.split(),  # "source freshness" is two words on dbt's command line
        "--project-dir",
        str(project_dir),
        "--profiles-dir",
        str(profiles_dir),
        "--target-path",
        str(work_dir / "target"),
        "--log-path",
        str(work_dir / "logs"),
        "--no-partial-parse",
        "--no-write-json",
        "--no-send-anonymous-usage-stats",
        "--no-version-check",
        "--no-populate-cache",
    ]
    if spec.target:
        args += ["--target", spec.target]
    if spec.vars:
        args += ["--vars", json.dumps(spec.vars)]
    if spec.full_refresh and command in ("build", "run", "seed", "compile", "clone"):
        args.append("--full-refresh")
    args += list(extra)
    return Flags(args_to_context(args))


@dataclass
class DbtSession:
    """A parsed project, its runtime config and its own adapter, ready to run nodes."""

    key: str
    project_dir: Path
    profiles_dir: Path
    # Where dbt writes for this session (target/, logs/); private to the worker, removed on close.
    work_dir: Path
    spec: SessionSpec
    flags: Flags
    config: RuntimeConfig
    adapter: Any
    manifest: Any
    env: dict[str, str]
    parse_seconds: float
    manifest_digest: str
    # The project's files as they were when this session was parsed (see source_stamp).
    source_stamp: str = ""
    # The target's commit marker table (engine/commit_markers.py), made on first use.
    commit_markers: Any = None
    # Set when the pool drops the session: what still refers to it should let it go.
    closed: bool = False
    _graphs: dict[bool, Graph] = field(default_factory=dict)
    _command_flags: dict[tuple[str, ...], Flags] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _schemas_lock: threading.Lock = field(default_factory=threading.Lock)

    def state(self, flags: Flags | None = None) -> ActiveState:
        return ActiveState(flags=flags or self.flags, adapter=self.adapter, env=self.env)

    def command_flags(self, command: str, *extra: str) -> Flags:
        """Flags for one dbt command in this session (cached: click parsing is not free)."""
        cache_key = (command, *extra)
        with self._lock:
            if cache_key not in self._command_flags:
                with activated(self.state()):
                    self._command_flags[cache_key] = make_flags(
                        command, self.project_dir, self.profiles_dir, self.spec, self.work_dir, *extra
                    )
            return self._command_flags[cache_key]

    def graph(self, with_test_edges: bool) -> Graph:
        """dbt's node graph; `build` adds edges so a model's tests gate its children."""
        with self._lock:
            if with_test_edges not in self._graphs:
                with activated(self.state()):
                    compiler = Compiler(self.config)
                    self._graphs[with_test_edges] = compiler.compile(
                        self.manifest, write=False, add_test_edges=with_test_edges
                    )
            return self._graphs[with_test_edges]

    def ensure_schemas(self, flags: Flags | None = None) -> None:
        """Create the schemas this session's nodes build into (each run: one may have been dropped).

        `dbt build` does this before its first node (`RunnableTask.create_schemas`);
        running single nodes skips that step, and on a warehouse without the schema
        every node would fail. dbt's version fans out on its own thread pool, which
        would not see this session, so this one runs on the calling thread.
        """
        with self._schemas_lock:
            with activated(self.state(flags)), self.adapter.connection_named("dbtt_create_schemas"):
                for database, schemas in _required_schemas(self.config, self.adapter, self.manifest).items():
                    _create_missing(self.adapter, database, schemas)

    def close(self) -> None:
        self.closed = True
        self.adapter.cleanup_connections()
        shutil.rmtree(self.work_dir, ignore_errors=True)


def _required_schemas(config: RuntimeConfig, adapter: Any, manifest: Any) -> dict[Any, set[Any]]:
    """The schemas every relation of the project lives in, grouped by database (as dbt groups them)."""
    required: dict[Any, set[Any]] = {}
    for node in manifest.nodes.values():
        if node.is_relational and not node.is_ephemeral:
            schema = adapter.Relation.create_from(config, node).without_identifier()
            database = schema.include(database=True, schema=False, identifier=False)
            required.setdefault(database, set()).add(schema)
    return required


def _existing_schemas(adapter: Any, database: Any) -> set[str]:
    return {name.lower() for name in adapter.list_schemas(str(database) if database.database else None) if name}


def _create_missing(adapter: Any, database: Any, schemas: set[Any]) -> None:
    existing = _existing_schemas(adapter, database)
    for schema in sorted(schemas, key=str):
        if schema.schema.lower() in existing:
            continue
        try:
            adapter.create_schema(schema)  # commits on its own
        except DbtDatabaseError:
            # Another worker may create the same schema at the same moment; that is success.
            adapter.connections.rollback_if_open()
            if schema.schema.lower() not in _existing_schemas(adapter, database):
                raise


def session_work_dir(work_root: Path, project_name: str, key: str) -> Path:
    """The session's private directory (mode 0700: dbt's files there may hold rendered env values)."""
    work_root.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = work_root / f"{project_name}-{key}"
    path.mkdir(mode=0o700, exist_ok=True)
    return path


def open_session(
    project_dir: Path, profiles_dir: Path, spec: SessionSpec, key: str, work_dir: Path, stamp: str = ""
) -> DbtSession:
    """Parse the project for `spec` and connect a fresh adapter to it."""
    env = merged_env(spec.env)
    started = time.perf_counter()
    with _PARSE_LOCK:
        flags = make_flags("build", project_dir, profiles_dir, spec, work_dir)
        # Anonymous usage tracking stays off; dbt still needs its tracking user to exist,
        # and each run must see its own start time through it.
        initialize_from_flags(False, str(profiles_dir))
        track_runs()
        with activated(ActiveState(flags=flags, adapter=None, env=env)):
            profile = load_profile(str(project_dir), flags.VARS, flags.PROFILE, flags.TARGET, None)
            project = load_project(str(project_dir), False, profile, flags.VARS, validate=True)
            config = RuntimeConfig.from_parts(project, profile, flags)
            adapter = get_adapter_class_by_name(config.credentials.type)(config, _THREAD_LOCKS)
            _trust_no_relation_cache(adapter)
        # A registry entry for the type keeps code paths that bypass the session lookup working.
        FACTORY.adapters.setdefault(adapter.type(), adapter)
        with activated(ActiveState(flags=flags, adapter=adapter, env=env)):
            adapter.set_macro_context_generator(generate_runtime_macro_context)
            manifest = ManifestLoader.get_full_manifest(config)
            adapter.set_macro_resolver(manifest)
            adapter.connections.set_query_header(generate_query_header_context(config, manifest))
    return DbtSession(
        key=key,
        project_dir=project_dir,
        profiles_dir=profiles_dir,
        work_dir=work_dir,
        spec=spec,
        flags=flags,
        config=config,
        adapter=adapter,
        manifest=manifest,
        env=env,
        parse_seconds=time.perf_counter() - started,
        manifest_digest=manifest_digest(manifest),
        source_stamp=stamp,
    )


def manifest_digest(manifest: Any) -> str:
    """A digest of every file dbt parsed, by content: equal on workers that serve the same project version."""
    files = sorted((file_id, source.checksum.checksum) for file_id, source in manifest.files.items())
    return hashlib.sha256(json.dumps(files).encode()).hexdigest()[:16]


class _NoRelationsCache(RelationsCache):
    """A relations cache that remembers nothing.

    Turning off reads alone is not enough: dbt still writes every relation it
    lists, creates or renames into the cache, and its renames check the cache
    for collisions. With threads of one session listing a schema while another
    node swaps a view in (rename existing -> backup, temp -> existing), the
    listing puts the old name back between the two renames and the second one
    fails with "Cache inconsistency detected".
    """

    def add_schema(self, database: str | None, schema: str | None) -> None:
        pass

    def drop_schema(self, database: str | None, schema: str | None) -> None:
        pass

    def update_schemas(self, schemas: Any) -> None:
        pass

    def add_link(self, referenced: Any, dependent: Any) -> None:
        pass

    # dbt reports its own creates, drops and renames here: the node's remembered lookups are stale then.
    def add(self, relation: Any) -> None:
        forget_lookups()

    def drop(self, relation: Any) -> None:
        forget_lookups()

    def rename(self, old: Any, new: Any) -> None:
        forget_lookups()


def _trust_no_relation_cache(adapter: Any) -> None:
    """Always ask the warehouse whether a relation exists.

    dbt's relation cache only grows, and other workers (and other runs on this
    one) create and drop relations behind its back; a stale answer makes a
    materialization pick the wrong path. One metadata query per node is cheap.
    """
    adapter.cache = _NoRelationsCache()
    adapter._schema_is_cached = lambda database, schema: False
    use_targeted_lookup(adapter)

"""A warm dbt session: one project parsed once, with its own adapter.

A session is keyed by everything that changes parse results or connections
(target, vars, full_refresh, env overrides). Runs with equal keys share it;
a new combination pays one parse on first use.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dbt.adapters.factory import FACTORY, get_adapter_class_by_name
from dbt.cli.flags import Flags, args_to_context
from dbt.compilation import Compiler
from dbt.config.runtime import RuntimeConfig, load_profile, load_project
from dbt.context.providers import generate_runtime_macro_context
from dbt.context.query_header import generate_query_header_context
from dbt.graph import Graph
from dbt.mp_context import get_mp_context
from dbt.parser.manifest import ManifestLoader
from dbt.tracking import initialize_from_flags

from dbt_temporal.engine.isolation import ActiveState, activated, merged_env
from dbt_temporal.models import SessionSpec

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


def make_flags(command: str, project_dir: Path, profiles_dir: Path, spec: SessionSpec, *extra: str) -> Flags:
    """dbt's own Flags for a command line, parsed the way `dbt <command> ...` would."""
    args = [
        command,
        "--project-dir",
        str(project_dir),
        "--profiles-dir",
        str(profiles_dir),
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
    if spec.full_refresh and command in ("build", "run", "seed", "compile"):
        args.append("--full-refresh")
    args += list(extra)
    return Flags(args_to_context(args))


@dataclass
class DbtSession:
    """A parsed project, its runtime config and its own adapter, ready to run nodes."""

    key: str
    project_dir: Path
    profiles_dir: Path
    spec: SessionSpec
    flags: Flags
    config: RuntimeConfig
    adapter: Any
    manifest: Any
    env: dict[str, str]
    parse_seconds: float
    _graphs: dict[bool, Graph] = field(default_factory=dict)
    _command_flags: dict[tuple[str, ...], Flags] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def state(self, flags: Flags | None = None) -> ActiveState:
        return ActiveState(flags=flags or self.flags, adapter=self.adapter, env=self.env)

    def command_flags(self, command: str, *extra: str) -> Flags:
        """Flags for one dbt command in this session (cached: click parsing is not free)."""
        cache_key = (command, *extra)
        with self._lock:
            if cache_key not in self._command_flags:
                with activated(self.state()):
                    self._command_flags[cache_key] = make_flags(
                        command, self.project_dir, self.profiles_dir, self.spec, *extra
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

    def close(self) -> None:
        self.adapter.cleanup_connections()


def open_session(project_dir: Path, profiles_dir: Path, spec: SessionSpec, key: str) -> DbtSession:
    """Parse the project for `spec` and connect a fresh adapter to it."""
    env = merged_env(spec.env)
    started = time.perf_counter()
    with _PARSE_LOCK:
        flags = make_flags("build", project_dir, profiles_dir, spec)
        # Anonymous usage tracking stays off; dbt still needs its tracking user to exist.
        initialize_from_flags(False, str(profiles_dir))
        with activated(ActiveState(flags=flags, adapter=None, env=env)):
            profile = load_profile(str(project_dir), flags.VARS, flags.PROFILE, flags.TARGET, None)
            project = load_project(str(project_dir), False, profile, flags.VARS, validate=True)
            config = RuntimeConfig.from_parts(project, profile, flags)
            adapter = get_adapter_class_by_name(config.credentials.type)(config, get_mp_context())
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
        spec=spec,
        flags=flags,
        config=config,
        adapter=adapter,
        manifest=manifest,
        env=env,
        parse_seconds=time.perf_counter() - started,
    )


def _trust_no_relation_cache(adapter: Any) -> None:
    """Always ask the warehouse whether a relation exists.

    dbt's relation cache only grows, and other workers (and other runs on this
    one) create and drop relations behind its back; a stale answer makes a
    materialization pick the wrong path. One metadata query per node is cheap.
    """
    adapter._schema_is_cached = lambda database, schema: False

"""Knowing, on a retry, whether the previous attempt's data change committed.

Temporal runs an activity at least once. Rebuilding a table or merging on a unique key twice
gives the same rows; appending twice does not. For nodes whose second run is not known to be
harmless, dbtt adds one statement to the node's own transaction: an insert into a marker table,
keyed by the run's invocation id and the node. It commits with the node's data or not at all.
A retry looks for it first: found, the data change is not applied again, and only the
after-commit post-hooks (`transaction: false`), which may not have run, are run.

Where no marker can be used (turned off, or an adapter without transactions), a retry of such a
node is refused instead: better a clear failure than a silent double write.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from dbt.artifacts.resources.v1.config import Hook
from dbt.clients.jinja import get_rendered
from dbt.context.providers import generate_runtime_model_context
from dbt_common.exceptions import DbtDatabaseError

# Adapters whose materializations run the main statement and in-transaction hooks in one
# transaction that commits or rolls back as a whole.
TRANSACTIONAL_ADAPTERS = ("duckdb", "postgres", "redshift", "snowflake")
SAFE_MATERIALIZATIONS = ("table", "view", "ephemeral", "materialized_view", "seed", "snapshot", "test", "unit")
KEYED_STRATEGIES = ("merge", "delete+insert")


@dataclass(frozen=True)
class MarkerSettings:
    enabled: bool = True
    schema: str = "dbtt_meta"
    table: str = "dbtt_commits"


def rerun_hazard(node: Any, full_refresh: bool) -> str | None:
    """Why running the node twice could leave other data than running it once; None when it cannot."""
    if node.resource_type not in ("model", "seed", "snapshot"):
        return None  # tests, unit tests, hooks and the like write no data of their own
    config = node.config
    if getattr(node, "language", "sql") == "python":
        return "a Python model"  # Python may write anything, anywhere
    if config.materialized in SAFE_MATERIALIZATIONS:
        return None
    if config.materialized != "incremental":
        return f"materialized '{config.materialized}'"  # a custom materialization: no way to know
    strategy = config.get("incremental_strategy")
    if full_refresh or config.full_refresh or strategy == "microbatch":
        return None
    if strategy in (None, "default", *KEYED_STRATEGIES) and config.get("unique_key"):
        return None
    if strategy == "insert_overwrite":
        return None if config.get("partition_by") else "incremental_strategy insert_overwrite without partition_by"
    return f"incremental_strategy {strategy or 'default'} without a unique_key"


def rerun_is_safe(node: Any, full_refresh: bool) -> bool:
    return rerun_hazard(node, full_refresh) is None


class CommitMarkers:
    """The marker table of one session's target: created once, written by nodes, read by their retries."""

    def __init__(self, session: Any, settings: MarkerSettings) -> None:
        self._session = session
        self._settings = settings
        self._ready = False
        self._lock = threading.Lock()
        database = getattr(session.config.credentials, "database", None)
        self._table = session.adapter.Relation.create(
            database=database, schema=settings.schema, identifier=settings.table
        )

    @property
    def usable(self) -> bool:
        return self._settings.enabled and self._session.adapter.type() in TRANSACTIONAL_ADAPTERS

    def relation(self) -> str:
        return str(self._table)

    def ensure_table(self) -> None:
        with self._lock:
            if self._ready:
                return
            adapter = self._session.adapter
            with adapter.connection_named("dbtt_commit_markers"):
                try:
                    self._create(adapter)
                except DbtDatabaseError:
                    # Sessions of other runs (or workers) may create it at the same moment, and
                    # PostgreSQL's IF NOT EXISTS does not hold under that race: it is there now.
                    adapter.connections.rollback_if_open()
                    adapter.execute(f"select 1 from {self.relation()} where 1 = 0", fetch=True)
            self._ready = True

    def _create(self, adapter: Any) -> None:
        adapter.create_schema(self._table.without_identifier())
        adapter.execute(
            f"create table if not exists {self.relation()} (invocation_id varchar(64), "
            "unique_id varchar(1024), attempt integer, committed_at timestamp default current_timestamp)",
            auto_begin=True,
        )
        adapter.commit_if_has_connection()

    def marker_hook(self, invocation_id: str, unique_id: str, attempt: int) -> Hook:
        """The insert that commits with the node's data: the last of its in-transaction post-hooks."""
        return Hook(
            sql=f"insert into {self.relation()} (invocation_id, unique_id, attempt) "
            f"values ({_literal(invocation_id)}, {_literal(unique_id)}, {int(attempt)})",
            transaction=True,
        )

    def committed_attempt(self, invocation_id: str, unique_id: str) -> int | None:
        """The attempt whose data change committed, if one did."""
        adapter = self._session.adapter
        with adapter.connection_named(f"dbtt_check_{unique_id}"):
            _, table = adapter.execute(
                f"select max(attempt) from {self.relation()} "
                f"where invocation_id = {_literal(invocation_id)} and unique_id = {_literal(unique_id)}",
                fetch=True,
            )
        value = table.rows[0][0] if table.rows else None
        return int(value) if value is not None else None


def run_after_commit_hooks(node: Any, config: Any, manifest: Any, adapter: Any) -> int:
    """Run a node's `transaction: false` post-hooks alone (its data change committed already)."""
    hooks = [hook for hook in node.config.post_hook if not hook.transaction]
    if not hooks:
        return 0
    context = generate_runtime_model_context(node, config, manifest)
    with adapter.connection_named(node.unique_id):
        for hook in hooks:
            sql = get_rendered(hook.sql, context, node).strip()
            if sql:
                adapter.execute(sql, auto_begin=False)
        handle = adapter.connections.get_thread_connection().handle
        if getattr(handle, "autocommit", True) is False:
            # Outside dbt's transactions a driver without autocommit (psycopg2's default) opens a
            # transaction of its own, which must be committed for the hooks' writes to last.
            handle.commit()
    return len(hooks)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"

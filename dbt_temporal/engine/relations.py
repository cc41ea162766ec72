"""Looking up a node's relations in the warehouse, instead of listing their whole schema.

dbt answers `adapter.get_relation` from its relation cache, filled by listing
whole schemas. A worker cannot trust that cache (other workers create and drop
relations), and listing the schema on every lookup makes each node's cost grow
with the schema's size. For adapters whose catalogs we know, one targeted
metadata query answers the same question.

A materialization asks about its relation and then about the temporary and
backup relations named after it, before it changes anything: within one node
(`remembered_lookups`), the first lookup asks about all three at once, and the
answers hold until the node creates, drops or renames a relation.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from dbt.adapters.contracts.relation import RelationType

_POSTGRES = """
select schemaname, tablename, 'table' from pg_tables
 where lower(schemaname) = lower({schema}) and lower(tablename) in ({names})
union all
select schemaname, viewname, 'view' from pg_views
 where lower(schemaname) = lower({schema}) and lower(viewname) in ({names})
union all
select schemaname, matviewname, 'materialized_view' from pg_matviews
 where lower(schemaname) = lower({schema}) and lower(matviewname) in ({names})
"""

_DUCKDB = """
select table_schema, table_name, case when table_type = 'VIEW' then 'view' else 'table' end
  from system.information_schema.tables
 where lower(table_schema) = lower({schema}) and lower(table_name) in ({names})
   and ({database} is null or lower(table_catalog) = lower({database}))
"""

# What dbt's materializations append to a relation's name for their temporary and backup relations.
_SIBLING_SUFFIXES = ("__dbt_tmp", "__dbt_backup")
_MEMO: contextvars.ContextVar[dict[tuple[Any, ...], Any] | None] = contextvars.ContextVar(
    "dbtt_relation_lookups", default=None
)


@contextmanager
def remembered_lookups() -> Iterator[None]:
    """Within the block (one node's run), lookups of a relation and its siblings cost one query."""
    token = _MEMO.set({})
    try:
        yield
    finally:
        _MEMO.reset(token)


def forget_lookups() -> None:
    """A relation was created, dropped or renamed: earlier answers may be wrong now."""
    memo = _MEMO.get()
    if memo:
        memo.clear()


def _with_siblings(identifier: str) -> list[str]:
    base = identifier
    for suffix in _SIBLING_SUFFIXES:
        if identifier.lower().endswith(suffix):
            base = identifier[: -len(suffix)]
            break
    return [base, *(base + suffix for suffix in _SIBLING_SUFFIXES)]


LOOKUPS = {"postgres": _POSTGRES, "duckdb": _DUCKDB}


def _literal(value: str | None) -> str:
    return "null" if value is None else "'" + value.replace("'", "''") + "'"


def use_targeted_lookup(adapter: Any) -> None:
    """Replace the adapter's schema-listing `get_relation` where a targeted query is known."""
    template = LOOKUPS.get(adapter.type())
    if template is None:
        return

    def get_relation(database: str | None, schema: str, identifier: str) -> Any:
        memo = _MEMO.get()
        key = (database, schema.lower(), identifier.lower())
        if memo is not None and key in memo:
            return memo[key]
        names = _with_siblings(identifier) if memo is not None else [identifier]
        listed = ", ".join(f"lower({_literal(name)})" for name in names)
        sql = template.format(database=_literal(database), schema=_literal(schema), names=listed)
        _, table = adapter.execute(sql, auto_begin=False, fetch=True)
        found = {}
        for found_schema, found_name, kind in table.rows:
            relation = adapter.Relation.create(
                database=database, schema=found_schema, identifier=found_name, type=RelationType(kind)
            )
            found.setdefault(found_name.lower(), relation)
        if memo is not None:
            memo.update({(database, schema.lower(), name.lower()): found.get(name.lower()) for name in names})
        return found.get(identifier.lower())

    adapter.get_relation = get_relation

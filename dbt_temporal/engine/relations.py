"""Looking up one relation in the warehouse, instead of listing its whole schema.

dbt answers `adapter.get_relation` from its relation cache, filled by listing
whole schemas. A worker cannot trust that cache (other workers create and drop
relations), and listing the schema on every lookup makes each node's cost grow
with the schema's size. For adapters whose catalogs we know, one targeted
metadata query answers the same question.
"""

from __future__ import annotations

from typing import Any

from dbt.adapters.contracts.relation import RelationType

_POSTGRES = """
select schemaname, tablename, 'table' from pg_tables
 where lower(schemaname) = lower({schema}) and lower(tablename) = lower({name})
union all
select schemaname, viewname, 'view' from pg_views
 where lower(schemaname) = lower({schema}) and lower(viewname) = lower({name})
union all
select schemaname, matviewname, 'materialized_view' from pg_matviews
 where lower(schemaname) = lower({schema}) and lower(matviewname) = lower({name})
"""

_DUCKDB = """
select table_schema, table_name, case when table_type = 'VIEW' then 'view' else 'table' end
  from system.information_schema.tables
 where lower(table_schema) = lower({schema}) and lower(table_name) = lower({name})
   and ({database} is null or lower(table_catalog) = lower({database}))
"""

LOOKUPS = {"postgres": _POSTGRES, "duckdb": _DUCKDB}


def _literal(value: str | None) -> str:
    return "null" if value is None else "'" + value.replace("'", "''") + "'"


def use_targeted_lookup(adapter: Any) -> None:
    """Replace the adapter's schema-listing `get_relation` where a targeted query is known."""
    template = LOOKUPS.get(adapter.type())
    if template is None:
        return

    def get_relation(database: str | None, schema: str, identifier: str) -> Any:
        sql = template.format(database=_literal(database), schema=_literal(schema), name=_literal(identifier))
        _, table = adapter.execute(sql, auto_begin=False, fetch=True)
        rows = list(table.rows)
        if not rows:
            return None
        found_schema, found_name, kind = rows[0]
        return adapter.Relation.create(
            database=database, schema=found_schema, identifier=found_name, type=RelationType(kind)
        )

    adapter.get_relation = get_relation

"""One empty agate table for every statement that returns no rows.

dbt answers each statement run without fetching (every create, rename, drop and insert of a
materialization) with a fresh `agate.Table(rows=[])`, and agate builds its column type testers
for each, date parsers included: about 7 % of the time node threads held the interpreter lock at
499 nodes. agate tables never change once built (their methods return new tables), so one empty
table can answer them all.
"""

from __future__ import annotations

from typing import Any

from dbt_common.clients import agate_helper

_EMPTY: list[Any] = []


def install() -> None:
    """Answer dbt's `empty_table()` with one shared table, in this process (a worker's)."""
    if _EMPTY:
        return
    _EMPTY.append(agate_helper.empty_table())
    agate_helper.empty_table = lambda: _EMPTY[0]

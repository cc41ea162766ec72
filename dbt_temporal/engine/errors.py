"""Telling transient warehouse failures from ones a retry cannot fix.

What the driver says (exception type, SQLSTATE) decides before message text.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from dbt_common.exceptions import CompilationError, DbtConfigError, DbtValidationError

# SQLSTATE classes: 08 connection exception, 40 transaction rollback (serialization
# failure, deadlock), 53 insufficient resources (too many connections), 57 operator
# intervention (admin shutdown, cancelled by a failover), 58 system error.
TRANSIENT_SQLSTATE_CLASSES = frozenset({"08", "40", "53", "57", "58"})
# Driver exception class names that mean the connection, not the SQL, failed.
TRANSIENT_EXCEPTION_NAMES = frozenset(
    {"OperationalError", "InterfaceError", "FailedToConnectError", "ConnectionError", "TimeoutError"}
)
TRANSIENT_MESSAGE = re.compile(
    r"connection (?:refused|reset|closed|lost|timed out)|server closed the connection|could not connect"
    r"|timed? ?out|too many connections|rate limit|could not serialize|deadlock detected"
    r"|temporarily unavailable|terminating connection",
    re.IGNORECASE,
)
# dbt raises these for problems in the project itself; the code will not change on retry.
PERMANENT_DBT_ERRORS = (CompilationError, DbtConfigError, DbtValidationError)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE any exception in the chain carries (psycopg2 `pgcode`, psycopg `sqlstate`)."""
    for link in _chain(exc):
        code = getattr(link, "pgcode", None) or getattr(link, "sqlstate", None)
        if isinstance(code, str) and len(code) == 5:
            return code
    return None


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, PERMANENT_DBT_ERRORS):
        return False
    code = sqlstate(exc)
    if code is not None:
        return code[:2] in TRANSIENT_SQLSTATE_CLASSES
    if any(type(link).__name__ in TRANSIENT_EXCEPTION_NAMES for link in _chain(exc)):
        return True
    return any(TRANSIENT_MESSAGE.search(str(link)) for link in _chain(exc))

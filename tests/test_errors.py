"""Which node failures are worth a retry."""

from __future__ import annotations

import pytest
from dbt.adapters.exceptions import FailedToConnectError
from dbt_common.exceptions import CompilationError, DbtDatabaseError, DbtRuntimeError

from dbt_temporal.engine.errors import is_transient, sqlstate


class DriverError(Exception):
    """Stands in for a driver exception carrying a SQLSTATE, as psycopg2's do (`pgcode`)."""

    def __init__(self, message: str, pgcode: str | None) -> None:
        super().__init__(message)
        self.pgcode = pgcode


def wrapped(driver: Exception) -> DbtDatabaseError:
    """The way dbt adapters re-raise driver errors: a dbt error caused by the driver's."""
    try:
        raise DbtDatabaseError(str(driver)) from driver
    except DbtDatabaseError as err:
        return err


@pytest.mark.parametrize(
    ("code", "transient"),
    [
        ("08006", True),  # connection failure
        ("40001", True),  # serialization failure
        ("40P01", True),  # deadlock detected
        ("53300", True),  # too many connections
        ("57P01", True),  # admin shutdown
        ("58000", True),  # system error
        ("42P01", False),  # undefined table: the SQL is wrong
        ("42501", False),  # permission denied
        ("22012", False),  # division by zero
    ],
)
def test_sqlstate_decides_before_the_message(code: str, transient: bool) -> None:
    error = wrapped(DriverError("connection reset by peer", code))  # message says transient; code decides
    assert sqlstate(error) == code
    assert is_transient(error) is transient


def test_project_errors_are_never_retried() -> None:
    assert not is_transient(CompilationError("connection timed out in a macro"))


def test_connection_failures_without_a_code_are_retried() -> None:
    assert is_transient(FailedToConnectError("could not connect to server"))
    assert is_transient(DbtRuntimeError("Rate limit exceeded, try again"))
    assert not is_transient(DbtRuntimeError("Binder Error: column nope not found"))


def test_an_exception_outside_dbt_fails_the_node_at_once_with_one_redacted_line() -> None:
    from dbt_temporal.worker.activities import crash_error

    error = crash_error(KeyError("model.p.gone holds s3cr3t-token\nsecond line"), ["s3cr3t-token"])
    assert error.non_retryable
    assert error.type == "NodeCrashed"
    assert error.message == "KeyError: 'model.p.gone holds ****\\nsecond line'"


def test_a_transient_exception_outside_dbt_is_still_retried() -> None:
    from dbt_temporal.worker.activities import crash_error

    error = crash_error(ConnectionResetError("connection reset by peer"), [])
    assert not error.non_retryable
    assert error.message == "ConnectionResetError: connection reset by peer"

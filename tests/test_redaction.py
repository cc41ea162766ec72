"""Masking env override values wherever dbt or the database may echo them, without pointing at them."""

from __future__ import annotations

from dbt_temporal.contract import NodeResult, NodeStatus, PlannedNode
from dbt_temporal.redaction import MASK, redact
from dbt_temporal.workflow import runlog

LONG = "sk-live-4f9c2a7e1b3d5f8a0c6e9b2d4f7a1c3e5b8d0f2a4c6e8b1d3f5a7c9e"


def test_a_secret_with_a_newline_is_masked_when_dbt_reindents_it() -> None:
    secret = "first-line-of-key\nsecond-line-of-key"
    message = "Database Error in model m\n  syntax error near 'first-line-of-key\n    second-line-of-key'"

    masked = redact(message, [secret])

    assert "first-line-of-key" not in masked and "second-line-of-key" not in masked
    assert masked.endswith(f"'{MASK}'")


def test_a_long_secret_cut_short_by_the_database_is_masked() -> None:
    # PostgreSQL shows the statement around an error and cuts long literals: only a prefix survives.
    context = f"LINE 13: select '{LONG[:58]}\n                ^"

    masked = redact(context, [LONG])

    assert LONG[:12] not in masked
    assert masked.startswith(f"LINE 13: select '{MASK}\n")


def test_a_short_prefix_of_a_secret_is_ordinary_text() -> None:
    assert redact("the key sk-live-4 was rotated", [LONG]) == "the key sk-live-4 was rotated"


def test_a_secret_that_is_a_run_log_word_is_not_masked_where_it_would_point_at_it() -> None:
    line = "1 of 3 START sql table model main.orders"

    assert redact(line, ["table"]) == line
    assert redact(line, ["able"]) == line


def test_the_run_log_dots_are_counted_after_masking() -> None:
    short_secret, long_secret = "abcd-secret", "abcd-secret-that-is-much-longer"
    lines = [
        runlog.masked_line(runlog.start_line(1, 1, _model(f"sql view model main.x_{secret}")), [secret])
        for secret in (short_secret, long_secret)
    ]

    assert lines[0] == lines[1]
    assert lines[0].startswith(f"1 of 1 START sql view model main.x_{MASK} ...")


def test_a_finished_line_keeps_its_layout_after_masking() -> None:
    secret = "tok-123456"
    node = _model(f"sql table model main.{secret}")
    done = NodeResult(unique_id="x", status=NodeStatus.success, dbt_status="success", execution_time=0.5)
    line = runlog.finish_line(1, 1, node, done)

    masked = runlog.masked_line(line, [secret])

    assert masked == runlog.finish_line(1, 1, _model(f"sql table model main.{MASK}"), done)


def _model(description: str) -> PlannedNode:
    return PlannedNode(unique_id="model.p.x", name="x", resource_type="model", description=description)

"""The lines a node's `{{ log(message, info=True) }}` calls print, kept with the node's result.

dbt sends them as events to its one process-wide event manager, and a worker runs
many nodes at once on its threads: one callback files each line under the node
whose thread fired it (a contextvar), so every run log shows its own nodes' lines.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from dbt_temporal.engine import lazy_events

# Enough for what macros say about themselves; a node that logs per row is cut short.
MAX_LINES = 50
MAX_LINE_CHARS = 500

_LINES: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("dbtt_macro_log", default=None)


def _file_line(message: Any) -> None:
    lines = _LINES.get()
    if lines is None or message.info.name != "JinjaLogInfo" or len(lines) >= MAX_LINES:
        return
    lines.append(message.info.msg[:MAX_LINE_CHARS])


def _ensure_registered() -> None:
    # The worker clears dbt's callbacks at start (and dbt may again): checked on each use.
    lazy_events.add_callback(_file_line, {"JinjaLogInfo"})


@contextmanager
def captured_log_lines() -> Iterator[list[str]]:
    """The `log(..., info=True)` lines this thread's dbt work prints until the block ends."""
    _ensure_registered()
    lines: list[str] = []
    token = _LINES.set(lines)
    try:
        yield lines
    finally:
        _LINES.reset(token)

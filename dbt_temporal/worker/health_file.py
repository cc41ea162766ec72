"""The health file's check, apart from the worker's health loop so that `dbtt healthcheck` loads no asyncio."""

from __future__ import annotations

import time
from pathlib import Path

STALE_AFTER_SECONDS = 60.0


def check_file(path: Path, max_age: float = STALE_AFTER_SECONDS) -> tuple[bool, str]:
    """Whether the health file is fresh, with one line saying so."""
    try:
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return False, f"unhealthy: {path} does not exist (is the worker running with HEALTH_PORT or HEALTH_FILE?)"
    if age > max_age:
        return False, f"unhealthy: {path} is stale, last updated {age:.0f}s ago (limit {max_age:.0f}s)"
    return True, f"healthy: {path} updated {age:.0f}s ago"

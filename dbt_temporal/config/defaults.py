"""Defaults that `dbtt healthcheck` needs without loading the settings model (pydantic is slow to import)."""

from __future__ import annotations

from pathlib import Path

DEFAULT_HEALTH_FILE = Path("/tmp/health")

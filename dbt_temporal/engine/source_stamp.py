"""A cheap fingerprint of a project's files, to notice an edit before planning a run.

Paths, sizes and modification times of the files dbt reads: a stat per file, no reading, so
even a project of thousands of files is checked in milliseconds. Databases, logs and dbt's own
output are left out: they change with every run.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

DBT_SOURCE_SUFFIXES = (".sql", ".yml", ".yaml", ".py", ".csv", ".md", ".jinja", ".jinja2")
SKIPPED_DIRS = {".git", "target", "logs", "__pycache__", ".venv", "venv", "node_modules", ".dbt"}


def source_stamp(project_dir: Path, profiles_dir: Path) -> str:
    entries: list[str] = []
    for root, dirs, files in os.walk(project_dir):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS)
        for name in sorted(files):
            if name.endswith(DBT_SOURCE_SUFFIXES):
                entries.append(_entry(Path(root) / name, project_dir))
    entries.append(_entry(profiles_dir / "profiles.yml", profiles_dir))
    return hashlib.sha256("\n".join(entries).encode()).hexdigest()[:16]


def _entry(path: Path, base: Path) -> str:
    try:
        stat = path.stat()
    except OSError:
        return f"{path.relative_to(base)} gone"
    return f"{path.relative_to(base)} {stat.st_size} {stat.st_mtime_ns}"

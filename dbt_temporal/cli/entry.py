"""The `dbtt` executable: `dbtt healthcheck` loads only what it needs (see probe.py), the rest the whole CLI."""

from __future__ import annotations

import sys


def main() -> None:
    if sys.argv[1:2] == ["healthcheck"]:
        from dbt_temporal.cli import probe

        probe.run(sys.argv[2:])
    else:
        from dbt_temporal.cli import app

        app.main()

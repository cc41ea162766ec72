"""`dbtt healthcheck`, the exec probe Kubernetes runs every few seconds.

It loads nothing beyond the standard library and the file check: typer alone (which converts
values with pydantic), the Temporal client or dbt would cost it more time and memory than the
check itself, on every probe. `entry.main` runs it before importing the rest of the CLI, and the
`healthcheck` command of `app` hands its arguments here, so there is one parser for both ways in.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import NoReturn

from dbt_temporal.config.defaults import DEFAULT_HEALTH_FILE
from dbt_temporal.worker.health_file import STALE_AFTER_SECONDS, check_file

HELP = (
    f"Exit 0 when the worker's health file is younger than {STALE_AFTER_SECONDS:.0f} s, else 1: "
    "a Kubernetes exec probe."
)
EXIT_UNHEALTHY, EXIT_USAGE = 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """One line, like the rest of dbtt, instead of argparse's usage block."""
        print(f"error: {message}; see: dbtt healthcheck -h", file=sys.stderr)
        sys.exit(EXIT_USAGE)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="dbtt healthcheck", description=HELP)
    parser.add_argument(
        "--health-file",
        metavar="FILE",
        type=Path,
        help=f"the file the worker touches while healthy (default: $HEALTH_FILE, else {DEFAULT_HEALTH_FILE})",
    )
    return parser


def run(args: list[str]) -> NoReturn:
    """`dbtt healthcheck ARGS`: print one line and exit 0 (fresh) or 1 (stale or missing)."""
    health_file = _parser().parse_args(args).health_file or Path(os.environ.get("HEALTH_FILE") or DEFAULT_HEALTH_FILE)
    healthy, line = check_file(health_file)
    print(line, file=sys.stdout if healthy else sys.stderr, flush=True)
    sys.exit(0 if healthy else EXIT_UNHEALTHY)

"""Helper process: one `dbtRunner(manifest=...).invoke(["build", "-s", node])` per node, in order.

Run as `python -m bench.invoke_nodes PROJECT_DIR THREADS` with a JSON list of node
names on stdin; prints {"parse_seconds", "seconds", "failed"} as JSON on stdout.
dbtRunner resets dbt's process globals on every call, so the calls are serial,
in a process of their own.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import time

from dbt.cli.main import dbtRunner


def _common(project: str, threads: str) -> list[str]:
    return ["--project-dir", project, "--profiles-dir", project, "--threads", threads, "--quiet"]


def main(project: str, threads: str) -> None:
    names: list[str] = json.loads(sys.stdin.read())
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        parsed = dbtRunner().invoke(["parse", *_common(project, threads)])
    parse_seconds = time.perf_counter() - started
    runner = dbtRunner(manifest=parsed.result)
    seconds: list[float] = []
    failed: list[str] = []
    for name in names:
        started = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            outcome = runner.invoke(["build", "-s", name, "--indirect-selection", "empty", *_common(project, threads)])
        seconds.append(time.perf_counter() - started)
        if not outcome.success:
            failed.append(name)
    json.dump({"parse_seconds": parse_seconds, "seconds": seconds, "failed": failed}, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

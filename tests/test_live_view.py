"""The live view on a real terminal (a pseudo-terminal): its clock runs and a retrying node says so."""

from __future__ import annotations

import os
import re
import subprocess
import threading
from pathlib import Path

from tests.support import BIN, TEST_PROJECTS, copy_project, wait_until

CLOCK = re.compile(rb"(?<![\d:])0:00:(\d\d)(?![\d:])")


def on_a_terminal(worker, *args: str) -> tuple[subprocess.Popen[bytes], bytearray]:  # noqa: ANN001
    """`dbtt ARGS` on a pseudo-terminal, as a user at a shell runs it; the screen fills as it prints."""
    screen = bytearray()
    main, terminal = os.openpty()
    watcher = subprocess.Popen(
        [str(BIN / "dbtt"), *args],
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        env={**os.environ, "TEMPORAL_ADDRESS": worker.address, "TEMPORAL_TASK_QUEUE": worker.task_queue,
             "TERM": "xterm-256color", "COLUMNS": "160", "LINES": "40"},
    )  # fmt: skip
    os.close(terminal)

    def read() -> None:
        while True:
            try:
                chunk = os.read(main, 4096)
            except OSError:
                return
            if not chunk:
                return
            screen.extend(chunk)

    threading.Thread(target=read, daemon=True).start()
    return watcher, screen


def test_the_live_view_clock_moves_and_a_retry_is_announced(tmp_path: Path, start_worker) -> None:
    project = copy_project(TEST_PROJECTS / "flaky", tmp_path / "flaky")
    (project / "dbt_temporal.yml").write_text("retry:\n  initial_interval_secs: 6\n")
    worker = start_worker(
        project, FLAKY_DUCKDB_PATH=str(tmp_path / "flaky.duckdb"), FLAKY_MARKER=str(tmp_path / "failed-once")
    )
    watcher, screen = on_a_terminal(worker, "submit", "run", "-s", "flaky_once")
    wait_until(lambda: CLOCK.search(bytes(screen)), timeout=90)
    first_look = min(int(s) for s in CLOCK.findall(bytes(screen)))
    wait_until(lambda: b"retrying (attempt 2 in " in screen, timeout=90)

    assert watcher.wait(timeout=120) == 0
    assert max(int(s) for s in CLOCK.findall(bytes(screen))) > first_look  # the clock moved between looks
    assert b"success (attempt 2)" in screen  # the final table says the node needed a second attempt


def test_show_on_a_terminal_prints_the_rows_it_came_for(shop: Path, start_worker) -> None:
    worker = start_worker(shop)
    built, _ = on_a_terminal(worker, "submit", "build", "-s", "+orders")
    assert built.wait(timeout=120) == 0

    shown, screen = on_a_terminal(worker, "submit", "show", "-s", "orders", "--limit", "2")

    assert shown.wait(timeout=120) == 0
    text = bytes(screen).decode(errors="replace")
    assert "Previewing node 'orders':" in text
    assert re.search(r"\| order_id .*\|", text), text

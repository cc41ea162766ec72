"""Running workers in production: health probes, tuning, credentials, and bad input."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import struct
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from dbt_temporal.client.devserver import free_port
from dbt_temporal.contract import DbtRunInput
from dbt_temporal.worker import health
from tests.certificates import self_signed
from tests.support import dbtt, output_of, run_and_wait, wait_until


def test_healthcheck_reports_fresh_stale_and_missing_files(tmp_path: Path) -> None:
    probe = tmp_path / "health"

    missing = dbtt("healthcheck", "--health-file", str(probe))
    probe.touch()
    fresh = dbtt("healthcheck", env={"HEALTH_FILE": str(probe)})
    os.utime(probe, (time.time() - 120, time.time() - 120))
    stale = dbtt("healthcheck", "--health-file", str(probe))

    assert (missing.returncode, fresh.returncode, stale.returncode) == (1, 0, 1)
    assert "does not exist" in missing.stderr
    assert fresh.stdout.startswith("healthy:")
    assert "is stale, last updated" in stale.stderr


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def test_http_probe_answers_200_when_fresh_and_503_when_stale(tmp_path: Path) -> None:
    probe = tmp_path / "health"
    probe.touch()
    port = free_port()

    async def ask() -> list[tuple[int, str]]:
        server = await health.serve("127.0.0.1", port, probe)
        async with server:
            fresh = await asyncio.to_thread(_get, f"http://127.0.0.1:{port}/health")
            elsewhere = await asyncio.to_thread(_get, f"http://127.0.0.1:{port}/etc/passwd")
            os.utime(probe, (time.time() - 120, time.time() - 120))
            stale = await asyncio.to_thread(_get, f"http://127.0.0.1:{port}/health")
            return [fresh, elsewhere, stale]

    assert asyncio.run(ask()) == [(200, "healthy\n"), (404, "only GET /health\n"), (503, "unhealthy\n")]


def test_malformed_health_requests_cost_no_log_lines(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    probe = tmp_path / "health"
    probe.touch()
    port = free_port()

    def abuse() -> None:
        with socket.create_connection(("127.0.0.1", port)) as long_line:
            long_line.sendall(b"GET /" + b"a" * 70 * 1024 + b" HTTP/1.1\r\n\r\n")
            long_line.recv(100)
        reset = socket.create_connection(("127.0.0.1", port))
        reset.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        reset.sendall(b"GET /hea")
        reset.close()  # RST instead of FIN
        with socket.create_connection(("127.0.0.1", port)) as garbage:
            garbage.sendall(b"\xff\xfe\x00\r\n")
            garbage.recv(100)

    async def main() -> tuple[int, str]:
        server = await health.serve("127.0.0.1", port, probe)
        async with server:
            await asyncio.to_thread(abuse)
            return await asyncio.to_thread(_get, f"http://127.0.0.1:{port}/health")

    with caplog.at_level(logging.DEBUG):
        assert asyncio.run(main()) == (200, "healthy\n")
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING or record.exc_info]


def test_a_worker_with_a_health_port_keeps_its_file_fresh(shop: Path, start_worker, tmp_path: Path) -> None:
    probe = tmp_path / "worker-health"
    port = free_port()
    start_worker(shop, HEALTH_PORT=str(port), HEALTH_FILE=str(probe))

    wait_until(probe.exists, timeout=30)

    assert dbtt("healthcheck", "--health-file", str(probe)).returncode == 0
    assert _get(f"http://127.0.0.1:{port}/health") == (200, "healthy\n")


def test_resource_based_tuning_runs_the_project(shop: Path, start_worker) -> None:
    worker = start_worker(
        shop,
        WORKER_TUNER="resource-based",
        WORKER_RESOURCE_TARGET_MEM="0.9",
        WORKER_RESOURCE_ACTIVITY_MAX_SLOTS="8",
        WORKER_MAX_ACTIVITIES_PER_SECOND="500",
    )

    assert output_of(run_and_wait(worker, DbtRunInput(select="+orders"))).success


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("WORKER_RESOURCE_TARGET_MEM", "1.5", "WORKER_RESOURCE_TARGET_MEM: Input should be less than or equal to 1"),
        ("WORKER_MAX_CONCURRENT_ACTIVITIES", "0", "WORKER_MAX_CONCURRENT_ACTIVITIES: Input should be greater than"),
        ("WORKER_TUNER", "magic", "WORKER_TUNER: Input should be 'fixed' or 'resource-based'"),
        ("WORKER_NONSTICKY_TO_STICKY_POLL_RATIO", "2", "WORKER_NONSTICKY_TO_STICKY_POLL_RATIO: Input should be less"),
        ("HEALTH_PORT", "99999", "HEALTH_PORT: Input should be less than or equal to 65535"),
    ],
)
def test_out_of_range_tuning_is_rejected_at_start(shop: Path, variable: str, value: str, message: str) -> None:
    result = dbtt("worker", "--project-dir", str(shop), env={variable: value})

    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_tls_files_that_are_missing_or_do_not_match_are_named(tmp_path: Path) -> None:
    cert_a, _ = self_signed(tmp_path, "a")
    _, key_b = self_signed(tmp_path, "b")

    missing = dbtt("submit", env={"TEMPORAL_TLS_CERT": str(tmp_path / "nope.crt"), "TEMPORAL_TLS_KEY": str(key_b)})
    mismatched = dbtt("submit", env={"TEMPORAL_TLS_CERT": str(cert_a), "TEMPORAL_TLS_KEY": str(key_b)})
    matching = dbtt(
        "submit",
        "--address", f"127.0.0.1:{free_port()}",
        env={"TEMPORAL_TLS_CERT": str(cert_a), "TEMPORAL_TLS_KEY": str(tmp_path / "a.key")},
    )  # fmt: skip

    assert missing.returncode == 2 and f"cannot read TLS file {tmp_path / 'nope.crt'}" in missing.stderr
    assert mismatched.returncode == 2 and "are not a matching PEM certificate and key" in mismatched.stderr
    assert matching.returncode == 3, matching.stderr  # the pair is accepted; only the server is missing


def test_bad_requests_leave_the_worker_serving_others(shop: Path, start_worker) -> None:
    """Each bad request fails alone, with one clear line; a good run on the same worker still succeeds."""
    worker = start_worker(shop)
    env = {"TEMPORAL_ADDRESS": worker.address, "TEMPORAL_TASK_QUEUE": worker.task_queue}
    cases = [
        (["submit", "--target", "nope"], 2, "does not have a target named 'nope'"),
        (["submit", "-s", "+orders", "--exclude", "method_x:y"], 2, "method_x"),
        (["submit", "--project", "other"], 2, "unknown project 'other'; this worker has: shop"),
        (["status", "missing-run"], 2, "no run with workflow id 'missing-run'"),
        (["reset", "missing-run"], 2, "no run with workflow id 'missing-run'"),
    ]
    for args, code, message in cases:
        result = dbtt(*args, env=env)
        assert result.returncode == code, (args, result.stdout, result.stderr)
        assert message in result.stdout + result.stderr, args
        assert "Traceback" not in result.stdout + result.stderr

    assert output_of(run_and_wait(worker, DbtRunInput(select="+orders"))).success


def test_a_jinja_syntax_error_fails_the_run_with_dbts_message(shop: Path, start_worker) -> None:
    (shop / "models" / "marts" / "bad_jinja.sql").write_text("select {{ ref('orders' }}\n")
    worker = start_worker(shop)

    result = dbtt("submit", env={"TEMPORAL_ADDRESS": worker.address, "TEMPORAL_TASK_QUEUE": worker.task_queue})

    assert result.returncode == 2
    assert "bad_jinja" in result.stderr and "Traceback" not in result.stdout + result.stderr

"""DBTT_PAYLOAD_KEY: a run's --env values never reach Temporal's history in clear, and dbtt still reads it."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.client import Client

from dbt_temporal.client.codec import converter_for
from dbt_temporal.client.devserver import free_port, temporal_binary
from dbt_temporal.client.payload_keys import PayloadKeyError, load_keys, parse_keys
from tests.support import BIN, dbtt, table_rows, wait_until

SECRET = "sk-live-7f3a9c1e-do-not-leak"
OTHER_SECRET = "pw-from-a-dotenv-file-2b"
OLD_KEY = base64.b64encode(b"o" * 32).decode()
NEW_KEY = base64.b64encode(b"n" * 32).decode()
TOKEN = "codec-token-1d2e3f"
UI_ORIGIN = "http://localhost:8233"


def _roundtrip(encrypt_with: str, decrypt_with: str) -> bytes:
    async def main() -> bytes:
        sealed = await converter_for(parse_keys(encrypt_with, "test")).encode([{"token": SECRET}])
        [opened] = await converter_for(parse_keys(decrypt_with, "test")).decode(sealed, [dict])
        assert SECRET.encode() not in sealed[0].SerializeToString()
        return json.dumps(opened).encode()

    return asyncio.run(main())


def test_rotation_decrypts_with_any_key_and_encrypts_with_the_newest() -> None:
    assert SECRET.encode() in _roundtrip(OLD_KEY, f"{OLD_KEY},{NEW_KEY}")
    assert SECRET.encode() in _roundtrip(f"old:{OLD_KEY}\nnew:{NEW_KEY}", f"new:{NEW_KEY}")
    with pytest.raises(PayloadKeyError, match="which the configured payload keys do not hold"):
        _roundtrip(NEW_KEY, OLD_KEY)


def test_a_payload_altered_in_the_history_is_refused() -> None:
    async def main() -> None:
        converter = converter_for(parse_keys(NEW_KEY, "test"))
        [sealed] = await converter.encode(["value"])
        tampered = Payload(metadata=sealed.metadata, data=sealed.data[:-1] + bytes([sealed.data[-1] ^ 1]))
        await converter.decode([tampered], [str])

    with pytest.raises(PayloadKeyError, match="it was altered"):
        asyncio.run(main())


@pytest.mark.parametrize(
    ("key", "message"),
    [("c2hvcnQ=", "is not 32 bytes in base64"), ("not base64 at all!", "is not 32 bytes in base64"), (" , ", "no key")],
)
def test_a_bad_key_is_named_with_the_fix(key: str, message: str) -> None:
    with pytest.raises(PayloadKeyError, match=message) as raised:
        load_keys(key, None)
    assert "os.urandom(32)" in str(raised.value) or "no key" in message
    assert key.strip(" ,") == "" or key not in str(raised.value)


def test_env_values_are_encrypted_in_history_and_read_back_by_dbtt(shop: Path, tmp_path: Path, start_worker) -> None:
    (shop / "models" / "marts" / "token_echo.sql").write_text(
        "select '{{ env_var('SHOP_TOKEN', 'none') }}' as token, '{{ env_var('SHOP_OTHER', 'none') }}' as other\n"
    )
    env_file = tmp_path / "run.env"
    env_file.write_text(f'# values for one run\nexport SHOP_OTHER="{OTHER_SECRET}"\n')
    worker = start_worker(shop, DBTT_PAYLOAD_KEY=f"{OLD_KEY},{NEW_KEY}")
    client_env = {
        "TEMPORAL_ADDRESS": worker.address,
        "TEMPORAL_TASK_QUEUE": worker.task_queue,
        "DBTT_PAYLOAD_KEY": f"{OLD_KEY},{NEW_KEY}",
        "SHOP_TOKEN": SECRET,
    }

    submitted = dbtt(
        "submit", "run", "--select", "token_echo", "--env", "SHOP_TOKEN", "--env-file", str(env_file),
        "--workflow-id", "sealed-run", "--output", "json", env=client_env,
    )  # fmt: skip

    assert submitted.returncode == 0, submitted.stderr
    assert json.loads(submitted.stdout)["success"] is True
    shown = subprocess.run(
        [temporal_binary(), "workflow", "show", "-w", "sealed-run", "-o", "json", "--address", worker.address],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    raw_history = _with_base64_decoded(shown.stdout) + _with_base64_decoded(_history_json(worker.address, "sealed-run"))
    for secret in (SECRET, OTHER_SECRET):
        assert secret.encode() not in raw_history
    assert "binary/encrypted" in base64.b64decode(_first_input_encoding(shown.stdout)).decode()

    status = dbtt("status", "sealed-run", "--output", "json", env=client_env)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["success"] is True
    without_key = dbtt("status", "sealed-run", env={**client_env, "DBTT_PAYLOAD_KEY": ""})
    assert without_key.returncode == 2
    assert "payloads are encrypted and no payload key is set" in without_key.stderr
    assert "Traceback" not in without_key.stderr
    worker.stop()  # DuckDB lets one process hold the file
    assert table_rows(shop / "shop.duckdb", "token_echo") == [(SECRET, OTHER_SECRET)]


def _history_json(address: str, workflow_id: str) -> str:
    """The history as any client without the codec sees it: every event."""

    async def main() -> str:
        client = await Client.connect(address)
        return (await client.get_workflow_handle(workflow_id).fetch_history()).to_json()

    return asyncio.run(main())


def _with_base64_decoded(history_json: str) -> bytes:
    """The JSON text plus every string in it decoded from base64, which is how payload data is written."""
    found = [history_json.encode()]

    def walk(value: object) -> None:
        if isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)
        elif isinstance(value, str):
            try:
                found.append(base64.b64decode(value, validate=True))
            except ValueError:
                pass

    walk(json.loads(history_json))
    return b"\n".join(found)


def _first_input_encoding(shown: str) -> str:
    events = json.loads(shown)["events"]
    started = events[0]["workflowExecutionStartedEventAttributes"]
    return started["input"]["payloads"][0]["metadata"]["encoding"]


@pytest.fixture
def codec_server_url() -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [str(BIN / "dbtt"), "codec-server", "--port", str(port), "--ui-origin", UI_ORIGIN],
        env={**os.environ, "DBTT_PAYLOAD_KEY": f"{OLD_KEY},{NEW_KEY}", "CODEC_SERVER_TOKEN": TOKEN},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_until(lambda: _listening(port) or process.poll() is not None, timeout=60)
    assert process.poll() is None, process.stderr.read() if process.stderr else ""
    yield f"http://127.0.0.1:{port}"
    process.terminate()
    process.wait(timeout=10)


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _post(url: str, body: bytes, headers: dict[str, str], method: str = "POST") -> tuple[int, dict, bytes]:
    request = urllib.request.Request(url, data=body, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def test_the_codec_server_decodes_for_the_token_holder_only(codec_server_url: str) -> None:
    async def sealed() -> bytes:
        payloads = await converter_for(parse_keys(NEW_KEY, "test")).encode([{"token": SECRET}])
        return json_format.MessageToJson(Payloads(payloads=payloads)).encode()

    body = asyncio.run(sealed())
    headers = {"Content-Type": "application/json", "X-Namespace": "default", "Origin": UI_ORIGIN}

    with_token = {**headers, "Authorization": f"Bearer {TOKEN}"}
    status, answer_headers, answer = _post(f"{codec_server_url}/decode", body, with_token)
    assert status == 200
    decoded = json_format.Parse(answer, Payloads()).payloads[0]
    assert json.loads(decoded.data) == {"token": SECRET}
    assert answer_headers["Access-Control-Allow-Origin"] == UI_ORIGIN

    refused, _, refusal = _post(f"{codec_server_url}/decode", body, headers)
    assert refused == 401 and SECRET.encode() not in refusal
    wrong, _, _ = _post(f"{codec_server_url}/decode", body, {**headers, "Authorization": "Bearer guess"})
    assert wrong == 401
    preflight, preflight_headers, _ = _post(f"{codec_server_url}/decode", b"", headers, method="OPTIONS")
    assert preflight == 200 and "Authorization" in preflight_headers["Access-Control-Allow-Headers"]

"""How dbtt's payloads travel: pydantic models as JSON, large ones compressed, all encrypted on demand.

Plans and outputs of big projects exceed Temporal's payload limits (warning at
256 KB, failure at 2 MB) as plain JSON; compressed they fit several times over.
Small payloads, memos included, stay plain JSON so the Temporal UI and
`temporal workflow start --input` keep working without a codec server.

With payload keys (DBTT_PAYLOAD_KEY) every payload is then sealed with AES-GCM:
inputs, results, memos and failures' details alike, so `--env` values and vars
are never stored in clear in the history. The Temporal UI then needs
`dbtt codec-server` to show them.
"""

from __future__ import annotations

import dataclasses
import os
import zlib
from collections.abc import Sequence

from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, PayloadCodec

from dbt_temporal.client.payload_keys import PayloadKeyError, PayloadKeys

ENCODING = b"binary/zlib"
ENCRYPTED = b"binary/encrypted"
KEY_ID = "encryption-key-id"
NONCE_BYTES = 12
COMPRESS_ABOVE_BYTES = 128 * 1024


class CompressLargePayloads(PayloadCodec):
    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [_encoded(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return _decompress_large(payloads)


def _decompress_large(payloads: Sequence[Payload]) -> list[Payload]:
    return [_decompressed(p) if p.metadata.get("encoding") == ENCODING else p for p in payloads]


def _encoded(payload: Payload) -> Payload:
    return _compressed(payload) if payload.ByteSize() > COMPRESS_ABOVE_BYTES else payload


def _compressed(payload: Payload) -> Payload:
    return Payload(metadata={"encoding": ENCODING}, data=zlib.compress(payload.SerializeToString(), 6))


def _decompressed(payload: Payload) -> Payload:
    return Payload.FromString(zlib.decompress(payload.data))


def encoded_size(value: object) -> int:
    """Bytes `value` takes on the wire, as the server counts them against its payload limits."""
    return _encoded(pydantic_data_converter.payload_converter.to_payload(value)).ByteSize()


class CompressAndEncrypt(PayloadCodec):
    """Compress large payloads, then seal every payload with the newest key (AES-256-GCM)."""

    def __init__(self, keys: PayloadKeys) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys.keys.items()}
        self._newest = keys.newest

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self._sealed(_encoded(p)) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return _decompress_large([self._opened(p) if p.metadata.get("encoding") == ENCRYPTED else p for p in payloads])

    def _sealed(self, payload: Payload) -> Payload:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[self._newest].encrypt(nonce, payload.SerializeToString(), None)
        return Payload(metadata={"encoding": ENCRYPTED, KEY_ID: self._newest.encode()}, data=nonce + sealed)

    def _opened(self, payload: Payload) -> Payload:
        from cryptography.exceptions import InvalidTag

        key_id = payload.metadata.get(KEY_ID, b"").decode()
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise PayloadKeyError(
                f"a payload is encrypted with key '{key_id}', which the configured payload keys do not hold; "
                "add it to DBTT_PAYLOAD_KEY (keys are comma-separated, the last one encrypts)"
            )
        try:
            return Payload.FromString(cipher.decrypt(payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:], None))
        except InvalidTag:
            raise PayloadKeyError(f"a payload does not open with key '{key_id}': it was altered") from None


class RefuseEncrypted(CompressLargePayloads):
    """No keys here: say so clearly rather than hand ciphertext to the JSON converter."""

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        if any(p.metadata.get("encoding") == ENCRYPTED for p in payloads):
            raise PayloadKeyError(
                "this run's payloads are encrypted and no payload key is set; set DBTT_PAYLOAD_KEY "
                "(or DBTT_PAYLOAD_KEY_FILE) to the key the run was started with"
            )
        return await super().decode(payloads)


def converter_for(keys: PayloadKeys | None) -> DataConverter:
    codec = CompressAndEncrypt(keys) if keys else RefuseEncrypted()
    return dataclasses.replace(pydantic_data_converter, payload_codec=codec)


data_converter: DataConverter = converter_for(None)

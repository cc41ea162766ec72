"""How dbtt's payloads travel: pydantic models as JSON, large ones compressed.

Plans and outputs of big projects exceed Temporal's payload limits (warning at
256 KB, failure at 2 MB) as plain JSON; compressed they fit several times over.
Small payloads, memos included, stay plain JSON so the Temporal UI and
`temporal workflow start --input` keep working without a codec server.
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Sequence

from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, PayloadCodec

ENCODING = b"binary/zlib"
COMPRESS_ABOVE_BYTES = 128 * 1024


class CompressLargePayloads(PayloadCodec):
    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [_encoded(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
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


data_converter: DataConverter = dataclasses.replace(pydantic_data_converter, payload_codec=CompressLargePayloads())

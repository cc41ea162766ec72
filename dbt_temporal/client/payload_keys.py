"""The AES keys that encrypt dbtt's payloads, from DBTT_PAYLOAD_KEY or DBTT_PAYLOAD_KEY_FILE.

A key is 32 random bytes written in base64, optionally named: `NAME:BASE64`. Several keys
(comma- or line-separated) allow rotation: payloads are encrypted with the last one listed and
decrypted with whichever one they name. An unnamed key is named by the start of its SHA-256, so
naming is never needed for rotation to work.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from pathlib import Path

KEY_BYTES = 32
NEW_KEY_HINT = 'make one with: python -c "import base64, os; print(base64.b64encode(os.urandom(32)).decode())"'


class PayloadKeyError(ValueError):
    """A payload key that cannot be used, or a payload no configured key opens."""


class PayloadKeys:
    def __init__(self, keys: dict[str, bytes], newest: str) -> None:
        self.keys = keys
        self.newest = newest

    def __repr__(self) -> str:  # never the key material
        return f"PayloadKeys(ids={list(self.keys)}, newest={self.newest!r})"


def parse_keys(text: str, source: str) -> PayloadKeys:
    entries = [part.strip() for line in text.splitlines() for part in line.split(",")]
    entries = [entry for entry in entries if entry and not entry.startswith("#")]
    if not entries:
        raise PayloadKeyError(f"{source} holds no key; {NEW_KEY_HINT}")
    keys: dict[str, bytes] = {}
    for number, entry in enumerate(entries, start=1):
        name, _, encoded = entry.rpartition(":")
        key = _decoded(encoded, f"{source} key {number}")
        newest = name.strip() or hashlib.sha256(key).hexdigest()[:8]
        keys[newest] = key
    return PayloadKeys(keys, newest)


def _decoded(encoded: str, where: str) -> bytes:
    try:
        standard = encoded.replace("-", "+").replace("_", "/")  # urlsafe base64 too
        key = base64.b64decode(standard + "=" * (-len(standard) % 4), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != KEY_BYTES:
        raise PayloadKeyError(f"{where} is not 32 bytes in base64; {NEW_KEY_HINT}")
    return key


def load_keys(key: str | None, key_file: Path | None) -> PayloadKeys | None:
    """The configured keys, or None when payloads are not to be encrypted."""
    if key and key_file:
        raise PayloadKeyError("set DBTT_PAYLOAD_KEY or DBTT_PAYLOAD_KEY_FILE, not both")
    if key_file is not None:
        try:
            text = key_file.read_text()
        except OSError as err:
            raise PayloadKeyError(f"cannot read DBTT_PAYLOAD_KEY_FILE {key_file}: {err.strerror}") from None
        return parse_keys(text, "DBTT_PAYLOAD_KEY_FILE")
    return parse_keys(key, "DBTT_PAYLOAD_KEY") if key else None

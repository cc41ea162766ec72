"""Connecting to Temporal with the configured address, namespace and credentials."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

from temporalio.client import Client
from temporalio.runtime import Runtime
from temporalio.service import PayloadLimitsConfig, TLSConfig

from dbt_temporal.client.codec import converter_for
from dbt_temporal.client.payload_keys import PayloadKeys, load_keys
from dbt_temporal.config.settings import Settings
from dbt_temporal.contract import MEMO_BYTES_BOUND

CONNECT_TIMEOUT_SECONDS = 10.0


class TemporalUnreachable(ConnectionError):
    pass


class CredentialsError(ValueError):
    pass


def tls_config(settings: Settings) -> TLSConfig | bool:
    if settings.temporal_tls_cert and settings.temporal_tls_key:
        try:
            cert = settings.temporal_tls_cert.read_bytes()
            key = settings.temporal_tls_key.read_bytes()
        except OSError as err:
            raise CredentialsError(f"cannot read TLS file {err.filename}: {err.strerror}") from None
        _check_pair(settings.temporal_tls_cert, settings.temporal_tls_key)
        return TLSConfig(client_cert=cert, client_private_key=key)
    return settings.tls_enabled


def _check_pair(cert: Path, key: Path) -> None:
    """Fail early, and clearly, on a certificate and key that do not belong together."""
    try:
        ssl.create_default_context().load_cert_chain(cert, key)
    except ssl.SSLError as err:
        raise CredentialsError(
            f"TEMPORAL_TLS_CERT {cert} and TEMPORAL_TLS_KEY {key} are not a matching PEM certificate and key "
            f"({err.reason or err})"
        ) from None


def payload_keys(settings: Settings) -> PayloadKeys | None:
    key = settings.dbtt_payload_key.get_secret_value() if settings.dbtt_payload_key else None
    return load_keys(key, settings.dbtt_payload_key_file)


async def connect(settings: Settings, runtime: Runtime | None = None) -> Client:
    data_converter = converter_for(payload_keys(settings))
    try:
        return await asyncio.wait_for(
            Client.connect(
                settings.temporal_address,
                namespace=settings.temporal_namespace,
                api_key=settings.temporal_api_key,
                tls=tls_config(settings),
                data_converter=data_converter,
                runtime=runtime,
                # Temporal warns of memos over 2 KB; dbtt bounds its own (runlog.py) and warns past that bound.
                payload_limits=PayloadLimitsConfig(memo_warn_size=MEMO_BYTES_BOUND),
            ),
            timeout=CONNECT_TIMEOUT_SECONDS,
        )
    except (TimeoutError, RuntimeError, OSError) as err:
        reason = "timed out" if isinstance(err, asyncio.TimeoutError) else str(err)
        raise TemporalUnreachable(unreachable_message(reason, settings)) from None


def unreachable_message(error: str, settings: Settings) -> str:
    """One line a person can act on, instead of the transport's nested error."""
    lowered = error.lower()
    where = f"cannot reach Temporal at {settings.temporal_address}"
    if any(word in lowered for word in ("tls", "certificate", "invalidcontenttype", "corrupt message", "handshake")):
        if settings.tls_enabled:
            return (
                f"{where}: the TLS handshake failed; TEMPORAL_API_KEY or TEMPORAL_TLS_CERT turn TLS on, "
                "so the server must use TLS (Temporal Cloud does; a dev server does not)"
            )
        return f"{where}: the TLS handshake failed; if the server requires TLS, set TEMPORAL_API_KEY or TLS files"
    if "connection refused" in lowered:
        reason = "connection refused"
    elif any(word in lowered for word in ("dns error", "failed to lookup", "name or service not known")):
        reason = "unknown host"
    elif "timed out" in lowered or "deadline" in lowered:
        reason = "timed out"
    else:
        reason = error.splitlines()[0].split(": tonic::", 1)[0] if error else "no answer"
    return f"{where} ({reason}); check TEMPORAL_ADDRESS or start a server (temporal server start-dev)"

"""`dbtt codec-server`: serve the payload keys' decoding to the Temporal UI."""

from __future__ import annotations

import typer

from dbt_temporal.cli import app as cli
from dbt_temporal.client.codec import converter_for
from dbt_temporal.client.connect import payload_keys
from dbt_temporal.client.payload_keys import PayloadKeyError

DEFAULT_UI_ORIGIN = "http://localhost:8233"
UiOriginOption = typer.Option(
    [DEFAULT_UI_ORIGIN], "--ui-origin", metavar="URL", help="Temporal UI origin allowed to call (CORS); repeatable."
)


def codec_server(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (0.0.0.0 for every interface)."),
    port: int = typer.Option(8081, "--port", min=1, max=65535, help="Port to listen on."),
    ui_origin: list[str] = UiOriginOption,
) -> None:
    """Decode encrypted payloads for the Temporal UI's "remote codec endpoint" (needs DBTT_PAYLOAD_KEY)."""
    from dbt_temporal.client.codec_server import codec_server as make_server

    settings = cli.load_settings()
    try:
        keys = payload_keys(settings)
    except PayloadKeyError as err:
        cli.fail(str(err))
    if keys is None:
        cli.fail("DBTT_PAYLOAD_KEY (or DBTT_PAYLOAD_KEY_FILE) is not set: there is nothing to decode")
    token = settings.codec_server_token.get_secret_value() if settings.codec_server_token else None
    cli.serve_until_ctrl_c(
        lambda: make_server(converter_for(keys).payload_codec, host, port, token, ui_origin),  # type: ignore[arg-type]
        f"{host}:{port}",
        f"codec server on http://{host}:{port} (UI origins: {', '.join(ui_origin)}); Ctrl-C stops it",
    )

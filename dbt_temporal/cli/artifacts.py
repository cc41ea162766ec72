"""`dbtt artifacts WORKFLOW_ID`: a run's record in the artifact store (ARTIFACT_STORE).

The store is read directly, so a run's record stays readable after Temporal has
dropped its history; Temporal is asked only to tell an unknown run from one
that kept nothing.
"""

from __future__ import annotations

import asyncio
import functools
import json
import tempfile
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path, PurePosixPath

import typer
from temporalio.service import RPCError, RPCStatusCode

from dbt_temporal import artifact_store
from dbt_temporal.artifact_store import (
    CATALOG,
    COMPILED,
    DOCS_INDEX,
    LOG,
    MANIFEST,
    RUN_RESULTS,
    SOURCES,
    StoreError,
)
from dbt_temporal.cli import app as cli
from dbt_temporal.client.connect import CredentialsError, TemporalUnreachable, connect
from dbt_temporal.config.settings import Settings

SHOWN_FILES = {"log": LOG, "run_results": RUN_RESULTS, "manifest": MANIFEST, "catalog": CATALOG, "sources": SOURCES}
# What dbt's docs site reads: the page, and the two files it loads beside it.
DOCS_SITE = (DOCS_INDEX, MANIFEST, CATALOG)
# `--show docs` serves the site a docs generate run kept, as `dbt docs serve` does.
SHOW_CHOICES = (*SHOWN_FILES, "compiled", "docs")
DOCS_PORT = 8080
DownloadOption = typer.Option(
    None, "--download", metavar="DIR", help="Copy the run's files into DIR (then: dbt retry --state DIR)."
)
ArtifactsOutputOption = typer.Option(
    cli.OutputFormat.text, "--output", "-o", metavar="text|json", help="text, or json (machine-readable)."
)


def artifacts(
    workflow_id: str = typer.Argument(..., metavar="WORKFLOW_ID", help="The run whose record to read."),
    model: str = typer.Argument(None, metavar="MODEL", help="With --show compiled: the node whose SQL to print."),
    show: str = typer.Option(
        None,
        "--show",
        metavar="|".join(SHOW_CHOICES),
        help="Print one file of the run instead of listing them; docs serves its docs site on 127.0.0.1.",
    ),
    download: Path = DownloadOption,
    port: int = typer.Option(
        None, "--port", min=1, max=65535, help=f"With --show docs: the port to serve on (default {DOCS_PORT})."
    ),
    output: cli.OutputFormat = ArtifactsOutputOption,
    address: str = cli.AddressOption,
    namespace: str = cli.NamespaceOption,
) -> None:
    """List a run's artifacts (run_results.json, manifest.json, compiled SQL, log), print or download them."""
    _check_choices(show, model, download)
    if port is not None and show != "docs":
        cli.fail("--port goes with --show docs (it serves the run's docs site)")
    settings = cli.load_settings(temporal_address=address, temporal_namespace=namespace)
    store = settings.artifact_root
    try:
        files = artifact_store.run_files(store, workflow_id)
        if not files:
            cli.fail(_nothing_kept(settings, workflow_id, store))
        if show == "docs":
            _serve_docs(store, workflow_id, files, port or DOCS_PORT)
        elif show is not None:
            _show(store, workflow_id, _shown_name(files, show, model), output)
        elif download is not None:
            _download(store, workflow_id, sorted(files), download, output)
        else:
            _list(store, workflow_id, files, output)
    except StoreError as err:
        cli.fail(str(err))
    raise typer.Exit(cli.EXIT_OK)


def _check_choices(show: str | None, model: str | None, download: Path | None) -> None:
    if show is not None and show not in SHOW_CHOICES:
        cli.fail(f"--show takes one of: {', '.join(SHOW_CHOICES)}; got '{show}'")
    if show is not None and download is not None:
        cli.fail("--show and --download do not go together: choose one")
    if show == "compiled" and not model:
        cli.fail("--show compiled needs the model, e.g. dbtt artifacts WORKFLOW_ID --show compiled orders")
    if model and show != "compiled":
        cli.fail(f"unexpected argument '{model}': only --show compiled takes a model name")


def _shown_name(files: dict[str, int], show: str, model: str | None) -> str:
    if show != "compiled":
        name = SHOWN_FILES[show]
        if name not in files:
            cli.fail(f"the run kept no {name} ({_setting_for(name)})")
        return name
    return _compiled_file(files, model or "")


def _setting_for(name: str) -> str:
    if name in (CATALOG, DOCS_INDEX):
        return "a docs generate run: dbtt submit docs generate"
    if name == SOURCES:
        return "a source freshness run with WRITE_ARTIFACTS on: dbtt submit source freshness"
    return f"its worker had {'WRITE_RUN_LOG' if name == LOG else 'WRITE_ARTIFACTS'} off"


def _serve_docs(store: str, workflow_id: str, files: dict[str, int], port: int) -> None:
    """What `dbt docs serve` does, for a run's kept docs site."""
    missing = [name for name in DOCS_SITE if name not in files]
    if missing:
        cli.fail(f"run '{workflow_id}' kept no docs site ({', '.join(missing)} missing): {_setting_for(CATALOG)}")
    with tempfile.TemporaryDirectory(prefix="dbtt-docs-") as site:
        artifact_store.download(store, workflow_id, list(DOCS_SITE), Path(site))
        handler = functools.partial(_QuietHandler, directory=site)
        cli.serve_until_ctrl_c(
            lambda: ThreadingHTTPServer(("127.0.0.1", port), handler),
            f"127.0.0.1:{port}",
            f"Serving the docs of {workflow_id} at http://127.0.0.1:{port} (Ctrl-C stops)",
        )


class _QuietHandler(SimpleHTTPRequestHandler):
    """The docs site's files, without a log line per request."""

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the standard library's name
        pass


def _compiled_file(files: dict[str, int], model: str) -> str:
    """The compiled file of a node named by its name (orders), unique id (model.shop.orders) or path."""
    wanted = model.rsplit(".", 1)[-1] if model.count(".") >= 2 else model.removesuffix(".sql")
    compiled = [name for name in files if name.startswith(f"{COMPILED}/")]
    if not compiled:
        cli.fail("the run kept no compiled SQL (its worker had WRITE_ARTIFACTS off)")
    found = [name for name in compiled if PurePosixPath(name).stem == wanted or name.endswith(f"/{model}")]
    if not found:
        cli.fail(f"no compiled SQL for '{model}' in this run; list what it kept with: dbtt artifacts WORKFLOW_ID")
    if len(found) > 1:
        cli.fail(f"'{model}' names {len(found)} files: {', '.join(sorted(found))}; give the path")
    return found[0]


def _show(store: str, workflow_id: str, name: str, output: cli.OutputFormat) -> None:
    text = artifact_store.read(store, workflow_id, name).decode()
    if output == cli.OutputFormat.json:
        print(json.dumps({"path": artifact_store.location(store, workflow_id, name), "content": text}))
    else:
        print(text, end="" if text.endswith("\n") else "\n")


def _download(store: str, workflow_id: str, names: list[str], destination: Path, output: cli.OutputFormat) -> None:
    copied = artifact_store.download(store, workflow_id, names, destination)
    if output == cli.OutputFormat.json:
        print(json.dumps([str(path) for path in copied]))
    else:
        print(f"{len(copied)} files of run '{workflow_id}' in {destination}")


def _list(store: str, workflow_id: str, files: dict[str, int], output: cli.OutputFormat) -> None:
    rows = [
        {"name": name, "path": artifact_store.location(store, workflow_id, name), "size": files[name]}
        for name in sorted(files)
    ]
    if output == cli.OutputFormat.json:
        print(json.dumps(rows, indent=2))
        return
    for row in rows:
        print(f"{row['size']:>10}  {row['path']}")


def _nothing_kept(settings: Settings, workflow_id: str, store: str) -> str:
    known = asyncio.run(_run_exists(settings, workflow_id))
    if known is False:
        return f"no run with workflow id '{workflow_id}'; list recent runs with: dbtt status"
    reason = (
        "its worker keeps them with WRITE_ARTIFACTS=true and WRITE_RUN_LOG=true, in its ARTIFACT_STORE"
        if known
        else "is ARTIFACT_STORE the one its worker writes to?"
    )
    return f"run '{workflow_id}' has no artifacts in {store}: {reason}"


async def _run_exists(settings: Settings, workflow_id: str) -> bool | None:
    """Whether Temporal knows the run; None when it cannot be asked."""
    try:
        client = await connect(settings)
        await client.get_workflow_handle(workflow_id).describe()
    except RPCError as err:
        return False if err.status == RPCStatusCode.NOT_FOUND else None
    except (TemporalUnreachable, CredentialsError):
        return None
    return True

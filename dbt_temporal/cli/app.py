"""`dbtt`: run dbt projects as Temporal workflows.

Exit codes: 0 the run succeeded; 1 a node failed or the run was cancelled;
2 bad usage or configuration; 3 the Temporal server is unreachable; 130 Ctrl-C
(the run goes on).
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing.util
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import typer
import yaml
from pydantic import ValidationError
from pydantic_settings import SettingsError
from rich.console import Console
from rich.live import Live
from rich.text import Text
from temporalio.client import Client, WorkflowHandle
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode
from typer.completion import completion_init, get_completion_script

from dbt_temporal.cli import probe
from dbt_temporal.cli.args import join_selection_values
from dbt_temporal.cli.env_overrides import EnvOverrideError, env_overrides, unmaskable_keys
from dbt_temporal.cli.readable_help import DbttTyper
from dbt_temporal.cli.render import LiveView, NodeClock, print_final, runs_table
from dbt_temporal.cli.run_flags import SelectionFlags, takes_run_flags
from dbt_temporal.cli.safe_text import plain, terminal_safe
from dbt_temporal.cli.versions import version_lines
from dbt_temporal.client.connect import CredentialsError, TemporalUnreachable, connect
from dbt_temporal.client.payload_keys import PayloadKeyError
from dbt_temporal.client.runs import (
    USAGE_FAILURES,
    ResetError,
    RunView,
    fetch_view,
    is_listing,
    list_runs,
    new_workflow_id,
    prints_output,
    rerun_failed,
    reset_from_start,
    start_run,
    ui_link,
    worker_polls,
)
from dbt_temporal.config.project_config import LifecycleHooks, validation_message
from dbt_temporal.config.projects import ProjectConfigError, discover_projects
from dbt_temporal.config.settings import Settings, WorkerSettings
from dbt_temporal.contract import (
    COMMANDS,
    RUN_OPERATION,
    STATUS_ATTRIBUTE,
    BadRunInput,
    DbtRunInput,
    DbtRunOutput,
    check_resource_types,
    check_run_input,
    check_selection,
)

if TYPE_CHECKING:
    from dbt_temporal.worker.project_sources import ProjectSources

EXIT_OK, EXIT_RUN_FAILED, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
POLL_SECONDS = 0.5
# While a run waits, whether any worker polls its task queue: first asked after a few seconds
# (a worker started together with the run needs them to poll), then every ten.
IDLE_QUEUE_FIRST_CHECK_SECONDS = 5.0
IDLE_QUEUE_CHECK_SECONDS = 10.0
T = TypeVar("T")
S = TypeVar("S", bound=Settings)


app = DbttTyper(
    name="dbtt",
    help=__doc__,
    no_args_is_help=True,
    # Our own --show-completion (below) takes the shell as its argument; typer's ignores one.
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
# Off a terminal (CI logs) rich would wrap at 80 columns; logs read better unwrapped.
console = Console(width=None if sys.stdout.isatty() else 200)
errors = Console(stderr=True, width=None if sys.stderr.isatty() else 200)


class RunStatusFilter(StrEnum):
    running = "running"
    success = "success"
    failed = "failed"
    skipped = "skipped"
    cancelled = "cancelled"


StatusFilterOption = typer.Option(None, "--status", help="List only runs with this DbtStatus.")


class OutputFormat(StrEnum):
    text = "text"
    json = "json"


def _env_help(field: str, text: str | None = None) -> str:
    description = text or Settings.model_fields[field].description or ""
    return f"{description} [env: {Settings.env_name(field)}]"


# Options shared by every subcommand that talks to Temporal or loads projects.
AddressOption = typer.Option(None, "--address", metavar="HOST:PORT", help=_env_help("temporal_address"))
NamespaceOption = typer.Option(None, "--namespace", metavar="NAME", help=_env_help("temporal_namespace"))
TaskQueueOption = typer.Option(None, "--task-queue", metavar="NAME", help=_env_help("temporal_task_queue"))
ProjectDirOption = typer.Option(None, "--project-dir", metavar="DIR", help=_env_help("dbt_project_dir"))
ProfilesDirOption = typer.Option(None, "--profiles-dir", metavar="DIR", help=_env_help("dbt_profiles_dir"))
OutputOption = typer.Option(
    OutputFormat.text, "--output", "-o", metavar="text|json", help="text (live view) or json (machine-readable only)."
)


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    # The message is printed as it is: paths and dbt errors may hold rich markup like [/x].
    errors.print(Text.assemble(("error:", "bold red"), " ", terminal_safe(message)), highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def say(message: str, label: str = "", style: str = "") -> None:
    """A line for people (never for scripts): always on stderr, printed literally."""
    line = Text.assemble((label, style), " ", terminal_safe(message)) if label else plain(message)
    errors.print(line, highlight=False, soft_wrap=True)


def warn(message: str) -> None:
    say(message, "warning:", "bold yellow")


def load_settings(model: type[S] = Settings, **overrides: Any) -> S:  # type: ignore[assignment]
    """Environment variables, with the flags the user gave on top."""
    try:
        return model(**{key: value for key, value in overrides.items() if value is not None})
    except ValidationError as err:
        first = err.errors()[0]
        where = Settings.env_name(str(first["loc"][0])) + ": " if first["loc"] else ""
        message = str(first["msg"]).removeprefix("Value error, ")
        fail(f"{where}{message}")
    except SettingsError as err:
        fail(str(err).splitlines()[0])


def run_async(coroutine: Awaitable[T]) -> T:
    """Run a coroutine, turning connection and credential problems into one-line errors."""
    try:
        return asyncio.run(coroutine)  # type: ignore[arg-type]
    except TemporalUnreachable as err:
        fail(str(err), EXIT_UNREACHABLE)
    except (CredentialsError, PayloadKeyError) as err:
        fail(str(err))
    except WorkflowAlreadyStartedError as err:
        fail(f"a run with workflow id '{err.workflow_id}' already exists; choose another --workflow-id")
    except RPCError as err:
        if err.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED):
            fail(
                f"lost the Temporal server ({err.message}); the run goes on: check it with dbtt status",
                EXIT_UNREACHABLE,
            )
        fail(f"Temporal refused the request: {err.message}", EXIT_RUN_FAILED)


def parse_vars(raw: str | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        parsed = yaml.safe_load(raw)
    except yaml.YAMLError:
        parsed = None
    if not isinstance(parsed, dict):
        fail(f"--vars must be a YAML or JSON mapping, like '{{key: value}}'; got {raw!r}")
    return parsed


def parse_env(pairs: list[str], env_file: Path | None) -> dict[str, str] | None:
    try:
        env = env_overrides(pairs, env_file)
    except EnvOverrideError as err:
        fail(str(err))
    for key in unmaskable_keys(env):
        warn(f"the value of {key} is part of words the run log prints, so it is not masked there; use a rarer value")
    return env


def exit_code(view: RunView) -> int:
    if view.output is not None and view.output.success:
        return EXIT_OK
    if view.error_type in USAGE_FAILURES:
        return EXIT_USAGE
    return EXIT_RUN_FAILED


class IdleQueueWarning:
    """Warns once, on stderr, while a run waits on a task queue that no worker polls."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self._next_check = asyncio.get_running_loop().time() + IDLE_QUEUE_FIRST_CHECK_SECONDS
        self._warned = False

    async def check(self, view: RunView) -> None:
        now = asyncio.get_running_loop().time()
        if self._warned or not view.running or not view.task_queue or now < self._next_check:
            return
        self._next_check = now + IDLE_QUEUE_CHECK_SECONDS
        if not await worker_polls(self._client, view.task_queue):
            self._warned = True
            warn(
                f"no worker polls task queue '{view.task_queue}'; run {view.workflow_id} waits until one does "
                f"(start one with: dbtt worker --task-queue {view.task_queue})"
            )


async def watch(client: Client, handle: WorkflowHandle, output: OutputFormat, follow: bool = True) -> RunView:
    """Follow a run to its end (or show it once), rendering live on a terminal.

    A listing run (`ls`) prints its log on stderr: its stdout is the list of nodes.
    """
    live_view = LiveView()
    idle = IdleQueueWarning(client)
    view = await fetch_view(client, handle)
    while follow and view.running and not view.command:
        # The run has not taken its first step: until it says its command, how to show it is unknown.
        await idle.check(view)
        await asyncio.sleep(POLL_SECONDS)
        view = await fetch_view(client, handle)
    if not follow:
        if output == OutputFormat.text and not console.is_terminal:
            _stream_log(view, 0)
        return view
    if (
        output == OutputFormat.text
        and console.is_terminal
        and not is_listing(view.command)
        and not prints_output(view.command)
    ):
        with Live(live_view.render(view), console=console, refresh_per_second=8, transient=True) as live:
            while view.running:
                await idle.check(view)
                await asyncio.sleep(POLL_SECONDS)
                view = await fetch_view(client, handle)
                live.update(live_view.render(view))
        return view
    streaming = output == OutputFormat.text
    printed = _stream_log(view, 0) if streaming else 0
    while view.running:
        await idle.check(view)
        await asyncio.sleep(POLL_SECONDS)
        view = await fetch_view(client, handle)
        printed = _stream_log(view, printed) if streaming else 0
    return view


def _stream_log(view: RunView, printed: int) -> int:
    """Print the run log lines not printed yet; the memo holds only a tail, so count from its start.

    Asked of each view: a run watched from its first moment may not have said its command yet.
    """
    stream = sys.stderr if is_listing(view.command) else sys.stdout
    lines = view.log
    omitted = 0
    if lines and lines[0].startswith("... ") and lines[0].endswith(" earlier lines omitted"):
        omitted = int(lines[0].split()[1])
        lines = lines[1:]
    if omitted > printed:
        print(f"... {omitted - printed} earlier lines not shown; the whole log: dbtt artifacts {view.workflow_id}",
              file=stream, flush=True)  # fmt: skip
    for number, line in enumerate(lines, start=omitted):
        if number >= printed:
            print(terminal_safe(line), file=stream, flush=True)
    return max(printed, omitted + len(lines))


def print_report(view: RunView) -> None:
    """The one JSON shape of a run (docs/run-output.schema.json), whatever its outcome."""
    print(view.report().model_dump_json(indent=2))


def report(view: RunView, output: OutputFormat, code: int | None = None) -> NoReturn:
    """Print a run's final state (stdout: what scripts read; stderr: the rest) and exit with its code."""
    if view.matched_nothing:
        warn(f"the selection {view.selection()} matches no enabled node; nothing ran")
    if output == OutputFormat.json:
        print_report(view)
    elif is_listing(view.command) and view.output is not None:
        for unique_id in view.output.selected:
            print(unique_id)
    else:
        print_final(console, view, NodeClock(), with_table=console.is_terminal and not prints_output(view.command))
    if view.status == "cancelled":
        say(f"run {view.workflow_id} was cancelled")
    elif view.error and not (view.output and view.output.summary):
        say(view.error, "error:", "bold red")
    raise typer.Exit(exit_code(view) if code is None else code)


def run_watching(coroutine: Awaitable[T], started: list[str]) -> T:
    """`run_async` for commands that follow a run: Ctrl-C stops watching, never the run."""
    try:
        return run_async(coroutine)
    except KeyboardInterrupt:
        if started:
            run_id = started[-1]
            say(
                f"stopped watching; run {run_id} goes on. Follow it: dbtt status {run_id} --watch; "
                f"cancel it: dbtt cancel {run_id}"
            )
        else:
            say("interrupted")
        raise typer.Exit(EXIT_INTERRUPTED) from None


def serve_until_ctrl_c(start: Callable[[], Any], address: str, announce: str) -> None:
    """Start a local HTTP server, say where it listens, and serve until Ctrl-C; a busy port is one line."""
    try:
        server = start()
    except OSError as err:
        fail(f"cannot listen on {address}: {err.strerror}; choose another --port")
    say(announce)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def say_started(settings: Settings, run_id: str) -> None:
    link = ui_link(settings, run_id)
    say(f"Started {run_id}" + (f"  {link}" if link else ""))


@app.command()
def worker(
    address: str = AddressOption,
    namespace: str = NamespaceOption,
    task_queue: str = TaskQueueOption,
    project_dir: Path = ProjectDirOption,
    profiles_dir: Path = ProfilesDirOption,
    target: str = typer.Option(None, "--target", help=_env_help("dbt_target")),
    log_format: str = typer.Option(
        None, "--log-format", metavar="text|json", help="Worker log lines: text or JSON. [env: WORKER_LOG_FORMAT]"
    ),
) -> None:
    """Run a worker for the configured dbt projects until Ctrl-C or SIGTERM."""
    from dbt_temporal.worker.log_setup import configure, worker_runtime
    from dbt_temporal.worker.main import run_worker

    settings = load_settings(
        WorkerSettings,
        temporal_address=address,
        temporal_namespace=namespace,
        temporal_task_queue=task_queue,
        dbt_project_dir=project_dir,
        dbt_profiles_dir=profiles_dir,
        dbt_target=target,
        worker_log_format=log_format,
    )
    configure(settings.worker_log_format)
    settings, sources = _fetch_projects(settings)
    _check_projects(settings)
    if settings.dbtt_payload_key is None and settings.dbtt_payload_key_file is None:
        logging.getLogger("dbtt.worker").warning(
            "DBTT_PAYLOAD_KEY is not set: --env values and vars of runs are stored in clear in Temporal's "
            "history; set the same key on workers and clients to encrypt them"
        )

    async def main() -> None:
        client = await connect(settings, worker_runtime())
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run_worker(client, settings, stop, sources)

    run_async(main())


def _fetch_projects(settings: WorkerSettings) -> tuple[WorkerSettings, ProjectSources | None]:
    """DBT_PROJECT_DIRS entries in git or object storage, fetched: the settings then name the local copies."""
    from dbt_temporal.worker.project_sources import SourceError, fetch_sources

    if not settings.dbt_project_dirs:
        return settings, None
    entries = [part.strip() for part in settings.dbt_project_dirs.split(",") if part.strip()]
    try:
        directories, sources = fetch_sources(entries, settings.work_root, settings.project_refresh == "refresh")
    except SourceError as err:
        fail(str(err))
    local = ",".join(str(directory) for directory in directories)
    return settings.model_copy(update={"dbt_project_dirs": local}), sources


def _local_project(settings: Settings) -> str | None:
    """The one project a worker started here would serve, to name a run after it (None when unsure)."""
    try:
        names = list(discover_projects(settings))
    except (ProjectConfigError, OSError):
        return None
    return names[0] if len(names) == 1 else None


def _check_projects(settings: Settings) -> None:
    try:
        discover_projects(settings)
    except ProjectConfigError as err:
        fail(str(err))


def run_input(
    command: str,
    select: str | None,
    exclude: str | None,
    vars_: str | None,
    target: str | None,
    full_refresh: bool,
    fail_fast: bool,
    env: list[str],
    env_file: Path | None,
    project: str | None,
    threads: int | None,
    selection: SelectionFlags | None = None,
) -> DbtRunInput:
    command, macro = _command_and_macro(command)
    selection = selection or SelectionFlags()
    if (selection.resource_types or selection.exclude_resource_types) and command not in RESOURCE_TYPE_COMMANDS:
        fail(f"--resource-type and --exclude-resource-type go with {', '.join(RESOURCE_TYPE_COMMANDS)}, as in dbt")
    run = DbtRunInput(
        project=project,
        command=command,
        select=select,
        exclude=exclude,
        selector=selection.selector,
        resource_types=selection.resource_types or None,
        exclude_resource_types=selection.exclude_resource_types or None,
        vars=parse_vars(vars_),
        target=target,
        full_refresh=full_refresh,
        fail_fast=fail_fast,
        empty=selection.empty,
        store_failures=selection.store_failures,
        warn_error=selection.warn_error,
        warn_error_options=_mapping("--warn-error-options", selection.warn_error_options),
        indirect_selection=selection.indirect_selection,
        state=selection.state,
        defer=selection.defer,
        macro=macro,
        args=_mapping("--args", selection.args),
        inline=selection.inline,
        limit=selection.limit,
        env=parse_env(env, env_file),
        threads=threads,
    )
    try:
        check_selection("--select", select)
        check_selection("--exclude", exclude)
        check_selection("--selector", selection.selector)
        check_resource_types("--resource-type", selection.resource_types)
        check_resource_types("--exclude-resource-type", selection.exclude_resource_types)
        check_run_input(run)
    except BadRunInput as err:
        fail(str(err))
    return run


def _command_and_macro(command: str) -> tuple[str, str | None]:
    """`run-operation MACRO` carries its macro; every other command is its words alone."""
    first, _, rest = command.partition(" ")
    if first == RUN_OPERATION:
        return RUN_OPERATION, rest or None
    if command not in COMMANDS:
        fail(f"unknown dbt command '{command}'; use one of: {', '.join(COMMANDS)}")
    return command, None


def _mapping(flag: str, raw: str | None) -> dict[str, Any] | None:
    """A flag that takes a YAML or JSON mapping, as dbt's --args and --warn-error-options do."""
    if raw is None:
        return None
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        value = None
    if not isinstance(value, dict):
        fail(f"{flag} takes a YAML or JSON mapping, e.g. '{{key: value}}'; got '{raw}'")
    return value


# dbt's commands that take --resource-type / --exclude-resource-type.
RESOURCE_TYPE_COMMANDS = ("build", "ls", "list")


def parse_hooks(raw: str | None, no_hooks: bool) -> dict[str, Any] | None:
    """--hooks as a file or inline YAML/JSON (the `hooks:` mapping of dbt_temporal.yml); --no-hooks as none."""
    if no_hooks and raw is not None:
        fail("--hooks and --no-hooks contradict each other; give one of them")
    if no_hooks:
        return {}
    if raw is None:
        return None
    path = Path(raw)
    try:
        data = yaml.safe_load(path.read_text() if path.is_file() else raw)
    except (OSError, yaml.YAMLError):
        data = None
    if isinstance(data, dict) and set(data) == {"hooks"}:
        data = data["hooks"]
    if not isinstance(data, dict):
        fail("--hooks takes a file or inline YAML/JSON with pre_run, on_success and on_failure lists")
    try:
        LifecycleHooks.model_validate(data)
    except ValidationError as err:
        fail(f"--hooks: {validation_message(err)}")
    return data


def _complete_command(ctx: typer.Context, incomplete: str) -> list[str]:
    """Word by word: `s<Tab>` offers seed, snapshot and source; `source <Tab>` offers freshness."""
    typed = list(ctx.params.get("command") or [])
    offered = []
    for command in COMMANDS:
        words = command.split()
        if words[: len(typed)] == typed and len(words) > len(typed) and words[len(typed)].startswith(incomplete):
            offered.append(words[len(typed)])
    return list(dict.fromkeys(offered))


CommandArgument = typer.Argument(
    None,
    metavar="COMMAND",
    autocompletion=_complete_command,
    show_default=False,
    help=f"dbt command (default build): {', '.join(COMMANDS)}.",
)


def command_of(words: list[str] | None) -> str:
    """The dbt command as typed, one word or two (`source freshness`)."""
    return " ".join(words) if words else "build"


SelectOption = typer.Option(
    None, "--select", "-s", metavar="SELECTOR", help="dbt node selection, as in dbt (space-separated union)."
)
ExcludeOption = typer.Option(None, "--exclude", metavar="SELECTOR", help="dbt nodes to exclude, as in dbt.")
VarsOption = typer.Option(None, "--vars", metavar="YAML", help="dbt vars as a YAML or JSON mapping.")
TargetOption = typer.Option(None, "--target", "-t", help="Profile target for this run.")
FullRefreshOption = typer.Option(False, "--full-refresh", help="Rebuild incremental models from scratch.")
FailFastOption = typer.Option(False, "--fail-fast", "-x", help="Stop the run at the first failure.")
EnvOption = typer.Option(
    [],
    "--env",
    metavar="KEY[=VALUE]",
    help="Override env_var(KEY) for this run; repeatable. KEY alone takes the value from your environment, "
    "which keeps it off the command line. Values are masked in logs and output, but stored in clear in the "
    "run's Temporal history unless DBTT_PAYLOAD_KEY is set.",
)
EnvFileOption = typer.Option(
    None, "--env-file", metavar="FILE", help="A dotenv file of KEY=VALUE overrides, as --env (which wins)."
)


def _complete_project(incomplete: str) -> list[str]:
    """The projects a worker started here would load (DBT_PROJECT_DIR(S), DBT_PROJECTS_DIR or the cwd)."""
    try:
        names = discover_projects(Settings())
    except (ProjectConfigError, ValidationError):
        return []
    return [name for name in names if name.startswith(incomplete)]


ProjectOption = typer.Option(
    None,
    "--project",
    metavar="NAME",
    autocompletion=_complete_project,
    help="Project name (required when the worker has several).",
)
ThreadsOption = typer.Option(
    None, "--threads", min=1, metavar="N", help="Nodes running at once (default: the profile's threads)."
)


@app.command()
@takes_run_flags
def submit(
    command: list[str] = CommandArgument,
    select: str = SelectOption,
    exclude: str = ExcludeOption,
    vars_: str = VarsOption,
    target: str = TargetOption,
    full_refresh: bool = FullRefreshOption,
    fail_fast: bool = FailFastOption,
    env: list[str] = EnvOption,
    env_file: Path = EnvFileOption,
    project: str = ProjectOption,
    threads: int = ThreadsOption,
    flags: SelectionFlags = None,  # type: ignore[assignment]  - given by takes_run_flags
    hooks: str = typer.Option(
        None,
        "--hooks",
        metavar="FILE|JSON",
        help="Lifecycle hooks for this run (pre_run, on_success, on_failure), replacing dbt_temporal.yml's.",
    ),
    no_hooks: bool = typer.Option(False, "--no-hooks", help="Run no lifecycle hooks, dbt_temporal.yml's included."),
    workflow_id: str = typer.Option(None, "--workflow-id", help="Workflow id (default: a readable generated one)."),
    wait: bool = typer.Option(True, "--wait/--no-wait", help="Watch the run until it ends."),
    output: OutputFormat = OutputOption,
    address: str = AddressOption,
    namespace: str = NamespaceOption,
    task_queue: str = TaskQueueOption,
) -> None:
    """Submit a dbt command as a workflow and watch it.

    Exit codes: 0 success, 1 a node failed, 2 usage or configuration error, 3 Temporal unreachable.
    stdout carries only what scripts read: the run log, the JSON (--output json), or with --no-wait
    the workflow id alone.
    """
    settings = load_settings(temporal_address=address, temporal_namespace=namespace, temporal_task_queue=task_queue)
    run = run_input(
        command_of(command), select, exclude, vars_, target, full_refresh, fail_fast, env, env_file, project, threads,
        flags,
    )  # fmt: skip
    run.hooks = parse_hooks(hooks, no_hooks)
    run_id = workflow_id or new_workflow_id(run, _local_project(settings))
    started: list[str] = []

    async def main() -> RunView:
        client = await connect(settings)
        handle = await start_run(client, settings, run, run_id)
        started.append(run_id)
        if output == OutputFormat.text:
            say_started(settings, run_id)
        return await watch(client, handle, output) if wait else await fetch_view(client, handle)

    view = run_watching(main(), started)
    if not wait:
        _print_started(view, output)
    report(view, output)


def _print_started(view: RunView, output: OutputFormat) -> NoReturn:
    """What --no-wait prints: the workflow id alone, or the run's JSON as it is now."""
    if output == OutputFormat.json:
        print_report(view)
    else:
        print(view.workflow_id)
    raise typer.Exit(EXIT_OK)


GraphFileOption = typer.Option(
    None, "--graph-file", metavar="FILE", help="Write the DAG to FILE: .mmd (Mermaid), .svg or .html."
)


@app.command()
def status(
    workflow_id: str = typer.Argument(None, help="The run to show; omit to list recent runs."),
    watch_: bool = typer.Option(False, "--watch", "-w", help="Follow the run until it ends."),
    cancel_: bool = typer.Option(False, "--cancel", help="Cancel the run, then follow it to its end."),
    project: str = typer.Option(None, "--project", metavar="NAME", help="List only runs of this project."),
    status_: RunStatusFilter = StatusFilterOption,
    target: str = typer.Option(None, "--target", metavar="TARGET", help="List only runs for this target."),
    output: OutputFormat = OutputOption,
    graph: bool = typer.Option(False, "--graph", help="Draw the run's DAG: status and time per node, critical path."),
    graph_file: Path = GraphFileOption,
    address: str = AddressOption,
    namespace: str = NamespaceOption,
) -> None:
    """Show a run (running or finished), or list recent runs (filtered by the runs' search attributes)."""
    settings = load_settings(temporal_address=address, temporal_namespace=namespace)
    if cancel_ and workflow_id is None:
        fail("--cancel needs the workflow id of the run to cancel")
    if graph or graph_file:
        _show_graph(settings, workflow_id, graph_file)
    filters = {"DbtProject": project, STATUS_ATTRIBUTE: status_.value if status_ else None, "DbtTarget": target}
    if workflow_id is not None and any(filters.values()):
        fail("--project, --status and --target filter the list of runs; give them without a workflow id")
    if cancel_:
        _cancel(settings, workflow_id, output)
    started = [workflow_id] if workflow_id else []

    async def main() -> RunView | list[RunView]:
        client = await connect(settings)
        if workflow_id is None:
            return await list_runs(client, filters=filters)
        return await _watch_existing(client, workflow_id, output, watch_)

    result = run_watching(main(), started)
    if isinstance(result, list):
        if output == OutputFormat.json:
            print("[" + ",\n".join(view.report().model_dump_json() for view in result) + "]")
        else:
            console.print(runs_table(result))
        raise typer.Exit(EXIT_OK)
    if result.running:
        # Shown as it is now, without following: not an outcome yet.
        if output == OutputFormat.json:
            print_report(result)
        else:
            print_final(console, result, NodeClock(), with_table=console.is_terminal)
        raise typer.Exit(EXIT_OK)
    report(result, output)


def _show_graph(settings: Settings, workflow_id: str | None, graph_file: Path | None) -> NoReturn:
    from dbt_temporal.cli.render import graph_summary
    from dbt_temporal.client.run_graph import GRAPH_SUFFIXES, build_graph, graph_file_text, plan_of

    if workflow_id is None:
        fail("--graph and --graph-file draw one run: give its workflow id")
    if graph_file is not None and graph_file.suffix not in GRAPH_SUFFIXES:
        fail(f"--graph-file writes {', '.join(GRAPH_SUFFIXES)}; got '{graph_file.name}'")

    async def main() -> tuple[RunView, Any]:
        client = await connect(settings)
        handle = client.get_workflow_handle(workflow_id, result_type=DbtRunOutput)
        try:
            return await fetch_view(client, handle), await plan_of(client, workflow_id)
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                fail(f"no run with workflow id '{workflow_id}'; list recent runs with: dbtt status")
            raise

    view, plan = run_async(main())
    if plan is None:
        fail(f"run {workflow_id} has no plan yet (or failed before planning): nothing to draw")
    drawn = build_graph(plan, view.output.node_results if view.output else [], view.node_status)
    if graph_file is not None:
        graph_file.write_text(graph_file_text(drawn, graph_file.suffix, f"dbt run {workflow_id}"))
        say(f"wrote {graph_file} ({len(drawn.nodes)} nodes)")
    else:
        for part in graph_summary(drawn, workflow_id):
            console.print(part)
    raise typer.Exit(EXIT_OK)


async def _watch_existing(client: Client, workflow_id: str, output: OutputFormat, follow: bool) -> RunView:
    handle = client.get_workflow_handle(workflow_id, result_type=DbtRunOutput)
    try:
        return await watch(client, handle, output, follow=follow)
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            fail(f"no run with workflow id '{workflow_id}'; list recent runs with: dbtt status")
        raise


@app.command()
@takes_run_flags
def dev(
    command: list[str] = CommandArgument,
    select: str = SelectOption,
    exclude: str = ExcludeOption,
    vars_: str = VarsOption,
    target: str = TargetOption,
    full_refresh: bool = FullRefreshOption,
    fail_fast: bool = FailFastOption,
    env: list[str] = EnvOption,
    env_file: Path = EnvFileOption,
    project: str = ProjectOption,
    threads: int = ThreadsOption,
    flags: SelectionFlags = None,  # type: ignore[assignment]  - given by takes_run_flags
    project_dir: Path = ProjectDirOption,
    profiles_dir: Path = ProfilesDirOption,
    output: OutputFormat = OutputOption,
) -> None:
    """All in one: a local Temporal dev server, a worker, and one run watched live; then all stops.

    It takes every flag `dbtt submit` takes for the run.
    """
    from dbt_temporal.client.devserver import DevServer, DevServerError
    from dbt_temporal.worker.main import run_worker

    settings = load_settings(WorkerSettings, dbt_project_dir=project_dir, dbt_profiles_dir=profiles_dir)
    settings, sources = _fetch_projects(settings)
    _check_projects(settings)
    run = run_input(
        command_of(command), select, exclude, vars_, target, full_refresh, fail_fast, env, env_file, project, threads,
        flags,
    )  # fmt: skip
    logging.basicConfig(level=logging.WARNING)

    async def main(server: DevServer) -> RunView:
        local = settings.model_copy(update={"temporal_address": server.address, "temporal_ui_url": server.ui_url})
        if "worker_graceful_shutdown_secs" not in settings.model_fields_set:
            # The dev server and its runs end with this command: nothing is gained by letting nodes finish.
            local.worker_graceful_shutdown_secs = 0
        client = await connect(local)
        stop = asyncio.Event()
        worker_task = asyncio.create_task(run_worker(client, local, stop, sources))
        try:
            run_id = new_workflow_id(run, _local_project(settings))
            handle = await start_run(client, local, run, run_id)
            if output == OutputFormat.text:
                say_started(local, run_id)
            watching = asyncio.create_task(watch(client, handle, output))
            # A worker that dies must end the command, not leave it watching forever.
            await asyncio.wait({watching, worker_task}, return_when=asyncio.FIRST_COMPLETED)
            if not watching.done():
                watching.cancel()
                reason = worker_task.exception() if not worker_task.cancelled() else None
                fail(f"the worker stopped before the run ended: {reason or 'no reason given'}", EXIT_RUN_FAILED)
            return watching.result()
        finally:
            stop.set()
            if not worker_task.done():
                await worker_task

    try:
        with DevServer() as server:
            view = run_async(main(server))
    except DevServerError as err:
        fail(str(err))
    report(view, output)


@app.command()
def cancel(
    workflow_id: str = typer.Argument(..., help="The run to cancel."),
    output: OutputFormat = OutputOption,
    address: str = AddressOption,
    namespace: str = NamespaceOption,
) -> None:
    """Cancel a run: running nodes (and their warehouse queries) stop, the rest are marked cancelled.

    Exit codes: 0 the run was cancelled (or will be, when a worker picks it up), 1 it ended
    otherwise before the cancellation reached it, 2 it had already ended or does not exist.
    """
    _cancel(load_settings(temporal_address=address, temporal_namespace=namespace), workflow_id, output)


def _cancel(settings: Settings, workflow_id: str, output: OutputFormat) -> NoReturn:
    """Request the cancellation, then follow the run to its end while a worker serves it."""

    async def main() -> RunView:
        client = await connect(settings)
        handle = client.get_workflow_handle(workflow_id, result_type=DbtRunOutput)
        try:
            view = await fetch_view(client, handle)
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                fail(f"no run with workflow id '{workflow_id}'; list recent runs with: dbtt status")
            raise
        if not view.running:
            fail(f"run {workflow_id} already ended ({view.status}); there is nothing to cancel")
        await handle.cancel()
        if not await worker_polls(client, view.task_queue or ""):
            say(
                f"cancellation of {workflow_id} requested; no worker polls task queue '{view.task_queue}', "
                "so the run stops when a worker picks it up"
            )
            return view
        say(f"cancellation of {workflow_id} requested; waiting for its running nodes to stop")
        return await watch(client, handle, output)

    view = run_watching(main(), [workflow_id])
    if view.running:
        if output == OutputFormat.json:
            print_report(view)
        raise typer.Exit(EXIT_OK)
    report(view, output, code=EXIT_OK if view.status == "cancelled" else EXIT_RUN_FAILED)


@app.command()
def reset(
    workflow_id: str = typer.Argument(..., help="The finished or failed run to run again."),
    failed_only: bool = typer.Option(
        True,
        "--failed-only/--from-start",
        help="--failed-only (default): a new run of just the nodes that errored, were skipped or cancelled, "
        "like `dbt retry`. --from-start: Temporal's reset of the run to its first workflow task.",
    ),
    wait: bool = typer.Option(True, "--wait/--no-wait", help="Watch the new run until it ends."),
    output: OutputFormat = OutputOption,
    address: str = AddressOption,
    namespace: str = NamespaceOption,
) -> None:
    """Run a finished run again, on its own task queue: only what failed (default), or all of it from the start."""
    settings = load_settings(temporal_address=address, temporal_namespace=namespace)
    started: list[str] = []

    async def main() -> RunView:
        client = await connect(settings)
        try:
            if failed_only:
                handle = await rerun_failed(client, workflow_id)
            else:
                handle = await reset_from_start(client, workflow_id)
        except ResetError as err:
            fail(str(err))
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                fail(f"no run with workflow id '{workflow_id}'; list recent runs with: dbtt status")
            fail(f"Temporal refused the reset: {err.message}")
        started.append(handle.id)
        if output == OutputFormat.text:
            say_started(settings, handle.id)
        return await watch(client, handle, output) if wait else await fetch_view(client, handle)

    view = run_watching(main(), started)
    if not wait:
        _print_started(view, output)
    report(view, output)


@app.command()
def retry(
    workflow_id: str = typer.Argument(..., help="The run whose failed, skipped or cancelled nodes to run again."),
    wait: bool = typer.Option(True, "--wait/--no-wait", help="Watch the new run until it ends."),
    output: OutputFormat = OutputOption,
    address: str = AddressOption,
    namespace: str = NamespaceOption,
) -> None:
    """dbt's `retry`, on a dbtt run: a new run of just the nodes that errored, were skipped or cancelled.

    The same as `dbtt reset WORKFLOW_ID`.
    """
    reset(workflow_id, True, wait, output, address, namespace)


@app.command(
    help=probe.HELP,
    add_help_option=False,  # -h and --help reach the probe's own parser
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
)
def healthcheck(ctx: typer.Context) -> None:
    probe.run(ctx.args)


# Its own module, which reads the helpers above through this one when it runs.
from dbt_temporal.cli.artifacts import artifacts  # noqa: E402
from dbt_temporal.cli.codec_server import codec_server  # noqa: E402
from dbt_temporal.cli.config_view import config  # noqa: E402
from dbt_temporal.cli.schedule import schedule_app  # noqa: E402

app.command()(artifacts)
app.command("codec-server")(codec_server)
app.command()(config)
app.add_typer(schedule_app)


COMPLETION_SHELLS = ("bash", "zsh", "fish")
# typer's zsh script only registers its function, which suits `source` but not a file on $fpath:
# zsh autoloads that at the first Tab, which then completes nothing. Complete that Tab too.
ZSH_REGISTER = "compdef _dbtt_completion dbtt"
ZSH_REGISTER_AND_COMPLETE = f"""{ZSH_REGISTER}
if [[ $zsh_eval_context[-1] == loadautofunc ]]; then
  _dbtt_completion "$@"
fi"""


def _print_versions(value: bool) -> None:
    if value:
        print("\n".join(version_lines()))
        raise typer.Exit(EXIT_OK)


def _print_completion(ctx: typer.Context, value: str | None) -> None:
    if value is None or ctx.resilient_parsing:
        return
    if value not in COMPLETION_SHELLS:
        fail(f"--show-completion takes one of: {', '.join(COMPLETION_SHELLS)}; got '{value}'")
    # The script calls back `_DBTT_COMPLETE=complete_<shell> dbtt`, which typer answers (see main()).
    script = get_completion_script(prog_name="dbtt", complete_var="_DBTT_COMPLETE", shell=value)
    print(script.replace(ZSH_REGISTER, ZSH_REGISTER_AND_COMPLETE) if value == "zsh" else script)
    raise typer.Exit(EXIT_OK)


# Options that come before any command; the group's help stays the module docstring.
@app.callback()
def _root(
    version: bool = typer.Option(
        False,
        "--version",
        is_eager=True,
        callback=_print_versions,
        help="Print the versions of dbtt, dbt-core, the installed dbt adapters and temporalio, and exit.",
    ),
    show_completion: str = typer.Option(
        None,
        "--show-completion",
        metavar="SHELL",
        is_eager=True,
        callback=_print_completion,
        autocompletion=lambda: list(COMPLETION_SHELLS),
        help="Print the completion script for SHELL (bash, zsh or fish) and exit.",
    ),
) -> None:
    pass


def main() -> None:
    code = EXIT_OK
    completion_init()  # registers the shells typer answers completion requests for
    try:
        app(args=join_selection_values(sys.argv[1:]))
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else (EXIT_OK if exit_.code is None else EXIT_RUN_FAILED)
    except KeyboardInterrupt:
        errors.print("interrupted")
        code = 130
    sys.stdout.flush()
    sys.stderr.flush()
    # The Temporal client's Rust threads can crash CPython's teardown (temporalio/sdk-python#300)
    # and turn a good exit code into SIGABRT; all work is done here, so skip the teardown, but
    # release what multiprocessing registered (dbt's manifest lock) so nothing is reported leaked.
    multiprocessing.util._run_finalizers()
    os._exit(code)

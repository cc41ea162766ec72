"""Plain data exchanged between the CLI, the workflow and the activities.

These models are the wire contract: field names match the reference
implementation so existing `temporal workflow start --input` payloads work.
Nothing here imports dbt, so the workflow sandbox can load it.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, Field

from dbt_temporal.config.project_config import LifecycleHooks, RetryConfig

WORKFLOW_TYPE = "dbt_run"
PLAN_ACTIVITY = "plan_project"
PROJECT_HOOKS_ACTIVITY = "project_hooks"
# Keyword search attribute a run keeps current: running, then success, failed, skipped or cancelled.
STATUS_ATTRIBUTE = "DbtStatus"
STORE_ARTIFACTS_ACTIVITY = "store_artifacts"
# What a run's memo may weigh: its node statuses and log tail are bounded to stay under this.
MEMO_BYTES_BOUND = 32 * 1024
# What a worker asks a run for its session spec with: node requests leave it out (NodeRequest.session).
SESSION_QUERY = "session"
# How a node still running when its workflow run handed over (continue-as-new) reports to the new run.
NODE_REPORT_SIGNAL = "node_report"
# What such a node asks first (with its unique_id): whether the workflow's current run awaits it.
# A run that was reset or terminated does not: the node then stops, as it did before handovers.
AWAITS_NODE_QUERY = "awaits_node"

# Commands that execute nodes, and the ones that only describe the selection.
FRESHNESS_COMMAND = "source freshness"
# Runs one macro (`dbtt submit run-operation MACRO --args YAML`): a plan of one node, the macro.
RUN_OPERATION = "run-operation"
# Previews selected nodes' rows (`--select`) or a query's (`--inline SQL`), `--limit` rows each.
SHOW_COMMAND = "show"
# Rows a show may preview: they travel back through the run's history.
MAX_SHOW_ROWS = 1000
# Compiles the project node by node, then reads the warehouse's catalog into the artifact store.
DOCS_COMMAND = "docs generate"
EXECUTING_COMMANDS = (
    "build", "run", "test", "seed", "snapshot", "compile", "clone", SHOW_COMMAND, FRESHNESS_COMMAND, RUN_OPERATION,
    DOCS_COMMAND,
)  # fmt: skip
LISTING_COMMANDS = ("ls", "list")
COMMANDS = EXECUTING_COMMANDS + LISTING_COMMANDS
# Commands that build nothing, so planning creates no schemas for them (dbt creates none either).
NO_SCHEMA_COMMANDS = (*LISTING_COMMANDS, RUN_OPERATION, SHOW_COMMAND, DOCS_COMMAND)

HookType = Literal["on-run-start", "on-run-end"]


class BadRunInput(ValueError):
    """A selection or dbt flag that the run's command cannot take as given."""


# What --resource-type and --exclude-resource-type take, as dbt spells them.
RESOURCE_TYPES = (
    "model", "seed", "snapshot", "test", "unit_test", "analysis", "source", "exposure", "metric",
    "saved_query", "semantic_model", "function",
)  # fmt: skip


def check_resource_types(flag: str, values: list[str] | None) -> None:
    unknown = sorted(set(values or []) - set(RESOURCE_TYPES))
    if unknown:
        raise BadRunInput(f"{flag} takes {', '.join(RESOURCE_TYPES)}; got {', '.join(unknown)}")


def check_run_input(run: DbtRunInput) -> None:
    """What the CLI and the workflow both refuse before planning."""
    DbtFlags.of(run).check(run.command)
    selecting = run.select or run.exclude or run.selector or run.resource_types or run.exclude_resource_types
    if run.command == RUN_OPERATION and (selecting or run.unique_ids):
        raise BadRunInput("run-operation runs one macro and takes no selection, as in dbt")
    if run.command == DOCS_COMMAND and (selecting or run.unique_ids):
        raise BadRunInput("docs generate documents the whole project in dbtt; a selection is not built yet for it")
    if run.command == SHOW_COMMAND and not (run.select or run.inline):
        raise BadRunInput("show needs --select or --inline, as in dbt")
    if run.inline is not None and (selecting or run.unique_ids):
        raise BadRunInput("show --inline previews its query alone and takes no selection")


def check_selection(flag: str, value: str | None) -> None:
    """Selections reach dbt's argument parser word by word: a word that is a flag would act as one."""
    for word in (value or "").split():
        if word.startswith("-"):
            raise BadRunInput(
                f"{flag} '{value}' holds '{word}', which is a flag, not a selector; "
                "selectors never start with '-' (pass dbt options as dbtt's own flags)"
            )


# dbt's --indirect-selection modes, and the commands that take --empty and --store-failures.
INDIRECT_SELECTION_MODES = ("eager", "cautious", "buildable", "empty")
EMPTY_COMMANDS = ("build", "run", "compile", "snapshot")
STORE_FAILURES_COMMANDS = ("build", "test")
# What --warn-error-options takes: dbt's keys, each "all" / "*" or a list of event names.
WARN_ERROR_OPTION_KEYS = ("error", "warn", "silence", "include", "exclude")


class DbtFlags(BaseModel):
    """dbt's own flags for one run, named as dbt names them: the same for its plan and every node."""

    empty: bool = False
    store_failures: bool = False
    warn_error: bool = False
    warn_error_options: dict[str, Any] | None = None
    indirect_selection: str | None = None
    # The earlier run whose manifest `state:` selectors compare with: as the user named it in a plan
    # request (e.g. "last-success"), as the plan fixed it (a workflow id, URL or directory) in a node's.
    state: str | None = None
    # Unbuilt parents of the selected nodes are read from the state run's relations.
    defer: bool = False
    # run-operation's macro ([package.]name) and its keyword arguments.
    macro: str | None = None
    args: dict[str, Any] | None = None
    # show's query instead of a selection, and how many rows it previews (dbt's default: 5).
    inline: str | None = None
    limit: int | None = None

    @classmethod
    def of(cls, run: DbtRunInput) -> DbtFlags:
        """The run input's fields of the same names (the input keeps them flat, as dbt's flags are)."""
        return cls(**{name: getattr(run, name) for name in cls.model_fields})

    def check(self, command: str) -> None:
        """Refuse what dbt's `command` does not take, as dbt's own command line would."""
        if self.empty and command not in EMPTY_COMMANDS:
            raise BadRunInput(f"--empty goes with {', '.join(EMPTY_COMMANDS)}, as in dbt; not with {command}")
        if self.store_failures and command not in STORE_FAILURES_COMMANDS:
            raise BadRunInput(
                f"--store-failures goes with {', '.join(STORE_FAILURES_COMMANDS)}, as in dbt; not with {command}"
            )
        if self.indirect_selection is not None and self.indirect_selection not in INDIRECT_SELECTION_MODES:
            raise BadRunInput(
                f"--indirect-selection takes {', '.join(INDIRECT_SELECTION_MODES)}; got '{self.indirect_selection}'"
            )
        if command == RUN_OPERATION and not self.macro:
            raise BadRunInput("run-operation needs the macro to run: dbtt submit run-operation MACRO [--args YAML]")
        if command != RUN_OPERATION and (self.macro or self.args is not None):
            raise BadRunInput(f"a macro and --args go with run-operation, as in dbt; not with {command}")
        if command != SHOW_COMMAND and (self.inline is not None or self.limit is not None):
            raise BadRunInput(f"--inline and --limit go with show, as in dbt; not with {command}")
        if self.limit is not None and not 0 <= self.limit <= MAX_SHOW_ROWS:
            raise BadRunInput(
                f"--limit takes 0 to {MAX_SHOW_ROWS} in dbtt (previewed rows travel through the run's history); "
                f"got {self.limit}"
            )
        if command == "clone" and not self.state:
            raise BadRunInput("clone needs --state: the run whose relations it clones, e.g. --state last-success")
        if self.defer and not self.state:
            raise BadRunInput("--defer needs --state (the run to defer to), as in dbt; e.g. --state last-success")
        if self.warn_error and self.warn_error_options is not None:
            raise BadRunInput("--warn-error and --warn-error-options contradict each other; give one of them")
        for key, value in (self.warn_error_options or {}).items():
            if key not in WARN_ERROR_OPTION_KEYS:
                raise BadRunInput(
                    f"--warn-error-options has no key '{key}'; dbt takes {', '.join(WARN_ERROR_OPTION_KEYS)}"
                )
            if value not in ("all", "*") and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
                raise BadRunInput(f"--warn-error-options '{key}' takes \"all\" or a list of dbt event names")


class NodeStatus(StrEnum):
    pending = "pending"
    running = "running"
    success = "success"
    error = "error"
    skipped = "skipped"
    cancelled = "cancelled"

    @property
    def finished(self) -> bool:
        return self not in (NodeStatus.pending, NodeStatus.running)


class DbtRunInput(BaseModel):
    """Input of the `dbt_run` workflow; every field is optional."""

    project: str | None = None
    command: str = "build"
    select: str | None = None
    exclude: str | None = None
    # A named selector of the project's selectors.yml, and resource-type filters, as dbt takes them.
    selector: str | None = None
    resource_types: list[str] | None = None
    exclude_resource_types: list[str] | None = None
    vars: dict[str, Any] | None = None
    target: str | None = None
    full_refresh: bool = False
    fail_fast: bool = False
    # dbt's flags of the same names (see DbtFlags).
    empty: bool = False
    store_failures: bool = False
    warn_error: bool = False
    warn_error_options: dict[str, Any] | None = None
    indirect_selection: str | None = None
    # dbt's --state and --defer: "last-success" or "last" (this project and target's latest run kept in
    # the artifact store), a run's workflow id, a store URL of a run, or a directory on the workers.
    state: str | None = None
    defer: bool = False
    # run-operation's macro ([package.]name) and its keyword arguments, as dbt's --args takes them.
    macro: str | None = None
    args: dict[str, Any] | None = None
    # show's query (instead of a selection) and its row limit.
    inline: str | None = None
    limit: int | None = None
    env: dict[str, str] | None = None
    hooks: dict[str, Any] | None = None
    # How many nodes of this run may execute at once; the profile's `threads` when unset.
    threads: int | None = Field(default=None, ge=1)
    # Exact nodes to run instead of a selection (what `dbtt reset --failed-only` sends).
    unique_ids: list[str] | None = None
    # History events one workflow run may use before handing over to a fresh run
    # (continue-as-new), which keeps very large DAGs inside Temporal's history limits (51,200
    # events, 50 MB). A handover no longer waits for running nodes, so the bounds sit close to
    # those limits: at about 5.3 events and 2.1 KB a node, runs of up to ~8,000 nodes never hand over.
    continue_as_new_after_events: int = Field(default=45_000, ge=100, le=50_000)
    # The same bound on the history's encoded size, in bytes.
    continue_as_new_after_bytes: int = Field(default=40 * 1024 * 1024, ge=64 * 1024, le=48 * 1024 * 1024)
    # Set only by the workflow itself when it continues as new: what the previous run did.
    carryover: Carryover | None = None

    def without_secrets(self) -> dict[str, Any]:
        """The input as shown in memos and logs: env keys survive, their values do not."""
        shown = self.model_dump(exclude={"env", "carryover"})
        shown["env"] = sorted((self.env or {}).keys())
        return shown


class SessionSpec(BaseModel):
    """Everything that decides how a project is parsed and connected.

    Two runs with equal specs share one warm dbt session on a worker.
    """

    project: str | None = None
    target: str | None = None
    vars: dict[str, Any] = Field(default_factory=dict)
    full_refresh: bool = False
    env: dict[str, str] = Field(default_factory=dict)

    @classmethod
    def of(cls, run: DbtRunInput) -> SessionSpec:
        return cls(
            project=run.project,
            target=run.target,
            vars=run.vars or {},
            full_refresh=run.full_refresh,
            env=run.env or {},
        )


class PlanRequest(BaseModel):
    session: SessionSpec
    command: str
    select: str | None = None
    exclude: str | None = None
    selector: str | None = None
    resource_types: list[str] | None = None
    exclude_resource_types: list[str] | None = None
    unique_ids: list[str] | None = None
    flags: DbtFlags = Field(default_factory=DbtFlags)


class PlannedNode(BaseModel):
    unique_id: str
    name: str
    resource_type: str
    # What dbt prints for the node, e.g. "sql table model main.orders".
    description: str
    # Positions in `Plan.nodes` (always earlier ones) of the nodes this one waits for: dbt's graph,
    # with build's test edges, reduced to the edges that reachability needs.
    parents: list[int] = Field(default_factory=list)

    @property
    def activity_type(self) -> str:
        return f"{self.resource_type}:{self.name}"


class ArtifactOptions(BaseModel):
    """The planning worker's artifact settings, carried by the plan so every worker of the run agrees."""

    # Root of the store: an absolute directory, s3://bucket/prefix or gs://bucket/prefix.
    store: str
    # run_results.json, manifest.json and the compiled/ tree.
    dbt_artifacts: bool = False
    # log.txt, the run log as the CLI prints it.
    run_log: bool = True


class Plan(BaseModel):
    """What the workflow schedules; `nodes` are in the order dbt's queue ranks them (a topological order)."""

    project: str
    target: str
    threads: int
    nodes: list[PlannedNode]
    # What dbt selected but the plan does not run (ephemeral models): kept apart so that the
    # plan, which can be large, names every node once.
    not_run: list[str] = Field(default_factory=list)
    # dbt's own summary of the project, e.g. "5 models, 12 data tests, 3 seeds".
    project_summary: str = ""
    # Digest of the parsed project (every file dbt read, by content) the plan was made from.
    manifest_digest: str = ""
    # Set when the project's files had changed and planning parsed it again first: how long that took.
    reparsed_seconds: float | None = None
    # For a project fetched from git or object storage: the revision planned on, and any news of the source.
    project_revision: str | None = None
    source_note: str = ""
    # dbt's count of what this run executes, e.g. "2 table models, 1 seed, 3 project hooks".
    stat_line: str = ""
    # The project's on-run-start / on-run-end hooks (dbt runs them for build, run, test, seed, snapshot).
    start_hooks: int = 0
    end_hooks: int = 0
    # The project flag: when an on-run-start hook fails, dbt skips every node instead of running them.
    skip_nodes_if_on_run_start_fails: bool = False
    retry: RetryConfig = Field(default_factory=RetryConfig)
    # The project's lifecycle hooks (dbt_temporal.yml); a run's own `hooks` replace them.
    lifecycle_hooks: LifecycleHooks = Field(default_factory=LifecycleHooks)
    # Keyword search attributes the worker found registered on the namespace, with this run's values.
    search_attributes: dict[str, str] = Field(default_factory=dict)
    # What the run keeps in the artifact store when it ends; None keeps nothing.
    artifacts: ArtifactOptions | None = None
    # The run's --state as planning fixed it: the workflow id, URL or directory whose manifest was used.
    state: str | None = None

    @property
    def selected(self) -> list[str]:
        """Everything dbt selected, ephemeral models included (what `dbt ls` prints)."""
        return sorted([node.unique_id for node in self.nodes] + self.not_run)


class InvocationSpec(BaseModel):
    """The dbt invocation a request belongs to: one per workflow, the same on every worker."""

    invocation_id: str
    run_started_at: datetime
    # Digest of the parsed project the run was planned on; a worker whose project differs refuses its nodes.
    manifest_digest: str = ""
    # None when every flag is dbt's default, as in most runs: each node request carries this.
    flags: DbtFlags | None = None

    @property
    def dbt_flags(self) -> DbtFlags:
        return self.flags or DbtFlags()


class NodeRequest(BaseModel):
    # Left out by the workflow: a worker asks the run once (SESSION_QUERY) and keeps it by invocation
    # id, so the run's vars and env are not repeated in every node's history event.
    session: SessionSpec | None = None
    command: str
    invocation: InvocationSpec
    unique_id: str
    index: int
    total: int


class ProjectHooksRequest(BaseModel):
    session: SessionSpec
    command: str
    invocation: InvocationSpec
    hook_type: HookType
    # The run's node results so far: what on-run-end hooks see as `results`.
    results: list[NodeResult] = Field(default_factory=list)


class StoreArtifactsRequest(BaseModel):
    session: SessionSpec
    command: str
    invocation: InvocationSpec
    options: ArtifactOptions
    # The run's record is kept under <store>/<workflow_id>/.
    workflow_id: str
    # Every result of the run, hooks included, with their compiled code.
    results: list[NodeResult] = Field(default_factory=list)
    log: list[str] = Field(default_factory=list)
    elapsed_time: float = 0.0


class StoredArtifacts(BaseModel):
    """Where the store step put the run's record."""

    artifacts: list[str] = Field(default_factory=list)
    log_path: str | None = None


class TimingEntry(BaseModel):
    name: str
    started_at: str | None = None
    completed_at: str | None = None


class SourceFreshness(BaseModel):
    """What `source freshness` measured for a source (dbt's sources.json keeps it)."""

    max_loaded_at: datetime
    snapshotted_at: datetime
    age: float


class NodeResult(BaseModel):
    unique_id: str
    status: NodeStatus
    # dbt's own status word: success, error, pass, fail, warn, skipped, ...
    dbt_status: str
    execution_time: float = 0.0
    message: str | None = None
    adapter_response: dict[str, Any] = Field(default_factory=dict)
    timing: list[TimingEntry] = Field(default_factory=list)
    failures: int | None = None
    compiled_code: str | None = None
    # Set for a source checked by `source freshness`.
    freshness: SourceFreshness | None = None
    # What the node's `log(..., info=True)` calls printed (run-operation's output), for the run log.
    log_lines: list[str] = Field(default_factory=list)
    # A retry that found its data change committed by an earlier attempt, and did not apply it again.
    previously_committed: bool = False
    thread_id: str | None = None
    worker: str | None = None
    attempt: int = 1
    # Wall-clock start and end of the activity as the worker saw them (epoch seconds).
    started_at: float | None = None
    completed_at: float | None = None

    def lean(self) -> NodeResult:
        """The result as the workflow keeps it: without compiled SQL, phase timings or macro log lines,
        which stay in the node's own event of the history (client/node_details.py reads them back)."""
        if self.compiled_code is None and not self.timing and not self.log_lines:
            return self
        return self.model_copy(update={"compiled_code": None, "timing": [], "log_lines": []})


class HookRun(BaseModel):
    """One lifecycle hook of the run: which workflow it started and how that went."""

    event: str
    workflow_type: str
    workflow_id: str
    # completed, started (fire and forget), failed, or skipped-run (a pre_run hook said to skip)
    outcome: str
    error: str | None = None


class DbtRunOutput(BaseModel):
    invocation_id: str
    project: str | None = None
    command: str = "build"
    success: bool
    skipped: bool = False
    skip_reason: str | None = None
    cancelled: bool = False
    selected: list[str] = Field(default_factory=list)
    node_results: list[NodeResult] = Field(default_factory=list)
    elapsed_time: float = 0.0
    artifacts: list[str] = Field(default_factory=list)
    log_path: str | None = None
    # Why the run's artifacts could not be written (the store named); the node results are still here.
    store_error: str | None = None
    hook_errors: list[str] = Field(default_factory=list)
    hook_runs: list[HookRun] = Field(default_factory=list)
    summary: str = ""
    # The git commit (or object-store digest) of a fetched project the run used; None for a local directory.
    project_revision: str | None = None


class Carryover(BaseModel):
    """What a run hands to its continuation when its history grows long (continue-as-new)."""

    plan: Plan
    invocation_id: str
    started_at: datetime
    threads: int
    results: list[NodeResult]
    # on-run-start hook results (they are not nodes of the plan).
    start_hook_results: list[NodeResult] = Field(default_factory=list)
    # Lifecycle hooks run so far, and the errors they reported.
    hook_runs: list[HookRun] = Field(default_factory=list)
    hook_errors: list[str] = Field(default_factory=list)
    index_of: dict[str, int]
    log: list[str]
    # Log lines written before `log` (dropped to keep the handover small).
    log_earlier: int = 0
    # Nodes still running at the handover: they report to the new run by signal (NodeReport).
    in_flight: list[str] = Field(default_factory=list)


class NodeReport(BaseModel):
    """A handed-over node's word to the workflow's current run (signal NODE_REPORT_SIGNAL).

    Exactly one of: its result; `retry` (it failed in a way a new attempt may fix); neither (it is
    still running, sent every few seconds so that the run can tell a lost node from a slow one).
    """

    unique_id: str
    result: NodeResult | None = None
    retry: bool = False


class RunState(BaseModel):
    """What the `status` query and the memos describe: a run as it is now."""

    command: dict[str, Any] = Field(default_factory=dict)
    node_status: dict[str, NodeStatus] = Field(default_factory=dict)
    log: list[str] = Field(default_factory=list)
    finished: bool = False
    output: DbtRunOutput | None = None


DbtFlags.model_rebuild()
DbtRunInput.model_rebuild()
ProjectHooksRequest.model_rebuild()
StoreArtifactsRequest.model_rebuild()

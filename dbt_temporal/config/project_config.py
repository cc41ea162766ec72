"""`dbt_temporal.yml`: per-project settings beside `dbt_project.yml` (retry policy, hooks)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

FILE_NAME = "dbt_temporal.yml"
# The workflow type of a dbt run; a lifecycle hook may start one (see LifecycleHooks' recursion guard).
DBT_RUN_WORKFLOW = "dbt_run"


class RetryConfig(BaseModel):
    """How a node's transient failures are retried (Temporal's retry policy, in dbt terms)."""

    model_config = ConfigDict(extra="forbid")

    max_attempts: int = Field(default=3, ge=1, description="total attempts; 1 means no retries")
    initial_interval_secs: float = Field(default=5, gt=0)
    backoff_coefficient: float = Field(default=2.0, ge=1.0)
    max_interval_secs: float = Field(default=60, gt=0)
    # Regexes matched against an error message; a match makes a retryable error final.
    non_retryable_errors: list[str] = Field(default_factory=list)

    @field_validator("non_retryable_errors")
    @classmethod
    def _compiles(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as err:
                raise ValueError(f"'{pattern}' is not a valid regular expression ({err})") from None
        return patterns

    def gives_up_on(self, message: str) -> bool:
        return any(re.search(pattern, message) for pattern in self.non_retryable_errors)


class HookSpec(BaseModel):
    """One lifecycle hook: a Temporal workflow of any type and language, started as a child of the run."""

    model_config = ConfigDict(extra="forbid")

    workflow_type: str = Field(min_length=1)
    task_queue: str = Field(min_length=1)
    timeout_secs: float = Field(default=300, gt=0)
    # fail: pre_run aborts the run, a post hook turns `success` false; warn: recorded in hook_errors; ignore.
    on_error: Literal["fail", "warn", "ignore"] = "warn"
    # Sent instead of the default payload ({event, invocation_id, input, plan, output}).
    input: Any = None
    # Start the workflow and go on without waiting for it; it outlives the run.
    fire_and_forget: bool = False


class LifecycleHooks(BaseModel):
    """Workflows run before the first node (`pre_run`) and after the run (`on_success` / `on_failure`)."""

    model_config = ConfigDict(extra="forbid")

    pre_run: list[HookSpec] = Field(default_factory=list)
    on_success: list[HookSpec] = Field(default_factory=list)
    on_failure: list[HookSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _no_endless_recursion(self) -> LifecycleHooks:
        for event in ("pre_run", "on_success", "on_failure"):
            for hook in getattr(self, event):
                starts_run = hook.workflow_type == DBT_RUN_WORKFLOW
                if starts_run and not (isinstance(hook.input, dict) and "hooks" in hook.input):
                    raise ValueError(
                        f"the {event} hook starts {DBT_RUN_WORKFLOW} with these same hooks, which would start it "
                        "again without end; give the hook an `input` with a `hooks` key (`hooks: {}` for none)"
                    )
        return self


def validation_message(err: ValidationError) -> str:
    """The first problem of a validation error as one line: the key, then why."""
    first = err.errors()[0]
    key = ".".join(str(part) for part in first["loc"]) or "(top level)"
    return f"key '{key}': {str(first['msg']).removeprefix('Value error, ')}"


class ProjectConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    retry: RetryConfig = Field(default_factory=RetryConfig)
    hooks: LifecycleHooks = Field(default_factory=LifecycleHooks)

    @field_validator("retry", "hooks", mode="before")
    @classmethod
    def _empty_key_means_defaults(cls, value: Any) -> Any:
        return {} if value is None else value


class ProjectConfigFileError(ValueError):
    pass


def load_project_config(project_dir: Path) -> ProjectConfig:
    """The project's dbt_temporal.yml, or defaults when there is none."""
    path = project_dir / FILE_NAME
    if not path.is_file():
        return ProjectConfig()
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ProjectConfigFileError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None
    try:
        return ProjectConfig.model_validate(raw)
    except ValidationError as err:
        raise ProjectConfigFileError(f"{path}: {validation_message(err)}") from None

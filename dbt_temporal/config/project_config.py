"""`dbt_temporal.yml`: per-project settings beside `dbt_project.yml` (retry policy, hooks)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

FILE_NAME = "dbt_temporal.yml"


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


class ProjectConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    retry: RetryConfig = Field(default_factory=RetryConfig)
    # Lifecycle hooks are accepted for compatibility with the reference's files; not run yet.
    hooks: dict[str, Any] | None = None


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
        first = err.errors()[0]
        key = ".".join(str(part) for part in first["loc"]) or "(top level)"
        reason = str(first["msg"]).removeprefix("Value error, ")
        raise ProjectConfigFileError(f"{path}: key '{key}': {reason}") from None

"""What `dbtt config` shows: every setting's effective value and where it came from, secrets masked."""

from __future__ import annotations

import os
from typing import Any

from pydantic import BaseModel, SecretStr

from dbt_temporal.config.settings import Settings, WorkerSettings

MASK = "****"
# Settings whose values are credentials, whatever their type says.
SECRET_WORDS = ("key", "token", "password", "secret")


class SettingRow(BaseModel):
    name: str  # the environment variable
    value: Any
    source: str  # default, env or flag
    description: str = ""


def effective_settings(settings: WorkerSettings, flags: set[str]) -> list[SettingRow]:
    """Rows in the settings model's order; `flags` names the fields given on the command line."""
    environment = {name.upper() for name in os.environ}
    rows = []
    for field, info in WorkerSettings.model_fields.items():
        name = Settings.env_name(field)
        source = "flag" if field in flags else "env" if name in environment else "default"
        rows.append(
            SettingRow(name=name, value=_shown(field, getattr(settings, field)), source=source,
                       description=info.description or "")
        )  # fmt: skip
    return rows


def _shown(field: str, value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, SecretStr) or any(word in field for word in SECRET_WORDS):
        return MASK
    if isinstance(value, dict | list | bool | int | float):
        return value
    return str(value)

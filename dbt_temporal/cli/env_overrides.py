"""`--env` and `--env-file`: the env_var() overrides of one run, without putting values on a command line.

`--env KEY=VALUE` is the plain form; `--env KEY` takes the value from the caller's own environment
and `--env-file FILE` reads a dotenv file, so that values stay out of shell history and of the
process list. Error messages name keys and positions, never a value: a mistyped argument may
be the secret itself.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from dbt_temporal.redaction import MIN_SECRET_LENGTH, revealed_by_mask

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class EnvOverrideError(ValueError):
    pass


def env_overrides(pairs: list[str], env_file: Path | None) -> dict[str, str] | None:
    """The run's overrides: the file's first, each --env on top."""
    env = read_env_file(env_file) if env_file else {}
    for number, pair in enumerate(pairs, start=1):
        key, value = _pair(pair, number)
        env[key] = value
    for key, value in env.items():
        if len(value.strip()) < MIN_SECRET_LENGTH:
            raise EnvOverrideError(
                f"the value of {key} is shorter than {MIN_SECRET_LENGTH} characters and could not be kept out of "
                "logs; set it in the worker's environment or profile instead"
            )
    return env or None


def unmaskable_keys(env: dict[str, str] | None) -> list[str]:
    """Keys whose value is part of a word the run log prints, so that masking it would point at it."""
    return sorted(key for key, value in (env or {}).items() if revealed_by_mask(value.strip()))


def _pair(pair: str, number: int) -> tuple[str, str]:
    key, sep, value = pair.partition("=")
    if sep:
        if not _KEY.fullmatch(key):
            raise EnvOverrideError(f"--env number {number} does not start with a variable name and '='")
        return key, value
    if not _KEY.fullmatch(pair) or pair not in os.environ:
        raise EnvOverrideError(
            f"--env number {number} is neither KEY=VALUE nor the name of a variable set in this environment; "
            "export the variable first or use --env-file"
        )
    return pair, os.environ[pair]


def read_env_file(path: Path) -> dict[str, str]:
    """A dotenv file: KEY=VALUE lines, optional `export`, # comments, values optionally quoted."""
    try:
        lines = path.read_text().splitlines()
    except OSError as err:
        raise EnvOverrideError(f"cannot read --env-file {path}: {err.strerror}") from None
    env: dict[str, str] = {}
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.removeprefix("export ").partition("=")
        key = key.strip()
        if not sep or not _KEY.fullmatch(key):
            raise EnvOverrideError(f"--env-file {path} line {number} is not KEY=VALUE")
        env[key] = _unquoted(value.strip())
    return env


def _unquoted(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value

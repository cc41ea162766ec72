"""Per-session views of dbt-core's process-global state.

dbt-core keeps its flags (`dbt.flags.GLOBAL_FLAGS`) and its adapters (one per
adapter type in `dbt.adapters.factory.FACTORY`) in process globals, and reads
`env_var()` from dbt_common's invocation context. A worker serves several
sessions at once (different vars, targets, env), so each of those globals is
redirected here to the session active in the calling context (a contextvar),
which node threads set before they touch dbt.
"""

from __future__ import annotations

import contextvars
import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import dbt.flags
from dbt.adapters.factory import FACTORY
from dbt_common.context import InvocationContext, reliably_get_invocation_var


@dataclass(frozen=True)
class ActiveState:
    """The globals one piece of work must see."""

    flags: Any | None
    adapter: Any | None
    env: Mapping[str, str]


_ACTIVE: contextvars.ContextVar[ActiveState | None] = contextvars.ContextVar("dbtt_active_state", default=None)
_install_lock = threading.Lock()
_installed = False


class _FlagsProxy:
    """Stands in for `dbt.flags.GLOBAL_FLAGS` and answers with the active flags."""

    def __init__(self, fallback: Any) -> None:
        object.__setattr__(self, "_fallback", fallback)

    def _target(self) -> Any:
        state = _ACTIVE.get()
        if state is not None and state.flags is not None:
            return state.flags
        return object.__getattribute__(self, "_fallback")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target(), name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._target(), name, value)

    def __contains__(self, name: str) -> bool:
        return name in vars(self._target())


def _session_lookup(original_lookup: Any) -> Any:
    def lookup_adapter(adapter_name: str) -> Any:
        state = _ACTIVE.get()
        if state is not None and state.adapter is not None and state.adapter.type() == adapter_name:
            return state.adapter
        return original_lookup(adapter_name)

    return lookup_adapter


def install() -> None:
    """Redirect dbt's globals to the active session; safe to call repeatedly."""
    global _installed
    with _install_lock:
        if _installed:
            return
        dbt.flags.GLOBAL_FLAGS = _FlagsProxy(dbt.flags.GLOBAL_FLAGS)
        FACTORY.lookup_adapter = _session_lookup(FACTORY.lookup_adapter)  # type: ignore[method-assign]
        _installed = True


@contextmanager
def activated(state: ActiveState) -> Iterator[None]:
    """Make `state` what dbt sees in this thread until the block ends."""
    install()
    token = _ACTIVE.set(state)
    # Threads are reused across runs: put the previous invocation context back afterwards,
    # so no run's env outlives its block.
    invocation_var = reliably_get_invocation_var()
    invocation_token = invocation_var.set(InvocationContext(state.env))
    try:
        yield
    finally:
        invocation_var.reset(invocation_token)
        _ACTIVE.reset(token)


def merged_env(overrides: Mapping[str, str]) -> dict[str, str]:
    """The worker's environment with a run's overrides on top (os.environ is never changed)."""
    env = dict(os.environ)
    env.update(overrides)
    return env

"""Per-session views of dbt-core's process-global state.

dbt-core keeps its flags (`dbt.flags.GLOBAL_FLAGS`) and its adapters (one per
adapter type in `dbt.adapters.factory.FACTORY`) in process globals, and reads
`env_var()` from dbt_common's invocation context. A worker serves several
sessions at once (different vars, targets, env), so each of those globals is
redirected here to the session active in the calling context (a contextvar),
which node threads set before they touch dbt. The same goes for what dbt keeps
per invocation: `invocation_id` and `run_started_at` are the run's, not the
worker process's.
"""

from __future__ import annotations

import contextvars
import os
import sys
import threading
import types
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import dbt.flags
import dbt.tracking
import dbt_common.events.functions
import dbt_common.invocation
import dbt_common.utils
from dbt.adapters.factory import FACTORY
from dbt_common.context import InvocationContext, reliably_get_invocation_var
from dbt_common.utils.executor import SingleThreadedExecutor


@dataclass(frozen=True)
class RunIdentity:
    """What dbt calls one invocation: its id and when it started (aware, UTC)."""

    invocation_id: str
    started_at: datetime


@dataclass(frozen=True)
class ActiveState:
    """The globals one piece of work must see."""

    flags: Any | None
    adapter: Any | None
    env: Mapping[str, str]
    run: RunIdentity | None = None


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


def _active_run() -> RunIdentity | None:
    state = _ACTIVE.get()
    return state.run if state is not None else None


def _run_aware(original: Callable[[], Any], pick: Callable[[RunIdentity], Any]) -> Callable[[], Any]:
    def current() -> Any:
        run = _active_run()
        return pick(run) if run is not None else original()

    return current


# dbt reads these through functions that several modules import by name, so each copy is replaced.
_INVOCATION_READERS = {
    "get_invocation_id": lambda run: run.invocation_id,
    # dbt keeps this one naive (UTC); microbatch derives its last batch from it.
    "get_invocation_started_at": lambda run: run.started_at.replace(tzinfo=None),
}


def _replace_everywhere(replacements: dict[str, tuple[Any, Any]]) -> None:
    """Swap functions that dbt's modules import by name: every module's copy of each original."""
    for module in list(sys.modules.values()):
        if not (getattr(module, "__name__", None) or "").startswith(("dbt.", "dbt_common.")):
            continue
        for name, (original, replacement) in replacements.items():
            if getattr(module, name, None) is original:
                setattr(module, name, replacement)


def _redirect_invocation_readers() -> None:
    originals = {name: getattr(dbt_common.invocation, name) for name in _INVOCATION_READERS}
    _replace_everywhere(
        {name: (originals[name], _run_aware(originals[name], pick)) for name, pick in _INVOCATION_READERS.items()}
    )


def _serial_within_sessions() -> None:
    """dbt's thread pools for adapter work (catalog, schema listing) run serially inside a session.

    Their threads would not see the session active here (a contextvar), so they would use
    another session's adapter, or none; work done for a worker's session stays on its thread.
    """
    original = dbt_common.utils.executor

    def executor(config: Any) -> Any:
        return SingleThreadedExecutor() if _ACTIVE.get() is not None else original(config)

    _replace_everywhere({"executor": (original, executor)})


class _RunAwareEventFunctions(types.ModuleType):
    """dbt_common's event module, whose WARN_ERROR and WARN_ERROR_OPTIONS answer with the active flags.

    dbt copies a command's --warn-error and --warn-error-options into these module globals
    whenever it builds flags, and every warning reads them there: with runs of different
    flags on one worker, each must see its own. Assignments still land, as what a thread
    outside any session sees.
    """

    @property
    def WARN_ERROR(self) -> Any:  # noqa: N802 - dbt's name
        flags = _active_flags()
        if flags is None:
            return self.__dict__["_WARN_ERROR"]
        return bool(getattr(flags, "WARN_ERROR", False))

    @WARN_ERROR.setter
    def WARN_ERROR(self, value: Any) -> None:  # noqa: N802
        self.__dict__["_WARN_ERROR"] = value

    @property
    def WARN_ERROR_OPTIONS(self) -> Any:  # noqa: N802
        flags = _active_flags()
        options = getattr(flags, "WARN_ERROR_OPTIONS", None) if flags is not None else None
        return options if options is not None else self.__dict__["_WARN_ERROR_OPTIONS"]

    @WARN_ERROR_OPTIONS.setter
    def WARN_ERROR_OPTIONS(self, value: Any) -> None:  # noqa: N802
        self.__dict__["_WARN_ERROR_OPTIONS"] = value


def _active_flags() -> Any:
    state = _ACTIVE.get()
    return state.flags if state is not None else None


def _redirect_warn_error() -> None:
    module = dbt_common.events.functions
    shared = {name: module.__dict__.pop(name) for name in ("WARN_ERROR", "WARN_ERROR_OPTIONS")}
    module.__class__ = _RunAwareEventFunctions
    for name, value in shared.items():
        setattr(module, name, value)


class _RunAwareUser:
    """Stands in for `dbt.tracking.active_user`: `run_started_at` is the active run's."""

    def __init__(self, user: Any) -> None:
        object.__setattr__(self, "_user", user)

    @property
    def run_started_at(self) -> Any:
        run = _active_run()
        return run.started_at if run is not None else object.__getattribute__(self, "_user").run_started_at

    @property
    def invocation_id(self) -> Any:
        run = _active_run()
        return run.invocation_id if run is not None else object.__getattribute__(self, "_user").invocation_id

    def __getattr__(self, name: str) -> Any:
        return getattr(object.__getattribute__(self, "_user"), name)


def track_runs() -> None:
    """Make dbt's tracking user report the active run; call after dbt replaces the user."""
    user = dbt.tracking.active_user
    if user is not None and not isinstance(user, _RunAwareUser):
        dbt.tracking.active_user = _RunAwareUser(user)


def install() -> None:
    """Redirect dbt's globals to the active session; safe to call repeatedly."""
    global _installed
    with _install_lock:
        if _installed:
            return
        # Import what reads the invocation or opens dbt's thread pools by name, so every copy is replaced.
        import dbt.adapters.base.impl  # noqa: F401
        import dbt.artifacts.schemas.base  # noqa: F401
        import dbt.compilation  # noqa: F401
        import dbt.context.base  # noqa: F401
        import dbt.task.run  # noqa: F401

        dbt.flags.GLOBAL_FLAGS = _FlagsProxy(dbt.flags.GLOBAL_FLAGS)
        FACTORY.lookup_adapter = _session_lookup(FACTORY.lookup_adapter)  # type: ignore[method-assign]
        _redirect_invocation_readers()
        _serial_within_sessions()
        _redirect_warn_error()
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

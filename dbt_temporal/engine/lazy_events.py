"""dbt's events, built only when something reads them.

Every dbt event converts its arguments into a protobuf message as it is created, and dbt's event
manager wraps that message again for its loggers and callbacks. A worker prints none of them (its
run log is made from the node results): under py-spy at 499 nodes, making events took about a
fifth of the time node threads held the interpreter lock, as much as dbtt's whole overhead over
`dbt build`. Once `install()` has run:

- an event keeps its arguments and makes its message the first time anything reads it;
- the event manager drops, unread, an event below warn level when it has no logger and every
  callback was registered with `add_callback` for other event names.

Warnings and errors take dbt's own path, so --warn-error and --warn-error-options behave as in dbt.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from dbt_common.events.base_types import BaseEvent, EventLevel
from dbt_common.events.event_manager import EventManager
from dbt_common.events.event_manager_client import get_event_manager

_QUIET_LEVELS = {EventLevel.DEBUG, EventLevel.TEST, EventLevel.INFO}
_ARGS = "_dbtt_event_args"
# Callbacks that read only some events, by event class name.
_READERS: dict[Callable[[Any], None], frozenset[str]] = {}
_LOCK = threading.Lock()
_installed = False


def add_callback(callback: Callable[[Any], None], event_names: Iterable[str]) -> None:
    """Register a callback with dbt's event manager (once) for events of these class names only."""
    manager = get_event_manager()
    with _LOCK:
        _READERS[callback] = frozenset(event_names)
        if callback not in manager.callbacks:
            manager.add_callback(callback)


def install() -> None:
    """Make dbt's events lazy for this process (a worker's); safe to call more than once."""
    global _installed
    with _LOCK:
        if _installed:
            return
        _installed = True
    build_message = BaseEvent.__init__
    fire = EventManager.fire_event

    def keep_arguments(self: BaseEvent, *args: Any, **kwargs: Any) -> None:
        object.__setattr__(self, _ARGS, (args, kwargs))

    def read(self: BaseEvent, key: str) -> Any:
        if key == "pb_msg":
            args, kwargs = object.__getattribute__(self, _ARGS)
            build_message(self, *args, **kwargs)
            return object.__getattribute__(self, "pb_msg")
        return getattr(self.pb_msg, key)

    def write(self: BaseEvent, key: str, value: Any) -> None:
        if key == "pb_msg":
            object.__setattr__(self, key, value)
        else:
            setattr(self.pb_msg, key, value)

    def fire_event(
        manager: EventManager,
        e: BaseEvent,
        level: EventLevel | None = None,
        node: Any = None,
        force_warn_or_error_handling: bool = False,
    ) -> None:
        if force_warn_or_error_handling or not _unread(manager, e, level):
            fire(manager, e, level=level, node=node, force_warn_or_error_handling=force_warn_or_error_handling)

    BaseEvent.__init__ = keep_arguments  # type: ignore[method-assign]
    BaseEvent.__getattr__ = read  # type: ignore[method-assign]
    BaseEvent.__setattr__ = write  # type: ignore[method-assign]
    EventManager.fire_event = fire_event  # type: ignore[method-assign]


def _unread(manager: EventManager, event: BaseEvent, level: EventLevel | None) -> bool:
    """Whether dbt's handling of this event would change nothing: quiet, and read by no one."""
    if manager.loggers or (level or event.level_tag()) not in _QUIET_LEVELS:
        return False
    name = type(event).__name__
    return all(name not in _READERS.get(callback, {name}) for callback in manager.callbacks)

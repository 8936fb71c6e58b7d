"""The seam through which ``asignal.testing`` observes and mutes sends.

The send methods pay for this seam with a single module attribute check
(``_hooks.active``) while nothing observes or mutes, which is the normal case in
production. Observers and mutes live here rather than in ``asignal.testing`` so that
the core never imports the testing module.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._signal import Signal

__all__ = [
    "Observer",
    "active",
    "add_global_mute",
    "add_observer",
    "intercept",
    "mute_enter",
    "mute_exit",
    "muted",
    "remove_global_mute",
    "remove_observer",
]

#: ``observer(signal, sender, kwargs, method)``, called for every send of every signal
#: while registered, before receivers run and even when the signal is muted.
Observer = Callable[["Signal", object, "dict[str, Any]", str], None]

#: What is muted in the current context: ``None`` (nothing), or a tuple
#: ``(mute_everything, frozenset_of_signals)``.
muted: ContextVar[tuple[bool, frozenset[Signal]] | None] = ContextVar(
    "asignal_muted", default=None
)

_observers: tuple[Observer, ...] = ()
_mute_users = 0
_lock = threading.Lock()

#: Process-wide mutes (the pytest fixtures and marker), one entry per open mute:
#: ``(mute_everything, signals)``. Unlike ``muted`` they reach every task and thread.
_global_mutes: list[tuple[bool, frozenset[Signal]]] = []

#: True while any observer is registered or any mute block is open (in any context).
active = False


def _recompute() -> None:
    global active
    active = bool(_observers) or _mute_users > 0 or bool(_global_mutes)


def add_observer(observer: Observer) -> None:
    global _observers
    with _lock:
        _observers = (*_observers, observer)
        _recompute()


def remove_observer(observer: Observer) -> None:
    global _observers
    with _lock:
        remaining = list(_observers)
        remaining.remove(observer)
        _observers = tuple(remaining)
        _recompute()


def mute_enter() -> None:
    global _mute_users
    with _lock:
        _mute_users += 1
        _recompute()


def mute_exit() -> None:
    global _mute_users
    with _lock:
        _mute_users -= 1
        _recompute()


def add_global_mute(state: tuple[bool, frozenset[Signal]]) -> None:
    with _lock:
        _global_mutes.append(state)
        _recompute()


def remove_global_mute(state: tuple[bool, frozenset[Signal]]) -> None:
    with _lock:
        _global_mutes.remove(state)
        _recompute()


def intercept(
    signal: Signal, sender: object, kwargs: dict[str, Any], method: str
) -> bool:
    """Report the send to every observer; return True if *signal* is muted here."""
    for observer in _observers:
        observer(signal, sender, kwargs, method)
    state = muted.get()
    if state is not None and (state[0] or signal in state[1]):
        return True
    return any(every or signal in these for every, these in _global_mutes)

"""The seam through which ``asignal.testing`` observes and mutes sends.

The state is in ``_state.hooks``; the core never imports the testing module. A send
pays one attribute check (``hooks.active``) while nothing observes, mutes or watches.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._state import hooks, refresh_flags

if TYPE_CHECKING:
    from ._signal import Signal

__all__ = [
    "Observer",
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

#: What is muted in the current context (see ``_state.Hooks.muted``).
muted = hooks.muted


def _recompute() -> None:
    refresh_flags()


def add_observer(observer: Observer) -> None:
    with hooks.lock:
        hooks.observers = (*hooks.observers, observer)
        _recompute()


def remove_observer(observer: Observer) -> None:
    with hooks.lock:
        remaining = list(hooks.observers)
        remaining.remove(observer)
        hooks.observers = tuple(remaining)
        _recompute()


def mute_enter() -> None:
    with hooks.lock:
        hooks.mute_users += 1
        _recompute()


def mute_exit() -> None:
    with hooks.lock:
        hooks.mute_users -= 1
        _recompute()


def add_global_mute(state: tuple[bool, frozenset[Signal]]) -> None:
    with hooks.lock:
        hooks.global_mutes.append(state)
        _recompute()


def remove_global_mute(state: tuple[bool, frozenset[Signal]]) -> None:
    with hooks.lock:
        hooks.global_mutes.remove(state)
        _recompute()


def intercept(
    signal: Signal, sender: object, kwargs: dict[str, Any], method: str
) -> bool:
    """Report the send to every observer; return True if *signal* is muted here."""
    for observer in hooks.observers:
        observer(signal, sender, kwargs, method)
    state = hooks.muted.get()
    if state is not None and (state[0] or signal in state[1]):
        return True
    return any(every or signal in these for every, these in hooks.global_mutes)

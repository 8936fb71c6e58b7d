"""All of the core's process-wide state, in one place.

Everything else in the core is per signal or per send. What lives here:

* :data:`signals`: every live ``Signal``, for tooling (``asignal.testing``,
  ``asignal list``); weak, so a signal made in a test goes away with it.
* :data:`hooks`: the observers and mutes of ``asignal.testing`` and the pytest
  plugin, and ``hooks.active``, the one flag a send reads to know that no hook
  and nothing that watches is active.
* :data:`watch`: what watches sends: the instruments (``asignal.otel``) and the
  slow-receiver thresholds (see ``_watch``).
* :data:`kept_loop`: the asyncio event loop that ``send()`` uses from threads that
  run no loop of their own (see ``_blocking``); started on first use.
* :data:`discovered`: the receiver modules ``autodiscover()`` has imported.

Integrations keep their own process-wide state in one documented object each.
"""

from __future__ import annotations

import asyncio
import os
import threading
import weakref
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._signal import Signal

__all__ = [
    "Discovered",
    "Hooks",
    "KeptLoopState",
    "Watch",
    "discovered",
    "hooks",
    "kept_loop",
    "refresh_flags",
    "signals",
    "watch",
]

signals: weakref.WeakSet[Signal] = weakref.WeakSet()


class Hooks:
    """Observers and mutes (``asignal.testing``). ``active`` is the only attribute a
    send reads while none is registered and nothing watches, which is the normal
    case in production; ``testing`` says whether an observer or mute is."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        #: ``observer(signal, sender, kwargs, method)``, called for every send.
        self.observers: tuple[Any, ...] = ()
        #: Open ``mute()`` blocks in any context; what each mutes is in ``muted``.
        self.mute_users = 0
        #: What is muted in the current context: ``None``, or
        #: ``(mute_everything, frozenset_of_signals)``.
        self.muted: ContextVar[tuple[bool, frozenset[Signal]] | None] = ContextVar(
            "asignal_muted", default=None
        )
        #: Process-wide mutes (pytest fixtures and marker), one entry per open mute.
        self.global_mutes: list[tuple[bool, frozenset[Signal]]] = []
        self.testing = False
        self.active = False


hooks = Hooks()


class Watch:
    """What watches sends (``_watch``); changed under ``hooks.lock``."""

    def __init__(self) -> None:
        #: Objects with the ``_watch.Instrument`` methods, in registration order.
        self.instruments: tuple[Any, ...] = ()
        #: The process-wide slow-receiver threshold in seconds, or None.
        self.slow_threshold: float | None = None
        #: Signals with a threshold of their own (``Signal.slow_threshold``).
        self.slow_signals: weakref.WeakSet[Signal] = weakref.WeakSet()
        self.active = False

        self.active = False


watch = Watch()


def refresh_flags() -> None:
    """Recompute ``hooks.testing``, ``watch.active`` and ``hooks.active`` after a
    change to either; call with ``hooks.lock`` held."""
    hooks.testing = bool(hooks.observers or hooks.mute_users or hooks.global_mutes)
    watch.active = bool(
        watch.instruments or watch.slow_threshold is not None or len(watch.slow_signals)
    )
    hooks.active = hooks.testing or watch.active


class KeptLoopState:
    """The kept loop and the lock that guards its start. Forgotten in a forked
    child, where the loop's thread does not exist."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.loop: asyncio.AbstractEventLoop | None = None

    def forget(self) -> None:
        self.lock = threading.Lock()
        self.loop = None


kept_loop = KeptLoopState()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=kept_loop.forget)


class Discovered:
    """The modules ``autodiscover()`` imported, so each is imported once."""

    def __init__(self) -> None:
        # Reentrant: importing a receiver module may itself call autodiscover().
        self.lock = threading.RLock()
        self.modules: set[str] = set()


discovered = Discovered()

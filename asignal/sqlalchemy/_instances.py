"""``pre_init`` and ``post_init``: a model constructed, a model loaded.

``pre_init`` is sent from SQLAlchemy's ``init`` event, at the start of the model's
``__init__``: in the application's own code, outside any session. ``post_init`` is
sent from the ``load`` event, inside whichever session loads the row, so inside
SQLAlchemy's greenlet for an ``AsyncSession``.
"""

from __future__ import annotations

from collections.abc import Coroutine
from functools import partial
from typing import Any

from .. import Signal
from .._integration import is_observed, runs_event_loop, send_awaiting
from ..signals import post_init, pre_init
from ._send import deliver, in_sqlalchemy_greenlet
from ._targets import options_for_class

__all__ = ["on_init", "on_load"]


def on_init(target: object, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """SQLAlchemy's ``init`` event: the start of a mapped class's ``__init__``."""
    options = options_for_class(type(target))
    if options is None or not options.init_signals or not is_observed(pre_init):
        return
    _deliver(pre_init, type(target), {"args": args, "kwargs": kwargs}, options.robust)


def on_load(target: object, context: object) -> None:
    """SQLAlchemy's ``load`` event: an instance made from a row."""
    options = options_for_class(type(target))
    if options is None or not options.init_signals or not is_observed(post_init):
        return
    _deliver(post_init, type(target), {"instance": target}, options.robust)


def _deliver(
    signal: Signal, sender: type, kwargs: dict[str, Any], robust: bool
) -> None:
    """Like :func:`._send.deliver`, but an async receiver that cannot be awaited
    gets an error that names the constructor, not ``asend()``: the caller cannot
    choose how SQLAlchemy's constructor hook sends.

    Outside SQLAlchemy's greenlet, on a thread that runs an event loop (a model
    constructed in ``async def`` code), sync receivers run as usual and each async
    receiver raises ``RuntimeError`` (logged instead if *robust*).
    """
    if in_sqlalchemy_greenlet() or not runs_event_loop():
        deliver(signal, sender, kwargs, robust)
    else:
        refuse = partial(_cannot_await, signal, sender)
        send_awaiting(signal, sender, kwargs, robust=robust, await_=refuse)


def _cannot_await(
    signal: Signal, sender: type, coroutine: Coroutine[Any, Any, Any]
) -> None:
    coroutine.close()  # never to be awaited: no "never awaited" warning either
    receiver = getattr(coroutine, "__qualname__", None) or repr(coroutine)
    name = "pre_init" if signal is pre_init else "post_init"
    where = (
        f"from {sender.__qualname__}'s constructor"
        if signal is pre_init
        else f"while a plain Session loads a {sender.__qualname__}"
    )
    raise RuntimeError(
        f"The async receiver {receiver} of {name} cannot run: {name} "
        f"is sent {where}, which is synchronous code running outside any "
        "AsyncSession on a thread that runs an event loop, so nothing can await "
        f"it there. Connect a sync receiver (def, not async def) to {name}, or "
        "create the object inside `await session.run_sync(...)`, or "
        "install(..., init_signals=False) if you do not need these signals."
    )

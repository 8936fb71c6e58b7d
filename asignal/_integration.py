"""The seams that asignal's own integrations (ASGI, SQLAlchemy, bridge, testing,
OpenTelemetry) use to reach into a send. They are not public API, but they are the
only way in: no integration reads a ``Signal``'s private members.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from ._blocking import runs_event_loop
from ._dispatch import Results, arun, call_each
from ._receivers import log_fields
from ._signal import Signal, check_send
from ._state import hooks
from ._watch import (
    BridgeEvent,
    Instrument,
    add_instrument,
    following,
    processing,
    publishing,
    remove_instrument,
)

__all__ = [
    "BridgeEvent",
    "Instrument",
    "add_instrument",
    "asend_robust_only",
    "check_send",
    "following",
    "is_observed",
    "log_fields",
    "processing",
    "publishing",
    "remove_instrument",
    "runs_event_loop",
    "send_awaiting",
]


def is_observed(signal: Signal) -> bool:
    """Whether a send of *signal* could reach anything: a connected receiver, or a
    testing hook (observers see sends that reach no receiver)."""
    return hooks.testing or bool(signal.receivers)


def send_awaiting(
    signal: Signal,
    sender: object,
    named: dict[str, Any],
    *,
    robust: bool,
    await_: Callable[[Coroutine[Any, Any, Any]], Any],
) -> Results:
    """``send()``/``send_robust()`` for code that cannot ``await`` but can hand a
    coroutine to something that does (SQLAlchemy's greenlet bridge): receivers run
    one after another in call order, each async receiver's coroutine given to
    *await_*, through the same checks, calls and failure handling as every send."""
    method = "send_robust" if robust else "send"
    kwargs = dict(named)
    plan = signal.prepare(sender, kwargs, method)
    if plan is None:
        return []

    def run() -> Results:
        return call_each(signal, plan.derefs, kwargs, robust, method, await_)

    if plan.watcher is not None:
        return plan.watcher.run(run)
    return run()


async def asend_robust_only(
    signal: Signal,
    sender: object,
    named: dict[str, Any],
    keep: Callable[[Callable[..., Any]], bool],
) -> Results:
    """``signal.asend_robust(sender, **named)`` run only for the receivers that
    *keep* accepts (a redelivered event whose other receivers already succeeded),
    with the same checks, concurrency and failure handling as every send."""
    kwargs = dict(named)
    plan = signal.prepare(sender, kwargs, "asend_robust")
    if plan is None:
        return []
    return await arun(signal, plan.only(keep), kwargs, "asend_robust", True, None)

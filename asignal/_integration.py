"""The seams that asignal's own integrations (ASGI, SQLAlchemy, testing) use to reach
into a send. They are not public API, but they are the only way in: no integration
reads a ``Signal``'s private members.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from . import _hooks
from ._dispatch import log_failure
from ._signal import Signal

__all__ = ["check_send", "is_observed", "send_awaiting"]


def check_send(
    signal: Signal, sender: object, named: dict[str, Any], method: str
) -> None:
    """Every check that ``signal.<method>(sender, **named)`` makes before it calls
    anything (reserved keyword names, a strict signal's ``providing_args``), so a
    send handed over for later fails now, in the caller.

    :raises TypeError: what ``signal.<method>()`` would raise.
    """
    if "sender" in named:
        raise TypeError(
            f"{method}() got the sender twice, positionally and as sender=...; "
            "pass it once."
        )
    if "signal" in named:
        raise TypeError(
            f"{method}() got a 'signal' keyword argument, but receivers are given the "
            "signal itself as signal=...; rename that argument."
        )
    if signal.strict:
        signal._check_payload(named, method)  # pyright: ignore[reportPrivateUsage]


def is_observed(signal: Signal) -> bool:
    """Whether a send of *signal* could reach anything: a connected receiver, or a
    testing hook (observers see sends that reach no receiver)."""
    return bool(signal._entries) or _hooks.active  # pyright: ignore[reportPrivateUsage]


def send_awaiting(
    signal: Signal,
    sender: object,
    named: dict[str, Any],
    *,
    robust: bool,
    await_: Callable[[Coroutine[Any, Any, Any]], Any],
) -> list[tuple[Callable[..., Any], Any]]:
    """``send()``/``send_robust()`` for code that cannot ``await`` but can hand a
    coroutine to something that does (SQLAlchemy's greenlet bridge): receivers run
    one after another in call order, each async receiver's coroutine given to
    *await_*."""
    method = "send_robust" if robust else "send"
    plan = signal._begin(sender, named, method)  # pyright: ignore[reportPrivateUsage]
    if plan is None:
        return []
    results: list[tuple[Callable[..., Any], Any]] = []
    for connection, receiver in plan.live():
        try:
            if connection.is_async:
                result = await_(receiver(signal=signal, sender=sender, **named))
            else:
                result = receiver(signal=signal, sender=sender, **named)
        except Exception as exc:
            if not robust:
                raise
            log_failure(signal, receiver, exc, method)
            result = exc
        results.append((receiver, result))
    return results

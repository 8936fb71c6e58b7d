"""A receiver connected as sync that returns a coroutine is refused, never lost.

That happens with a decorator that hides ``async def`` behind a plain function: the
coroutine it returns would never be awaited, so the receiver's body would never run.
Every send refuses it with a ``TypeError`` that says what to do (robust sends log it
and return it as the receiver's result), and the coroutine is closed, so Python
does not warn about it a second time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest

from asignal import Signal

ran: list[str] = []


def hides_async(fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)  # a coroutine, returned from a sync function

    return wrapper


@hides_async
async def hidden(sender: object, **kwargs: Any) -> None:
    ran.append("hidden")


def plain(sender: object, **kwargs: Any) -> str:
    return "plain"


@pytest.fixture
def signal_with_hidden() -> Signal:
    ran.clear()
    signal = Signal()
    signal.connect(hidden)
    return signal


@pytest.mark.parametrize("others", [0, 1])
def test_send_refuses_a_returned_coroutine(
    signal_with_hidden: Signal, others: int
) -> None:
    if others:  # the loop path as well as the one-receiver path
        signal_with_hidden.connect(plain)
    with pytest.raises(TypeError, match=r"returned a coroutine.*connected as a sync"):
        signal_with_hidden.send(None, payload=1)
    assert ran == []


def test_send_robust_logs_it_and_returns_it(
    signal_with_hidden: Signal, caplog: pytest.LogCaptureFixture
) -> None:
    signal_with_hidden.connect(plain)
    with caplog.at_level(logging.ERROR, logger="asignal"):
        [(_, first), (_, second)] = signal_with_hidden.send_robust(None)
    assert isinstance(first, TypeError)
    assert second == "plain"
    assert "returned a coroutine" in caplog.text


@pytest.mark.anyio
async def test_asend_refuses_it_from_a_worker_thread(
    signal_with_hidden: Signal,
) -> None:
    with pytest.raises(TypeError, match="returned a coroutine"):
        await signal_with_hidden.asend(None)


@pytest.mark.anyio
async def test_asend_refuses_it_inline(signal: Signal) -> None:
    signal.connect(hidden, inline=True)
    with pytest.raises(TypeError, match="returned a coroutine"):
        await signal.asend(None)
    [(_, result)] = await signal.asend_robust(None)
    assert isinstance(result, TypeError)


def test_send_with_async_receivers_refuses_it_too(signal_with_hidden: Signal) -> None:
    async def real(sender: object, **kwargs: Any) -> str:
        return "real"

    signal_with_hidden.connect(real)
    with pytest.raises(TypeError, match="returned a coroutine"):
        signal_with_hidden.send(None)

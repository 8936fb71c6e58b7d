"""Context variables: receivers see the caller's; their changes flow back."""

from __future__ import annotations

import contextvars
from typing import Any

import anyio
import pytest

from asignal import Signal

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id")
other: contextvars.ContextVar[str] = contextvars.ContextVar("other")

pytestmark = pytest.mark.anyio


async def test_general_path_changes_flow_back_in_call_order(signal: Signal) -> None:
    """Several receivers: each one's changes reach the caller; the later receiver
    in call order wins, whoever finished last."""
    second_done = anyio.Event()

    async def first(sender: object, **kwargs: Any) -> None:
        await second_done.wait()  # finishes last
        request_id.set("first")
        other.set("only-first")

    async def second(sender: object, **kwargs: Any) -> None:
        request_id.set("second")
        second_done.set()

    def threaded(sender: object, **kwargs: Any) -> None:
        other.set("thread")  # later in call order than first: wins

    signal.connect(first)
    signal.connect(second)
    signal.connect(threaded)
    with anyio.fail_after(5):
        await signal.asend(None)
    assert request_id.get() == "second"
    assert other.get() == "thread"


async def test_changes_flow_back_even_when_the_send_fails(signal: Signal) -> None:
    """A receiver's context changes reach the caller even if another one fails."""

    async def setter(sender: object, **kwargs: Any) -> None:
        request_id.set("set-before-failure")

    def failing(sender: object, **kwargs: Any) -> None:
        raise ValueError("no")

    signal.connect(setter)
    signal.connect(failing, inline=True)
    request_id.set("caller")
    with pytest.raises(ValueError, match="no"):
        await signal.asend(None)
    assert request_id.get() == "set-before-failure"


def test_blocking_send_changes_flow_back(signal: Signal) -> None:
    """send(): a sync receiver's change and an async receiver's change both reach
    the calling thread."""

    def sync(sender: object, **kwargs: Any) -> None:
        request_id.set("sync")

    async def a(sender: object, **kwargs: Any) -> str:
        other.set("async")
        return request_id.get()

    signal.connect(sync)
    signal.connect(a)

    def run() -> tuple[str, str, Any]:
        results = signal.send(None)
        return request_id.get(), other.get(), results[1][1]

    ctx = contextvars.copy_context()
    assert ctx.run(run) == ("sync", "async", "sync")

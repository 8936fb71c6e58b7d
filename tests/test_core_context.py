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


async def test_receivers_see_the_callers_context(signal: Signal) -> None:
    """Async, threaded and inline receivers all read the caller's values."""

    async def a(sender: object, **kwargs: Any) -> str:
        return request_id.get()

    def threaded(sender: object, **kwargs: Any) -> str:
        return request_id.get()

    def inline(sender: object, **kwargs: Any) -> str:
        return request_id.get()

    signal.connect(a)
    signal.connect(threaded)
    signal.connect(inline, inline=True)
    request_id.set("r-1")
    assert [r for _, r in await signal.asend(None)] == ["r-1"] * 3


async def test_single_async_receiver_change_flows_back(signal: Signal) -> None:
    """The one-receiver fast path: a value set by the receiver reaches the caller."""

    async def setter(sender: object, **kwargs: Any) -> None:
        request_id.set("from-receiver")

    signal.connect(setter)
    request_id.set("before")
    await signal.asend(None)
    assert request_id.get() == "from-receiver"


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


async def test_concurrent_receivers_do_not_see_each_other(signal: Signal) -> None:
    """Each receiver starts from the caller's context as it was at the send."""
    first_set = anyio.Event()

    async def first(sender: object, **kwargs: Any) -> None:
        request_id.set("first")
        first_set.set()

    async def second(sender: object, **kwargs: Any) -> str:
        await first_set.wait()
        return request_id.get()

    signal.connect(first)
    signal.connect(second)
    request_id.set("caller")
    with anyio.fail_after(5):
        results = await signal.asend(None)
    assert results[1][1] == "caller"


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


async def test_robust_send_changes_flow_back(signal: Signal) -> None:
    """asend_robust merges like asend."""

    async def setter(sender: object, **kwargs: Any) -> None:
        other.set("robust")

    async def second(sender: object, **kwargs: Any) -> None:
        pass

    signal.connect(setter)
    signal.connect(second)
    await signal.asend_robust(None)
    assert other.get() == "robust"


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

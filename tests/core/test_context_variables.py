"""Context variables: receivers see the caller's context, and what they set flows
back to the caller in call order when the send ends, on every path (sync send,
send with async receivers, asend with one or several receivers, threads, inline,
robust, receivers finishing in the sending task or as tasks).
"""

from __future__ import annotations

import contextvars
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.to_thread
import pytest

from asignal import Signal

pytestmark = pytest.mark.anyio

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id")
counter: contextvars.ContextVar[int] = contextvars.ContextVar("counter", default=0)
winner: contextvars.ContextVar[str] = contextvars.ContextVar("winner", default="")
other: contextvars.ContextVar[str] = contextvars.ContextVar("other")
var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")


def sync_reader(sender: object, **kwargs: Any) -> str:
    value = request_id.get("unset")
    counter.set(counter.get() + 1)
    return value


async def async_reader(sender: object, **kwargs: Any) -> str:
    await anyio.sleep(0)
    value = request_id.get("unset")
    counter.set(counter.get() + 10)
    return value


def _fresh_context() -> contextvars.Context:
    return contextvars.Context()


@pytest.mark.parametrize(
    ("receivers", "expected"),
    [([sync_reader], 1), ([sync_reader, sync_reader], 2)],
    ids=["one-sync", "two-sync"],
)
def test_sync_send_sees_and_returns_context(
    receivers: list[Any], expected: int
) -> None:
    """send() with sync receivers: they see the caller's values and the caller
    sees their changes; sequential receivers see each other's."""
    sig = Signal()
    for index, fn in enumerate(receivers):
        sig.connect(fn, dispatch_uid=index)

    def run() -> None:
        request_id.set("req-1")
        assert [r for _, r in sig.send(None)] == ["req-1"] * len(receivers)
        assert counter.get() == expected

    _fresh_context().run(run)


@pytest.mark.parametrize("method", ["send", "send_robust"])
def test_send_with_async_receivers_on_kept_loop(method: str) -> None:
    """From a thread without a loop, async receivers on the kept loop see the
    caller's context and their changes come back."""
    sig = Signal()
    sig.connect(async_reader)
    sig.connect(sync_reader)

    def run() -> None:
        request_id.set("req-2")
        results = getattr(sig, method)(None)
        assert [r for _, r in results] == ["req-2", "req-2"]
        assert counter.get() == 11  # async +10, then sync +1 on top

    _fresh_context().run(run)


async def test_send_from_worker_thread_returns_context() -> None:
    """From an anyio worker thread, async receivers on the host loop see the
    thread's context and their changes come back to that thread."""
    sig = Signal()
    sig.connect(async_reader)

    def endpoint() -> int:
        request_id.set("req-3")
        assert [r for _, r in sig.send(None)] == ["req-3"]
        return counter.get()

    assert await anyio.to_thread.run_sync(endpoint) == 10


Setup = Callable[[Signal], None]


def _one_async(sig: Signal) -> None:
    sig.connect(async_reader)


def _two_async(sig: Signal) -> None:
    sig.connect(async_reader)
    sig.connect(async_reader, dispatch_uid="second")


def _sync_thread(sig: Signal) -> None:
    sig.connect(sync_reader)


def _sync_inline(sig: Signal) -> None:
    sig.connect(sync_reader, inline=True)


def _mixed(sig: Signal) -> None:
    sig.connect(sync_reader)
    sig.connect(async_reader)
    sig.connect(sync_reader, inline=True, dispatch_uid="inline")


@pytest.mark.parametrize("method", ["asend", "asend_robust"])
@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        (_one_async, 10),
        (_two_async, 10),
        (_sync_thread, 1),
        (_sync_inline, 1),
        (_mixed, 1),
    ],
    ids=["one-async-fast-path", "two-async", "sync-thread", "sync-inline", "mixed"],
)
async def test_asend_sees_and_returns_context(
    method: str, setup: Setup, expected: int
) -> None:
    """asend/asend_robust: every receiver sees the caller's values; each runs in
    its own copy (concurrent receivers do not see each other's changes), and the
    changes are copied back in call order, so the last receiver's value wins."""
    sig = Signal()
    setup(sig)
    request_id.set("req-4")
    counter.set(0)
    send: Callable[..., Awaitable[list[tuple[Any, Any]]]] = getattr(sig, method)
    results = await send(None)
    assert all(r == "req-4" for _, r in results)
    assert counter.get() == expected


async def test_concurrent_receivers_are_isolated_and_merged_in_call_order() -> None:
    """Two concurrent receivers do not see each other's writes; the caller ends
    with the value of the later one in call order, even if it finished first."""
    sig = Signal()
    first_wrote = anyio.Event()
    seen: dict[str, str] = {}

    async def first(sender: object, **kwargs: Any) -> None:
        winner.set("first")
        first_wrote.set()
        await anyio.sleep(0.05)  # finishes last
        seen["first"] = winner.get()

    async def second(sender: object, **kwargs: Any) -> None:
        await first_wrote.wait()
        seen["second"] = winner.get()
        winner.set("second")

    sig.connect(first)
    sig.connect(second)
    winner.set("caller")
    with anyio.fail_after(5):
        await sig.asend(None)
    assert seen == {"first": "first", "second": "caller"}
    assert winner.get() == "second"


async def test_changes_flow_back_even_when_the_send_fails() -> None:
    """A receiver that sets a variable and fails still leaves its change, on the
    a receiver alone and beside another alike."""
    for extra in (False, True):
        sig = Signal()

        async def sets_then_fails(sender: object, **kwargs: Any) -> None:
            await anyio.sleep(0)
            winner.set("failed-receiver")
            raise ValueError("after setting")

        sig.connect(sets_then_fails)
        if extra:
            sig.connect(async_reader)
        winner.set("caller")
        with pytest.raises(ValueError, match="after setting"):
            await sig.asend(None)
        assert winner.get() == "failed-receiver"


async def test_receiver_changes_do_not_leak_into_other_tasks() -> None:
    """Changes come back to the sending task only, not to a sibling task."""
    sig = Signal()

    async def sets(sender: object, **kwargs: Any) -> None:
        winner.set("from-receiver")

    sig.connect(sets)
    sig.connect(sync_reader)
    sibling_saw: list[str] = []
    sent = anyio.Event()

    async def sibling() -> None:
        await sent.wait()
        sibling_saw.append(winner.get())

    winner.set("caller")
    async with anyio.create_task_group() as tg:
        tg.start_soon(sibling)
        await sig.asend(None)
        sent.set()
    assert winner.get() == "from-receiver"
    assert sibling_saw == ["caller"]


async def test_changes_flow_back_in_call_order_not_finishing_order(
    signal: Signal,
) -> None:
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


async def test_other_receivers_changes_flow_back_when_one_fails(signal: Signal) -> None:
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


async def test_context_is_the_same_on_both_paths(signal: Signal) -> None:
    """Inline and task receivers each start from the caller's context and their
    changes flow back in call order."""
    gate = anyio.Event()

    async def inline_setter(sender: object, **kwargs: Any) -> str:
        seen = var.get()
        var.set("inline")
        return seen

    async def parked(sender: object, **kwargs: Any) -> str:
        seen = var.get()
        await gate.wait()
        var.set("parked")
        return seen

    async def task(sender: object, **kwargs: Any) -> str:
        seen = var.get()
        gate.set()
        return seen

    signal.connect(inline_setter)
    signal.connect(parked)
    signal.connect(task)
    var.set("caller")
    with anyio.fail_after(5):
        results = await signal.asend(None)
    assert [r for _, r in results] == ["caller", "caller", "caller"]
    assert var.get() == "parked"

"""asend(): concurrency, threads, order, failures, cancellation, timeouts.

Every test runs on asyncio and on trio.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

import anyio
import anyio.to_thread
import pytest

from asignal import Signal

if sys.version_info < (3, 11):
    from exceptiongroup import ExceptionGroup

pytestmark = pytest.mark.anyio


async def test_sender_positional_or_keyword(signal: Signal) -> None:
    """asend(MyModel, ...) and asend(sender=MyModel, ...) both work."""

    async def handler(sender: object, **kwargs: Any) -> object:
        return sender

    signal.connect(handler)
    assert await signal.asend(int) == [(handler, int)]
    assert await signal.asend(sender=str, instance=1) == [(handler, str)]
    with pytest.raises(TypeError, match="needs the sender"):
        await signal.asend(instance=1)


async def test_payload_may_use_receiver_and_weak(signal: Signal) -> None:
    """receiver= and weak= are payload keys; timeout= is asend's option."""

    async def handler(sender: object, **kwargs: Any) -> dict[str, Any]:
        return kwargs

    signal.connect(handler)
    ((_, got),) = await signal.asend(None, receiver=1, weak=2, timeout=5)
    assert got == {"signal": signal, "receiver": 1, "weak": 2}


async def test_single_async_receiver(signal: Signal) -> None:
    """The one-receiver fast path returns the result like the general path."""

    async def handler(sender: object, **kwargs: Any) -> int:
        await anyio.sleep(0)
        return 7

    signal.connect(handler)
    assert await signal.asend(None) == [(handler, 7)]
    assert await signal.asend(None, timeout=5) == [(handler, 7)]


async def test_thread_limit_accepts_a_shared_limiter() -> None:
    """A CapacityLimiter passed as thread_limit is used as is."""
    limiter = anyio.CapacityLimiter(3)
    assert Signal(thread_limit=limiter).thread_limiter is limiter
    with pytest.raises(ValueError, match="at least 1"):
        Signal(thread_limit=0)


async def test_results_in_call_order_whatever_finishes_first(signal: Signal) -> None:
    """Results follow priority then connection order, not completion order."""
    release = anyio.Event()

    async def slow(sender: object, **kwargs: Any) -> str:
        await release.wait()
        return "slow"

    def middle(sender: object, **kwargs: Any) -> str:
        return "sync"

    async def fast(sender: object, **kwargs: Any) -> str:
        release.set()
        return "fast"

    async def first(sender: object, **kwargs: Any) -> str:
        await anyio.sleep(0)
        return "first"

    signal.connect(slow)
    signal.connect(middle)
    signal.connect(fast)
    signal.connect(first, priority=1)
    with anyio.fail_after(5):
        results = await signal.asend(None)
    assert results == [
        (first, "first"),
        (slow, "slow"),
        (middle, "sync"),
        (fast, "fast"),
    ]


async def test_sync_failure_in_thread_raised_as_itself(signal: Signal) -> None:
    """A sync receiver's error in a worker thread propagates as itself."""

    def fails(sender: object, **kwargs: Any) -> None:
        raise KeyError("sync")

    async def fine(sender: object, **kwargs: Any) -> None:
        await anyio.sleep(0)

    signal.connect(fails)
    signal.connect(fine)
    with pytest.raises(KeyError, match="sync"):
        await signal.asend(None)


async def test_several_failures_raise_an_exception_group(signal: Signal) -> None:
    """Two receivers that fail give an ExceptionGroup holding both errors."""

    async def fails_first(sender: object, **kwargs: Any) -> None:
        await anyio.sleep(0)
        raise ValueError("first")

    async def fails_when_cancelled(sender: object, **kwargs: Any) -> None:
        try:
            await anyio.sleep_forever()
        finally:
            raise KeyError("second")  # a second, deterministic failure

    signal.connect(fails_when_cancelled)
    signal.connect(fails_first)
    with anyio.fail_after(5), pytest.raises(ExceptionGroup) as info:
        await signal.asend(None)
    kinds = sorted(type(exc).__name__ for exc in info.value.exceptions)
    assert kinds == ["KeyError", "ValueError"]


async def test_cancelling_the_caller_cancels_every_receiver(signal: Signal) -> None:
    """Cancelling the caller's scope cancels all receivers; none keeps running,
    and the cancellation is absorbed by the caller's scope, not by asend."""
    finished: list[int] = []
    started = 0
    all_started = anyio.Event()

    def make(index: int) -> Any:
        async def handler(sender: object, **kwargs: Any) -> None:
            nonlocal started
            try:
                started += 1
                if started == 3:
                    all_started.set()
                await anyio.sleep_forever()
            finally:
                finished.append(index)

        return handler

    for index in range(3):
        signal.connect(make(index), weak=False)
    after = False
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:

            async def send() -> None:
                nonlocal after
                await signal.asend(None)
                after = True  # never reached

            tg.start_soon(send)
            await all_started.wait()
            tg.cancel_scope.cancel()
    assert sorted(finished) == [0, 1, 2]
    assert after is False


@pytest.mark.parametrize("method", ["asend", "asend_robust"])
async def test_cancelled_send_waits_for_a_sync_receiver_thread(
    signal: Signal, method: str
) -> None:
    """A thread cannot be interrupted: a cancelled asend returns only after the
    sync receiver in its thread has returned, so nothing is left running; then
    the cancellation propagates (it is not lost, on either backend)."""
    entered = threading.Event()
    release = threading.Event()
    returned = threading.Event()

    def blocking(sender: object, **kwargs: Any) -> None:
        entered.set()
        release.wait(10)
        time.sleep(0.1)  # still busy well after the cancellation
        returned.set()

    signal.connect(blocking)
    reached_after = False
    with anyio.fail_after(10):
        with anyio.CancelScope() as scope:

            async def watcher() -> None:
                await anyio.to_thread.run_sync(entered.wait, 10)
                scope.cancel()
                release.set()

            async with anyio.create_task_group() as tg:
                tg.start_soon(watcher)
                await getattr(signal, method)(None)
                reached_after = True
        assert scope.cancelled_caught
    assert returned.is_set()
    assert reached_after is False


async def test_timeout_cancels_and_raises_timeout_error(signal: Signal) -> None:
    """timeout= cancels slow receivers and raises TimeoutError."""
    cancelled = anyio.Event()

    async def slow(sender: object, **kwargs: Any) -> None:
        try:
            await anyio.sleep(10)
        finally:
            cancelled.set()

    async def quick(sender: object, **kwargs: Any) -> str:
        return "quick"

    signal.connect(slow)
    signal.connect(quick)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await signal.asend(None, timeout=0.05)
    assert cancelled.is_set()
    assert time.monotonic() - started < 5  # it did not wait for the sleep


async def test_timeout_on_single_receiver_fast_path(signal: Signal) -> None:
    """The one-receiver fast path honours timeout= too."""

    async def slow(sender: object, **kwargs: Any) -> None:
        await anyio.sleep(10)

    signal.connect(slow)
    with pytest.raises(TimeoutError):
        await signal.asend(None, timeout=0.05)


async def test_timeout_with_late_sync_thread_is_still_a_timeout(
    signal: Signal,
) -> None:
    """A sync receiver in a thread that returns after the deadline makes asend
    raise TimeoutError (after waiting for the thread), on every backend."""

    def slow(sender: object, **kwargs: Any) -> str:
        time.sleep(0.2)
        return "late"

    signal.connect(slow)
    with pytest.raises(TimeoutError):
        await signal.asend(None, timeout=0.05)


async def test_no_timeout_when_receivers_are_quick(signal: Signal) -> None:
    """A generous timeout changes nothing when receivers finish in time."""

    async def quick(sender: object, **kwargs: Any) -> str:
        await anyio.sleep(0)
        return "quick"

    def sync(sender: object, **kwargs: Any) -> str:
        return "sync"

    signal.connect(quick)
    signal.connect(sync)
    assert [r for _, r in await signal.asend(None, timeout=10)] == ["quick", "sync"]


async def test_receiver_connecting_during_asend_does_not_join_it(
    signal: Signal,
) -> None:
    """A receiver connected by a receiver mid-send is called from the next send."""

    async def late(sender: object, **kwargs: Any) -> str:
        return "late"

    async def connects(sender: object, **kwargs: Any) -> str:
        signal.connect(late)
        signal.disconnect(connects)
        return "connects"

    async def other(sender: object, **kwargs: Any) -> str:
        await anyio.sleep(0)
        return "other"

    signal.connect(connects)
    signal.connect(other)
    assert [r for _, r in await signal.asend(None)] == ["connects", "other"]
    assert [r for _, r in await signal.asend(None)] == ["other", "late"]


async def test_async_callable_instance_is_awaited(signal: Signal) -> None:
    """An instance with async __call__ is detected as async and awaited."""

    class Handler:
        async def __call__(self, sender: object, **kwargs: Any) -> str:
            await anyio.sleep(0)
            return "instance"

    handler = Handler()
    signal.connect(handler)
    assert await signal.asend(None) == [(handler, "instance")]
    assert signal.describe()[0].is_async


async def test_async_receiver_entering_cancel_scope_in_first_step(
    signal: Signal,
) -> None:
    """Receivers that open cancel scopes and task groups before suspending work
    beside others (the inline first-step machinery keeps scopes in order)."""

    async def scoped(sender: object, **kwargs: Any) -> str:
        with anyio.move_on_after(5):
            async with anyio.create_task_group() as tg:
                tg.start_soon(anyio.sleep, 0)
                await anyio.sleep(0.01)
        return "scoped"

    async def also_scoped(sender: object, **kwargs: Any) -> str:
        with anyio.fail_after(5):
            await anyio.sleep(0)
        return "also"

    def sync(sender: object, **kwargs: Any) -> str:
        return "sync"

    signal.connect(scoped)
    signal.connect(sync)
    signal.connect(also_scoped)
    for _ in range(3):
        results = await signal.asend(None)
        assert [r for _, r in results] == ["scoped", "sync", "also"]
        results = await signal.asend(None, timeout=5)
        assert [r for _, r in results] == ["scoped", "sync", "also"]


@pytest.mark.parametrize("method", ["asend", "asend_robust"])
async def test_sender_given_twice_is_refused(signal: Signal, method: str) -> None:
    """asend(A, sender=B) raises a TypeError before any receiver runs."""

    async def handler(sender: object, **kwargs: Any) -> None:
        raise AssertionError("not called")

    signal.connect(handler)
    with pytest.raises(TypeError, match="sender twice"):
        await getattr(signal, method)(int, sender=int)


async def test_default_thread_limit_is_per_signal_and_40() -> None:
    """Each signal has its own limiter, with anyio's default of 40 tokens."""
    first, second = Signal(), Signal()
    assert first.thread_limiter.total_tokens == 40
    assert first.thread_limiter is first.thread_limiter
    assert first.thread_limiter is not second.thread_limiter


async def test_single_async_receiver_needs_no_task_group(
    signal: Signal, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Exactly one async receiver is awaited directly, in the caller's task: no
    task group is created, with or without timeout=."""
    caller = anyio.get_current_task().id
    ran_in: list[int] = []

    async def handler(sender: object, **kwargs: Any) -> str:
        await anyio.sleep(0)
        ran_in.append(anyio.get_current_task().id)
        return "direct"

    def no_task_group() -> Any:
        raise AssertionError("a task group was created")

    signal.connect(handler)
    monkeypatch.setattr(anyio, "create_task_group", no_task_group)
    assert await signal.asend(None) == [(handler, "direct")]
    assert await signal.asend(None, timeout=5) == [(handler, "direct")]
    assert ran_in == [caller, caller]

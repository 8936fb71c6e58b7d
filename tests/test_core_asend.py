"""asend() and asend_robust(): concurrency, order, failures, cancellation, timeouts.

Every test runs on asyncio and on trio.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

import anyio
import pytest

from asignal import Signal

if sys.version_info < (3, 11):
    from exceptiongroup import ExceptionGroup

pytestmark = pytest.mark.anyio


async def test_nothing_connected(signal: Signal) -> None:
    """asend with no receivers returns []."""
    assert await signal.asend(None) == []
    assert await signal.asend(sender=None, timeout=1) == []
    assert await signal.asend_robust(None) == []


async def test_async_receivers_run_concurrently(signal: Signal) -> None:
    """Each receiver waits for all the others to have started: only concurrency
    lets this finish."""
    started = 0
    all_started = anyio.Event()

    def make_waiter() -> Any:
        async def waiter(sender: object, **kwargs: Any) -> str:
            nonlocal started
            started += 1
            if started == 3:
                all_started.set()
            await all_started.wait()
            return "done"

        return waiter

    for _ in range(3):
        signal.connect(make_waiter(), weak=False)
    with anyio.fail_after(5):
        results = await signal.asend(None)
    assert [result for _, result in results] == ["done"] * 3


async def test_eight_blocking_sync_receivers_run_at_once(signal: Signal) -> None:
    """Sync receivers run in worker threads concurrently: a barrier of 8 passes."""
    barrier = threading.Barrier(8, timeout=10)
    threads: set[int] = set()
    receivers = []
    for i in range(8):

        def blocking(sender: object, _i: int = i, **kwargs: Any) -> int:
            threads.add(threading.get_ident())
            barrier.wait()
            return _i

        receivers.append(blocking)
        signal.connect(blocking)
    results = await signal.asend(None)
    assert [r for _, r in results] == list(range(8))
    assert len(threads) == 8
    assert threading.get_ident() not in threads


async def test_sync_and_async_receivers_overlap(signal: Signal) -> None:
    """A sync receiver in its thread waits for an async receiver on the loop."""
    from_loop = threading.Event()

    def sync(sender: object, **kwargs: Any) -> str:
        assert from_loop.wait(10)
        return "sync"

    async def set_it(sender: object, **kwargs: Any) -> str:
        await anyio.sleep(0)
        from_loop.set()
        return "async"

    signal.connect(sync)
    signal.connect(set_it)
    assert [r for _, r in await signal.asend(None)] == ["sync", "async"]


async def test_thread_limit_bounds_concurrent_threads() -> None:
    """Signal(thread_limit=1) runs its sync receivers one at a time."""
    signal = Signal(thread_limit=1)
    running = 0
    peak = 0
    lock = threading.Lock()
    receivers = []
    for _ in range(4):

        def work(sender: object, **kwargs: Any) -> None:
            nonlocal running, peak
            with lock:
                running += 1
                peak = max(peak, running)
            threading.Event().wait(0.01)
            with lock:
                running -= 1

        receivers.append(work)
        signal.connect(work)
    await signal.asend(None)
    assert peak == 1
    assert signal.thread_limiter.total_tokens == 1


async def test_inline_sync_receiver_runs_on_the_loop_thread(signal: Signal) -> None:
    """inline=True keeps a cheap sync receiver off the thread pool."""
    loop_thread = threading.get_ident()

    def cheap(sender: object, **kwargs: Any) -> int:
        return threading.get_ident()

    def threaded(sender: object, **kwargs: Any) -> int:
        return threading.get_ident()

    signal.connect(cheap, inline=True)
    signal.connect(threaded)
    (_, inline_ident), (_, thread_ident) = await signal.asend(None)
    assert inline_ident == loop_thread
    assert thread_ident != loop_thread


async def test_one_failure_raised_as_itself_and_cancels_siblings(
    signal: Signal,
) -> None:
    """The failing receiver's exception is re-raised as itself; the others are
    cancelled rather than left running."""
    cancelled = anyio.Event()

    async def sleeper(sender: object, **kwargs: Any) -> None:
        try:
            await anyio.sleep_forever()
        finally:
            cancelled.set()

    async def failing(sender: object, **kwargs: Any) -> None:
        await anyio.sleep(0)
        raise ValueError("receiver failed")

    signal.connect(sleeper)
    signal.connect(failing)
    with anyio.fail_after(5), pytest.raises(ValueError, match="receiver failed"):
        await signal.asend(None)
    assert cancelled.is_set()


async def test_several_failures_raise_an_exception_group(signal: Signal) -> None:
    """Two receivers failing together surface as one ExceptionGroup."""
    both_started = anyio.Event()
    count = 0

    async def fail(sender: object, **kwargs: Any) -> None:
        nonlocal count
        # Shielded, so the first failure's cancellation cannot stop the second
        # receiver before it raises too.
        with anyio.CancelScope(shield=True):
            count += 1
            if count == 2:
                both_started.set()
            await both_started.wait()
        raise KeyError(count)

    async def fail2(sender: object, **kwargs: Any) -> None:
        await fail(sender)

    signal.connect(fail)
    signal.connect(fail2)
    with anyio.fail_after(5), pytest.raises(ExceptionGroup) as info:
        await signal.asend(None)
    assert [type(e) for e in info.value.exceptions] == [KeyError, KeyError]


async def test_single_async_receiver_failure_is_itself(signal: Signal) -> None:
    """The one-receiver fast path propagates the same way as the general path."""

    async def failing(sender: object, **kwargs: Any) -> None:
        raise ValueError("alone")

    signal.connect(failing)
    with pytest.raises(ValueError, match="alone"):
        await signal.asend(None)


async def test_sync_receiver_failure_under_asend(signal: Signal) -> None:
    """A sync receiver's exception in its worker thread propagates as itself."""

    def failing(sender: object, **kwargs: Any) -> None:
        raise LookupError("from a thread")

    signal.connect(failing)
    with pytest.raises(LookupError, match="from a thread"):
        await signal.asend(None)


async def test_receiver_sends_from_inside_asend(signal: Signal) -> None:
    """A receiver may asend the same signal again (re-entrancy)."""
    seen: list[int] = []

    async def recurse(sender: object, n: int, **kwargs: Any) -> int:
        seen.append(n)
        if n < 2:
            await signal.asend(sender, n=n + 1)
        return n

    signal.connect(recurse)
    assert await signal.asend(None, n=0) == [(recurse, 0)]
    assert seen == [0, 1, 2]

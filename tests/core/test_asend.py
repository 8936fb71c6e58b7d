"""asend(): concurrency, threads, order, the inline first steps, failures,
cancellation and timeouts (asend_robust(): test_robust.py).

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
    """One async receiver returns its result as with several, with or without
    timeout=."""

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


async def test_a_failure_during_cancellation_joins_an_exception_group(
    signal: Signal,
) -> None:
    """A receiver that fails while being cancelled by another's failure: the two
    errors together give an ExceptionGroup holding both errors."""

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


async def test_timeout_with_a_single_receiver(signal: Signal) -> None:
    """With one receiver, timeout= is honoured too."""

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
    beside others (their first steps run in the sending task; scopes still nest)."""

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
async def test_asend_refuses_the_sender_given_twice(
    signal: Signal, method: str
) -> None:
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


async def test_single_async_receiver_runs_in_the_sending_task(
    signal: Signal,
) -> None:
    """Exactly one async receiver runs in the caller's own task, even after it
    suspends, with or without timeout=."""
    caller = anyio.get_current_task().id
    ran_in: list[int] = []

    async def handler(sender: object, **kwargs: Any) -> str:
        await anyio.sleep(0)
        ran_in.append(anyio.get_current_task().id)
        return "direct"

    signal.connect(handler)
    assert await signal.asend(None) == [(handler, "direct")]
    assert await signal.asend(None, timeout=5) == [(handler, "direct")]
    assert ran_in == [caller, caller]


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
    """One async receiver's failure propagates as itself, as with several."""

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


async def test_non_suspending_receivers_run_in_the_sending_task(
    signal: Signal,
) -> None:
    """Receivers that return without suspending run in the caller's task."""
    caller = anyio.get_current_task().id
    tasks: list[int] = []

    def make() -> Any:
        async def r(sender: object, **kwargs: Any) -> int:
            tasks.append(anyio.get_current_task().id)
            return len(tasks)

        return r

    for _ in range(5):
        signal.connect(make(), weak=False)
    assert [r for _, r in await signal.asend(None)] == [1, 2, 3, 4, 5]
    assert tasks == [caller] * 5


async def test_first_suspender_stays_others_become_tasks(signal: Signal) -> None:
    """The first receiver to suspend finishes in the sending task; those after it
    run as tasks, concurrently with it."""
    caller = anyio.get_current_task().id
    later_started = anyio.Event()
    seen: dict[str, int] = {}

    async def first(sender: object, **kwargs: Any) -> str:
        await later_started.wait()  # needs `later` to run concurrently
        seen["first"] = anyio.get_current_task().id
        return "first"

    async def later(sender: object, **kwargs: Any) -> str:
        later_started.set()
        seen["later"] = anyio.get_current_task().id
        return "later"

    signal.connect(first)
    signal.connect(later)
    with anyio.fail_after(5):
        results = await signal.asend(None)
    assert results == [(first, "first"), (later, "later")]
    assert seen["first"] == caller
    assert seen["later"] != caller


async def test_cancel_scope_entered_before_suspending(signal: Signal) -> None:
    """A receiver that enters a cancel scope in its first step and exits it after
    suspending works (its scope and the task group nest correctly)."""

    async def scoped(sender: object, **kwargs: Any) -> str:
        with anyio.move_on_after(0.01) as scope:
            await anyio.sleep(5)
        return f"timed out: {scope.cancelled_caught}"

    async def other(sender: object, **kwargs: Any) -> str:
        await anyio.sleep(0)
        return "other"

    signal.connect(scoped)
    signal.connect(other)
    with anyio.fail_after(5):
        results = await signal.asend(None)
    assert [r for _, r in results] == ["timed out: True", "other"]


async def test_failure_after_a_suspended_receiver_cancels_it(signal: Signal) -> None:
    """An inline receiver failing while the first one is suspended: the suspended
    one is cancelled properly (its finally runs) and the failure propagates."""
    cleaned = anyio.Event()

    async def sleeper(sender: object, **kwargs: Any) -> None:
        try:
            await anyio.sleep_forever()
        finally:
            cleaned.set()

    def failing(sender: object, **kwargs: Any) -> None:
        raise ValueError("inline failure")

    signal.connect(sleeper)
    signal.connect(failing, inline=True)
    with anyio.fail_after(5), pytest.raises(ValueError, match="inline failure"):
        await signal.asend(None)
    assert cleaned.is_set()


async def test_inline_failure_stops_later_receivers(signal: Signal) -> None:
    """A receiver failing in its first step stops the receivers after it, which
    are never called (as if cancelled before they started)."""
    calls: list[str] = []

    async def failing(sender: object, **kwargs: Any) -> None:
        calls.append("failing")
        raise KeyError("first step")

    async def after(sender: object, **kwargs: Any) -> None:
        calls.append("after")

    signal.connect(failing)
    signal.connect(after)
    with pytest.raises(KeyError):
        await signal.asend(None)
    assert calls == ["failing"]


async def test_suspended_receiver_failure_cancels_tasks(signal: Signal) -> None:
    """When the receiver finishing in the sending task fails, the task receivers
    are cancelled and the failure is raised as itself."""
    cancelled = anyio.Event()

    async def failing(sender: object, **kwargs: Any) -> None:
        await anyio.sleep(0)
        raise LookupError("after suspending")

    async def sleeper(sender: object, **kwargs: Any) -> None:
        try:
            await anyio.sleep_forever()
        finally:
            cancelled.set()

    signal.connect(failing)
    signal.connect(sleeper)
    with anyio.fail_after(5), pytest.raises(LookupError):
        await signal.asend(None)
    assert cancelled.is_set()

"""Thread safety under concurrent connect/disconnect/send, and re-entrancy: a
receiver that changes the connections during a send does not disturb it.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable
from typing import Any

import anyio
import anyio.to_thread
import pytest

from asignal import Signal


def _run_threads(count: int, target: Callable[[int], None]) -> list[BaseException]:
    errors: list[BaseException] = []
    start = threading.Barrier(count, timeout=10)

    def wrapped(index: int) -> None:
        try:
            start.wait()
            target(index)
        except BaseException as exc:  # collected and asserted on by the test
            errors.append(exc)

    threads = [threading.Thread(target=wrapped, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not any(thread.is_alive() for thread in threads)
    return errors


def test_concurrent_connect_disconnect_send(signal: Signal) -> None:
    """Eight threads connecting, sending and disconnecting their own receivers at
    once never fail, never see a foreign sender's receiver, and leave it clean."""
    stable_calls = 0
    lock = threading.Lock()

    def stable(sender: object, **kwargs: Any) -> str:
        nonlocal stable_calls
        with lock:
            stable_calls += 1
        return "stable"

    signal.connect(stable)

    def worker(index: int) -> None:
        sender = object()

        def mine(sender: object, **kwargs: Any) -> int:
            return index

        for _ in range(300):
            signal.connect(mine, sender=sender)
            results = signal.send(sender)
            assert (mine, index) in results
            assert (stable, "stable") in results
            assert len(results) == 2
            assert signal.disconnect(mine, sender=sender) is True
            assert signal.send(sender) == [(stable, "stable")]

    assert _run_threads(8, worker) == []
    assert stable_calls == 8 * 300 * 2
    assert len(signal.receivers) == 1
    assert signal.live_receivers(None) == [stable]


def test_concurrent_weak_receivers_dying_while_sending(signal: Signal) -> None:
    """Receivers being collected in some threads while others send and connect
    cause no error and leave no dead entry behind."""

    class Handler:
        def method(self, sender: object, **kwargs: Any) -> None: ...

    def worker(index: int) -> None:
        for round_ in range(200):
            handler = Handler()
            signal.connect(handler.method)
            signal.send(None)
            signal.has_listeners()
            del handler
            if round_ % 50 == 0:
                gc.collect()
            signal.send_robust(None)

    assert _run_threads(6, worker) == []
    gc.collect()
    assert signal.receivers == []


def test_concurrent_priority_connects_keep_order(signal: Signal) -> None:
    """Receivers connected from many threads end up sorted by priority."""
    handlers: list[Any] = []

    def make(priority: int) -> Any:
        def handler(sender: object, **kwargs: Any) -> int:
            return priority

        return handler

    for priority in range(40):
        handlers.append(make(priority))

    def worker(index: int) -> None:
        for priority in range(index, 40, 4):
            signal.connect(handlers[priority], priority=priority)

    assert _run_threads(4, worker) == []
    assert [r for _, r in signal.send(None)] == list(range(39, -1, -1))


@pytest.mark.parametrize("method", ["send", "send_robust"])
def test_receivers_that_disconnect_themselves(signal: Signal, method: str) -> None:
    """Receivers disconnecting themselves (and another) during a send are all
    still called once, and the signal ends empty (Django's dispatch test)."""
    calls: list[str] = []

    def first(sender: object, **kwargs: Any) -> None:
        calls.append("first")
        signal.disconnect(first)
        signal.disconnect(third)

    def second(sender: object, **kwargs: Any) -> None:
        calls.append("second")
        signal.disconnect(second)

    def third(sender: object, **kwargs: Any) -> None:
        calls.append("third")

    for fn in (first, second, third):
        signal.connect(fn)
    getattr(signal, method)(None)
    assert calls == ["first", "second", "third"]
    assert signal.receivers == []
    assert getattr(signal, method)(None) == []


def test_receiver_connecting_during_send_is_not_called_in_it(signal: Signal) -> None:
    """A receiver connected mid-send (even with top priority) waits for the next."""
    calls: list[str] = []

    def newcomer(sender: object, **kwargs: Any) -> None:
        calls.append("newcomer")

    def connects(sender: object, **kwargs: Any) -> None:
        calls.append("connects")
        signal.connect(newcomer, priority=100)

    signal.connect(connects)
    signal.send(None)
    assert calls == ["connects"]
    signal.send(None)
    assert calls == ["connects", "newcomer", "connects"]


@pytest.mark.anyio
async def test_asend_receiver_disconnecting_itself(signal: Signal) -> None:
    """Under asend, self-disconnecting receivers (sync in threads, async) all run
    once and the signal ends empty."""
    calls: list[str] = []

    async def a(sender: object, **kwargs: Any) -> None:
        calls.append("a")
        signal.disconnect(a)
        await anyio.sleep(0)

    def s(sender: object, **kwargs: Any) -> None:
        calls.append("s")
        signal.disconnect(s)

    signal.connect(a)
    signal.connect(s)
    await signal.asend(None)
    assert sorted(calls) == ["a", "s"]
    assert signal.receivers == []


@pytest.mark.anyio
async def test_sends_from_many_threads_and_tasks_at_once(signal: Signal) -> None:
    """asend from tasks and send from worker threads run at once without
    interfering: every call gets exactly its own results."""

    async def echo(sender: object, value: int, **kwargs: Any) -> int:
        await anyio.sleep(0)
        return value

    def double(sender: object, value: int, **kwargs: Any) -> int:
        return value * 2

    signal.connect(echo)
    signal.connect(double)
    failures: list[tuple[int, Any]] = []

    async def via_task(value: int) -> None:
        results = [r for _, r in await signal.asend(None, value=value)]
        if results != [value, value * 2]:
            failures.append((value, results))

    def via_thread(value: int) -> None:
        results = [r for _, r in signal.send(None, value=value)]
        if results != [value, value * 2]:
            failures.append((value, results))

    async with anyio.create_task_group() as tg:
        for value in range(20):
            tg.start_soon(via_task, value)
            tg.start_soon(anyio.to_thread.run_sync, via_thread, 100 + value)
    assert failures == []


def test_send_snapshot_is_not_disturbed_by_other_threads(signal: Signal) -> None:
    """A send in progress calls exactly the receivers it started with, even if
    another thread disconnects one of them meanwhile."""
    entered = threading.Event()
    release = threading.Event()
    calls: list[str] = []

    def blocker(sender: object, **kwargs: Any) -> None:
        entered.set()
        release.wait(5)
        calls.append("blocker")

    def second(sender: object, **kwargs: Any) -> None:
        calls.append("second")

    signal.connect(blocker)
    signal.connect(second)
    thread = threading.Thread(target=signal.send, args=(None,))
    thread.start()
    assert entered.wait(5)
    signal.disconnect(second)
    release.set()
    thread.join(5)
    assert calls == ["blocker", "second"]
    assert signal.live_receivers(None) == [blocker]

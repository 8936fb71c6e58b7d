"""The blocking send() with async receivers, in its three situations."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import anyio
import anyio.to_thread
import pytest

from asignal import Signal


def current_loop_thread() -> int:
    return threading.get_ident()


def test_from_plain_thread_uses_one_kept_loop(signal: Signal) -> None:
    """With no loop in the calling thread, async receivers run on a loop asignal
    keeps: the same thread and the same loop for every call."""

    async def where(sender: object, **kwargs: Any) -> tuple[int, int]:
        await anyio.sleep(0)
        return threading.get_ident(), id(asyncio.get_running_loop())

    signal.connect(where)
    [(_, first)] = signal.send(None)
    [(_, second)] = signal.send(None)
    assert first == second
    assert first[0] != threading.get_ident()


def test_from_another_plain_thread_too(signal: Signal) -> None:
    """send() from a second non-loop thread also works and reuses the kept loop."""

    async def where(sender: object, **kwargs: Any) -> int:
        return threading.get_ident()

    signal.connect(where)
    [(_, here)] = signal.send(None)
    box: list[int] = []
    thread = threading.Thread(target=lambda: box.append(signal.send(None)[0][1]))
    thread.start()
    thread.join(10)
    assert box == [here]


def test_mixed_receivers_keep_call_order(signal: Signal) -> None:
    """Sync receivers run in the calling thread, async ones on the loop, and the
    results come back in call order."""
    caller = threading.get_ident()
    order: list[str] = []

    def sync_first(sender: object, **kwargs: Any) -> bool:
        order.append("sync_first")
        return threading.get_ident() == caller

    async def async_a(sender: object, **kwargs: Any) -> str:
        order.append("async_a")
        return "a"

    async def async_b(sender: object, **kwargs: Any) -> str:
        order.append("async_b")
        return "b"

    def sync_last(sender: object, **kwargs: Any) -> bool:
        order.append("sync_last")
        return threading.get_ident() == caller

    for r in (sync_first, async_a, async_b, sync_last):
        signal.connect(r)
    results = signal.send(None)
    assert results == [
        (sync_first, True),
        (async_a, "a"),
        (async_b, "b"),
        (sync_last, True),
    ]
    assert order[0] == "sync_first"
    assert order[-1] == "sync_last"


def test_neighbouring_async_receivers_run_concurrently(signal: Signal) -> None:
    """Async receivers next to each other are awaited together in one trip."""
    both = asyncio.Event  # created on the kept loop below
    state: dict[str, Any] = {}

    async def first(sender: object, **kwargs: Any) -> str:
        state.setdefault("event", both())
        state["first"] = True
        await asyncio.wait_for(state["event"].wait(), 5)
        return "first"

    async def second(sender: object, **kwargs: Any) -> str:
        state.setdefault("event", both())
        state["event"].set()
        return "second"

    signal.connect(first)
    signal.connect(second)
    assert [r for _, r in signal.send(None)] == ["first", "second"]


def test_async_failure_propagates_and_stops(signal: Signal) -> None:
    """The first exception propagates from send(); later receivers do not run."""
    calls: list[str] = []

    async def failing(sender: object, **kwargs: Any) -> None:
        raise ValueError("async failed")

    def after(sender: object, **kwargs: Any) -> None:
        calls.append("after")

    signal.connect(failing)
    signal.connect(after)
    with pytest.raises(ValueError, match="async failed"):
        signal.send(None)
    assert calls == []


def test_send_robust_with_async_receivers(signal: Signal) -> None:
    """send_robust() returns async receivers' failures as results."""

    async def failing(sender: object, **kwargs: Any) -> None:
        raise ValueError("async failed")

    async def fine(sender: object, **kwargs: Any) -> str:
        return "fine"

    signal.connect(failing)
    signal.connect(fine)
    results = signal.send_robust(None)
    assert isinstance(results[0][1], ValueError)
    assert results[1] == (fine, "fine")


@pytest.mark.anyio
async def test_from_a_worker_thread_runs_on_the_host_loop(
    signal: Signal, anyio_backend: str
) -> None:
    """From anyio.to_thread (sync endpoints), async receivers run on the host loop."""
    host_thread = threading.get_ident()

    async def where(sender: object, **kwargs: Any) -> int:
        await anyio.sleep(0)
        return threading.get_ident()

    signal.connect(where)
    results = await anyio.to_thread.run_sync(signal.send, None)
    assert results == [(where, host_thread)]


@pytest.mark.anyio
async def test_from_the_loop_thread_is_a_clear_error(
    signal: Signal, anyio_backend: str
) -> None:
    """send() on a thread running a loop, with an async receiver, names asend."""

    async def handler(sender: object, **kwargs: Any) -> None: ...

    signal.connect(handler)
    with pytest.raises(RuntimeError, match=r"await signal\.asend"):
        signal.send(None)
    with pytest.raises(RuntimeError, match=r"await signal\.asend"):
        signal.send_robust(None)


@pytest.mark.anyio
async def test_loop_thread_error_calls_no_receiver(
    signal: Signal, anyio_backend: str
) -> None:
    """The error is raised before any receiver runs, so nothing half-happens."""
    calls: list[str] = []

    def sync(sender: object, **kwargs: Any) -> None:
        calls.append("sync")

    async def handler(sender: object, **kwargs: Any) -> None: ...

    signal.connect(sync)
    signal.connect(handler)
    with pytest.raises(RuntimeError):
        signal.send(None)
    assert calls == []

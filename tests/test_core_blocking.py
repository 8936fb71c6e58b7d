"""The blocking send() with async receivers: call order across sync and async
receivers, failures, robust sends, and the refusal on a loop thread (where each
kind of thread runs them: test_send_blocking.py and test_core_trio_threads.py)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from asignal import Signal


def current_loop_thread() -> int:
    return threading.get_ident()


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

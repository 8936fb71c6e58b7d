"""send() meeting async receivers, from each kind of thread:

1. from a thread with no event loop: the loop asignal keeps (one, reused);
2. from an anyio worker thread: the host event loop (asyncio and trio);
3. from a trio worker thread (``trio.to_thread.run_sync``): the host trio run;
4. from a thread running an event loop: a RuntimeError that names ``asend``.

Also: call order across sync and async receivers, failures, robust sends.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import threading
from typing import Any

import anyio
import anyio.lowlevel
import anyio.to_thread
import pytest

from asignal import Signal

# The core_only session runs without trio.
trio: Any = (
    importlib.import_module("trio") if importlib.util.find_spec("trio") else None
)

NEEDS_TRIO = pytest.mark.skipif(trio is None, reason="trio is not installed")


def _backend() -> str:
    """The async library running this code: "asyncio" or "trio"."""
    name = anyio.lowlevel.current_token().backend_class.__name__
    return "trio" if name.startswith("Trio") else "asyncio"


def test_from_plain_thread_runs_on_one_kept_loop(signal: Signal) -> None:
    """Async receivers run to completion on one kept loop thread, reused by
    every call and every sending thread (never a new loop per call)."""
    seen: list[tuple[int, int]] = []

    async def handler(sender: object, **kwargs: Any) -> str:
        await anyio.sleep(0)
        import asyncio

        seen.append((threading.get_ident(), id(asyncio.get_running_loop())))
        return "done"

    signal.connect(handler)
    assert signal.send(None) == [(handler, "done")]
    assert signal.send_robust(None) == [(handler, "done")]

    def from_other_thread() -> None:
        signal.send(None)

    workers = [threading.Thread(target=from_other_thread) for _ in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert len(seen) == 5
    assert len(set(seen)) == 1
    assert seen[0][0] != threading.get_ident()


def test_from_plain_thread_async_error_propagates(signal: Signal) -> None:
    """An async receiver's exception reaches send()'s caller as itself."""

    async def fails(sender: object, **kwargs: Any) -> None:
        raise KeyError("async")

    signal.connect(fails)
    with pytest.raises(KeyError, match="async"):
        signal.send(None)
    (result,) = signal.send_robust(None)
    assert isinstance(result[1], KeyError)


def test_neighbouring_async_receivers_run_concurrently(signal: Signal) -> None:
    """The first async receiver waits for an event only the second one sets:
    send() finishes only because neighbours run concurrently."""
    events: list[anyio.Event] = []

    def event() -> anyio.Event:
        if not events:
            events.append(anyio.Event())
        return events[0]

    async def waits(sender: object, **kwargs: Any) -> str:
        with anyio.fail_after(5):
            await event().wait()
        return "waited"

    async def sets(sender: object, **kwargs: Any) -> str:
        event().set()
        return "set"

    signal.connect(waits)
    signal.connect(sets)
    assert [r for _, r in signal.send(None)] == ["waited", "set"]


@pytest.mark.anyio
async def test_from_worker_thread_runs_on_host_loop(signal: Signal) -> None:
    """From anyio.to_thread, async receivers run on the host loop's thread."""
    host = threading.get_ident()
    ran_on: list[int] = []
    backends: list[str] = []

    async def handler(sender: object, **kwargs: Any) -> str:
        ran_on.append(threading.get_ident())
        backends.append(_backend())
        await anyio.sleep(0)
        return "host"

    def sync_endpoint() -> list[tuple[Any, Any]]:
        assert threading.get_ident() != host
        return signal.send(None) + signal.send_robust(None)

    signal.connect(handler)
    results = await anyio.to_thread.run_sync(sync_endpoint)
    assert [r for _, r in results] == ["host", "host"]
    assert ran_on == [host, host]
    assert len(set(backends)) == 1


@pytest.mark.anyio
async def test_from_worker_thread_error_propagates(signal: Signal) -> None:
    """An async receiver's error raised on the host loop reaches the thread."""

    async def fails(sender: object, **kwargs: Any) -> None:
        raise LookupError("from host")

    signal.connect(fails)

    def sync_endpoint() -> None:
        signal.send(None)

    with pytest.raises(LookupError, match="from host"):
        await anyio.to_thread.run_sync(sync_endpoint)


@pytest.mark.anyio
@pytest.mark.parametrize("method", ["send", "send_robust"])
async def test_inside_running_loop_names_asend(signal: Signal, method: str) -> None:
    """send() on the loop's own thread with an async receiver raises a
    RuntimeError that points to `await signal.asend(...)`, before any receiver
    runs (not even a sync one connected first), so nothing half-happens."""
    calls: list[str] = []

    def sync(sender: object, **kwargs: Any) -> None:
        calls.append("sync")

    async def handler(sender: object, **kwargs: Any) -> None:
        calls.append("async")

    signal.connect(sync)
    signal.connect(handler)
    with pytest.raises(RuntimeError, match=r"await signal\.asend\(\.\.\.\)"):
        getattr(signal, method)(None)
    assert calls == []


@pytest.mark.anyio
async def test_inside_running_loop_sync_only_is_fine(signal: Signal) -> None:
    """With only sync receivers, send() works inside a running loop."""

    def handler(sender: object, **kwargs: Any) -> str:
        return "sync"

    signal.connect(handler)
    assert signal.send(None) == [(handler, "sync")]


def test_receiver_on_kept_loop_cannot_block_it(signal: Signal) -> None:
    """An async receiver that calls send() with async receivers from the kept
    loop gets the RuntimeError instead of deadlocking."""
    inner = Signal()

    async def inner_handler(sender: object, **kwargs: Any) -> None: ...

    async def outer_handler(sender: object, **kwargs: Any) -> None:
        inner.send(None)

    inner.connect(inner_handler)
    signal.connect(outer_handler)
    with pytest.raises(RuntimeError, match="asend"):
        signal.send(None)


def test_inside_loop_callback_names_asend(signal: Signal) -> None:
    """send() from a callback the asyncio loop runs (call_soon, outside any task)
    is on the loop's thread too: RuntimeError, not a blocked loop."""
    import asyncio

    async def handler(sender: object, **kwargs: Any) -> None: ...

    signal.connect(handler)

    async def main() -> BaseException | None:
        loop = asyncio.get_running_loop()
        outcome: asyncio.Future[BaseException | None] = loop.create_future()

        def callback() -> None:
            try:
                signal.send(None)
            except BaseException as exc:  # handed to the test through the future
                outcome.set_result(exc)
            else:
                outcome.set_result(None)

        loop.call_soon(callback)
        return await outcome

    error = asyncio.run(main())
    assert isinstance(error, RuntimeError)
    assert "asend" in str(error)


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


@pytest.mark.parametrize("anyio_backend", [pytest.param("trio", marks=NEEDS_TRIO)])
@pytest.mark.anyio
async def test_from_trio_thread_async_receivers_run_in_the_trio_host(
    signal: Signal,
) -> None:
    host = threading.get_ident()
    seen: list[tuple[str, int]] = []

    async def uses_trio(sender: object, **kwargs: Any) -> str:
        await trio.sleep(0)  # a trio-only call: would fail on an asyncio loop
        seen.append((_backend(), threading.get_ident()))
        return "done"

    signal.connect(uses_trio)
    results = await trio.to_thread.run_sync(lambda: signal.send(None, n=1))
    assert [r for _, r in results] == ["done"]
    assert seen == [("trio", host)]


@pytest.mark.parametrize("anyio_backend", [pytest.param("trio", marks=NEEDS_TRIO)])
@pytest.mark.anyio
async def test_from_trio_thread_a_failure_propagates(signal: Signal) -> None:
    async def broken(sender: object, **kwargs: Any) -> None:
        await trio.sleep(0)
        raise LookupError("no such row")

    signal.connect(broken)

    def send() -> str:
        try:
            signal.send(None)
        except LookupError as exc:
            return str(exc)
        return "nothing raised"

    assert await trio.to_thread.run_sync(send) == "no such row"


@pytest.mark.parametrize("anyio_backend", [pytest.param("trio", marks=NEEDS_TRIO)])
@pytest.mark.anyio
async def test_from_trio_thread_a_cancelled_host_stops_the_send(signal: Signal) -> None:
    calls: list[str] = []

    async def receiver(sender: object, **kwargs: Any) -> None:
        calls.append("called")

    signal.connect(receiver)
    started = trio.Event()
    outcome: list[str] = []

    def send_after_cancel() -> None:
        trio.from_thread.run_sync(started.set)
        while True:  # wait until the host's cancellation is visible here
            try:
                trio.from_thread.check_cancelled()
            except trio.Cancelled:
                break
        try:
            signal.send(None)
        except trio.Cancelled:
            outcome.append("cancelled")
            raise

    async with trio.open_nursery() as nursery:

        async def run() -> None:
            await trio.to_thread.run_sync(send_after_cancel)

        nursery.start_soon(run)
        await started.wait()
        nursery.cancel_scope.cancel()
    assert outcome == ["cancelled"]
    assert calls == []


def test_from_asyncio_to_thread_async_receivers_use_the_kept_loop() -> None:
    signal = Signal()
    loops: list[int] = []

    async def receiver(sender: object, **kwargs: Any) -> None:
        loops.append(threading.get_ident())

    signal.connect(receiver)

    async def main() -> int:
        await asyncio.to_thread(signal.send, None)
        return threading.get_ident()

    host = asyncio.run(main())
    assert len(loops) == 1
    assert loops[0] != host

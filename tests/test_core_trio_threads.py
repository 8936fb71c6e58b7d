"""send() from a trio worker thread (``trio.to_thread.run_sync``, not anyio's):
async receivers run in the host trio run, not on asignal's kept asyncio loop.

trio-only by nature: on asyncio the equivalent thread (``asyncio.to_thread``) has no
way back to its loop, which the last test pins down.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
import sniffio
import trio

from asignal import Signal


@pytest.mark.parametrize("anyio_backend", ["trio"])
@pytest.mark.anyio
async def test_async_receivers_run_in_the_trio_host(signal: Signal) -> None:
    host = threading.get_ident()
    seen: list[tuple[str, int]] = []

    async def uses_trio(sender: object, **kwargs: Any) -> str:
        await trio.sleep(0)  # a trio-only call: would fail on an asyncio loop
        seen.append((sniffio.current_async_library(), threading.get_ident()))
        return "done"

    signal.connect(uses_trio)
    results = await trio.to_thread.run_sync(lambda: signal.send(None, n=1))
    assert [r for _, r in results] == ["done"]
    assert seen == [("trio", host)]


@pytest.mark.parametrize("anyio_backend", ["trio"])
@pytest.mark.anyio
async def test_a_failure_propagates_to_the_thread(signal: Signal) -> None:
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


@pytest.mark.parametrize("anyio_backend", ["trio"])
@pytest.mark.anyio
async def test_a_cancelled_host_stops_the_send(signal: Signal) -> None:
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


def test_asyncio_to_thread_threads_use_the_kept_loop() -> None:
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

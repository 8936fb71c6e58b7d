"""Async scenarios A1-A4 (on asyncio and on trio), A1p-A2p (A1-A2 with a
post_save-shaped payload), and A5 (blocking send, async receivers).

Floors, measured in the same rounds: ``sequential await`` of the receivers'
coroutines (the ratio base for A1/A2; for A1p/A2p it is the async contract floor: a
function called like a send that builds the receivers' keyword dict once per send and
collects ``(receiver, result)`` pairs), ``asyncio.gather``, ``asyncio.TaskGroup``
(asyncio only), an anyio task group (the ratio base for A3), and a thread pool (the
ratio base for A4). Peers run on asyncio only; trio rows are asignal's. pyee and
psygnal have no awaited async send, so they are ``n/a`` here.
"""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anyio
import anyio.to_thread
from _common import (
    Case,
    Cases,
    Settings,
    Tally,
    ainterleave,
    async_receivers,
    interleave,
    tally,
)

SENDER = object()
Receivers = Callable[[int, Tally | None], list[Callable[..., Any]]]


def _floors(
    make: Receivers,
    n: int,
    counting: bool,
    backend: str,
    sequential: bool = True,
    concurrent: bool = True,
) -> Cases:
    sig = object()
    kw = {"signal": sig, "sender": SENDER}
    cases: Cases = {}

    def case(body: Callable[[list[Any]], Callable[[], Any]]) -> Case:
        t = tally(n, counting)
        recs = make(n, t)
        return Case(body(recs), t, n, recs)

    if sequential:

        def seq(recs: list[Any]) -> Callable[[], Any]:
            async def run() -> None:
                for r in recs:
                    await r(**kw)

            return run

        cases["sequential await"] = case(seq)
    if not concurrent:
        return cases

    def anyio_tg(recs: list[Any]) -> Callable[[], Any]:
        async def run() -> None:
            async with anyio.create_task_group() as tg:
                for r in recs:
                    tg.start_soon(functools.partial(r, **kw))

        return run

    cases["anyio task group"] = case(anyio_tg)
    cases["asyncio.gather"] = cases["asyncio.TaskGroup"] = None
    if backend == "asyncio":

        def gather(recs: list[Any]) -> Callable[[], Any]:
            async def run() -> None:
                await asyncio.gather(*(r(**kw) for r in recs))

            return run

        cases["asyncio.gather"] = case(gather)
        task_group: Any = getattr(asyncio, "TaskGroup", None)  # Python 3.11+
        if task_group is not None:

            def taskgroup(recs: list[Any]) -> Callable[[], Any]:
                async def run() -> None:
                    async with task_group() as tg:
                        for r in recs:
                            tg.create_task(r(**kw))

                return run

            cases["asyncio.TaskGroup"] = case(taskgroup)
    return cases


def _contract_floor(n: int, counting: bool, payload: dict[str, Any]) -> Cases:
    """The async contract floor with a payload (A1p/A2p's ratio base)."""
    t = tally(n, counting)
    recs: list[Callable[..., Any]] = async_receivers(n, t)
    sig = object()

    async def send(sender: object, /, **named: object) -> list[tuple[object, object]]:
        kw = {"signal": sig, "sender": sender, **named}
        return [(r, await r(**kw)) for r in recs]

    fn = functools.partial(send, SENDER, **payload)
    return {"sequential await": Case(fn, t, n, recs)}


def _libraries(
    make: Receivers,
    n: int,
    backend: str,
    s: Settings,
    counting: bool,
    thread: bool = False,
    payload: dict[str, Any] | None = None,
) -> Cases:
    """asignal (and the baseline) and the peers' awaited sends, each with its own
    receivers."""
    cases: Cases = {}
    kw = payload or {}

    def build(
        sig: Any, connect: str = "connect"
    ) -> tuple[Any, Tally | None, list[Any]]:
        t = tally(n, counting)
        recs = make(n, t)
        for r in recs:
            getattr(sig, connect)(r)
        return sig, t, recs

    for label, signal_class in s.signals.items():
        sig, t, recs = build(signal_class())
        cases[label] = Case(functools.partial(sig.asend, SENDER, **kw), t, n, recs)
    cases["django"] = cases["blinker"] = cases["aiosignal"] = None
    if backend != "asyncio":
        return cases
    django, blinker, aiosignal = (
        s.peer("django.dispatch"),
        s.peer("blinker"),
        s.peer("aiosignal"),
    )
    if django is not None:
        sig, t, recs = build(django.Signal())
        cases["django"] = Case(functools.partial(sig.asend, SENDER, **kw), t, n, recs)
    if blinker is not None:
        sig, t, recs = build(blinker.Signal())
        wrap = _to_thread_wrapper if thread else None
        send = functools.partial(sig.send_async, SENDER, _sync_wrapper=wrap, **kw)
        cases["blinker"] = Case(send, t, n, recs)
    if aiosignal is not None and not thread:  # aiosignal awaits coroutines only
        sig, t, recs = build(aiosignal.Signal(owner=None), "append")
        sig.freeze()
        cases["aiosignal"] = Case(functools.partial(sig.send, SENDER, **kw), t, n, recs)
    return cases


def _to_thread_wrapper(f: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
    """blinker's ``_sync_wrapper``: run a sync receiver in a worker thread."""

    async def inner(*args: Any, **kwargs: Any) -> Any:
        return await anyio.to_thread.run_sync(functools.partial(f, *args, **kwargs))

    return inner


def _sleepers(n: int, t: Tally | None) -> list[Callable[..., Any]]:
    def make(i: int) -> Callable[..., Coroutine[Any, Any, None]]:
        async def r(*args: object, **kwargs: object) -> None:
            await anyio.sleep(0.01)
            if t is not None:
                t.hit(i)

        return r

    return [make(i) for i in range(n)]


def _blockers(n: int, t: Tally | None) -> list[Callable[..., Any]]:
    def make(i: int) -> Callable[..., None]:
        def r(*args: object, **kwargs: object) -> None:
            time.sleep(0.01)
            if t is not None:
                t.hit(i)

        return r

    return [make(i) for i in range(n)]


async def _scenarios(
    backend: str, s: Settings, payload: dict[str, Any], pool: ThreadPoolExecutor
) -> tuple[dict[str, Any], dict[str, dict[int, float]]]:
    out: dict[str, Any] = {}
    curve: dict[str, dict[int, float]] = {}
    sizes = (1, 10) if s.quick else (1, 10, 100)
    for n in sizes:

        def plain(counting: bool, n: int = n) -> Cases:
            cases = _floors(async_receivers, n, counting, backend)
            cases.update(_libraries(async_receivers, n, backend, s, counting))
            return cases

        res = await ainterleave(plain, "sequential await", s)
        if n in (1, 10):
            out["A1" if n == 1 else "A2"] = {"receivers": n, **res}
        for name, cell in res.items():
            if name != "pairs" and cell is not None:
                curve.setdefault(name, {})[n] = cell["us"]
    for n, label in ((1, "A1p"), (10, "A2p")):

        def with_payload(counting: bool, n: int = n) -> Cases:
            cases = _contract_floor(n, counting, payload)
            cases.update(
                _libraries(async_receivers, n, backend, s, counting, payload=payload)
            )
            return cases

        res = await ainterleave(with_payload, "sequential await", s)
        out[label] = {"receivers": n, "payload": "post_save", **res}

    def sleepers(counting: bool) -> Cases:
        cases = _floors(_sleepers, 50, counting, backend, sequential=False)
        cases.update(_libraries(_sleepers, 50, backend, s, counting))
        return cases

    res = await ainterleave(sleepers, "anyio task group", s, slow=True)
    out["A3"] = {"receivers": 50, **res}

    def blockers(counting: bool) -> Cases:
        kw = {"signal": None, "sender": SENDER}
        t1, t2 = tally(8, counting), tally(8, counting)
        pooled, threaded = _blockers(8, t1), _blockers(8, t2)

        async def thread_pool() -> None:
            list(pool.map(lambda r: r(**kw), pooled))

        async def anyio_threads() -> None:
            async with anyio.create_task_group() as tg:
                for r in threaded:
                    tg.start_soon(functools.partial(anyio.to_thread.run_sync, r, None))

        cases: Cases = {
            "thread pool": Case(thread_pool, t1, 8, pooled),
            "anyio task group": Case(anyio_threads, t2, 8, threaded),
        }
        cases.update(_libraries(_blockers, 8, backend, s, counting, thread=True))
        return cases

    res = await ainterleave(blockers, "thread pool", s, slow=True)
    out["A4"] = {"receivers": 8, **res}
    return out, curve


def run_async(
    backend: str, s: Settings, payload: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, dict[int, float]]]:
    """A1-A4 and A1p-A2p on ``backend``: rows, and the async send-cost curve."""
    with ThreadPoolExecutor(8) as pool:
        return anyio.run(_scenarios, backend, s, payload, pool, backend=backend)


def run_blocking(s: Settings) -> dict[str, Any]:
    """A5: ``send()`` from plain sync code (no running loop) to 10 async receivers.

    Floor: ``asyncio.run_coroutine_threadsafe`` of sequential awaits on an event loop
    already running in another thread (the least a sync caller can pay to reach a
    loop).
    """
    n = 10
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    def make(counting: bool) -> Cases:
        ft = tally(n, counting)
        floor_recs = async_receivers(n, ft)

        async def seq() -> None:
            for r in floor_recs:
                await r(signal=None, sender=SENDER)

        def floor() -> None:
            asyncio.run_coroutine_threadsafe(seq(), loop).result()

        cases: Cases = {"floor": Case(floor, ft, n, floor_recs)}
        for label, signal_class in s.signals.items():
            t = tally(n, counting)
            recs = async_receivers(n, t)
            sig = signal_class()
            for r in recs:
                sig.connect(r)
            cases[label] = Case(functools.partial(sig.send, SENDER), t, n, recs)
        cases["django"] = None
        django = s.peer("django.dispatch")
        if django is not None:
            t = tally(n, counting)
            recs = async_receivers(n, t)
            dsig = django.Signal()
            for r in recs:
                dsig.connect(r)
            cases["django"] = Case(functools.partial(dsig.send, SENDER), t, n, recs)
        for name in ("blinker", "psygnal", "pyee", "aiosignal"):
            cases[name] = None  # no blocking send that awaits async receivers
        return cases

    try:
        res = interleave(make, "floor", s)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()
    return {"receivers": n, **res}

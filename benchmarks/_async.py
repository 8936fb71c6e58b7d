"""Async scenarios A1-A4 (on asyncio and on trio) and A5 (blocking send, async
receivers).

Floors, measured in the same rounds: ``sequential await`` of the receivers'
coroutines (the ratio base for A1/A2), ``asyncio.gather``, ``asyncio.TaskGroup``
(asyncio only), an anyio task group (the ratio base for A3), and a thread pool
(the ratio base for A4). Peers run on asyncio only; trio rows are asignal's.
pyee and psygnal have no awaited async send, so they are ``n/a`` here.
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
from _common import Case, Counter, ainterleave, async_receivers, interleave, peer

from asignal import Signal

SENDER = object()


def _floors(
    recs: list[Callable[..., Coroutine[Any, Any, None]]],
    counter: Counter,
    backend: str,
    sequential: bool = True,
) -> dict[str, Case | None]:
    n, sig = len(recs), Signal()
    kw = {"signal": sig, "sender": SENDER}
    cases: dict[str, Case | None] = {}

    if sequential:

        async def seq() -> None:
            for r in recs:
                await r(**kw)

        cases["sequential await"] = Case(seq, counter, n)

    async def anyio_tg() -> None:
        async with anyio.create_task_group() as tg:
            for r in recs:
                tg.start_soon(functools.partial(r, **kw))

    cases["anyio task group"] = Case(anyio_tg, counter, n)
    cases["asyncio.gather"] = cases["asyncio.TaskGroup"] = None
    if backend == "asyncio":

        async def gather() -> None:
            await asyncio.gather(*(r(**kw) for r in recs))

        cases["asyncio.gather"] = Case(gather, counter, n)
        task_group: Any = getattr(asyncio, "TaskGroup", None)  # Python 3.11+
        if task_group is not None:

            async def taskgroup() -> None:
                async with task_group() as tg:
                    for r in recs:
                        tg.create_task(r(**kw))

            cases["asyncio.TaskGroup"] = Case(taskgroup, counter, n)
    return cases


def _libraries(
    make: Callable[[Counter], list[Callable[..., Any]]],
    n: int,
    backend: str,
    thread: bool = False,
) -> dict[str, Case | None]:
    """asignal and the peers' awaited sends, each with its own receivers."""
    cases: dict[str, Case | None] = {}
    c = Counter()
    recs = make(c)
    sig = Signal()
    for r in recs:
        sig.connect(r)
    cases["asignal"] = Case(functools.partial(sig.asend, SENDER), c, n, keep=recs)
    cases["django"] = cases["blinker"] = cases["aiosignal"] = None
    if backend != "asyncio":
        return cases
    django, blinker, aiosignal = (
        peer("django.dispatch"),
        peer("blinker"),
        peer("aiosignal"),
    )
    if django is not None:
        c = Counter()
        recs = make(c)
        dsig = django.Signal()
        for r in recs:
            dsig.connect(r)
        cases["django"] = Case(functools.partial(dsig.asend, SENDER), c, n, keep=recs)
    if blinker is not None:
        c = Counter()
        recs = make(c)
        bsig = blinker.Signal()
        for r in recs:
            bsig.connect(r)
        wrap = _to_thread_wrapper if thread else None
        send = functools.partial(bsig.send_async, SENDER, _sync_wrapper=wrap)
        cases["blinker"] = Case(send, c, n, keep=recs)
    if aiosignal is not None and not thread:  # aiosignal awaits coroutines only
        c = Counter()
        asig = aiosignal.Signal(owner=None)
        asig.extend(make(c))
        asig.freeze()
        cases["aiosignal"] = Case(functools.partial(asig.send, SENDER), c, n)
    return cases


def _to_thread_wrapper(f: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
    """blinker's ``_sync_wrapper``: run a sync receiver in a worker thread."""

    async def inner(*args: Any, **kwargs: Any) -> Any:
        return await anyio.to_thread.run_sync(functools.partial(f, *args, **kwargs))

    return inner


def _sleepers(
    n: int, counter: Counter
) -> list[Callable[..., Coroutine[Any, Any, None]]]:
    def make() -> Callable[..., Coroutine[Any, Any, None]]:
        async def r(*args: object, **kwargs: object) -> None:
            await anyio.sleep(0.01)
            counter.hit()

        return r

    return [make() for _ in range(n)]


def _blockers(n: int, counter: Counter) -> list[Callable[..., None]]:
    def make() -> Callable[..., None]:
        def r(*args: object, **kwargs: object) -> None:
            time.sleep(0.01)
            counter.hit()

        return r

    return [make() for _ in range(n)]


async def _scenarios(
    backend: str, quick: bool, rounds: int, budget: float, pool: ThreadPoolExecutor
) -> tuple[dict[str, Any], dict[str, dict[int, float]]]:
    out: dict[str, Any] = {}
    curve: dict[str, dict[int, float]] = {}
    sizes = (1, 10) if quick else (1, 10, 100)
    for n in sizes:
        c = Counter()
        cases = _floors(async_receivers(n, c), c, backend)

        def make(c: Counter, n: int = n) -> list[Callable[..., Any]]:
            return async_receivers(n, c)

        cases.update(_libraries(make, n, backend))
        res = await ainterleave(cases, "sequential await", rounds, budget)
        if n in (1, 10):
            out["A1" if n == 1 else "A2"] = {"receivers": n, **res}
        for name, cell in res.items():
            if cell is not None:
                curve.setdefault(name, {})[n] = cell["us"]
    slow_rounds = max(3, rounds // 2)
    c = Counter()
    cases = _floors(_sleepers(50, c), c, backend, sequential=False)
    cases.update(_libraries(lambda c: _sleepers(50, c), 50, backend))
    res = await ainterleave(cases, "anyio task group", slow_rounds, budget)
    out["A3"] = {"receivers": 50, **res}

    c = Counter()
    blockers = _blockers(8, c)
    kw = {"signal": None, "sender": SENDER}

    async def thread_pool() -> None:
        list(pool.map(lambda r: r(**kw), blockers))

    async def anyio_threads() -> None:
        async with anyio.create_task_group() as tg:
            for r in blockers:
                tg.start_soon(functools.partial(anyio.to_thread.run_sync, r, None))

    cases = {
        "thread pool": Case(thread_pool, c, 8),
        "anyio task group": Case(anyio_threads, c, 8),
    }
    cases.update(_libraries(lambda c: _blockers(8, c), 8, backend, thread=True))
    res = await ainterleave(cases, "thread pool", slow_rounds, budget)
    out["A4"] = {"receivers": 8, **res}
    return out, curve


def run_async(
    backend: str, quick: bool, rounds: int, budget: float
) -> tuple[dict[str, Any], dict[str, dict[int, float]]]:
    """A1-A4 on ``backend``: rows, and the async send-cost curve."""
    with ThreadPoolExecutor(8) as pool:
        return anyio.run(
            _scenarios, backend, quick, rounds, budget, pool, backend=backend
        )


def run_blocking(rounds: int, budget: float) -> dict[str, Any]:
    """A5: ``send()`` from plain sync code (no running loop) to 10 async receivers.

    Floor: ``asyncio.run_coroutine_threadsafe`` of sequential awaits on an event loop
    already running in another thread (the least a sync caller can pay to reach a
    loop).
    """
    n = 10
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        c = Counter()
        recs = async_receivers(n, c)

        async def seq() -> None:
            for r in recs:
                await r(signal=None, sender=SENDER)

        def floor() -> None:
            asyncio.run_coroutine_threadsafe(seq(), loop).result()

        cases: dict[str, Case | None] = {"floor": Case(floor, c, n)}
        c = Counter()
        recs2 = async_receivers(n, c)
        sig = Signal()
        for r in recs2:
            sig.connect(r)
        cases["asignal"] = Case(functools.partial(sig.send, SENDER), c, n, recs2)
        cases["django"] = None
        django = peer("django.dispatch")
        if django is not None:
            c = Counter()
            recs3 = async_receivers(n, c)
            dsig = django.Signal()
            for r in recs3:
                dsig.connect(r)
            cases["django"] = Case(functools.partial(dsig.send, SENDER), c, n, recs3)
        for name in ("blinker", "psygnal", "pyee", "aiosignal"):
            cases[name] = None  # no blocking send that awaits async receivers
        res = interleave(cases, "floor", rounds, budget)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()
    return {"receivers": n, **res}

"""Shared pieces of the benchmark suite: cases, counters, timing and interleaving.

Every measurement is a :class:`Case`: a callable (sync, or async for the async
scenarios) that performs one send, a counter its receivers bump, and the number of
receivers one send must reach. :func:`check` verifies that count before any timing;
:func:`interleave` / :func:`ainterleave` time every case of a scenario once per round
(rotating the order), with GC disabled inside the timed loop, and report the median
over rounds of the ratio to the scenario's floor measured in the same round.
"""

from __future__ import annotations

import gc
import importlib
import statistics
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

PEERS = ("django", "blinker", "psygnal", "pyee", "aiosignal")


class Counter:
    """Counts receiver calls; ``hit`` is thread-safe for threaded receivers."""

    def __init__(self) -> None:
        self.n = 0
        self._lock = threading.Lock()

    def hit(self) -> None:
        with self._lock:
            self.n += 1


@dataclass
class Case:
    """One thing to time: ``fn`` performs one send reaching ``expected`` receivers."""

    fn: Callable[[], Any]
    counter: Counter
    expected: int
    keep: object = None  # holds weakly connected receivers alive
    loops: int = 0
    times: list[float] = field(default_factory=list)


def peer(name: str) -> Any:
    """Import a peer library's module, or return None when it is not installed."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def sync_receivers(n: int, counter: Counter) -> list[Callable[..., None]]:
    """``n`` distinct no-op receivers accepting any call shape, counting calls."""

    def make() -> Callable[..., None]:
        def r(*args: object, **kwargs: object) -> None:
            counter.n += 1

        return r

    return [make() for _ in range(n)]


def async_receivers(
    n: int, counter: Counter
) -> list[Callable[..., Coroutine[Any, Any, None]]]:
    """``n`` distinct async no-op receivers (they never suspend), counting calls."""

    def make() -> Callable[..., Coroutine[Any, Any, None]]:
        async def r(*args: object, **kwargs: object) -> None:
            counter.n += 1

        return r

    return [make() for _ in range(n)]


def check(name: str, case: Case, result: int) -> None:
    """Raise unless the send just performed reached exactly the expected receivers."""
    if result != case.expected:
        raise AssertionError(
            f"{name} reached {result} receivers, expected {case.expected}"
        )


def timed(fn: Callable[[], object], loops: int) -> float:
    """Seconds per call of ``fn`` over ``loops`` calls, GC disabled."""
    gc.disable()
    try:
        start = time.perf_counter()
        for _ in range(loops):
            fn()
        return (time.perf_counter() - start) / loops
    finally:
        gc.enable()


async def atimed(fn: Callable[[], Awaitable[object]], loops: int) -> float:
    """Seconds per awaited call of ``fn`` over ``loops`` calls, GC disabled."""
    gc.disable()
    try:
        start = time.perf_counter()
        for _ in range(loops):
            await fn()
        return (time.perf_counter() - start) / loops
    finally:
        gc.enable()


def _loops_for(per_call: float, budget: float) -> int:
    return max(1, int(budget / max(per_call, 1e-9)))


def _summary(
    cases: dict[str, Case | None], floor: str, rounds: int
) -> dict[str, dict[str, Any] | None]:
    base = cases[floor]
    assert base is not None
    out: dict[str, dict[str, Any] | None] = {}
    for name, case in cases.items():
        if case is None:
            out[name] = None
            continue
        ratios = [case.times[i] / base.times[i] for i in range(rounds)]
        out[name] = {
            "us": round(statistics.median(case.times) * 1e6, 3),
            "ratio": round(statistics.median(ratios), 3),
        }
    return out


def interleave(
    cases: dict[str, Case | None], floor: str, rounds: int, budget: float
) -> dict[str, dict[str, Any] | None]:
    """Check, calibrate, then time every case once per round; medians of ratios."""
    live = [(k, c) for k, c in cases.items() if c is not None]
    for name, case in live:
        case.counter.n = 0
        case.fn()
        check(name, case, case.counter.n)
        case.loops = _loops_for(timed(case.fn, 3), budget)
    for i in range(rounds):
        shift = i % len(live)
        for _, case in live[shift:] + live[:shift]:
            case.times.append(timed(case.fn, case.loops))
    return _summary(cases, floor, rounds)


async def ainterleave(
    cases: dict[str, Case | None], floor: str, rounds: int, budget: float
) -> dict[str, dict[str, Any] | None]:
    """:func:`interleave` for async cases, run inside the event loop under test."""
    live = [(k, c) for k, c in cases.items() if c is not None]
    for name, case in live:
        case.counter.n = 0
        await case.fn()
        check(name, case, case.counter.n)
        case.loops = _loops_for(await atimed(case.fn, 1), budget)
    for i in range(rounds):
        shift = i % len(live)
        for _, case in live[shift:] + live[:shift]:
            case.times.append(await atimed(case.fn, case.loops))
    return _summary(cases, floor, rounds)

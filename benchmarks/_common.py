"""Shared pieces of the benchmark suite: settings, cases, receivers, timing.

Every measurement is a :class:`Case`: a callable (sync, or async for the async
scenarios) that performs one send. A scenario is a function ``make(counting)`` that
builds its cases: :func:`interleave` / :func:`ainterleave` first build them with
counting receivers and check that one send calls each receiver exactly as often as
expected (once, or zero times for receivers of other senders), then build them again
with no-op receivers, which are the ones timed: the receivers timed do no work, floors
included, so every ratio is the library's own cost. A timed case's first send (its
warm-up) is checked too where the send returns its ``(receiver, result)`` list.

Each round times every case once for a fraction of a millisecond (rotating the order;
asignal, the contract floor and the baseline copy of asignal, if any, back to back,
alternating which goes first), GC disabled inside the timed loop. A figure is the
median over rounds of the ratio to the scenario's floor measured in the same round,
and :data:`PAIRS` of cases get the same median ratio to each other. Many short
rounds beat a few long ones on a shared machine: another process taking the CPU (or
its sibling hyperthread) spoils a few rounds, which the median drops, instead of a
share of every round. On this 2-CPU machine under a load of 5 to 8, the speed of
one send varied threefold within milliseconds: with 120 rounds of 5 ms,
asignal / contract floor at 100 receivers ranged from x0.86 to x2.96 between runs;
with 3,000 rounds of 0.2 ms, from x1.55 to x1.57. Ratios to the floor, which is not
timed next to the case, still move by about 5% between runs under such load.
"""

from __future__ import annotations

import gc
import importlib
import statistics
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any

PEERS = ("django", "blinker", "psygnal", "pyee", "aiosignal")
MINE = "asignal"
BASELINE = "asignal (baseline)"
#: (case, base): reported as the median over rounds of case time / base time.
PAIRS = ((MINE, "contract floor"), (MINE, BASELINE))


@dataclass(frozen=True)
class Settings:
    """What one run measures: rounds, seconds per timed loop, and the ``Signal``
    classes to time by case name (asignal, and the baseline copy if any)."""

    quick: bool
    rounds: int
    slow_rounds: int  # for A3 and A4, whose every send takes 10 ms or more
    budget: float
    signals: Mapping[str, Any]
    peers: bool = True

    def peer(self, name: str) -> Any:
        """A peer library's module, or None if peers are off or it is missing."""
        if not self.peers:
            return None
        try:
            return importlib.import_module(name)
        except ImportError:
            return None


class Model:
    """Stands for a model instance in the post_save payload."""


def post_save_payload() -> dict[str, Any]:
    """The keyword arguments of Django's ``post_save`` (a saved, existing row)."""
    return {
        "instance": Model(),
        "created": False,
        "raw": False,
        "using": "default",
        "update_fields": None,
    }


class Tally:
    """Calls per receiver, for the check before timing (thread-safe)."""

    def __init__(self, n: int) -> None:
        self.counts = [0] * n
        self._lock = threading.Lock()

    def hit(self, index: int) -> None:
        with self._lock:
            self.counts[index] += 1


def tally(n: int, counting: bool) -> Tally | None:
    """A tally for ``n`` receivers when counting, else None (no-op receivers)."""
    return Tally(n) if counting else None


@dataclass
class Case:
    """One thing to time: ``fn`` performs one send.

    ``expected`` is how often one send calls each receiver of ``tally`` (all ones by
    default); ``tally`` is None for the timed, no-op build of a case.
    """

    fn: Callable[[], Any]
    tally: Tally | None
    n: int
    keep: object = None  # holds weakly connected receivers alive while timed
    expected: tuple[int, ...] | None = None
    loops: int = 0
    times: list[float] = field(default_factory=list)

    @property
    def reach(self) -> tuple[int, ...]:
        return self.expected if self.expected is not None else (1,) * self.n


Cases = dict[str, Case | None]


def sync_receivers(n: int, t: Tally | None) -> list[Callable[..., None]]:
    """``n`` distinct receivers accepting any call shape: no-ops when ``t`` is None,
    otherwise each records its calls in ``t``."""

    def noop() -> Callable[..., None]:
        def r(*args: object, **kwargs: object) -> None:
            return None

        return r

    def counting(tally: Tally, i: int) -> Callable[..., None]:
        def r(*args: object, **kwargs: object) -> None:
            tally.hit(i)

        return r

    if t is None:
        return [noop() for _ in range(n)]
    return [counting(t, i) for i in range(n)]


def async_receivers(
    n: int, t: Tally | None
) -> list[Callable[..., Coroutine[Any, Any, None]]]:
    """:func:`sync_receivers` as ``async def`` functions (they never suspend)."""

    def noop() -> Callable[..., Coroutine[Any, Any, None]]:
        async def r(*args: object, **kwargs: object) -> None:
            return None

        return r

    def counting(tally: Tally, i: int) -> Callable[..., Coroutine[Any, Any, None]]:
        async def r(*args: object, **kwargs: object) -> None:
            tally.hit(i)

        return r

    if t is None:
        return [noop() for _ in range(n)]
    return [counting(t, i) for i in range(n)]


def _check_counts(name: str, case: Case) -> None:
    assert case.tally is not None
    if tuple(case.tally.counts) != case.reach:
        raise AssertionError(
            f"{name}: one send called the receivers {case.tally.counts} times,"
            f" expected {list(case.reach)}"
        )


def _check_result(name: str, case: Case, result: object) -> None:
    """A send that returns its (receiver, result) list must have reached them all."""
    if isinstance(result, list) and len(result) != sum(case.reach):
        raise AssertionError(
            f"{name}: the timed send returned {len(result)} results,"
            f" expected {sum(case.reach)}"
        )


def _build_twice(
    make: Callable[[bool], Cases],
) -> tuple[Cases, Cases, list[tuple[str, Case]]]:
    """The scenario's cases with counting receivers, the same with no-op ones, and
    the latter that can run (a peer that is missing is None)."""
    checked = make(True)
    timed_cases = make(False)
    if checked.keys() != timed_cases.keys():
        raise AssertionError("a scenario built different cases when counting")
    live = [(k, c) for k, c in timed_cases.items() if c is not None]
    for name, case in checked.items():
        if case is not None and case.tally is None:
            raise AssertionError(f"{name}: built without a tally when counting")
    return checked, timed_cases, live


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


def _rounds_for(
    live: list[tuple[str, Case]], per_call: list[float], s: Settings
) -> int:
    """``s.rounds``, fewer when slow sends (one call longer than the budget) would
    make a round last longer than ``len(live)`` budgets: a scenario takes about
    ``s.rounds * s.budget`` seconds per case, and at least 100 rounds."""
    round_time = sum(c.loops * t for (_, c), t in zip(live, per_call, strict=True))
    nominal = s.rounds * s.budget * len(live)
    return min(s.rounds, max(100, int(nominal / max(round_time, 1e-9))))


def _schedule(live: list[tuple[str, Case]], rounds: int) -> list[list[Case]]:
    """The order of every round: rotated, with the cases of :data:`PAIRS` (asignal,
    the contract floor, the baseline) timed back to back in alternating order, so
    that the ratios that matter most compare neighbouring moments."""
    grouped = {name for pair in PAIRS for name in pair}
    by_name = dict(live)
    units: list[list[Case]] = []
    group: list[Case] = []
    for name, case in live:
        if name in grouped and MINE in by_name:
            if not group:
                units.append(group)
            group.append(case)
        else:
            units.append([case])
    order: list[list[Case]] = []
    for i in range(rounds):
        shift = i % len(units)
        turn = units[shift:] + units[:shift]
        order.append([c for u in turn for c in (u if i % 2 == 0 else u[::-1])])
    return order


def _summary(cases: Cases, floor: str, rounds: int) -> dict[str, Any]:
    def ratio(case: Case, base: Case) -> float:
        return round(
            statistics.median(case.times[i] / base.times[i] for i in range(rounds)), 3
        )

    base = cases[floor]
    assert base is not None
    out: dict[str, Any] = {}
    for name, case in cases.items():
        if case is None:
            out[name] = None
            continue
        out[name] = {
            "us": round(statistics.median(case.times) * 1e6, 3),
            "ratio": ratio(case, base),
        }
    pairs: dict[str, float] = {}
    for name, other in PAIRS:
        a, b = cases.get(name), cases.get(other)
        if a is not None and b is not None:
            pairs[f"{name} / {other}"] = ratio(a, b)
    if pairs:
        out["pairs"] = pairs
    return out


def interleave(
    make: Callable[[bool], Cases], floor: str, s: Settings
) -> dict[str, Any]:
    """Check, calibrate, then time every case once per round; medians of ratios."""
    checked, cases, live = _build_twice(make)
    for name, case in checked.items():
        if case is not None:
            case.fn()
            _check_counts(name, case)
    del checked
    per_call: list[float] = []
    for name, case in live:
        _check_result(name, case, case.fn())
        per_call.append(timed(case.fn, 3))
        case.loops = _loops_for(per_call[-1], s.budget)
    rounds = _rounds_for(live, per_call, s)
    for turn in _schedule(live, rounds):
        for case in turn:
            case.times.append(timed(case.fn, case.loops))
    return _summary(cases, floor, rounds)


async def ainterleave(
    make: Callable[[bool], Cases], floor: str, s: Settings, slow: bool = False
) -> dict[str, Any]:
    """:func:`interleave` for async cases, run inside the event loop under test;
    ``slow``: ``s.slow_rounds`` rounds (for sends that sleep or block 10 ms)."""
    checked, cases, live = _build_twice(make)
    for name, case in checked.items():
        if case is not None:
            await case.fn()
            _check_counts(name, case)
    del checked
    per_call: list[float] = []
    for name, case in live:
        _check_result(name, case, await case.fn())
        per_call.append(await atimed(case.fn, 1))
        case.loops = _loops_for(per_call[-1], s.budget)
    rounds = s.slow_rounds if slow else _rounds_for(live, per_call, s)
    for turn in _schedule(live, rounds):
        for case in turn:
            case.times.append(await atimed(case.fn, case.loops))
    return _summary(cases, floor, rounds)

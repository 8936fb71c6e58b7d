"""S5 (connect then disconnect 1,000 and 10,000 receivers) and M1 (tracemalloc bytes
per connected receiver, and bytes left behind per connect/disconnect cycle), for
asignal (and the baseline copy) and every peer that can connect and disconnect
receivers."""

from __future__ import annotations

import gc
import statistics
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

from _common import BASELINE, MINE, Settings, sync_receivers

# name -> (new signal, connect(signal, receiver), disconnect(signal, receiver), weak)
Adapter = tuple[
    Callable[[], Any], Callable[[Any, Any], Any], Callable[[Any, Any], Any], bool
]


def adapters(settings: Settings) -> dict[str, Adapter | None]:
    """How each library creates a signal, connects and disconnects a receiver."""
    out: dict[str, Adapter | None] = {
        label: (
            signal_class,
            lambda s, r: s.connect(r),
            lambda s, r: s.disconnect(r),
            True,
        )
        for label, signal_class in settings.signals.items()
    }
    django, blinker, psygnal, pyee, aiosignal = (
        settings.peer(n)
        for n in ("django.dispatch", "blinker", "psygnal", "pyee", "aiosignal")
    )
    out["django"] = django and (
        django.Signal,
        lambda s, r: s.connect(r),
        lambda s, r: s.disconnect(r),
        True,
    )
    out["blinker"] = blinker and (
        blinker.Signal,
        lambda s, r: s.connect(r),
        lambda s, r: s.disconnect(r),
        True,
    )
    out["psygnal"] = psygnal and (
        lambda: psygnal.SignalInstance((object,)),
        lambda s, r: s.connect(r),
        lambda s, r: s.disconnect(r),
        False,
    )
    out["pyee"] = pyee and (
        pyee.EventEmitter,
        lambda s, r: s.on("event", r),
        lambda s, r: s.remove_listener("event", r),
        False,
    )
    out["aiosignal"] = aiosignal and (
        lambda: aiosignal.Signal(None),
        lambda s, r: s.append(r),
        lambda s, r: s.remove(r),
        False,
    )
    return out


def _cycle_time(adapter: Adapter, count: int) -> float:
    new, connect, disconnect, _ = adapter
    recs = sync_receivers(count, None)
    sig = new()
    gc.disable()
    try:
        start = time.perf_counter()
        for r in recs:
            connect(sig, r)
        for r in recs:
            disconnect(sig, r)
        return time.perf_counter() - start
    finally:
        gc.enable()


def connect_growth(s: Settings, reps: int, own_reps: int) -> dict[str, Any]:
    """S5: median seconds over ``reps`` interleaved rounds (``own_reps`` for asignal
    and its baseline, which are cheap: Django takes seconds), and the 10k/1k growth
    as the median of each round's own ratio (the two sizes timed back to back, so a
    slow second on this noisy machine does not skew one size against the other).
    With a baseline, ``pairs`` holds the median of each round's asignal / baseline
    time at 1k and at 10k."""
    libs = {k: v for k, v in adapters(s).items() if v is not None}
    times: dict[str, dict[int, list[float]]] = {k: {1000: [], 10000: []} for k in libs}
    growth: dict[str, list[float]] = {k: [] for k in libs}
    for rep in range(max(reps, own_reps)):
        names = [k for k in libs if rep < reps or k in s.signals]
        shift = rep % len(names)
        for name in names[shift:] + names[:shift]:  # rotate who goes first
            t1k = _cycle_time(libs[name], 1000)
            t10k = _cycle_time(libs[name], 10000)
            times[name][1000].append(t1k)
            times[name][10000].append(t10k)
            growth[name].append(t10k / t1k)
    out: dict[str, Any] = {}
    for name in adapters(s):
        if name not in libs:
            out[name] = None
            continue
        out[name] = {
            "1k_ms": round(statistics.median(times[name][1000]) * 1e3, 2),
            "10k_ms": round(statistics.median(times[name][10000]) * 1e3, 2),
            "growth": round(statistics.median(growth[name]), 1),
        }
    if MINE in times and BASELINE in times:
        out["pairs"] = {
            f"{MINE} / {BASELINE} {size // 1000}k": round(
                statistics.median(
                    a / b
                    for a, b in zip(
                        times[MINE][size], times[BASELINE][size], strict=True
                    )
                ),
                3,
            )
            for size in (1000, 10000)
        }
    return out


def _memory(adapter: Adapter, count: int) -> dict[str, Any]:
    new, connect, disconnect, weak = adapter
    recs = sync_receivers(count, None)
    sig = new()
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for r in recs:
            connect(sig, r)
        per_receiver = (tracemalloc.get_traced_memory()[0] - before) / count
        for r in recs:
            disconnect(sig, r)
        # one warm cycle so lazily created structures are not counted as a leak
        connect(sig, recs[0])
        disconnect(sig, recs[0])
        gc.collect()
        mid = tracemalloc.get_traced_memory()[0]
        for r in recs:
            connect(sig, r)
            disconnect(sig, r)
        gc.collect()
        per_cycle = (tracemalloc.get_traced_memory()[0] - mid) / count
    finally:
        tracemalloc.stop()
    return {
        "weak": weak,
        "bytes_per_receiver": round(per_receiver, 1),
        "bytes_per_cycle": round(per_cycle, 2),
    }


def memory(s: Settings, count: int = 10000) -> dict[str, Any]:
    """M1 for every library: bytes per receiver (``count`` receivers), per cycle."""
    return {
        name: None if adapter is None else _memory(adapter, count)
        for name, adapter in adapters(s).items()
    }

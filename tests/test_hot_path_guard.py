"""Non-timing regression guards for the send hot path and the benchmark suite."""

from __future__ import annotations

import gc
import subprocess
import sys
import tracemalloc
from pathlib import Path
from typing import Any

from asignal import Signal

ROOT = Path(__file__).resolve().parent.parent


def _noop(**kwargs: Any) -> None:
    """Receive a signal and do nothing."""


def _make() -> Any:
    def r(**kwargs: Any) -> None:
        return None

    return r


def test_connect_disconnect_cycle_retains_no_memory() -> None:
    """Connect/disconnect cycles retain under one byte per cycle (no per-cycle leak)."""
    sig = Signal()
    recs = [_make() for _ in range(1000)]
    for r in recs:
        sig.connect(r)
        sig.disconnect(r)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        for r in recs:
            sig.connect(r)
            sig.disconnect(r)
        gc.collect()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    growth = sum(
        s.size_diff
        for s in after.compare_to(before, "filename")
        if "asignal" in str(s.traceback)
    )
    # A constant one-off (a resized list, a cached int) is allowed; a per-cycle
    # leak of even one byte would exceed the cycle count.
    assert growth < len(recs), f"{growth} bytes retained after {len(recs)} cycles"


def test_warm_send_allocation_does_not_grow_with_repeats() -> None:
    """A warm send() retains nothing: 1,000 sends keep no more memory than one."""
    sig = Signal()
    recs = [_make() for _ in range(10)]
    for r in recs:
        sig.connect(r)
    sig.send(None)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        for _ in range(1000):
            sig.send(None)
        gc.collect()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    growth = sum(
        s.size_diff
        for s in after.compare_to(before, "filename")
        if "asignal" in str(s.traceback)
    )
    assert growth <= 0, f"{growth} bytes retained by asignal after 1,000 sends"


def test_benchmark_suite_quick_run_succeeds(tmp_path: Path) -> None:
    """`benchmarks/run.py --quick` runs, checks receivers are reached, writes JSON."""
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "run.py"),
            "--quick",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "results.json").exists()
    assert "S3" in (tmp_path / "RESULTS.md").read_text(encoding="utf-8")


class _CountingLock:
    """A lock that counts how often it is taken."""

    def __init__(self) -> None:
        import threading

        self._lock = threading.Lock()
        self.taken = 0

    def __enter__(self) -> bool:
        self.taken += 1
        return self._lock.__enter__()

    def __exit__(self, *exc_info: object) -> None:
        self._lock.release()


def test_warm_sends_take_no_lock_and_build_no_routing() -> None:
    """After the first send, sends only read: no lock, no routing rebuilt, however
    many receivers and senders (the lock is for connect and disconnect)."""
    sig = Signal()
    recs = [_make() for _ in range(10)]
    senders = [type(f"Sender{i}", (), {}) for i in range(3)]
    for r in recs:
        sig.connect(r)
    for s in senders:
        sig.connect(_noop, sender=s)
    lock = _CountingLock()
    sig.lock = lock
    sig.send(None)
    for s in senders:
        sig.send(s)
    warm = lock.taken
    routing = sig._connections.routing  # pyright: ignore[reportPrivateUsage]
    for _ in range(100):
        sig.send(None, payload=1)
        for s in senders:
            sig.send(s)
            sig.send_robust(s)
    assert lock.taken == warm, f"{lock.taken - warm} lock acquisitions by warm sends"
    assert sig._connections.routing is routing  # pyright: ignore[reportPrivateUsage]
    sig.connect(_noop)  # a change takes the lock and drops the routing, once
    assert lock.taken == warm + 1
    assert sig._connections.routing is None  # pyright: ignore[reportPrivateUsage]


def test_a_weakly_held_function_costs_at_most_150_bytes_connected() -> None:
    """The connection of a weakly held function is its own weak reference and its
    own key: one object and a dict slot (M1's target; benchmarks/ measures it)."""
    sig = Signal()
    recs = [_make() for _ in range(2000)]
    sig.connect(recs[0])  # the dict's first allocation is not per connection
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for r in recs[1:]:
            sig.connect(r)
        per_connection = (tracemalloc.get_traced_memory()[0] - before) / (len(recs) - 1)
    finally:
        tracemalloc.stop()
    assert len(sig.receivers) == len(recs)
    assert per_connection <= 150, f"{per_connection:.1f} bytes per connection"

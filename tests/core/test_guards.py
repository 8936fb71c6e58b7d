"""Non-timing guards for the send hot path, memory and import cost: a warm send takes
no lock and rebuilds nothing, nothing is retained, a connection costs few bytes,
the benchmark suite's quick run works, and ``import asignal`` stays light.

These may read ``signal._connections.routing``: what they guard is internal.
"""

from __future__ import annotations

import gc
import itertools
import json
import subprocess
import sys
import textwrap
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

from asignal import Signal

ROOT = Path(__file__).resolve().parents[2]


def _noop(**kwargs: Any) -> None:
    """Receive a signal and do nothing."""


def _make() -> Any:
    def r(**kwargs: Any) -> None:
        return None

    return r


def _retained_by_asignal(action: Callable[[], object], times: int) -> int:
    """Bytes that *times* runs of *action* leave allocated by asignal's code."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        for _ in range(times):
            action()
        gc.collect()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    return sum(
        s.size_diff
        for s in after.compare_to(before, "filename")
        if "asignal" in str(s.traceback)
    )


def _per_run_growth(action: Callable[[], object], times: int = 1000) -> float:
    """What one more run of *action* retains, in bytes: the difference between
    ``2 * times`` runs and ``times`` runs, so that one-off allocations (a resized
    table, an interpreter's per-function frame cache on Python 3.10) cancel out."""
    for _ in range(times):  # warm: routing built, caches filled
        action()
    once = _retained_by_asignal(action, times)
    twice = _retained_by_asignal(action, 2 * times)
    return (twice - once) / times


def test_connect_disconnect_cycle_retains_no_memory() -> None:
    """Connect/disconnect cycles retain nothing per cycle (distinct receivers, so a
    key kept per receiver would show)."""
    sig = Signal()
    receivers = itertools.cycle([_make() for _ in range(500)])

    def cycle() -> None:
        fn = next(receivers)
        sig.connect(fn)
        sig.disconnect(fn)

    growth = _per_run_growth(cycle)
    assert growth < 1, f"{growth:.2f} bytes retained per connect/disconnect cycle"


def test_warm_send_allocation_does_not_grow_with_repeats() -> None:
    """A warm send() retains nothing per send."""
    sig = Signal()
    recs = [_make() for _ in range(10)]
    for r in recs:
        sig.connect(r)
    growth = _per_run_growth(lambda: sig.send(None))
    assert growth < 1, f"{growth:.2f} bytes retained per send"


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
    routing = sig._connections.routing
    for _ in range(100):
        sig.send(None, payload=1)
        for s in senders:
            sig.send(s)
            sig.send_robust(s)
    assert lock.taken == warm, f"{lock.taken - warm} lock acquisitions by warm sends"
    assert sig._connections.routing is routing
    sig.connect(_noop)  # a change takes the lock and drops the routing, once
    assert lock.taken == warm + 1
    assert sig._connections.routing is None


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


#: anyio itself and what anyio imports on the Python versions we support.
ALLOWED = {"asignal", "anyio", "sniffio", "idna", "typing_extensions", "exceptiongroup"}


def _modules_loaded_by(statement: str) -> list[str]:
    code = textwrap.dedent(
        f"""
        import json, sys
        before = set(sys.modules)
        {statement}
        print(json.dumps(sorted(set(sys.modules) - before)))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    loaded: list[str] = json.loads(out)
    return loaded


def test_import_asignal_loads_only_stdlib_and_anyio() -> None:
    """Every top-level package loaded by `import asignal` is stdlib or allowed."""
    tops = {name.split(".")[0] for name in _modules_loaded_by("import asignal")}
    foreign = {
        name
        for name in tops
        if name not in sys.stdlib_module_names
        and not name.startswith("_")
        and name not in ALLOWED
    }
    assert foreign == set()


def test_import_asignal_loads_no_integration_or_backend() -> None:
    """No integration submodule, trio, web framework or ORM is imported."""
    loaded = _modules_loaded_by("import asignal")
    for forbidden in (
        "trio",
        "starlette",
        "fastapi",
        "sqlalchemy",
        "pytest",
        "asignal.asgi",
        "asignal.testing",
        "asignal.signals",
        "asignal.pytest_plugin",
    ):
        assert forbidden not in loaded, forbidden


def test_builtin_signals_import_no_integration() -> None:
    """`import asignal.signals` stays as light as the core."""
    tops = {name.split(".")[0] for name in _modules_loaded_by("import asignal.signals")}
    assert {"trio", "starlette", "sqlalchemy", "pytest"} & tops == set()


def test_connecting_a_plain_function_gives_it_no_attribute_dict() -> None:
    """Connecting adds no memory to the receiver itself (benchmarks/, M1): no
    ``__dict__`` is created on the function."""

    def handler(sender: object, **kwargs: object) -> None:
        pass

    def dicts() -> int:
        return sum(type(r) is dict for r in gc.get_referents(handler))

    before = dicts()
    signal = Signal()
    signal.connect(handler)
    assert dicts() == before
    assert not signal.describe()[0].is_async


def test_many_transient_senders_leave_no_per_sender_state() -> None:
    """Sending from many short-lived senders keeps no routing entry for any of
    them once they are gone (nothing retained per sender)."""
    signal = Signal()

    class Sender: ...

    signal.connect(_make(), weak=False)
    for _ in range(1000):
        signal.send(Sender())
    routing = signal._connections.routing
    assert routing is not None
    assert routing[0] == {}


def test_watching_stops_when_the_last_signal_with_a_threshold_dies() -> None:
    """A signal with a slow-receiver threshold of its own makes sends take the
    watched path; once it is gone, sends go back to the path that costs nothing."""
    import asignal._state as state

    def receiver(sender: object, **kwargs: object) -> None:
        pass

    other = Signal()
    other.connect(receiver)
    watched = Signal(slow_threshold=1.0)
    assert state.hooks.active
    del watched
    gc.collect()
    other.send(None)  # notices it
    assert not state.hooks.active

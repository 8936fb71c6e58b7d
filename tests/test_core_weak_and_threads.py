"""Weak references and garbage collection; thread safety under concurrent use."""

from __future__ import annotations

import gc
import threading
import weakref
from typing import Any

from asignal import Signal


class Handler:
    def __init__(self) -> None:
        self.calls = 0

    def on(self, sender: object, **kwargs: Any) -> str:
        self.calls += 1
        return "on"


def make_closure() -> Any:
    def closure(sender: object, **kwargs: Any) -> str:
        return "closure"

    return closure


class TestWeakReferences:
    def test_collected_function_is_not_called_and_is_pruned(
        self, signal: Signal
    ) -> None:
        """A weakly held closure that dies stops receiving and leaves receivers."""
        closure = make_closure()
        signal.connect(closure)
        assert signal.send(None) == [(closure, "closure")]
        del closure
        gc.collect()
        assert signal.send(None) == []
        assert signal.receivers == []

    def test_bound_method_dies_with_its_instance(self, signal: Signal) -> None:
        """Bound methods are held through WeakMethod, not kept alive by the signal."""
        handler = Handler()
        signal.connect(handler.on)
        assert signal.send(None) == [(handler.on, "on")]
        ref = weakref.ref(handler)
        del handler
        gc.collect()
        assert ref() is None
        assert signal.send(None) == []
        assert signal.receivers == []
        assert not signal.has_listeners()

    def test_signal_does_not_keep_the_receiver_alive(self, signal: Signal) -> None:
        """Connecting weakly does not create a strong reference to the receiver."""
        closure = make_closure()
        ref = weakref.ref(closure)
        signal.connect(closure)
        del closure
        gc.collect()
        assert ref() is None

    def test_gc_callback_never_takes_the_lock(self, signal: Signal) -> None:
        """A receiver collected while signal.lock is held does not deadlock: the
        GC callback only sets a flag (Django's _remove_receiver lesson)."""
        closure = make_closure()
        signal.connect(closure)
        finished = threading.Event()

        def collect_under_lock() -> None:
            nonlocal closure
            with signal.lock:
                del closure
                gc.collect()
            finished.set()

        thread = threading.Thread(target=collect_under_lock)
        thread.start()
        thread.join(5)
        assert finished.is_set()
        assert signal.send(None) == []
        assert signal.receivers == []

    def test_many_transient_senders_do_not_grow_the_signal(
        self, signal: Signal
    ) -> None:
        """Sending from many short-lived objects does not accumulate state."""

        class Sender: ...

        signal.connect(make_closure(), weak=False)
        for _ in range(1000):
            signal.send(Sender())
        routing = signal._connections.routing
        assert routing is not None
        assert routing[0] == {}


class TestThreads:
    def test_concurrent_connect_disconnect_and_send(self, signal: Signal) -> None:
        """Many threads connecting, disconnecting and sending at once: no errors,
        and the final connections are exactly those left connected."""
        errors: list[BaseException] = []
        keep = [make_closure() for _ in range(8)]
        start = threading.Barrier(8)

        def worker(index: int) -> None:
            try:
                start.wait(5)
                mine = [make_closure() for _ in range(50)]
                for fn in mine:
                    signal.connect(fn, weak=False)
                    signal.send(None)
                for fn in mine:
                    assert signal.disconnect(fn) is True
                    signal.send(None)
                signal.connect(keep[index], weak=False)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert errors == []
        assert sorted(map(id, signal.live_receivers(None))) == sorted(map(id, keep))

    def test_send_snapshot_is_not_disturbed_by_other_threads(
        self, signal: Signal
    ) -> None:
        """A send in progress calls exactly the receivers it started with, even if
        another thread disconnects one of them meanwhile."""
        entered = threading.Event()
        release = threading.Event()
        calls: list[str] = []

        def blocker(sender: object, **kwargs: Any) -> None:
            entered.set()
            release.wait(5)
            calls.append("blocker")

        def second(sender: object, **kwargs: Any) -> None:
            calls.append("second")

        signal.connect(blocker)
        signal.connect(second)
        thread = threading.Thread(target=signal.send, args=(None,))
        thread.start()
        assert entered.wait(5)
        signal.disconnect(second)
        release.set()
        thread.join(5)
        assert calls == ["blocker", "second"]
        assert signal.live_receivers(None) == [blocker]

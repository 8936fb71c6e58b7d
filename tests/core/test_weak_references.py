"""Weak references and garbage collection: receivers, senders, id() reuse, caching,
payloads, and receivers collected during a send.
"""

from __future__ import annotations

import gc
import threading
import weakref
from typing import Any

import anyio
import pytest

from asignal import Signal


class Sender:
    pass


class Handler:
    def method(self, sender: object, **kwargs: Any) -> str:
        return "method"

    def __call__(self, sender: object, **kwargs: Any) -> str:
        return "called"


def on_any(sender: object, **kwargs: Any) -> str:
    return "any"


def test_lambda_connected_weakly_dies_at_once(signal: Signal) -> None:
    """A lambda with no other reference is gone before it can be called (why
    weak=False exists) and leaves no entry behind."""
    signal.connect(lambda sender, **kwargs: None)
    gc.collect()
    assert signal.send(None) == []
    assert signal.receivers == []


def test_weak_false_keeps_the_receiver_alive(signal: Signal) -> None:
    """weak=False holds a strong reference until disconnect."""
    handler = Handler()
    ref = weakref.ref(handler)
    signal.connect(handler, weak=False)
    del handler
    gc.collect()
    assert ref() is not None
    assert [result for _, result in signal.send(None)] == ["called"]
    assert signal.disconnect(ref()) is True
    gc.collect()
    assert ref() is None


def test_weak_false_bound_method_keeps_instance(signal: Signal) -> None:
    """weak=False on a bound method keeps its instance alive."""
    handler = Handler()
    signal.connect(handler.method, weak=False)
    del handler
    gc.collect()
    assert [result for _, result in signal.send(None)] == ["method"]


def test_callable_instance_weakly_held(signal: Signal) -> None:
    """A callable instance is held by weakref.ref and collected normally."""
    handler = Handler()
    signal.connect(handler)
    del handler
    gc.collect()
    assert signal.send(None) == []


def test_dead_sender_drops_its_receivers(signal: Signal) -> None:
    """When a sender is collected, receivers connected for it are removed."""
    sender = Sender()
    signal.connect(on_any, sender=sender)
    assert signal.has_listeners(sender)
    del sender
    gc.collect()
    assert signal.receivers == []


def test_connect_does_not_keep_a_weakrefable_sender_alive(signal: Signal) -> None:
    """A sender that supports weak references is held weakly."""
    sender = Sender()
    ref = weakref.ref(sender)
    signal.connect(on_any, sender=sender)
    del sender
    gc.collect()
    assert ref() is None


def test_reused_id_of_dead_sender_never_routes_to_old_receivers(
    signal: Signal,
) -> None:
    """A new object that gets a dead sender's id() does not get its receivers."""
    calls: list[int] = []

    def old_receiver(sender: object, **kwargs: Any) -> None:
        calls.append(id(sender))

    reused: Sender | None = None
    keep: list[Sender] = []
    for _ in range(2000):
        sender = Sender()
        dead_id = id(sender)
        signal.connect(old_receiver, sender=sender)
        signal.send(sender)  # builds the per-sender snapshot for that id
        del sender  # refcount drops to zero: freed now, its block reusable
        candidate = Sender()
        if id(candidate) == dead_id:
            reused = candidate
            break
        keep.append(candidate)  # so the next attempt gets another block
    if reused is None:  # pragma: no cover - allocator dependent
        pytest.skip("the allocator never reused a dead sender's id")
    calls.clear()
    assert signal.send(reused) == []
    assert calls == []
    gc.collect()
    assert signal.receivers == []


def test_non_weakrefable_sender_is_kept_alive_while_connected(
    signal: Signal,
) -> None:
    """A sender without weakref support is held strongly, so its id() cannot be
    reused while its receivers are connected."""

    class Slotted:
        __slots__ = ("marker",)

        def __init__(self) -> None:
            self.marker: object = None

    seen: list[object] = []

    class Tracker:
        pass

    sender = Slotted()
    sender.marker = Tracker()
    marker_ref = weakref.ref(sender.marker)
    signal.connect(on_any, sender=sender)
    sender_id = id(sender)
    del sender
    gc.collect()
    assert marker_ref() is not None  # the sender (and what it holds) lives on
    (info,) = signal.describe()
    assert id(info.sender) == sender_id
    seen.append(info.sender)
    assert signal.send(seen[0]) == [(on_any, "any")]
    assert signal.disconnect(on_any, sender=seen[0]) is True


@pytest.mark.parametrize("use_caching", [False, True])
def test_send_does_not_keep_the_sender_alive(use_caching: bool) -> None:
    """A send (and the per-sender snapshot it builds) never keeps a sender alive,
    with or without use_caching."""
    sig = Signal(use_caching=use_caching)

    class Model:
        pass

    sig.connect(on_any, sender=Model)
    sig.connect(on_other_any)
    ref = weakref.ref(Model)
    assert len(sig.send(Model)) == 2
    del Model
    gc.collect()
    assert ref() is None
    assert sig.send(None) == [(on_other_any, "other")]
    assert len(sig.receivers) == 1


def on_other_any(sender: object, **kwargs: Any) -> str:
    return "other"


def test_a_bound_method_collected_during_the_send_is_skipped(signal: Signal) -> None:
    """A receiver collected by an earlier receiver in the same send is not called."""
    victim = Handler()

    def killer(sender: object, **kwargs: Any) -> str:
        nonlocal victim
        del victim
        gc.collect()
        return "killed"

    signal.connect(killer)
    signal.connect(victim.method)
    assert signal.send(None) == [(killer, "killed")]


def test_many_dead_receivers_are_pruned(signal: Signal) -> None:
    """Bookkeeping does not grow: a thousand collected receivers leave nothing."""
    for _ in range(1000):
        handler = Handler()
        signal.connect(handler.method)
        del handler
    gc.collect()
    signal.connect(on_any)
    assert signal.receivers[0].receiver is on_any
    assert len(signal.receivers) == 1


def test_restoring_saved_receivers_drops_those_that_died(signal: Signal) -> None:
    """Django tooling saves signal.receivers, assigns [] and restores the list
    later: connections whose sender or receiver died meanwhile are dropped on
    restore, even if the signal was pruned in between."""

    def other(sender: object, **kwargs: Any) -> None: ...

    sender = Sender()
    handler = Handler()
    signal.connect(on_any, sender=sender)
    signal.connect(handler.method)
    signal.connect(on_other_any)
    saved = signal.receivers
    signal.receivers = []
    del sender, handler
    gc.collect()
    signal.connect(other)  # prunes the (empty) signal, clearing its death flag
    signal.disconnect(other)
    signal.receivers = saved
    assert [c.receiver for c in signal.receivers] == [on_other_any]
    assert signal.send(None) == [(on_other_any, "other")]


class Payload:
    pass


async def _async_receiver(sender: object, **kwargs: Any) -> None:
    await anyio.sleep(0)


@pytest.mark.parametrize("method", ["send", "send_robust"])
def test_send_keeps_no_reference_to_the_payload(signal: Signal, method: str) -> None:
    """After a send returns (sync receivers, and async ones on the kept loop),
    nothing holds the payload: it is collected."""
    signal.connect(on_any)
    signal.connect(_async_receiver)
    payload = Payload()
    ref = weakref.ref(payload)
    getattr(signal, method)(None, instance=payload)
    del payload
    gc.collect()
    assert ref() is None


@pytest.mark.anyio
@pytest.mark.parametrize("method", ["asend", "asend_robust"])
async def test_asend_keeps_no_reference_to_the_payload(
    signal: Signal, method: str
) -> None:
    """After asend returns, nothing (tasks, threads, contexts) holds the payload."""
    signal.connect(on_any)
    signal.connect(_async_receiver)
    payload = Payload()
    ref = weakref.ref(payload)
    await getattr(signal, method)(None, instance=payload, timeout=5)
    del payload
    gc.collect()
    assert ref() is None


def make_closure() -> Any:
    def closure(sender: object, **kwargs: Any) -> str:
        return "closure"

    return closure


def test_collected_function_is_not_called_and_is_pruned(signal: Signal) -> None:
    """Connecting weakly keeps no strong reference: a closure that dies is
    collected, stops receiving and leaves receivers."""
    closure = make_closure()
    ref = weakref.ref(closure)
    signal.connect(closure)
    assert signal.send(None) == [(closure, "closure")]
    del closure
    gc.collect()
    assert ref() is None
    assert signal.send(None) == []
    assert signal.receivers == []


def test_bound_method_dies_with_its_instance(signal: Signal) -> None:
    """Bound methods are held weakly, not kept alive by the signal."""
    handler = Handler()
    signal.connect(handler.method)
    assert signal.send(None) == [(handler.method, "method")]
    ref = weakref.ref(handler)
    del handler
    gc.collect()
    assert ref() is None
    assert signal.send(None) == []
    assert signal.receivers == []
    assert not signal.has_listeners()


def test_gc_callback_never_takes_the_lock(signal: Signal) -> None:
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


class Holder:
    """Keeps the only strong reference to a receiver, until told to drop it."""

    def __init__(self) -> None:
        self.fn: Any = None


def test_a_function_collected_during_the_send_is_skipped_and_pruned() -> None:
    """A receiver whose last reference an earlier receiver drops is not called by
    the send under way, the ones after it are, and it is pruned."""
    signal = Signal()
    holder = Holder()
    calls: list[str] = []

    def first(**kwargs: Any) -> str:
        calls.append("first")
        holder.fn = None  # the second receiver's last reference goes
        gc.collect()
        return "first"

    def make_second() -> Any:
        def second(**kwargs: Any) -> str:
            calls.append("second")
            return "second"

        return second

    def third(**kwargs: Any) -> str:
        calls.append("third")
        return "third"

    holder.fn = make_second()
    signal.connect(first)
    signal.connect(holder.fn)
    signal.connect(third)
    results = signal.send(None, payload=1)
    assert calls == ["first", "third"]
    assert [result for _, result in results] == ["first", "third"]
    assert len(signal.receivers) == 2  # and the dead one is pruned

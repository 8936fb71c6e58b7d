"""How connections are identified: every way of connecting, disconnecting and
restoring a receiver finds the same connection, as Django's ``id()`` keys do, and
no dispatch_uid is ever mistaken for another key.
"""

from __future__ import annotations

import gc
import weakref
from typing import Any

import pytest

from asignal import Signal


def _make() -> Any:
    def handler(**kwargs: Any) -> str:
        return "handled"

    return handler


class Sender:
    pass


def test_weak_then_strong_connect_of_a_function_is_one_connection() -> None:
    signal = Signal()
    fn = _make()
    signal.connect(fn)
    signal.connect(fn, weak=False)  # same receiver and sender: changes nothing
    assert [c.weak for c in signal.receivers] == [True]
    assert signal.send(None) == [(fn, "handled")]
    assert signal.disconnect(fn)
    assert signal.receivers == []


def test_strong_then_weak_connect_of_a_function_is_one_connection() -> None:
    signal = Signal()
    fn = _make()
    signal.connect(fn, weak=False)
    signal.connect(fn)
    assert [c.weak for c in signal.receivers] == [False]
    assert signal.disconnect(fn)
    assert not signal.disconnect(fn)


def test_equal_but_distinct_functions_are_distinct_receivers() -> None:
    signal = Signal()
    first, second = _make(), _make()  # same code, different objects
    signal.connect(first)
    signal.connect(second)
    assert signal.live_receivers() == [first, second]
    assert signal.disconnect(second)
    assert signal.live_receivers() == [first]


def test_a_function_for_a_sender_and_for_any_sender_are_two_connections() -> None:
    signal = Signal()
    fn = _make()
    signal.connect(fn)
    signal.connect(fn, sender=Sender)
    assert len(signal.receivers) == 2
    assert signal.disconnect(fn, sender=Sender)
    assert [c.sender for c in signal.receivers] == [None]
    assert signal.disconnect(fn)


def test_dispatch_uid_is_not_confused_with_the_function_itself() -> None:
    signal = Signal()
    fn = _make()
    signal.connect(fn, dispatch_uid="audit")
    signal.connect(fn)  # keyed by the function: a second connection
    assert len(signal.receivers) == 2
    assert signal.disconnect(dispatch_uid="audit")
    assert signal.disconnect(fn)
    assert signal.receivers == []


def test_a_dead_weak_function_is_pruned_and_a_new_one_connects() -> None:
    signal = Signal()
    for _ in range(50):  # new functions may reuse the dead ones' addresses
        fn = _make()
        ref = weakref.ref(fn)
        signal.connect(fn)
        del fn
        gc.collect()
        assert ref() is None
        assert signal.send(None) == []
    survivor = _make()
    signal.connect(survivor)
    assert signal.live_receivers() == [survivor]
    assert len(signal.receivers) == 1


def test_receivers_saved_and_restored_keep_their_keys() -> None:
    signal = Signal()
    fn, other = _make(), _make()
    signal.connect(fn)
    saved = signal.receivers
    signal.receivers = []
    signal.connect(other)
    signal.receivers = saved
    signal.connect(fn)  # already there again: no duplicate
    assert signal.live_receivers() == [fn]
    assert signal.disconnect(fn)


@pytest.mark.parametrize("weak", [True, False])
def test_the_connection_reports_its_receiver_and_options(weak: bool) -> None:
    signal = Signal()
    fn = _make()
    signal.connect(fn, weak=weak, priority=3)
    (connection,) = signal.receivers
    assert connection.receiver is fn
    assert (connection.weak, connection.priority, connection.is_async) == (
        weak,
        3,
        False,
    )
    assert connection.is_alive()
    assert "handler" in repr(connection)


class Model:
    """A sender that supports weak references."""


def test_connections_copied_to_another_signal_belong_to_it() -> None:
    """A list read from one signal and assigned to another works there, and a
    death is noticed by the signal that now holds the connection."""
    source, target = Signal(), Signal()
    fn = _make()
    sender = Model()
    source.connect(fn, sender=sender, priority=2)
    target.receivers = source.receivers
    (copied,) = target.receivers
    assert (copied.sender, copied.priority, copied.receiver) == (sender, 2, fn)
    assert target.send(sender) == [(fn, "handled")]
    del sender
    gc.collect()
    assert target.receivers == []


def test_assigning_a_list_with_dead_entries_leaves_them_out() -> None:
    signal = Signal()
    kept, dropped = _make(), _make()
    signal.connect(kept)
    signal.connect(dropped)
    saved = signal.receivers
    signal.receivers = []
    del dropped
    gc.collect()
    signal.receivers = saved
    assert signal.live_receivers() == [kept]
    assert len(signal.receivers) == 1


def test_a_tuple_dispatch_uid_is_not_mistaken_for_a_uid_and_a_sender() -> None:
    """A tuple uid ``("uid", id(sender))`` for any sender and the uid ``"uid"``
    for that sender are two connections, each disconnected on its own."""
    signal = Signal()

    class Sender:
        pass

    sender = Sender()

    def a(sender: object, **kwargs: object) -> str:
        return "a"

    def b(sender: object, **kwargs: object) -> str:
        return "b"

    signal.connect(a, dispatch_uid=("uid", id(sender)))
    signal.connect(b, sender=sender, dispatch_uid="uid")
    assert [r for r, _ in signal.send(sender)] == [a, b]
    assert signal.disconnect(dispatch_uid="uid", sender=sender)
    assert [r for r, _ in signal.send(sender)] == [a]
    assert signal.disconnect(dispatch_uid=("uid", id(sender)))
    assert signal.send(sender) == []

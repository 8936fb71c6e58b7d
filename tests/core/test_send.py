"""send() with sync receivers: calling convention, payload, order, results, the
first failure stopping the send, re-entrancy (async receivers under send():
test_send_from_sync_code.py; send_robust(): test_robust.py).
"""

from __future__ import annotations

import threading
import traceback
from typing import Any

import pytest

from asignal import Signal


class Model:
    pass


def test_no_receivers_returns_empty_list(signal: Signal) -> None:
    """send on a signal with nothing connected returns []."""
    assert signal.send(None) == []
    assert signal.send(sender=Model, instance=1) == []
    assert signal.send_robust(None, x=1) == []


def test_sender_by_keyword_as_in_django_docs(signal: Signal) -> None:
    """send(sender=MyModel, ...) works like send(MyModel, ...)."""
    senders: list[object] = []

    def handler(sender: object, **kwargs: Any) -> None:
        senders.append(sender)

    signal.connect(handler, sender=Model)
    signal.send(sender=Model, instance=1)
    signal.send(Model, instance=1)
    signal.send_robust(sender=Model)
    assert senders == [Model, Model, Model]


def test_missing_sender_explains(signal: Signal) -> None:
    """send() without a sender says both ways to pass one."""
    with pytest.raises(TypeError, match=r"sender=MyModel"):
        signal.send()
    with pytest.raises(TypeError, match="needs the sender"):
        signal.send_robust(instance=1)


@pytest.mark.parametrize("method", ["send", "send_robust"])
def test_payload_may_use_receiver_weak_and_dispatch_uid_keys(
    signal: Signal, method: str
) -> None:
    """receiver=, weak= and dispatch_uid= are plain payload for send."""
    seen: dict[str, Any] = {}

    def handler(sender: object, **kwargs: Any) -> None:
        seen.update(kwargs)

    signal.connect(handler)
    getattr(signal, method)(Model, receiver="r", weak="w", dispatch_uid="d")
    assert {k: seen[k] for k in ("receiver", "weak", "dispatch_uid")} == {
        "receiver": "r",
        "weak": "w",
        "dispatch_uid": "d",
    }


def test_signal_keyword_is_refused(signal: Signal) -> None:
    """A payload key named signal would clash with the signal argument."""
    with pytest.raises(TypeError, match="'signal' keyword"):
        signal.send(Model, signal=1)  # refused even with nothing connected
    signal.connect(lambda sender, **kwargs: None, weak=False)
    with pytest.raises(TypeError, match="'signal' keyword"):
        signal.send(Model, signal=1)


def test_results_in_connection_order(signal: Signal) -> None:
    """Results come back in call order, each beside its receiver."""

    def first(sender: object, **kwargs: Any) -> int:
        return 1

    def second(sender: object, **kwargs: Any) -> int:
        return 2

    signal.connect(first)
    signal.connect(second)
    assert signal.send(None) == [(first, 1), (second, 2)]


def test_sync_receivers_run_in_calling_thread(signal: Signal) -> None:
    """send() calls sync receivers in the thread that sends."""
    threads: list[int] = []

    def handler(sender: object, **kwargs: Any) -> None:
        threads.append(threading.get_ident())

    signal.connect(handler)
    signal.send(None)
    assert threads == [threading.get_ident()]


def test_results_with_mixed_sync_and_async_follow_call_order(
    signal: Signal,
) -> None:
    """Unlike Django (sync first), results follow call order across kinds."""

    async def a(sender: object, **kwargs: Any) -> str:
        return "a"

    def s(sender: object, **kwargs: Any) -> str:
        return "s"

    async def b(sender: object, **kwargs: Any) -> str:
        return "b"

    signal.connect(a)
    signal.connect(s)
    signal.connect(b, priority=-1)
    assert [r for _, r in signal.send(None)] == ["a", "s", "b"]
    assert [r for _, r in signal.send_robust(None)] == ["a", "s", "b"]


def test_calls_interleave_sync_and_async_in_call_order(signal: Signal) -> None:
    """send() runs a sync receiver between two async ones only after the first."""
    order: list[str] = []

    async def a1(sender: object, **kwargs: Any) -> None:
        order.append("a1")

    def s(sender: object, **kwargs: Any) -> None:
        order.append("s")

    async def a2(sender: object, **kwargs: Any) -> None:
        order.append("a2")

    for fn in (a1, s, a2):
        signal.connect(fn)
    signal.send(None)
    assert order == ["a1", "s", "a2"]


def test_repr_uses_name() -> None:
    """A named signal shows its name in its repr; an unnamed one its address."""
    assert repr(Signal(name="orders.paid")) == "<Signal 'orders.paid'>"
    assert repr(Signal()).startswith("<Signal at 0x")


@pytest.mark.parametrize("method", ["send", "send_robust"])
def test_send_refuses_the_sender_given_twice(signal: Signal, method: str) -> None:
    """send(A, sender=B) is a caller error, raised even by the robust variant
    (not turned into a failure of every receiver)."""
    called = False

    def handler(sender: object, **kwargs: Any) -> None:
        nonlocal called
        called = True

    signal.connect(handler)
    with pytest.raises(TypeError, match="sender twice"):
        getattr(signal, method)(Model, sender=Model)
    assert not called


def test_receivers_get_signal_sender_and_payload(signal: Signal) -> None:
    """Receivers are called as receiver(signal=..., sender=..., **payload)."""
    seen: list[dict[str, Any]] = []

    def spy(**kwargs: Any) -> None:
        seen.append(kwargs)

    signal.connect(spy)
    signal.send("S", instance=1, created=True)
    signal.send(sender="T", instance=2, created=False)
    assert seen == [
        {"signal": signal, "sender": "S", "instance": 1, "created": True},
        {"signal": signal, "sender": "T", "instance": 2, "created": False},
    ]


def test_django_docs_receiver_shape(signal: Signal) -> None:
    """The seed docs' receiver (sender, instance, created, **kwargs) works as is."""

    class MyModel: ...

    def handler(sender: Any, instance: Any, created: bool, **kwargs: Any) -> str:
        return f"{sender.__name__}:{instance}:{created}"

    signal.connect(handler, sender=MyModel)
    assert signal.send(sender=MyModel, instance="i", created=True) == [
        (handler, "MyModel:i:True")
    ]


def test_first_exception_propagates_and_stops(signal: Signal) -> None:
    """send(): the first exception propagates; later receivers are not called."""
    calls: list[str] = []

    def first(sender: object, **kwargs: Any) -> None:
        calls.append("first")
        raise KeyError("boom")

    def second(sender: object, **kwargs: Any) -> None:
        calls.append("second")

    signal.connect(first)
    signal.connect(second)
    with pytest.raises(KeyError, match="boom"):
        signal.send(None)
    assert calls == ["first"]


def test_receiver_may_send_again(signal: Signal) -> None:
    """Re-entrant sends of the same signal work (no lock is held while calling)."""
    depth: list[int] = []

    def recurse(sender: object, n: int, **kwargs: Any) -> int:
        depth.append(n)
        if n < 3:
            signal.send(sender, n=n + 1)
        return n

    signal.connect(recurse)
    assert signal.send(None, n=0) == [(recurse, 0)]
    assert depth == [0, 1, 2, 3]


@pytest.mark.parametrize("named", [{}, {"payload": 1}])
def test_a_receivers_type_error_propagates_with_its_traceback(
    named: dict[str, Any],
) -> None:
    signal = Signal()
    calls: list[str] = []

    def ok(**kwargs: Any) -> None:
        calls.append("ok")

    def broken(**kwargs: Any) -> None:
        calls.append("broken")
        raise TypeError("bad operand in broken")

    def after(**kwargs: Any) -> None:
        calls.append("after")

    for fn in (ok, broken, after):
        signal.connect(fn)
    with pytest.raises(TypeError, match="bad operand in broken") as raised:
        signal.send(None, **named)
    assert calls == ["ok", "broken"]
    frames = [frame.name for frame in traceback.extract_tb(raised.value.__traceback__)]
    assert frames[-1] == "broken"


def test_a_receiver_missing_an_argument_fails_clearly() -> None:
    """A receiver the payload does not fit raises Python's own TypeError at the
    call, which is not swallowed as if the receiver had been collected."""
    signal = Signal()
    calls: list[str] = []

    def first(**kwargs: Any) -> None:
        calls.append("first")

    def needs_instance(*, instance: object, **kwargs: Any) -> None:
        calls.append("needs_instance")

    def last(**kwargs: Any) -> None:
        calls.append("last")

    for fn in (first, needs_instance, last):
        signal.connect(fn)
    with pytest.raises(TypeError, match="instance"):
        signal.send(None, created=True)
    assert calls == ["first"]

"""send() with sync receivers: calling convention, order, results, errors."""

from __future__ import annotations

import threading
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
def test_sender_given_twice_is_refused(signal: Signal, method: str) -> None:
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

"""The blocking send() and send_robust() with sync receivers; robust logging."""

from __future__ import annotations

import functools
import logging
import traceback
from typing import Any

import pytest

from asignal import Signal


def test_nothing_connected_returns_empty(signal: Signal) -> None:
    """A send with no receivers returns [] at once."""
    assert signal.send(None, x=1) == []
    assert signal.send_robust(None, x=1) == []


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


def test_send_robust_returns_errors_with_traceback(
    signal: Signal, caplog: pytest.LogCaptureFixture
) -> None:
    """send_robust(): every receiver runs; an Exception becomes the result."""

    def bad(sender: object, **kwargs: Any) -> None:
        raise ValueError("bad receiver")

    def good(sender: object, **kwargs: Any) -> str:
        return "ok"

    signal.connect(bad)
    signal.connect(good)
    with caplog.at_level(logging.ERROR, logger="asignal"):
        results = signal.send_robust(None)
    assert results[1] == (good, "ok")
    receiver, error = results[0]
    assert receiver is bad
    assert isinstance(error, ValueError)
    assert error.__traceback__ is not None
    assert "bad receiver" in "".join(traceback.format_exception(error))
    [record] = caplog.records
    assert record.levelno == logging.ERROR
    assert record.name == "asignal"
    assert record.exc_info is not None
    assert record.exc_info[1] is error
    assert "test_core_send" in record.getMessage()
    assert "send_robust" in record.getMessage()


def test_send_robust_does_not_catch_base_exceptions(signal: Signal) -> None:
    """KeyboardInterrupt and friends are never turned into results."""

    def interrupt(sender: object, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    signal.connect(interrupt)
    with pytest.raises(KeyboardInterrupt):
        signal.send_robust(None)


def test_robust_logging_survives_odd_callables(
    signal: Signal, caplog: pytest.LogCaptureFixture
) -> None:
    """Partials and instances without __qualname__ are logged, never crash
    (Django's send_robust raises AttributeError here)."""

    class Callable_:
        def __call__(self, sender: object, **kwargs: Any) -> None:
            raise RuntimeError("instance failed")

    def base(sender: object, tag: str, **kwargs: Any) -> None:
        raise RuntimeError(f"partial failed {tag}")

    instance = Callable_()
    partial = functools.partial(base, tag="t")
    signal.connect(instance, weak=False)
    signal.connect(partial, weak=False)
    with caplog.at_level(logging.ERROR, logger="asignal"):
        results = signal.send_robust(None)
    assert [type(r) for _, r in results] == [RuntimeError, RuntimeError]
    messages = [record.getMessage() for record in caplog.records]
    assert any("Callable_" in m for m in messages)
    assert any("functools.partial" in m for m in messages)


def test_receiver_may_disconnect_itself_during_send(signal: Signal) -> None:
    """A receiver that disconnects itself does not disturb the send in progress."""
    calls: list[str] = []

    def once(sender: object, **kwargs: Any) -> None:
        calls.append("once")
        signal.disconnect(once)

    def after(sender: object, **kwargs: Any) -> None:
        calls.append("after")

    signal.connect(once)
    signal.connect(after)
    signal.send(None)
    signal.send(None)
    assert calls == ["once", "after", "after"]


def test_receiver_connected_during_send_runs_next_time(signal: Signal) -> None:
    """Receivers connected during a send are not called by that send."""
    calls: list[str] = []

    def late(sender: object, **kwargs: Any) -> None:
        calls.append("late")

    def connector(sender: object, **kwargs: Any) -> None:
        calls.append("connector")
        signal.connect(late)

    signal.connect(connector)
    signal.send(None)
    assert calls == ["connector"]
    signal.send(None)
    assert calls == ["connector", "connector", "late"]


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


def test_sync_receivers_in_send_work_inside_a_running_loop(signal: Signal) -> None:
    """send() with only sync receivers is fine from async code (as in Django)."""
    import anyio

    def handler(sender: object, **kwargs: Any) -> str:
        return "sync"

    signal.connect(handler)

    async def main() -> list[tuple[Any, Any]]:
        return signal.send(None)

    assert anyio.run(main) == [(handler, "sync")]

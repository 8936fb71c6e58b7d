"""The blocking send() and send_robust() with sync receivers; robust logging."""

from __future__ import annotations

import logging
import traceback
from typing import Any

import pytest

from asignal import Signal


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
    message = record.getMessage()
    assert "test_core_send" in message
    assert "<locals>.bad" in message
    assert "send_robust" in message
    assert "bad receiver" in message
    assert "'test-signal'" in message  # the signal's name identifies it in logs


def test_send_robust_does_not_catch_base_exceptions(signal: Signal) -> None:
    """KeyboardInterrupt and friends are never turned into results."""

    def interrupt(sender: object, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    signal.connect(interrupt)
    with pytest.raises(KeyboardInterrupt):
        signal.send_robust(None)


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

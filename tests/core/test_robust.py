"""send_robust() and asend_robust(): every receiver runs, failures are results and
are logged, cancellation and BaseExceptions are never swallowed.
"""

from __future__ import annotations

import functools
import logging
import time
import traceback
from typing import Any

import anyio
import pytest

from asignal import Signal

pytestmark = pytest.mark.anyio


class Boom(Exception):
    pass


class NotAnException(BaseException):
    pass


def ok(sender: object, **kwargs: Any) -> str:
    return "ok"


def fails(sender: object, **kwargs: Any) -> None:
    raise Boom("sync failure")


async def afails(sender: object, **kwargs: Any) -> None:
    await anyio.sleep(0)
    raise Boom("async failure")


async def aok(sender: object, **kwargs: Any) -> str:
    await anyio.sleep(0)
    return "aok"


def _records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "asignal"]


def test_send_robust_success_logs_nothing(
    signal: Signal, caplog: pytest.LogCaptureFixture
) -> None:
    """No failure, no record."""
    signal.connect(ok)
    with caplog.at_level(logging.DEBUG, logger="asignal"):
        assert signal.send_robust(None) == [(ok, "ok")]
    assert _records(caplog) == []


def test_logging_partial_and_instance_without_qualname(
    signal: Signal, caplog: pytest.LogCaptureFixture
) -> None:
    """A failing functools.partial and a callable instance without __qualname__
    are logged and returned; robust sending never crashes (Django does)."""

    class Callable:
        def __call__(self, sender: object, **kwargs: Any) -> None:
            raise Boom("instance")

    partial = functools.partial(fails)
    instance = Callable()
    assert not hasattr(instance, "__qualname__")
    signal.connect(partial, weak=False)
    signal.connect(instance)
    with caplog.at_level(logging.ERROR, logger="asignal"):
        results = signal.send_robust(None)
    assert [type(r).__name__ for _, r in results] == ["Boom", "Boom"]
    messages = [r.getMessage() for r in _records(caplog)]
    assert len(messages) == 2
    assert "functools.partial" in messages[0]
    assert "Callable" in messages[1]


def test_logging_survives_broken_repr_and_str(
    signal: Signal, caplog: pytest.LogCaptureFixture
) -> None:
    """A receiver with a raising __repr__ whose exception has a raising __str__
    is still reported as a result and a log record."""

    class BadStr(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no str")

    class BadRepr:
        def __repr__(self) -> str:
            raise RuntimeError("no repr")

        def __call__(self, sender: object, **kwargs: Any) -> None:
            raise BadStr

    handler = BadRepr()
    signal.connect(handler)
    with caplog.at_level(logging.ERROR, logger="asignal"):
        ((_, result),) = signal.send_robust(None)
    assert isinstance(result, BadStr)
    assert len(_records(caplog)) == 1


def test_send_robust_with_async_receivers_from_plain_thread(
    signal: Signal, caplog: pytest.LogCaptureFixture
) -> None:
    """send_robust collects async failures too, in call order."""
    signal.connect(afails)
    signal.connect(ok)
    signal.connect(aok)
    with caplog.at_level(logging.ERROR, logger="asignal"):
        results = signal.send_robust(None)
    assert isinstance(results[0][1], Boom)
    assert [r for _, r in results[1:]] == ["ok", "aok"]
    assert len(_records(caplog)) == 1


async def test_asend_robust_every_receiver_runs(
    signal: Signal, caplog: pytest.LogCaptureFixture
) -> None:
    """asend_robust: sync and async failures are results, all others complete."""
    signal.connect(afails)
    signal.connect(fails)
    signal.connect(aok)
    signal.connect(ok)
    with caplog.at_level(logging.ERROR, logger="asignal"):
        results = await signal.asend_robust(None)
    assert [fn for fn, _ in results] == [afails, fails, aok, ok]
    assert isinstance(results[0][1], Boom)
    assert isinstance(results[1][1], Boom)
    assert results[0][1].__traceback__ is not None
    assert [r for _, r in results[2:]] == ["aok", "ok"]
    records = _records(caplog)
    assert len(records) == 2
    assert all(r.exc_info is not None for r in records)
    assert all("asend_robust" in r.getMessage() for r in records)


async def test_asend_robust_single_async_receiver(signal: Signal) -> None:
    """With one async receiver its failure is still a result, not raised."""
    signal.connect(afails)
    ((_, result),) = await signal.asend_robust(None)
    assert isinstance(result, Boom)


async def test_asend_robust_partial_without_qualname(
    signal: Signal, caplog: pytest.LogCaptureFixture
) -> None:
    """A failing async partial is logged without crashing."""
    partial = functools.partial(afails)
    signal.connect(partial, weak=False)
    with caplog.at_level(logging.ERROR, logger="asignal"):
        ((_, result),) = await signal.asend_robust(None)
    assert isinstance(result, Boom)
    assert "partial" in _records(caplog)[0].getMessage()


async def test_asend_robust_never_swallows_cancellation(signal: Signal) -> None:
    """Cancelling the caller cancels asend_robust's receivers and propagates."""
    cancelled: list[str] = []
    started = anyio.Event()

    async def waits(sender: object, **kwargs: Any) -> None:
        try:
            started.set()
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            cancelled.append("waits")
            raise

    signal.connect(waits)
    signal.connect(aok)
    reached_after = False
    with anyio.fail_after(5):
        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as tg:

                async def cancel_soon() -> None:
                    await started.wait()
                    scope.cancel()

                tg.start_soon(cancel_soon)
                await signal.asend_robust(None)
                reached_after = True
    assert scope.cancelled_caught
    assert cancelled == ["waits"]
    assert reached_after is False


async def test_asend_robust_timeout_is_a_failure_result(
    signal: Signal, caplog: pytest.LogCaptureFixture
) -> None:
    """A receiver still running at timeout= gets a logged TimeoutError result;
    the quick ones keep their results."""

    async def slow(sender: object, **kwargs: Any) -> str:
        await anyio.sleep(10)
        return "never"

    signal.connect(slow)
    signal.connect(aok)
    signal.connect(ok)
    started = time.monotonic()
    with caplog.at_level(logging.ERROR, logger="asignal"):
        results = await signal.asend_robust(None, timeout=0.1)
    assert time.monotonic() - started < 5
    assert isinstance(results[0][1], TimeoutError)
    assert [r for _, r in results[1:]] == ["aok", "ok"]
    (record,) = _records(caplog)
    assert "did not finish" in record.getMessage()


async def test_asend_robust_timeout_late_sync_thread(signal: Signal) -> None:
    """A sync receiver in a thread that returns past the deadline is a
    TimeoutError result too, not its late value."""

    def slow(sender: object, **kwargs: Any) -> str:
        time.sleep(0.3)
        return "late"

    signal.connect(slow)
    signal.connect(ok, inline=True)
    results = await signal.asend_robust(None, timeout=0.05)
    assert isinstance(results[0][1], TimeoutError)
    assert results[1][1] == "ok"


async def test_asend_robust_lets_base_exceptions_through(signal: Signal) -> None:
    """A receiver's BaseException is not turned into a result."""

    async def interrupts(sender: object, **kwargs: Any) -> None:
        raise NotAnException

    signal.connect(interrupts)
    signal.connect(aok)
    with pytest.raises(NotAnException):
        await signal.asend_robust(None)


# asyncio only by nature: trio.Cancelled cannot be raised by hand.
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.parametrize("method", ["asend", "asend_robust"])
async def test_receiver_raising_cancelled_error_is_not_swallowed(
    signal: Signal, method: str
) -> None:
    """A receiver raising CancelledError is not reported as returning None (as
    Django 6.1 does): the cancellation propagates from both variants."""
    import asyncio

    async def raises_cancelled(sender: object, **kwargs: Any) -> None:
        await anyio.sleep(0)
        raise asyncio.CancelledError

    signal.connect(raises_cancelled)
    signal.connect(aok)
    with pytest.raises(asyncio.CancelledError):
        await getattr(signal, method)(None)


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
    assert __name__ in message
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


async def test_robust_inline_and_suspended_failures(
    signal: Signal, caplog: pytest.LogCaptureFixture
) -> None:
    """asend_robust: failures in a first step and after suspending are both
    results and both logged."""

    async def fails_at_once(sender: object, **kwargs: Any) -> None:
        raise ValueError("at once")

    async def fails_later(sender: object, **kwargs: Any) -> None:
        await anyio.sleep(0)
        raise TypeError("later")

    async def fine(sender: object, **kwargs: Any) -> str:
        await anyio.sleep(0)
        return "fine"

    signal.connect(fails_at_once)
    signal.connect(fails_later)
    signal.connect(fine)
    with caplog.at_level(logging.ERROR, logger="asignal"):
        results = await signal.asend_robust(None)
    assert [type(r) for _, r in results] == [ValueError, TypeError, str]
    assert len(caplog.records) == 2

"""Watched sends (``asignal._watch``): the slow-receiver warning, the structured
fields of asignal's log records, and sends that behave exactly as unwatched ones
while something watches (results, failures, dead receivers, redelivery filters)."""

from __future__ import annotations

import contextlib
import gc
import logging
import math
from collections.abc import Callable, Generator, Iterator
from typing import Any

import anyio
import pytest

import asignal
from asignal import Signal
from asignal._integration import (
    BridgeEvent,
    add_instrument,
    asend_robust_only,
    remove_instrument,
)

pytestmark = pytest.mark.anyio


@pytest.fixture(autouse=True)
def _no_process_threshold() -> Iterator[None]:
    previous = asignal.set_slow_threshold(None)
    yield
    asignal.set_slow_threshold(previous)


def _slow_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage().startswith("Slow receiver")]


class Recorder:
    """An instrument that records what it is told, in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    @contextlib.contextmanager
    def _around(self, what: str, detail: Any) -> Generator[None]:
        self.events.append((f"enter {what}", detail))
        try:
            yield
        except BaseException as exc:
            self.events.append((f"exit {what}", type(exc).__name__))
            raise
        self.events.append((f"exit {what}", None))

    def send(
        self, signal: Signal, sender: object, method: str, receivers: int
    ) -> contextlib.AbstractContextManager[object]:
        return self._around("send", (method, receivers))

    def receiver(
        self,
        signal: Signal,
        sender: object,
        receiver: Callable[..., Any],
        method: str,
        mode: str,
    ) -> contextlib.AbstractContextManager[object]:
        # By name: holding the receiver would keep it alive.
        return self._around("receiver", (receiver.__name__, mode))

    def follow(
        self, signal: Signal, reason: str
    ) -> contextlib.AbstractContextManager[object]:
        return self._around("follow", reason)

    def publish(
        self, event: BridgeEvent, headers: dict[str, str]
    ) -> contextlib.AbstractContextManager[object]:
        return self._around("publish", event)

    def process(
        self, event: BridgeEvent, headers: Any
    ) -> contextlib.AbstractContextManager[object]:
        return self._around("process", event)


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    instrument = Recorder()
    add_instrument(instrument)
    try:
        yield instrument
    finally:
        remove_instrument(instrument)


# -- slow receivers ------------------------------------------------------------------


async def test_slow_async_receiver_is_logged_with_fields(
    caplog: pytest.LogCaptureFixture,
) -> None:
    signal = Signal(name="orders.paid", slow_threshold=0.01)

    async def slow(sender: object, **kwargs: Any) -> None:
        await anyio.sleep(0.05)

    async def quick(sender: object, **kwargs: Any) -> None:
        pass

    signal.connect(slow)
    signal.connect(quick)
    await signal.asend("shop", order=1)
    (record,) = _slow_records(caplog)
    assert record.levelno == logging.WARNING
    assert record.name == "asignal"
    fields: dict[str, Any] = record.__dict__
    assert fields["signal"] == "orders.paid"
    assert fields["receiver"].endswith(
        "test_slow_async_receiver_is_logged_with_fields.<locals>.slow"
    )
    assert fields["sender"] == "'shop'"
    assert fields["method"] == "asend"
    assert fields["duration"] >= 0.04


def test_slow_sync_receiver_is_logged_under_send(
    caplog: pytest.LogCaptureFixture,
) -> None:
    signal = Signal(name="s", slow_threshold=0.0)

    def receiver(sender: object, **kwargs: Any) -> int:
        return 1

    signal.connect(receiver)
    assert signal.send(None) == [(receiver, 1)]
    (record,) = _slow_records(caplog)
    assert record.__dict__["method"] == "send"
    assert record.__dict__["sender"] is None


def test_process_wide_threshold_and_signal_override(
    caplog: pytest.LogCaptureFixture,
) -> None:
    quiet = Signal(name="quiet", slow_threshold=60.0)
    loud = Signal(name="loud")

    def receiver(sender: object, **kwargs: Any) -> None:
        pass

    quiet.connect(receiver)
    loud.connect(receiver)
    loud.send(None)
    assert _slow_records(caplog) == []
    assert asignal.set_slow_threshold(0) is None
    quiet.send(None)
    loud.send(None)
    assert [r.__dict__["signal"] for r in _slow_records(caplog)] == ["loud"]
    assert asignal.set_slow_threshold(None) == 0.0
    caplog.clear()
    loud.send(None)
    assert _slow_records(caplog) == []


def test_failing_receiver_is_timed_too(caplog: pytest.LogCaptureFixture) -> None:
    signal = Signal(name="s", slow_threshold=0)

    def boom(sender: object, **kwargs: Any) -> None:
        raise ValueError("boom")

    signal.connect(boom)
    with pytest.raises(ValueError, match="boom"):
        signal.send(None)
    assert len(_slow_records(caplog)) == 1


@pytest.mark.parametrize("bad", [-1, "1", True, math.nan, [1]])
def test_bad_threshold_is_refused(bad: Any) -> None:
    with pytest.raises(ValueError, match="number of seconds >= 0"):
        asignal.set_slow_threshold(bad)
    with pytest.raises(ValueError, match="number of seconds >= 0"):
        Signal(slow_threshold=bad)
    signal = Signal()
    with pytest.raises(ValueError, match="number of seconds >= 0"):
        signal.slow_threshold = bad
    assert signal.slow_threshold is None


def test_threshold_is_settable_per_signal(caplog: pytest.LogCaptureFixture) -> None:
    signal = Signal(name="s")
    signal.connect(lambda sender, **kwargs: None, weak=False)
    signal.slow_threshold = 0
    signal.send(None)
    assert len(_slow_records(caplog)) == 1
    signal.slow_threshold = None
    signal.send(None)
    assert len(_slow_records(caplog)) == 1


# -- log records carry structured fields ---------------------------------------------


async def test_robust_failure_record_has_fields(
    caplog: pytest.LogCaptureFixture,
) -> None:
    signal = Signal(name="orders.paid")

    class Order:
        pass

    async def boom(sender: object, **kwargs: Any) -> None:
        raise ValueError("boom")

    signal.connect(boom)
    await signal.asend_robust(Order)
    (record,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    fields: dict[str, Any] = record.__dict__
    assert fields["signal"] == "orders.paid"
    assert fields["receiver"].endswith("<locals>.boom")
    assert fields["sender"].endswith("<locals>.Order")
    assert fields["method"] == "asend_robust"


# -- watched sends behave as unwatched ones ------------------------------------------


async def test_results_hold_receivers_not_wrappers(recorder: Recorder) -> None:
    signal = Signal()

    async def a(sender: object, **kwargs: Any) -> str:
        return "a"

    def s(sender: object, **kwargs: Any) -> str:
        return "s"

    def i(sender: object, **kwargs: Any) -> str:
        return "i"

    signal.connect(a)
    signal.connect(s)
    signal.connect(i, inline=True)
    expected = [(a, "a"), (s, "s"), (i, "i")]
    assert await signal.asend(None, x=1) == expected
    assert await signal.asend_robust(None) == expected
    assert await anyio.to_thread.run_sync(lambda: signal.send(None)) == expected
    modes = [d for e, d in recorder.events if e == "enter receiver"]
    # asend: awaited, in a worker thread, on the loop; send(): sync ones in its
    # own thread. (Concurrent receivers start in no promised order.)
    assert sorted(modes[:3]) == [("a", "async"), ("i", "inline"), ("s", "thread")]
    assert sorted(modes[-3:]) == [("a", "async"), ("i", "inline"), ("s", "inline")]


async def test_instrument_sees_failures_and_order(recorder: Recorder) -> None:
    signal = Signal()

    def boom(sender: object, **kwargs: Any) -> None:
        raise ValueError("boom")

    signal.connect(boom, inline=True)
    results = await signal.asend_robust(None)
    assert results[0][0] is boom
    assert isinstance(results[0][1], ValueError)
    assert recorder.events == [
        ("enter send", ("asend_robust", 1)),
        ("enter receiver", ("boom", "inline")),
        ("exit receiver", "ValueError"),
        ("exit send", None),
    ]


def test_exception_chain_kept_while_watched(recorder: Recorder) -> None:
    signal = Signal()

    def wrapped(sender: object, **kwargs: Any) -> None:
        raise ValueError("wrapped") from KeyError("cause")

    signal.connect(wrapped)
    with pytest.raises(ValueError, match="wrapped") as info:
        signal.send(None)
    assert isinstance(info.value.__cause__, KeyError)
    assert recorder.events[-1] == ("exit send", "ValueError")


def test_base_exception_propagates_through_watch(recorder: Recorder) -> None:
    signal = Signal()

    def stop(sender: object, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    signal.connect(stop)
    with pytest.raises(KeyboardInterrupt):
        signal.send_robust(None)
    assert ("exit receiver", "KeyboardInterrupt") in recorder.events


async def test_returned_coroutine_names_the_receiver(recorder: Recorder) -> None:
    signal = Signal()

    async def coro() -> None:
        pass

    def sneaky(sender: object, **kwargs: Any) -> Any:
        return coro()

    signal.connect(sneaky, inline=True)
    with pytest.raises(TypeError, match="sneaky"):
        await signal.asend(None)


async def test_dead_receiver_is_skipped_while_watched(recorder: Recorder) -> None:
    signal = Signal()

    class Holder:
        def method(self, sender: object, **kwargs: Any) -> str:
            return "alive"

    holder = Holder()
    signal.connect(holder.method)
    assert len(await signal.asend(None)) == 1
    del holder
    gc.collect()
    assert await signal.asend(None) == []


async def test_no_send_event_for_a_send_without_receivers(recorder: Recorder) -> None:
    signal = Signal()
    assert await signal.asend(None) == []
    assert signal.send(None) == []
    assert recorder.events == []


async def test_redelivery_filter_sees_receivers(recorder: Recorder) -> None:
    """The bridge's redelivery runs only some receivers, chosen by the receivers
    themselves, never their wrappers."""
    signal = Signal()

    async def first(sender: object, **kwargs: Any) -> str:
        return "first"

    async def second(sender: object, **kwargs: Any) -> str:
        return "second"

    signal.connect(first)
    signal.connect(second)
    seen: list[Callable[..., Any]] = []

    def keep(receiver: Callable[..., Any]) -> bool:
        seen.append(receiver)
        return receiver is second

    results = await asend_robust_only(signal, None, {}, keep)
    assert seen == [first, second]
    assert results == [(second, "second")]
    assert ("enter send", ("asend_robust", 1)) in recorder.events


def test_instrument_added_twice_watches_once() -> None:
    instrument = Recorder()
    add_instrument(instrument)
    add_instrument(instrument)
    try:
        signal = Signal()
        signal.connect(lambda sender, **kwargs: None, weak=False)
        signal.send(None)
        assert [e for e, _ in instrument.events].count("enter send") == 1
    finally:
        remove_instrument(instrument)
        remove_instrument(instrument)  # a second removal is harmless


def test_sender_field_never_uses_an_objects_repr(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An object sender is shown by its type: its repr could be slow, raise, or
    hold data that logs must not."""
    signal = Signal(name="s")

    class Secret:
        def __repr__(self) -> str:
            raise AssertionError("repr called")

    def boom(sender: object, **kwargs: Any) -> None:
        raise ValueError("boom")

    signal.connect(boom)
    signal.send_robust(Secret())
    (record,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert record.__dict__["sender"] == (
        f"<{__name__}.test_sender_field_never_uses_an_objects_repr.<locals>.Secret"
        " object>"
    )

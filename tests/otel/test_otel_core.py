"""asignal.otel on in-process sends: the span tree, outcomes, context and metrics."""

from __future__ import annotations

import threading
from typing import Any

import anyio
import pytest
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode

import asignal.otel
from asignal import Signal
from tests.otel.conftest import Telemetry

pytestmark = pytest.mark.anyio


def _attrs(span: Any) -> dict[str, Any]:
    return dict(span.attributes or {})


async def test_asend_span_tree(telemetry: Telemetry) -> None:
    """One send span; a child per receiver, concurrent ones as siblings, each
    current while its receiver runs, in a worker thread and on the loop too."""
    signal = Signal(name="orders.paid")
    current: dict[str, int] = {}

    async def awaited(sender: object, **kwargs: Any) -> None:
        await anyio.sleep(0.01)
        current["awaited"] = trace.get_current_span().get_span_context().span_id

    def threaded(sender: object, **kwargs: Any) -> None:
        current["threaded"] = trace.get_current_span().get_span_context().span_id

    def inline(sender: object, **kwargs: Any) -> None:
        current["inline"] = trace.get_current_span().get_span_context().span_id

    signal.connect(awaited)
    signal.connect(threaded)
    signal.connect(inline, inline=True)
    await signal.asend("shop", order=1)

    send = telemetry.span("asend orders.paid")
    assert send.kind is SpanKind.INTERNAL
    assert _attrs(send) == {
        "asignal.signal": "orders.paid",
        "asignal.method": "asend",
        "asignal.sender": "'shop'",
        "asignal.receivers": 3,
        "asignal.outcome": "ok",
    }
    children = {s.name.rsplit(".", 1)[-1]: s for s in telemetry.children(send)}
    assert set(children) == {"awaited", "threaded", "inline"}
    modes = {n: _attrs(s)["asignal.receiver.mode"] for n, s in children.items()}
    assert modes == {"awaited": "async", "threaded": "thread", "inline": "inline"}
    for name, span in children.items():
        assert span.context is not None
        assert current[name] == span.context.span_id
        assert _attrs(span)["asignal.outcome"] == "ok"
        assert _attrs(span)["asignal.signal"] == "orders.paid"
        assert span.status.status_code is StatusCode.UNSET
    assert send.parent is None
    assert len(telemetry.spans()) == 4


async def test_failure_is_recorded_on_receiver_and_send(telemetry: Telemetry) -> None:
    signal = Signal(name="s")

    async def boom(sender: object, **kwargs: Any) -> None:
        raise ValueError("boom") from KeyError("cause")

    signal.connect(boom)
    with pytest.raises(ValueError, match="boom") as info:
        await signal.asend(None)
    assert isinstance(info.value.__cause__, KeyError)
    receiver = telemetry.span(f"{boom.__module__}.{boom.__qualname__}")
    send = telemetry.span("asend s")
    for span in (receiver, send):
        assert span.status.status_code is StatusCode.ERROR
        assert span.status.description == "ValueError: boom"
        assert _attrs(span)["asignal.outcome"] == "error"
        (event,) = span.events
        assert event.name == "exception"
        assert str(_attrs(event)["exception.type"]).endswith("ValueError")


async def test_robust_failure_is_recorded_on_its_receiver(
    telemetry: Telemetry,
) -> None:
    signal = Signal(name="s")

    def boom(sender: object, **kwargs: Any) -> None:
        raise RuntimeError("robust")

    def fine(sender: object, **kwargs: Any) -> str:
        return "ok"

    signal.connect(boom, inline=True)
    signal.connect(fine, inline=True)
    results = await signal.asend_robust(None)
    assert results[0][0] is boom
    assert isinstance(results[0][1], RuntimeError)
    assert results[1] == (fine, "ok")
    send = telemetry.span("asend_robust s")
    assert _attrs(send)["asignal.outcome"] == "ok"
    by_name = {s.name.rsplit(".", 1)[-1]: s for s in telemetry.children(send)}
    assert by_name["boom"].status.status_code is StatusCode.ERROR
    assert _attrs(by_name["boom"])["asignal.outcome"] == "error"
    assert _attrs(by_name["fine"])["asignal.outcome"] == "ok"
    calls = {
        (a["asignal.receiver"].rsplit(".", 1)[-1], a["asignal.outcome"]): v
        for a, v in telemetry.points("asignal.receiver.calls")
    }
    assert calls == {("boom", "error"): 1, ("fine", "ok"): 1}


async def test_cancellation_is_visible_and_not_an_error(telemetry: Telemetry) -> None:
    signal = Signal(name="s")
    started = anyio.Event()

    async def waits(sender: object, **kwargs: Any) -> None:
        started.set()
        await anyio.sleep_forever()

    signal.connect(waits)
    with anyio.move_on_after(5) as scope:
        async with anyio.create_task_group() as tg:
            tg.start_soon(signal.asend, None)
            await started.wait()
            tg.cancel_scope.cancel()
    assert not scope.cancelled_caught
    for span in telemetry.spans():
        assert _attrs(span)["asignal.outcome"] == "cancelled"
        assert span.status.status_code is StatusCode.UNSET
    assert len(telemetry.spans()) == 2


async def test_timeouts_are_visible(telemetry: Telemetry) -> None:
    signal = Signal(name="s")

    async def slow(sender: object, **kwargs: Any) -> None:
        await anyio.sleep(5)

    async def other(sender: object, **kwargs: Any) -> None:
        await anyio.sleep(5)

    signal.connect(slow)
    signal.connect(other)
    with pytest.raises(TimeoutError):
        await signal.asend(None, timeout=0.05)
    send = telemetry.span("asend s")
    assert _attrs(send)["asignal.outcome"] == "timeout"
    assert send.status.status_code is StatusCode.ERROR
    outcomes = {_attrs(s)["asignal.outcome"] for s in telemetry.children(send)}
    assert outcomes == {"cancelled"}

    telemetry.exporter.clear()
    results = await signal.asend_robust(None, timeout=0.05)
    assert all(isinstance(result, TimeoutError) for _, result in results)
    send = telemetry.span("asend_robust s")
    assert _attrs(send)["asignal.outcome"] == "ok"
    assert {_attrs(s)["asignal.outcome"] for s in telemetry.children(send)} == {
        "cancelled"
    }


def _send_under_span(telemetry: Telemetry, signal: Signal) -> None:
    tracer = telemetry.tracer_provider.get_tracer("test")
    with tracer.start_as_current_span("caller"):
        signal.send(None)


async def _async_receiver(sender: object, **kwargs: Any) -> str:
    await anyio.sleep(0)
    return "async"


def _check_send_tree(telemetry: Telemetry, method: str = "send") -> None:
    caller = telemetry.span("caller")
    send = telemetry.span(f"{method} s")
    assert send.parent is not None
    assert caller.context is not None
    assert send.parent.span_id == caller.context.span_id
    (receiver,) = telemetry.children(send)
    assert receiver.name.endswith("_async_receiver")
    assert _attrs(receiver)["asignal.receiver.mode"] == "async"


async def test_send_from_worker_thread_continues_the_trace(
    telemetry: Telemetry,
) -> None:
    signal = Signal(name="s")
    signal.connect(_async_receiver)
    await anyio.to_thread.run_sync(_send_under_span, telemetry, signal)
    _check_send_tree(telemetry)


def test_send_from_plain_thread_continues_the_trace(telemetry: Telemetry) -> None:
    """From a thread with no event loop, async receivers run on asignal's kept
    loop; their spans still belong to the sending thread's trace."""
    signal = Signal(name="s")
    signal.connect(_async_receiver)
    thread = threading.Thread(target=_send_under_span, args=(telemetry, signal))
    thread.start()
    thread.join(10)
    _check_send_tree(telemetry)


def test_sync_send_keeps_receivers_in_order(telemetry: Telemetry) -> None:
    signal = Signal()
    order: list[str] = []
    for name in ("first", "second", "third"):

        def receiver(sender: object, _name: str = name, **kwargs: Any) -> None:
            order.append(_name)

        signal.connect(receiver, weak=False)
    signal.send(None)
    assert order == ["first", "second", "third"]
    send = telemetry.span(f"send {signal!r}")
    assert _attrs(send)["asignal.signal"] == repr(signal)
    assert len(telemetry.children(send)) == 3


async def test_metrics_count_sends_and_receivers(telemetry: Telemetry) -> None:
    signal = Signal(name="m")

    async def ok(sender: object, **kwargs: Any) -> None:
        pass

    signal.connect(ok)
    for _ in range(3):
        await signal.asend(None)
    await anyio.to_thread.run_sync(lambda: signal.send(None))
    sends = {
        (a["asignal.method"], a["asignal.outcome"]): v
        for a, v in telemetry.points("asignal.sends")
        if a["asignal.signal"] == "m"
    }
    assert sends == {("asend", "ok"): 3, ("send", "ok"): 1}
    durations = telemetry.points("asignal.receiver.duration")
    assert sum(count for _, count in durations) == 4
    assert sum(count for _, count in telemetry.points("asignal.send.duration")) == 4


def test_instrument_is_idempotent_and_uninstrument_stops(
    telemetry: Telemetry,
) -> None:
    signal = Signal(name="i")
    signal.connect(lambda sender, **kwargs: None, weak=False)
    asignal.otel.instrument(
        tracer_provider=telemetry.tracer_provider,
        meter_provider=telemetry.meter_provider,
    )
    assert asignal.otel.is_instrumented()
    signal.send(None)
    assert [s.name for s in telemetry.spans()].count("send i") == 1
    asignal.otel.uninstrument()
    asignal.otel.uninstrument()
    assert not asignal.otel.is_instrumented()
    signal.send(None)
    assert [s.name for s in telemetry.spans()].count("send i") == 1


async def test_muted_send_makes_no_span(telemetry: Telemetry) -> None:
    from asignal.testing import mute

    signal = Signal(name="quiet")
    signal.connect(lambda sender, **kwargs: None, weak=False)
    with mute(signal):
        await signal.asend(None)
    assert telemetry.spans() == []


def test_instrument_with_other_providers_replaces_the_first(
    telemetry: Telemetry,
) -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
        InMemorySpanExporter,
    )

    signal = Signal(name="r")
    signal.connect(lambda sender, **kwargs: None, weak=False)
    other = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(other))
    asignal.otel.instrument(tracer_provider=provider)
    signal.send(None)
    assert [s.name for s in other.get_finished_spans()].count("send r") == 1
    assert telemetry.spans() == []  # the first providers no longer see sends

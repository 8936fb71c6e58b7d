"""OpenTelemetry traces and metrics for asignal: sends, receivers and bridges.

::

    import asignal.otel

    asignal.otel.instrument()  # the global tracer and meter providers
    ...
    asignal.otel.uninstrument()

Needs ``opentelemetry-api`` (``pip install 'asignal[otel]'``); the SDK and its
exporters are the application's choice. Nothing else in asignal imports
OpenTelemetry, and while this module has not instrumented anything a send pays one
flag check for it.

Spans (see the README's "Observability" for the full list of names and attributes):

* ``{method} {signal}`` (``asend shop.order_paid``), INTERNAL, around each send
  that reaches at least one receiver;
* ``{receiver}`` (its qualified name), INTERNAL, around each receiver's run, a child
  of its send's span (concurrent receivers are siblings), current while the receiver
  runs, in its worker thread or on asignal's kept loop too;
* ``background {signal}``, a new trace linked to the request that handed the send
  over (``asignal.asgi``'s sends after the response);
* ``publish {signal}`` (PRODUCER) around a bridge's publish, whose context travels
  in the event's ``traceparent`` header, and ``process {signal}`` (CONSUMER) on each
  node that runs the event's receivers, a child of the publish span.

An error (also one a robust send turns into a result) is recorded on the span of the
receiver that raised it, with status ERROR; every span says how it ended in
``asignal.outcome``: ``ok``, ``error``, ``timeout`` or ``cancelled``.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
import time
from collections.abc import Callable, Generator, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import metrics, propagate, trace
from opentelemetry.metrics import CallbackOptions, Counter, Histogram, Observation
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from asignal import __version__
from asignal._integration import (
    BridgeEvent,
    add_instrument,
    remove_instrument,
)
from asignal._receivers import describe_callable, describe_sender

if TYPE_CHECKING:
    from asignal import Signal

__all__ = ["instrument", "is_instrumented", "uninstrument"]

_SCOPE = "asignal"


class _State:
    """The one instrument in use, if any (this module's process-wide state)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.instrument: _OpenTelemetry | None = None


_state = _State()


def instrument(
    *,
    tracer_provider: trace.TracerProvider | None = None,
    meter_provider: metrics.MeterProvider | None = None,
) -> None:
    """Trace and measure every send, receiver and bridged event from now on.

    Idempotent: a second call with the same providers changes nothing; with others,
    they replace the first ones. Without providers, OpenTelemetry's global ones are
    used (``trace.set_tracer_provider``), looked up now.
    """
    with _state.lock:
        current = _state.instrument
        if current is not None and current.providers == (
            tracer_provider,
            meter_provider,
        ):
            return
        if current is not None:
            remove_instrument(current)
        _state.instrument = _OpenTelemetry(tracer_provider, meter_provider)
        add_instrument(_state.instrument)


def uninstrument() -> None:
    """Stop tracing and measuring; nothing if :func:`instrument` was not called.
    Sends in progress finish the spans they started."""
    with _state.lock:
        if _state.instrument is not None:
            remove_instrument(_state.instrument)
            _state.instrument = None


def is_instrumented() -> bool:
    """Whether :func:`instrument` is in effect."""
    return _state.instrument is not None


def _signal_name(signal: Signal) -> str:
    return signal.name if signal.name is not None else repr(signal)


def _outcome(exc: BaseException | None) -> str:
    if exc is None:
        return "ok"
    if _is_cancellation(exc):
        return "cancelled"
    if isinstance(exc, TimeoutError):
        return "timeout"
    return "error"


def _is_cancellation(exc: BaseException) -> bool:
    # GeneratorExit: a receiver's coroutine closed before it finished.
    if isinstance(exc, (asyncio.CancelledError, GeneratorExit)):
        return True
    trio = sys.modules.get("trio")
    return trio is not None and isinstance(exc, trio.Cancelled)


class _OpenTelemetry:
    """The instrument (``asignal._watch.Instrument``) that makes spans and records
    metrics."""

    def __init__(
        self,
        tracer_provider: trace.TracerProvider | None,
        meter_provider: metrics.MeterProvider | None,
    ) -> None:
        self.providers = (tracer_provider, meter_provider)
        self.tracer = trace.get_tracer(
            _SCOPE, __version__, tracer_provider=tracer_provider
        )
        meter = metrics.get_meter(_SCOPE, __version__, meter_provider=meter_provider)
        self.sends = meter.create_counter(
            "asignal.sends", unit="{send}", description="Sends that reached receivers."
        )
        self.send_duration = meter.create_histogram(
            "asignal.send.duration", unit="s", description="How long each send took."
        )
        self.receiver_calls = meter.create_counter(
            "asignal.receiver.calls",
            unit="{call}",
            description="Receiver runs, by outcome.",
        )
        self.receiver_duration = meter.create_histogram(
            "asignal.receiver.duration",
            unit="s",
            description="How long each receiver ran, suspensions included.",
        )
        self.bridge_events = meter.create_counter(
            "asignal.bridge.events",
            unit="{event}",
            description="Events published to and processed from bridges.",
        )
        meter.create_observable_gauge(
            "asignal.background.sends",
            callbacks=[self._observe_background],
            unit="{send}",
            description="Background sends waiting or running, by state.",
        )
        meter.create_observable_gauge(
            "asignal.bridge.lag",
            callbacks=[self._observe_bridge_lag],
            unit="{event}",
            description="Events in the broker a bridge has not read yet.",
        )
        meter.create_observable_gauge(
            "asignal.bridge.in_flight",
            callbacks=[self._observe_bridge_in_flight],
            unit="{event}",
            description="Events a bridge has read and not settled yet.",
        )

    # -- spans -----------------------------------------------------------------------

    @contextlib.contextmanager
    def _span(
        self,
        name: str,
        kind: SpanKind,
        labels: dict[str, Any],
        details: dict[str, Any] | None = None,
        *,
        measure: tuple[Counter, Histogram | None] | None = None,
        parent: otel_context.Context | None = None,
        links: list[Link] | None = None,
    ) -> Generator[trace.Span]:
        """A span with attributes *labels* and *details*, current until it ends; its
        outcome set from the exception that ends it (recorded, status ERROR, unless
        a cancellation), then passed on. *measure* counts it (and times it) under
        *labels* and the outcome."""
        span = self.tracer.start_span(
            name,
            context=parent,
            kind=kind,
            attributes={**labels, **details} if details else labels,
            links=links,
            record_exception=False,
            set_status_on_exception=False,
        )
        token = otel_context.attach(trace.set_span_in_context(span))
        start = time.perf_counter()
        outcome = "ok"
        try:
            yield span
        except BaseException as exc:
            outcome = _outcome(exc)
            if outcome != "cancelled":
                span.record_exception(exc)
                span.set_status(
                    Status(StatusCode.ERROR, f"{type(exc).__qualname__}: {exc}")
                )
            raise
        finally:
            span.set_attribute("asignal.outcome", outcome)
            otel_context.detach(token)
            span.end()
            if measure is not None:
                counter, histogram = measure
                measured = {**labels, "asignal.outcome": outcome}
                counter.add(1, measured)
                if histogram is not None:
                    histogram.record(time.perf_counter() - start, measured)

    def send(
        self, signal: Signal, sender: object, method: str, receivers: int
    ) -> contextlib.AbstractContextManager[object]:
        name = _signal_name(signal)
        return self._span(
            f"{method} {name}",
            SpanKind.INTERNAL,
            {"asignal.signal": name, "asignal.method": method},
            {
                "asignal.sender": describe_sender(sender) or "None",
                "asignal.receivers": receivers,
            },
            measure=(self.sends, self.send_duration),
        )

    def receiver(
        self,
        signal: Signal,
        sender: object,
        receiver: Callable[..., Any],
        method: str,
        mode: str,
    ) -> contextlib.AbstractContextManager[object]:
        receiver_name = describe_callable(receiver)
        return self._span(
            receiver_name,
            SpanKind.INTERNAL,
            {
                "asignal.signal": _signal_name(signal),
                "asignal.receiver": receiver_name,
                "asignal.receiver.mode": mode,
            },
            {"asignal.method": method, "code.function.name": receiver_name},
            measure=(self.receiver_calls, self.receiver_duration),
        )

    def follow(
        self, signal: Signal, reason: str
    ) -> contextlib.AbstractContextManager[object]:
        name = _signal_name(signal)
        origin = trace.get_current_span().get_span_context()
        return self._span(
            f"{reason} {name}",
            SpanKind.INTERNAL,
            {"asignal.signal": name, "asignal.reason": reason},
            parent=otel_context.Context(),  # a trace of its own...
            links=[Link(origin)] if origin.is_valid else None,  # ...that links back
        )

    def publish(
        self, event: BridgeEvent, headers: dict[str, str]
    ) -> contextlib.AbstractContextManager[object]:
        return self._bridge_span(event, "publish", SpanKind.PRODUCER, headers, None)

    def process(
        self, event: BridgeEvent, headers: Mapping[str, str]
    ) -> contextlib.AbstractContextManager[object]:
        parent = propagate.extract(dict(headers))
        return self._bridge_span(event, "process", SpanKind.CONSUMER, None, parent)

    @contextlib.contextmanager
    def _bridge_span(
        self,
        event: BridgeEvent,
        operation: str,
        kind: SpanKind,
        carrier: dict[str, str] | None,
        parent: otel_context.Context | None,
    ) -> Generator[None]:
        # OpenTelemetry's messaging conventions, with the signal as destination.
        details: dict[str, Any] = {
            "messaging.message.id": event.id,
            "asignal.bridge.node": event.node,
            "asignal.bridge.origin": event.origin,
        }
        if operation == "process":
            details["messaging.message.delivery_count"] = event.deliveries
        with self._span(
            f"{operation} {event.signal}",
            kind,
            {
                "messaging.system": event.system,
                "messaging.destination.name": event.signal,
                "messaging.operation.type": (
                    "send" if operation == "publish" else operation
                ),
                "messaging.operation.name": operation,
            },
            details,
            measure=(self.bridge_events, None),
            parent=parent,
        ):
            if carrier is not None:
                propagate.inject(carrier)
            yield

    # -- gauges ----------------------------------------------------------------------

    def _active(self) -> bool:
        return _state.instrument is self

    def _observe_background(self, options: CallbackOptions) -> Iterable[Observation]:
        asgi = sys.modules.get("asignal.asgi")
        if asgi is None or not self._active():
            return []
        totals = {"buffered": 0, "reserved": 0, "running": 0}
        for stats in asgi.background_statistics():
            totals["buffered"] += stats.buffered
            totals["reserved"] += stats.reserved
            totals["running"] += stats.running
        return [
            Observation(count, {"asignal.background.state": state})
            for state, count in totals.items()
        ]

    def _bridges(self) -> list[Any]:
        bridge = sys.modules.get("asignal.bridge")
        if bridge is None or not self._active():
            return []
        return list(bridge.open_bridges())

    def _observe_bridge_lag(self, options: CallbackOptions) -> Iterable[Observation]:
        return [
            Observation(stats.lag, _bridge_labels(bridge))
            for bridge in self._bridges()
            if (stats := bridge.statistics()).lag is not None
        ]

    def _observe_bridge_in_flight(
        self, options: CallbackOptions
    ) -> Iterable[Observation]:
        return [
            Observation(bridge.statistics().in_flight, _bridge_labels(bridge))
            for bridge in self._bridges()
        ]


def _bridge_labels(bridge: Any) -> dict[str, str]:
    return {"asignal.bridge.node": bridge.node_id, "asignal.bridge.url": bridge.url}

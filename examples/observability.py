"""The README's "Observability" example: asignal's spans on OpenTelemetry's console.

Needs ``asignal[otel]`` and ``opentelemetry-sdk`` (the ``examples`` group has both).
Run it with ``python examples/observability.py``: it prints one line per span, as
``trace/span <- parent  name  attributes``, and a slow-receiver WARNING.
``--check`` makes it a self-test (``nox -s examples`` runs it).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

import anyio
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)

import asignal
import asignal.otel

order_paid = asignal.Signal(name="shop.order_paid")


@asignal.receiver(order_paid)
async def send_receipt(sender, order_id, **kwargs):
    await anyio.sleep(0.05)  # an email API, say: slower than the threshold below


@asignal.receiver(order_paid)
def update_stock(sender, order_id, **kwargs):  # sync: runs in a worker thread
    pass


@asignal.receiver(order_paid)
async def notify_warehouse(sender, order_id, **kwargs):
    raise ConnectionError("warehouse API down")


class OneLinePerSpan(SpanExporter):
    """Print each span on one line (OpenTelemetry's ConsoleSpanExporter prints
    JSON, many lines per span), and keep them for --check."""

    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        for span in spans:
            self.spans.append(span)
            assert span.context is not None
            parent = f"{span.parent.span_id:016x}"[:4] if span.parent else "root"
            attributes = {
                k: v
                for k, v in (span.attributes or {}).items()
                if k
                in ("asignal.receiver.mode", "asignal.outcome", "asignal.receivers")
            }
            print(
                f"{span.context.trace_id:032x}"[:4],
                f"{span.context.span_id:016x}"[:4],
                f"<- {parent:4}",
                f"{span.name:42}",
                attributes,
            )
        return SpanExportResult.SUCCESS


async def main() -> list[ReadableSpan]:
    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s")
    exporter = OneLinePerSpan()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    asignal.otel.instrument(tracer_provider=provider)
    asignal.set_slow_threshold(0.02)  # log receivers slower than 20 ms
    try:
        results = await order_paid.asend_robust(sender=None, order_id=42)
    finally:
        asignal.otel.uninstrument()
        asignal.set_slow_threshold(None)
    for receiver, result in results:
        print(f"{receiver.__name__}: {result!r}")
    return exporter.spans


if __name__ == "__main__":
    spans = anyio.run(main)
    if "--check" in sys.argv:
        send = next(s for s in spans if s.name == "asend_robust shop.order_paid")
        assert send.context is not None
        children = [
            s for s in spans if s.parent and s.parent.span_id == send.context.span_id
        ]
        assert len(children) == 3, children
        outcomes = {
            s.name.rsplit(".", 1)[-1]: (s.attributes or {})["asignal.outcome"]
            for s in children
        }
        assert outcomes == {
            "send_receipt": "ok",
            "update_stock": "ok",
            "notify_warehouse": "error",
        }, outcomes
        print("check passed")

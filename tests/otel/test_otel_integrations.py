"""asignal.otel with real parts: background sends after a response served by uvicorn
(and in process), events bridged between two nodes (memory://, Redis), model signals
sent by the SQLAlchemy bridge, and blocking sends from threads.

Each test checks the shape of the traces (which span is whose child, which trace a
span belongs to, its links and attributes) and that the gauges report while their
component is open.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, Literal

import anyio
import httpx
import pytest
from asgi_lifespan import LifespanManager
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind
from sqlalchemy import String
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

import asignal.sqlalchemy
from asignal import Signal
from asignal.asgi import (
    ASGIApp,
    BackgroundSends,
    Receive,
    Scope,
    Send,
    SignalMiddleware,
    send_after_response,
)
from asignal.bridge import Bridge, Publication, current_event
from asignal.signals import post_save
from tests.asgi.test_uvicorn import serve
from tests.bridge.conftest import (
    REDIS_DB,
    REDIS_HOST,
    REDIS_PORT,
    delete_keys,
    redis_up,
)
from tests.conftest import require_service
from tests.otel.conftest import Telemetry

pytestmark = pytest.mark.anyio

#: redis-py is asyncio-only.
asyncio_only = pytest.mark.parametrize("anyio_backend", ["asyncio"])

Delivery = Literal["at_most_once", "at_least_once"]


# -- helpers -----------------------------------------------------------------------


def span_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return int(span.context.span_id)


def trace_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return int(span.context.trace_id)


def attr(span: ReadableSpan, key: str) -> Any:
    """The span's attribute *key* (KeyError if it has none)."""
    return (span.attributes or {})[key]


def is_child(child: ReadableSpan, parent: ReadableSpan) -> bool:
    """Whether *child*'s parent is *parent* (same trace, parent's span id)."""
    return (
        child.parent is not None
        and child.parent.span_id == span_id(parent)
        and child.parent.trace_id == trace_id(parent)
        and trace_id(child) == trace_id(parent)
    )


def descends(span: ReadableSpan, ancestor: ReadableSpan, telemetry: Telemetry) -> bool:
    """Whether *ancestor* is on *span*'s chain of parents among the finished spans."""
    by_id = {span_id(s): s for s in telemetry.spans()}
    current: ReadableSpan | None = span
    while current is not None and current.parent is not None:
        if current.parent.span_id == span_id(ancestor):
            return trace_id(current) == trace_id(ancestor)
        current = by_id.get(current.parent.span_id)
    return False


def receiver_spans(telemetry: Telemetry, function: str) -> list[ReadableSpan]:
    """The spans of every run of the receiver function called *function*."""
    return [
        s
        for s in telemetry.spans()
        if str((s.attributes or {}).get("asignal.receiver", "")).endswith(
            f".{function}"
        )
    ]


def receiver_span(telemetry: Telemetry, function: str) -> ReadableSpan:
    found = receiver_spans(telemetry, function)
    assert len(found) == 1, (function, [s.name for s in telemetry.spans()])
    return found[0]


def tracer(telemetry: Telemetry) -> trace.Tracer:
    """A tracer of the test's own, on the provider asignal.otel reports to."""
    return telemetry.tracer_provider.get_tracer("tests.otel")


async def wait_for_span(telemetry: Telemetry, name: str) -> ReadableSpan:
    """The finished span called *name*, once there is one (10 s at most)."""
    with anyio.fail_after(10):
        while not any(s.name == name for s in telemetry.spans()):
            await anyio.sleep(0.01)
    return telemetry.span(name)


def gauge(telemetry: Telemetry, metric: str, **labels: str) -> list[Any]:
    """The values of *metric*'s points whose attributes include *labels*, read now."""
    return [
        value
        for attributes, value in telemetry.points(metric)
        if all(attributes.get(key) == want for key, want in labels.items())
    ]


def unique(name: str) -> str:
    return f"tests.otel.{name}.{uuid.uuid4().hex[:8]}"


# -- 1. background sends after the response ---------------------------------------


def check_background_trace(
    telemetry: Telemetry, signal: Signal, request: ReadableSpan, receiver: str
) -> None:
    """The background send is a trace of its own, linked to *request*, with the
    send and its receiver under it."""
    background = telemetry.span(f"background {signal.name}")
    assert background.parent is None
    assert trace_id(background) != trace_id(request)
    assert [
        (link.context.trace_id, link.context.span_id) for link in background.links
    ] == [(trace_id(request), span_id(request))]
    assert background.attributes is not None
    assert background.attributes["asignal.reason"] == "background"
    assert background.attributes["asignal.outcome"] == "ok"

    send = telemetry.span(f"asend_robust {signal.name}")
    assert is_child(send, background)
    run = receiver_span(telemetry, receiver)
    assert is_child(run, send)
    assert descends(run, background, telemetry)
    # Delivered after the response: the request's span had ended by then.
    assert request.end_time is not None
    assert background.start_time is not None
    assert background.start_time >= request.end_time


@pytest.mark.parametrize("endpoint_kind", ["async", "sync"])
def test_background_send_after_a_uvicorn_response_is_a_linked_trace(
    telemetry: Telemetry, endpoint_kind: str
) -> None:
    """Over real HTTP (uvicorn, httpx): the endpoint's span is the request's; the
    send it hands over runs after the response in a trace of its own, linked to it.
    A sync endpoint hands it over from Starlette's worker thread."""
    order_placed = Signal(name=unique("order_placed"))
    delivered = threading.Event()
    seen: list[trace.SpanContext] = []

    async def on_order_placed(sender: object, **kwargs: Any) -> None:
        seen.append(trace.get_current_span().get_span_context())
        delivered.set()

    def handle() -> Response:
        with tracer(telemetry).start_as_current_span(
            "GET /orders", kind=SpanKind.SERVER
        ):
            send_after_response(order_placed, "shop", order_id=7)
            return PlainTextResponse("ok")

    async def async_endpoint(request: Request) -> Response:
        return handle()

    def sync_endpoint(request: Request) -> Response:
        return handle()

    endpoint = async_endpoint if endpoint_kind == "async" else sync_endpoint
    app = Starlette(routes=[Route("/orders", endpoint)])
    app.add_middleware(SignalMiddleware)
    order_placed.connect(on_order_placed, weak=False)
    with serve(app) as host:
        response = httpx.get(f"http://{host}/orders", timeout=10)
        assert response.text == "ok"
        assert delivered.wait(10), "the background send was not delivered"
    # uvicorn's shutdown drained the owner: every span has ended.
    request = telemetry.span("GET /orders")
    assert request.kind is SpanKind.SERVER
    check_background_trace(telemetry, order_placed, request, "on_order_placed")
    # While the receiver ran, its own span was the current one.
    run = receiver_span(telemetry, "on_order_placed")
    assert [(s.trace_id, s.span_id) for s in seen] == [(trace_id(run), span_id(run))]


class ServerSpan:
    """A test ASGI middleware: a SERVER span around each HTTP request, as an ASGI
    instrumentation would make (none is installed here)."""

    def __init__(self, app: ASGIApp, telemetry: Telemetry) -> None:
        self.app = app
        self.tracer = tracer(telemetry)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        with self.tracer.start_as_current_span(
            f"{scope['method']} {scope['path']}", kind=SpanKind.SERVER
        ):
            await self.app(scope, receive, send)


async def test_background_send_in_process_is_a_linked_trace(
    telemetry: Telemetry,
) -> None:
    """The same in process on both backends, the request's span made by an ASGI
    middleware around SignalMiddleware."""
    order_placed = Signal(name=unique("order_placed"))

    async def on_order_placed(sender: object, **kwargs: Any) -> None:
        await anyio.sleep(0)

    async def endpoint(request: Request) -> Response:
        send_after_response(order_placed, "shop", order_id=8)
        return PlainTextResponse("ok")

    app = ServerSpan(
        SignalMiddleware(Starlette(routes=[Route("/orders", endpoint)])), telemetry
    )
    order_placed.connect(on_order_placed, weak=False)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            assert (await c.get("/orders")).text == "ok"
    # Leaving the lifespan drained the background sends.
    request = telemetry.span("GET /orders")
    check_background_trace(telemetry, order_placed, request, "on_order_placed")


async def test_background_gauge_reports_an_open_owner(telemetry: Telemetry) -> None:
    """asignal.background.sends counts the open owners' sends by state."""
    slow = Signal(name=unique("slow"))
    started = anyio.Event()
    release = anyio.Event()

    async def hold(sender: object, **kwargs: Any) -> None:
        started.set()
        await release.wait()

    def states() -> dict[str, Any]:
        points = telemetry.points("asignal.background.sends")
        found = {a["asignal.background.state"]: value for a, value in points}
        assert len(found) == len(points)
        return found

    slow.connect(hold, weak=False)
    async with BackgroundSends(concurrency=1) as owner:
        assert states() == {"buffered": 0, "reserved": 0, "running": 0}
        for sender in ("a", "b", "c"):
            owner.send_soon(slow, sender)
        with anyio.fail_after(10):
            await started.wait()
        # One being delivered, two waiting for the one delivery slot.
        assert states() == {"buffered": 2, "reserved": 0, "running": 1}
        # A request's send after the response, held until that request ends (as
        # SignalMiddleware holds it).
        held = owner.hold_for_request()
        held.add(slow, "d", {})
        assert states() == {"buffered": 2, "reserved": 1, "running": 1}
        held.release()
        assert states() == {"buffered": 3, "reserved": 0, "running": 1}
        release.set()
    assert owner.statistics().delivered == 4
    assert states() == {"buffered": 0, "reserved": 0, "running": 0}


# -- 2. events across a bridge -----------------------------------------------------


class BridgeNode:
    """One node: a bridge and a signal object of its own named like the others'."""

    def __init__(self, bridge: Bridge, name: str) -> None:
        self.bridge = bridge
        self.signal = Signal(name=name)
        bridge.add(self.signal)

    def close(self) -> None:
        self.bridge.remove(self.signal)


@asynccontextmanager
async def two_nodes(
    url: str, name: str, delivery: Delivery, prefix: str
) -> AsyncIterator[tuple[BridgeNode, BridgeNode]]:
    """Nodes ``node-a`` and ``node-b`` on *url*, both open."""
    nodes = [
        BridgeNode(
            Bridge(
                url,
                node_id=node_id,
                delivery=delivery,
                prefix=prefix,
                retry_delay=0.05,
            ),
            name,
        )
        for node_id in ("node-a", "node-b")
    ]
    try:
        async with nodes[0].bridge, nodes[1].bridge:
            yield nodes[0], nodes[1]
    finally:
        for node in nodes:
            node.close()


async def check_bridged_trace(
    telemetry: Telemetry,
    url: str,
    system: str,
    delivery: Delivery,
    prefix: str,
) -> None:
    """node-a sends inside a span of the test's; node-b runs its receiver for the
    event: one trace from that span through publish to node-b's receiver."""
    name = unique("order_paid")
    release = anyio.Event()
    holding = anyio.Event()
    events: list[tuple[str, str]] = []

    async with two_nodes(url, name, delivery, prefix) as (a, b):

        async def on_order_paid(sender: object, **kwargs: Any) -> None:
            event = current_event()
            assert event is not None
            events.append((event.id, event.origin))
            holding.set()
            await release.wait()

        b.signal.connect(on_order_paid, weak=False)
        with tracer(telemetry).start_as_current_span("checkout") as checkout:
            results = await a.signal.asend("shop", order_id=3)
        [(_, publication)] = results
        assert isinstance(publication, Publication)

        with anyio.fail_after(10):
            await holding.wait()
        # Read, not settled: node-b holds one event in flight.
        assert gauge(
            telemetry, "asignal.bridge.in_flight", **{"asignal.bridge.node": "node-b"}
        ) == [1]
        assert gauge(
            telemetry, "asignal.bridge.in_flight", **{"asignal.bridge.node": "node-a"}
        ) == [0]
        release.set()
        process = await wait_for_span(telemetry, f"process {name}")
        with anyio.fail_after(10):
            while gauge(
                telemetry,
                "asignal.bridge.in_flight",
                **{"asignal.bridge.node": "node-b"},
            ) != [0]:
                await anyio.sleep(0.01)
        for node in (a, b):
            [url_label] = {
                attributes["asignal.bridge.url"]
                for attributes, _ in telemetry.points("asignal.bridge.in_flight")
                if attributes["asignal.bridge.node"] == node.bridge.node_id
            }
            assert url_label == node.bridge.url
        if delivery == "at_least_once":
            # Streams know how far each node is behind: nothing left to read.
            for node_id in ("node-a", "node-b"):
                assert gauge(
                    telemetry, "asignal.bridge.lag", **{"asignal.bridge.node": node_id}
                ) == [0]
    assert events == [(publication.event_id, "node-a")]
    # Closed bridges no longer report.
    assert telemetry.points("asignal.bridge.in_flight") == []

    # The sending side: checkout > asend > the bridge's receiver > publish.
    assert checkout.get_span_context().is_valid
    test_span = telemetry.span("checkout")
    send = telemetry.span(f"asend {name}")
    assert is_child(send, test_span)
    [publisher] = telemetry.children(send)
    assert publisher.name == f"asignal.bridge.Bridge({a.bridge.url!r}).publish"
    publish = telemetry.span(f"publish {name}")
    assert is_child(publish, publisher)
    assert publish.kind is SpanKind.PRODUCER
    assert publish.attributes is not None
    assert publish.attributes["messaging.system"] == system
    assert publish.attributes["messaging.destination.name"] == name
    assert publish.attributes["messaging.message.id"] == publication.event_id
    assert publish.attributes["asignal.bridge.node"] == "node-a"
    assert publish.attributes["asignal.bridge.origin"] == "node-a"

    # The receiving side: process, a child of publish across the broker...
    assert process.kind is SpanKind.CONSUMER
    assert is_child(process, publish)
    assert process.parent is not None
    assert process.parent.is_remote
    assert trace_id(process) == trace_id(test_span)
    assert process.attributes is not None
    assert process.attributes["messaging.system"] == system
    assert process.attributes["messaging.destination.name"] == name
    assert process.attributes["messaging.operation.type"] == "process"
    assert process.attributes["messaging.message.id"] == publication.event_id
    assert process.attributes["messaging.message.delivery_count"] == 1
    assert process.attributes["asignal.bridge.node"] == "node-b"
    assert process.attributes["asignal.bridge.origin"] == "node-a"
    assert process.attributes["asignal.outcome"] == "ok"
    # ...with node-b's send under it and node-b's receiver under that.
    remote_send = telemetry.span(f"asend_robust {name}")
    assert is_child(remote_send, process)
    remote = receiver_span(telemetry, "on_order_paid")
    assert is_child(remote, remote_send)
    # Only node-b processed the event: node-a does not run its own sends twice.
    assert [s.name for s in telemetry.spans()].count(f"process {name}") == 1


@pytest.mark.parametrize("delivery", ["at_most_once", "at_least_once"])
async def test_memory_bridge_event_is_one_trace_across_nodes(
    telemetry: Telemetry, delivery: Delivery
) -> None:
    await check_bridged_trace(
        telemetry, f"memory://{uuid.uuid4().hex}", "memory", delivery, "asignal"
    )


async def check_redelivery_trace(
    telemetry: Telemetry, url: str, system: str, prefix: str
) -> None:
    """at_least_once: a receiver that fails gets the event again. Each delivery has
    a process span under the one publish span; the redelivery runs only the
    receiver that failed."""
    name = unique("order_paid")
    calls: list[str] = []

    async with two_nodes(url, name, "at_least_once", prefix) as (a, b):

        async def steady(sender: object, **kwargs: Any) -> None:
            calls.append("steady")

        async def flaky(sender: object, **kwargs: Any) -> None:
            calls.append("flaky")
            if calls.count("flaky") == 1:
                raise RuntimeError("not yet")

        b.signal.connect(steady, weak=False)
        b.signal.connect(flaky, weak=False)
        await a.signal.asend("shop", order_id=4)
        with anyio.fail_after(10):
            while [s.name for s in telemetry.spans()].count(f"process {name}") < 2:
                await anyio.sleep(0.01)
    assert sorted(calls) == ["flaky", "flaky", "steady"]

    publish = telemetry.span(f"publish {name}")
    processes = sorted(
        (s for s in telemetry.spans() if s.name == f"process {name}"),
        key=lambda s: attr(s, "messaging.message.delivery_count"),
    )
    assert [attr(s, "messaging.message.delivery_count") for s in processes] == [1, 2]
    for process in processes:
        assert is_child(process, publish)
        assert attr(process, "messaging.system") == system
    first, second = (
        [
            send
            for send in telemetry.children(process)
            if send.name == f"asend_robust {name}"
        ]
        for process in processes
    )
    assert len(first) == 1
    assert len(second) == 1
    ran_first = {
        attr(s, "asignal.receiver").rsplit(".", 1)[-1]: s
        for s in telemetry.children(first[0])
    }
    assert {"steady", "flaky"} <= set(ran_first)
    failed = ran_first["flaky"]
    assert failed.status.status_code is trace.StatusCode.ERROR
    assert attr(failed, "asignal.outcome") == "error"
    assert [e.name for e in failed.events] == ["exception"]
    # The redelivery runs only the receiver that failed, and it succeeds.
    [rerun] = telemetry.children(second[0])
    assert attr(rerun, "asignal.receiver").endswith(".flaky")
    assert attr(rerun, "asignal.outcome") == "ok"
    assert attr(second[0], "asignal.receivers") == 1


async def test_memory_bridge_redelivery_is_traced_under_the_publish(
    telemetry: Telemetry,
) -> None:
    await check_redelivery_trace(
        telemetry, f"memory://{uuid.uuid4().hex}", "memory", "asignal"
    )


async def test_bridged_send_from_a_plain_thread_is_one_trace(
    telemetry: Telemetry,
) -> None:
    """send() of a bridged signal from a thread without a loop: the bridge's
    receiver runs on asignal's kept loop and publishes on the bridge's own loop;
    the trace still runs from the thread's span to node-b's receiver."""
    name = unique("report_ready")
    errors: list[BaseException] = []
    ran: list[str] = []

    url = f"memory://{uuid.uuid4().hex}"
    async with two_nodes(url, name, "at_most_once", "asignal") as (a, b):

        async def on_report(sender: object, **kwargs: Any) -> None:
            ran.append("node-b")

        b.signal.connect(on_report, weak=False)

        def work() -> None:
            try:
                with tracer(telemetry).start_as_current_span("job"):
                    a.signal.send("worker")
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        thread = threading.Thread(target=work)
        thread.start()
        # The publish needs this loop: wait for the thread without blocking it.
        await anyio.to_thread.run_sync(thread.join, 10)
        assert not thread.is_alive()
        assert errors == []
        process = await wait_for_span(telemetry, f"process {name}")
    assert ran == ["node-b"]
    job = telemetry.span("job")
    send = telemetry.span(f"send {name}")
    assert is_child(send, job)
    publish = telemetry.span(f"publish {name}")
    assert descends(publish, send, telemetry)
    assert is_child(process, publish)
    remote = receiver_span(telemetry, "on_report")
    assert is_child(remote, telemetry.span(f"asend_robust {name}"))
    assert descends(remote, job, telemetry)


@pytest.fixture
async def redis_url() -> AsyncIterator[tuple[str, str]]:
    """The machine's Redis and a key prefix of this test's own (its keys deleted
    afterwards); skip without Redis, or fail in CI."""
    if not redis_up():
        require_service(f"no Redis server on {REDIS_HOST}:{REDIS_PORT}")
    url = f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}"
    prefix = f"asignal-test-{uuid.uuid4().hex[:12]}"
    yield url, prefix
    await delete_keys(url, prefix)


@asyncio_only
@pytest.mark.parametrize("delivery", ["at_most_once", "at_least_once"])
async def test_redis_bridge_event_is_one_trace_across_nodes(
    telemetry: Telemetry, redis_url: tuple[str, str], delivery: Delivery
) -> None:
    url, prefix = redis_url
    await check_bridged_trace(telemetry, url, "redis", delivery, prefix)


@asyncio_only
async def test_redis_bridge_redelivery_is_traced_under_the_publish(
    telemetry: Telemetry, redis_url: tuple[str, str]
) -> None:
    url, prefix = redis_url
    await check_redelivery_trace(telemetry, url, "redis", prefix)


# -- 3. the SQLAlchemy bridge ------------------------------------------------------


class OtelBase(DeclarativeBase):
    pass


class Invoice(OtelBase):
    __tablename__ = "invoice"
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(20))


@pytest.fixture
def sqlalchemy_installed() -> Iterator[None]:
    asignal.sqlalchemy.install(OtelBase)
    try:
        yield
    finally:
        asignal.sqlalchemy.uninstall(OtelBase)


#: AsyncSession and aiosqlite run on asyncio only.
@asyncio_only
@pytest.mark.usefixtures("sqlalchemy_installed")
async def test_post_save_under_an_async_session(
    telemetry: Telemetry, tmp_path: Path
) -> None:
    """The commit's flush sends post_save: its receivers' spans are children of
    the send's, which is a child of the span around the commit."""
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path}/otel.db")
    saved: list[str] = []

    async def on_invoice_saved(sender: type, instance: Invoice, **kwargs: Any) -> None:
        await anyio.sleep(0)
        saved.append(instance.number)

    def on_invoice_saved_sync(sender: type, instance: Invoice, **kwargs: Any) -> None:
        saved.append(f"sync {instance.number}")

    post_save.connect(on_invoice_saved, sender=Invoice, weak=False)
    post_save.connect(on_invoice_saved_sync, sender=Invoice, weak=False)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(OtelBase.metadata.create_all)
        async with AsyncSession(engine) as session:
            session.add(Invoice(number="F-1"))
            with tracer(telemetry).start_as_current_span("commit"):
                await session.commit()
    finally:
        post_save.disconnect(on_invoice_saved, sender=Invoice)
        post_save.disconnect(on_invoice_saved_sync, sender=Invoice)
        await engine.dispose()
    assert saved == ["F-1", "sync F-1"]

    commit = telemetry.span("commit")
    # The flush sends from ORM code, in SQLAlchemy's greenlet: send(), whose async
    # receivers the flushing task awaits.
    send = telemetry.span(f"send {post_save.name}")
    assert is_child(send, commit)
    assert send.attributes is not None
    assert send.attributes["asignal.receivers"] == 2
    async_run = receiver_span(telemetry, "on_invoice_saved")
    sync_run = receiver_span(telemetry, "on_invoice_saved_sync")
    assert is_child(async_run, send)
    assert is_child(sync_run, send)
    assert async_run.attributes is not None
    assert async_run.attributes["asignal.receiver.mode"] == "async"


# -- 4. blocking sends from threads ------------------------------------------------


def check_thread_trace(
    telemetry: Telemetry,
    signal: Signal,
    around: ReadableSpan,
    seen: list[trace.SpanContext],
) -> None:
    """send > its receivers, under the span the sending code opened around it;
    each receiver ran with its own span current."""
    send = telemetry.span(f"send {signal.name}")
    assert is_child(send, around)
    async_run = receiver_span(telemetry, "on_async")
    sync_run = receiver_span(telemetry, "on_sync")
    assert is_child(async_run, send)
    assert is_child(sync_run, send)
    assert async_run.attributes is not None
    assert async_run.attributes["asignal.receiver.mode"] == "async"
    assert sync_run.attributes is not None
    assert sync_run.attributes["asignal.receiver.mode"] == "inline"
    assert sorted((s.trace_id, s.span_id) for s in seen) == sorted(
        (trace_id(run), span_id(run)) for run in (async_run, sync_run)
    )


@contextmanager
def thread_receivers(
    signal: Signal,
) -> Iterator[tuple[list[trace.SpanContext], list[int]]]:
    """An async and a sync receiver on *signal*; yields the span contexts current
    in them and the threads the async one ran in."""
    seen: list[trace.SpanContext] = []
    threads: list[int] = []

    async def on_async(sender: object, **kwargs: Any) -> None:
        await anyio.sleep(0)
        threads.append(threading.get_ident())
        seen.append(trace.get_current_span().get_span_context())

    def on_sync(sender: object, **kwargs: Any) -> None:
        seen.append(trace.get_current_span().get_span_context())

    signal.connect(on_async, weak=False)
    signal.connect(on_sync, weak=False)
    try:
        yield seen, threads
    finally:
        signal.disconnect(on_async)
        signal.disconnect(on_sync)


def test_send_from_a_plain_thread_runs_on_the_kept_loop(telemetry: Telemetry) -> None:
    """send() from a thread without a loop: the async receiver runs on asignal's
    kept loop, in another thread, yet under the send's span."""
    signal = Signal(name=unique("report_ready"))
    errors: list[BaseException] = []
    sender_thread: list[int] = []

    def work() -> None:
        try:
            sender_thread.append(threading.get_ident())
            with tracer(telemetry).start_as_current_span("job"):
                signal.send("worker")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    with thread_receivers(signal) as (seen, threads):
        thread = threading.Thread(target=work)
        thread.start()
        thread.join(10)
        assert not thread.is_alive()
    assert errors == []
    assert len(threads) == 1
    assert threads[0] != sender_thread[0]
    check_thread_trace(telemetry, signal, telemetry.span("job"), seen)


async def test_send_from_a_worker_thread_runs_on_the_host_loop(
    telemetry: Telemetry,
) -> None:
    """send() in anyio.to_thread.run_sync: the async receiver runs on the test's
    own loop; the trace runs from the task's span through the worker thread."""
    signal = Signal(name=unique("report_ready"))
    test_tracer = tracer(telemetry)

    def work() -> None:
        with test_tracer.start_as_current_span("in thread"):
            signal.send("worker")

    with (
        thread_receivers(signal) as (seen, threads),
        test_tracer.start_as_current_span("task"),
    ):
        await anyio.to_thread.run_sync(work)
    assert threads == [threading.get_ident()]
    in_thread = telemetry.span("in thread")
    assert is_child(in_thread, telemetry.span("task"))
    check_thread_trace(telemetry, signal, in_thread, seen)

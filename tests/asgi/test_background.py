"""Background delivery: sends handed to the lifespan-owned BackgroundSends."""

from __future__ import annotations

import contextvars
import logging
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio
import httpx
import pytest
from asgi_lifespan import LifespanManager
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route

from asignal import Signal
from asignal.asgi import (
    STATE_KEY,
    ASGIApp,
    BackgroundBufferFull,
    BackgroundSends,
    BackgroundStatistics,
    NoBackgroundOwnerError,
    SignalMiddleware,
    background_sends,
    lifespan,
    send_after_response,
)
from asignal.signals import lifespan_startup as builtin_startup
from tests.asgi.conftest import (
    REQUEST_SIGNALS,
    Recorder,
    connected,
    fastapi_app,
    order_placed,
    starlette_app,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from starlette.requests import Request

pytestmark = pytest.mark.anyio

SIGNALS = {**REQUEST_SIGNALS, "order_placed": order_placed}


@pytest.fixture(params=["async", "sync"])
def rec(request: pytest.FixtureRequest) -> Any:
    """A recorder with async receivers, then one with sync receivers (threads)."""
    with Recorder(str(request.param), SIGNALS) as recorder:
        yield recorder


@asynccontextmanager
async def served(app: ASGIApp) -> AsyncIterator[httpx.AsyncClient]:
    """Run the lifespan around a client; leaving drains the background sends."""
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            yield c


async def test_delivered_after_the_response_and_request_finished(rec: Recorder) -> None:
    """send_after_response() in an endpoint is delivered after request_finished,
    with the sender and kwargs given."""
    app = starlette_app(rec)
    app.add_middleware(SignalMiddleware)
    async with served(app) as client:
        response = await client.get("/after-response?id=42")
    assert response.text == "order 42"
    assert rec.names() == [
        "request_started",
        "endpoint",
        "request_finished",
        "order_placed",
    ]
    assert rec.of("order_placed") == [{"order_id": 42}]
    assert rec.senders[-1] == "shop"


async def test_fastapi_background_task_and_sync_endpoint(rec: Recorder) -> None:
    """In FastAPI the send waits for the app's background tasks, and works from a
    sync endpoint running in the thread pool."""
    app = fastapi_app(rec)
    app.add_middleware(SignalMiddleware)
    async with served(app) as client:
        await client.post("/orders/5")
        await client.get("/sync-items/6")
    names = rec.names()
    assert names[:3] == ["request_started", "background task", "request_finished"]
    order_events = [e for e in rec.events if e[0] == "order_placed"]
    assert sorted(data["order_id"] for _, data in order_events) == [5, 6]
    # Each order is delivered after its own request finished.
    finished = [i for i, name in enumerate(names) if name == "request_finished"]
    delivered = {
        data["order_id"]: i
        for i, (name, data) in enumerate(rec.events)
        if name == "order_placed"
    }
    assert delivered[5] > finished[0]
    assert delivered[6] > finished[1]
    assert names.index("sync endpoint") < finished[1]


async def test_delivery_sees_the_requests_context_variables() -> None:
    """The delivery runs in a copy of the context of the code that handed it over."""
    tenant: contextvars.ContextVar[str] = contextvars.ContextVar("tenant")
    seen: list[str] = []

    async def receiver(sender: object, **kwargs: Any) -> None:
        seen.append(tenant.get("unset"))

    async def endpoint(request: Request) -> Response:
        tenant.set("acme")
        send_after_response(order_placed, "shop", order_id=1)
        return PlainTextResponse("ok")

    app = SignalMiddleware(Starlette(routes=[Route("/", endpoint)]))
    with connected(order_placed, receiver):
        async with served(app) as client:
            await client.get("/")
    assert seen == ["acme"]


async def test_receiver_errors_are_logged_and_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A failing receiver is logged on 'asignal' with its traceback and counted;
    the other receivers of the same send still run."""
    ran: list[str] = []
    owner_seen: list[BackgroundSends] = []

    def failing(sender: object, **kwargs: Any) -> None:
        raise ValueError("mail server down")

    async def fine(sender: object, **kwargs: Any) -> None:
        ran.append("fine")

    async def endpoint(request: Request) -> Response:
        owner_seen.append(background_sends(request))
        send_after_response(order_placed, "shop", order_id=1)
        return PlainTextResponse("ok")

    app = SignalMiddleware(Starlette(routes=[Route("/", endpoint)]))
    with connected(order_placed, failing), connected(order_placed, fine):
        async with served(app) as client:
            assert (await client.get("/")).text == "ok"
    assert ran == ["fine"]
    [owner] = owner_seen
    stats = owner.statistics()
    assert stats.delivered == 1
    assert stats.receiver_errors == 1
    [record] = [r for r in caplog.records if r.levelname == "ERROR"]
    assert record.name == "asignal"
    assert "mail server down" in record.getMessage()
    assert record.exc_info is not None


async def test_full_buffer_raises_to_the_request() -> None:
    """Past max_buffer waiting sends, send_after_response raises
    BackgroundBufferFull in the request instead of making it wait."""
    outcome: list[str] = []

    async def endpoint(request: Request) -> Response:
        send_after_response(order_placed, "shop", order_id=1)
        send_after_response(order_placed, "shop", order_id=2)
        try:
            send_after_response(order_placed, "shop", order_id=3)
        except BackgroundBufferFull as exc:
            outcome.append(str(exc))
        return PlainTextResponse("ok")

    delivered: list[int] = []

    async def receiver(sender: object, order_id: int, **kwargs: Any) -> None:
        delivered.append(order_id)

    app = SignalMiddleware(Starlette(routes=[Route("/", endpoint)]), max_buffer=2)
    with connected(order_placed, receiver):
        async with served(app) as client:
            await client.get("/")
    assert len(outcome) == 1
    assert "buffer is full (2 sends waiting)" in outcome[0]
    assert delivered == [1, 2]


async def test_send_soon_full_buffer_and_order() -> None:
    """send_soon() queues in order; with one delivery running and max_buffer
    waiting, the next one is refused and counted."""
    release = anyio.Event()
    delivered: list[int] = []

    async def receiver(sender: object, order_id: int, **kwargs: Any) -> None:
        if order_id == 0:
            await release.wait()
        delivered.append(order_id)

    with connected(order_placed, receiver):
        async with BackgroundSends(max_buffer=2) as owner:
            owner.send_soon(order_placed, "shop", order_id=0)
            while owner.statistics().running == 0:  # until 0 is being delivered
                await anyio.sleep(0)
            owner.send_soon(order_placed, "shop", order_id=1)
            owner.send_soon(order_placed, "shop", order_id=2)
            with pytest.raises(BackgroundBufferFull):
                owner.send_soon(order_placed, "shop", order_id=3)
            stats = owner.statistics()
            assert (stats.buffered, stats.rejected) == (2, 1)
            release.set()
    assert delivered == [0, 1, 2]
    assert owner.statistics() == BackgroundStatistics(
        buffered=0,
        reserved=0,
        running=0,
        delivered=3,
        receiver_errors=0,
        failed=0,
        rejected=1,
        abandoned=0,
    )


async def test_drain_delivers_what_is_queued_at_shutdown() -> None:
    """Leaving the owner waits for every queued send, even with concurrency."""
    delivered: list[int] = []

    async def receiver(sender: object, order_id: int, **kwargs: Any) -> None:
        await anyio.sleep(0.001)
        delivered.append(order_id)

    with connected(order_placed, receiver):
        async with BackgroundSends(concurrency=3) as owner:
            for i in range(10):
                owner.send_soon(order_placed, "shop", order_id=i)
    assert sorted(delivered) == list(range(10))
    assert owner.statistics().delivered == 10


async def test_drain_timeout_abandons_and_logs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Sends still running or queued when the drain timeout expires are cancelled,
    counted as abandoned and logged at ERROR with their signal."""
    cancelled: list[int] = []

    async def stuck(sender: object, order_id: int, **kwargs: Any) -> None:
        try:
            await anyio.sleep_forever()
        finally:
            cancelled.append(order_id)

    with connected(order_placed, stuck):
        async with BackgroundSends(drain_timeout=0.05) as owner:
            owner.send_soon(order_placed, "shop", order_id=1)
            owner.send_soon(order_placed, "shop", order_id=2)
    assert cancelled == [1]
    assert owner.statistics().abandoned == 2
    [record] = [r for r in caplog.records if r.levelname == "ERROR"]
    assert "2 background send(s) were not delivered" in record.getMessage()
    assert "tests.order_placed" in record.getMessage()


async def test_failed_send_is_logged_and_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A send that itself raises when delivered (here a Signal subclass whose
    asend_robust fails) is logged and counted as failed, and the owner keeps
    delivering."""

    class Unreachable(Signal):
        async def asend_robust(
            self, sender: object = None, /, **named: Any
        ) -> list[tuple[Any, Any]]:
            if named.get("order_id") == 1:
                raise ConnectionError("broker unreachable")
            return await super().asend_robust(sender, **named)

    signal = Unreachable(name="tests.unreachable")
    got: list[int] = []

    async def receiver(sender: object, order_id: int, **kwargs: Any) -> None:
        got.append(order_id)

    signal.connect(receiver)
    async with BackgroundSends() as owner:
        owner.send_soon(signal, "shop", order_id=1)
        owner.send_soon(signal, "shop", order_id=2)
    assert got == [2]
    assert (owner.statistics().failed, owner.statistics().delivered) == (1, 1)
    (record,) = [r for r in caplog.records if "Background send of" in r.getMessage()]
    # Structured fields, for JSON log pipelines.
    assert (record.__dict__["signal"], record.__dict__["sender"]) == (
        "tests.unreachable",
        "'shop'",
    )


STRICT = Signal(name="tests.strict", providing_args=["order_id"], strict=True)
#: Calls that signal.send() refuses at once, and what its error says.
BAD_SENDS: list[tuple[dict[str, Any], str]] = [
    ({"oops": 1}, "undeclared oops"),
    ({"order_id": 1, "signal": "x"}, "'signal' keyword"),
    ({"order_id": 1, "sender": "x"}, "sender twice"),
]


@pytest.mark.parametrize(("kwargs", "error"), BAD_SENDS)
async def test_send_soon_checks_the_send_at_once(
    kwargs: dict[str, Any], error: str
) -> None:
    """send_soon() raises what signal.send() would raise, at once, and queues
    nothing."""
    async with BackgroundSends() as owner:
        with pytest.raises(TypeError, match=error) as info:
            owner.send_soon(STRICT, "shop", **kwargs)
        assert "send_soon()" in str(info.value)
        with pytest.raises(TypeError, match=error):
            STRICT.send("shop", **kwargs)
    stats = owner.statistics()
    assert (stats.buffered, stats.delivered, stats.failed) == (0, 0, 0)


@pytest.mark.parametrize("endpoint_kind", ["async", "sync"])
@pytest.mark.parametrize(("kwargs", "error"), BAD_SENDS)
async def test_send_after_response_checks_the_send_in_the_request(
    kwargs: dict[str, Any], error: str, endpoint_kind: str
) -> None:
    """send_after_response() raises, in the request, every error signal.send()
    would raise for the same call; nothing is held, delivered or logged later."""
    caught: list[str] = []
    owners: list[BackgroundSends] = []

    def hand_over(request: Request) -> None:
        owners.append(background_sends(request))
        try:
            send_after_response(STRICT, "shop", **kwargs)
        except TypeError as exc:
            caught.append(str(exc))

    async def async_endpoint(request: Request) -> Response:
        hand_over(request)
        return PlainTextResponse("ok")

    def sync_endpoint(request: Request) -> Response:
        hand_over(request)
        return PlainTextResponse("ok")

    endpoint = async_endpoint if endpoint_kind == "async" else sync_endpoint
    app = SignalMiddleware(Starlette(routes=[Route("/", endpoint)]))
    async with served(app) as client:
        response = await client.get("/")
    assert response.status_code == 200
    [message] = caught
    assert error in message
    assert "send_after_response()" in message
    stats = owners[0].statistics()
    assert (stats.reserved, stats.delivered, stats.failed) == (0, 0, 0)


async def test_no_owner_outside_a_request() -> None:
    """Outside any request handled by SignalMiddleware there is no owner, and the
    error says how to give the send one."""
    with pytest.raises(NoBackgroundOwnerError, match="SignalMiddleware") as info:
        send_after_response(order_placed, "shop", order_id=1)
    assert "lifespan" in str(info.value)


async def test_no_owner_without_lifespan() -> None:
    """Through a test client that runs no lifespan, the request has no state and
    the error names that and the fix."""
    errors: list[str] = []

    async def endpoint(request: Request) -> Response:
        try:
            send_after_response(order_placed, "shop", order_id=1)
        except NoBackgroundOwnerError as exc:
            errors.append(str(exc))
        return PlainTextResponse("ok")

    app = SignalMiddleware(Starlette(routes=[Route("/", endpoint)]))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        await client.get("/")
    [error] = errors
    assert "no lifespan 'state'" in error
    assert "LifespanManager" in error


async def test_no_owner_in_a_mounted_sub_app() -> None:
    """A sub-app's own SignalMiddleware never runs a lifespan when mounted; the
    error points at the outer app."""
    errors: list[str] = []

    async def endpoint(request: Request) -> Response:
        try:
            send_after_response(order_placed, "shop", order_id=1)
        except NoBackgroundOwnerError as exc:
            errors.append(str(exc))
        return PlainTextResponse("ok")

    inner = SignalMiddleware(Starlette(routes=[Route("/", endpoint)]))
    outer = Starlette(routes=[Mount("/sub", app=inner)])
    async with served(outer) as client:
        assert (await client.get("/sub/")).text == "ok"
    [error] = errors
    assert f"no {STATE_KEY!r} entry" in error
    assert "mounted sub-app" in error


async def test_background_sends_needs_a_scope_with_state() -> None:
    """background_sends() rejects a non-scope and a scope without asignal state."""
    with pytest.raises(TypeError, match="ASGI scope"):
        background_sends(42)
    with pytest.raises(NoBackgroundOwnerError, match="no lifespan 'state'"):
        background_sends({"type": "http"})


async def test_lifespan_cm_owner_with_middleware_without_lifespan(
    rec: Recorder,
) -> None:
    """lifespan() in the app's lifespan plus SignalMiddleware(lifespan=False):
    send_after_response finds the owner in the request's state."""

    @asynccontextmanager
    async def own_lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        async with lifespan() as state:
            yield state

    app = starlette_app(rec, lifespan=own_lifespan)
    app.add_middleware(SignalMiddleware, lifespan=False)
    async with served(app) as client:
        await client.get("/after-response?id=9")
    assert rec.names()[-2:] == ["request_finished", "order_placed"]


async def test_send_from_the_apps_lifespan_is_queued_at_once() -> None:
    """Code in the app's own startup can hand sends over; they are delivered."""
    delivered: list[int] = []

    async def receiver(sender: object, order_id: int, **kwargs: Any) -> None:
        delivered.append(order_id)

    @asynccontextmanager
    async def own_lifespan(app: Starlette) -> AsyncIterator[None]:
        send_after_response(order_placed, "startup", order_id=0)
        yield

    app = SignalMiddleware(Starlette(lifespan=own_lifespan))
    with connected(order_placed, receiver):
        async with LifespanManager(app):
            pass
    assert delivered == [0]


async def test_owner_misuse_is_reported() -> None:
    """Sending before entering, entering twice, bad options and a non-signal all
    fail with a message saying what to do."""
    owner = BackgroundSends()
    with pytest.raises(RuntimeError, match="only inside its 'async with' block"):
        owner.send_soon(order_placed, "shop", order_id=1)
    async with owner:
        with pytest.raises(TypeError, match="takes the Signal first"):
            owner.send_soon("shop", order_placed)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="entered only once"):
        async with owner:
            pass  # pragma: no cover
    with pytest.raises(ValueError, match="concurrency"):
        BackgroundSends(concurrency=0)
    with pytest.raises(ValueError, match="drain_timeout"):
        BackgroundSends(drain_timeout=-1)


async def test_exception_in_the_block_cancels_and_propagates_as_itself(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An exception leaving the owner's block propagates unwrapped; what was still
    queued is abandoned and logged."""

    async def stuck(sender: object, **kwargs: Any) -> None:
        await anyio.sleep_forever()

    owner = BackgroundSends()

    async def use_and_fail() -> None:
        async with owner:
            owner.send_soon(order_placed, "shop", order_id=1)
            await anyio.sleep(0)
            raise KeyError("boom")

    with connected(order_placed, stuck), pytest.raises(KeyError, match="boom"):
        await use_and_fail()
    assert owner.statistics().abandoned == 1
    assert any(
        "the owner exited with KeyError" in r.getMessage() for r in caplog.records
    )


async def test_statistics_and_repr() -> None:
    """statistics() and repr() describe the owner's state."""
    owner = BackgroundSends()
    assert "new" in repr(owner)
    async with owner:
        assert "open" in repr(owner)
    assert "closed" in repr(owner)
    assert owner.statistics().delivered == 0
    assert logging.getLogger("asignal").name == "asignal"


async def test_request_ending_after_the_owner_closed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Sends a request reserved, when it ends after the owner closed, are counted
    as abandoned and logged, not lost silently."""
    async with BackgroundSends() as owner:
        held = owner.hold_for_request()
        held.add(order_placed, "shop", {"order_id": 1})
        assert owner.statistics().reserved == 1
    held.release()
    stats = owner.statistics()
    assert (stats.reserved, stats.abandoned, stats.delivered) == (0, 1, 0)
    assert any(
        "request ended after the owner closed" in r.getMessage() for r in caplog.records
    )


async def test_sends_from_worker_threads_reach_the_owner() -> None:
    """Sync code in worker threads (a sync lifespan receiver, a sync receiver of a
    background delivery) hands sends over safely through the owner's loop."""
    follow_up = Signal(name="tests.follow_up", providing_args=["order_id"])
    got: list[tuple[str, int]] = []

    def on_startup(sender: object, **kwargs: Any) -> None:
        send_after_response(order_placed, "startup", order_id=1)

    def on_order(sender: object, order_id: int, **kwargs: Any) -> None:
        got.append(("order", order_id))
        send_after_response(follow_up, "shop", order_id=order_id)

    def on_follow_up(sender: object, order_id: int, **kwargs: Any) -> None:
        got.append(("follow-up", order_id))

    app = SignalMiddleware(Starlette())
    with (
        connected(builtin_startup, on_startup),
        connected(order_placed, on_order),
        connected(follow_up, on_follow_up),
    ):
        async with LifespanManager(app):
            pass
    assert got == [("order", 1), ("follow-up", 1)]

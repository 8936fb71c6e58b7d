"""Lifespan signals: SignalMiddleware between the server and the app's own
lifespan, and asignal.asgi.lifespan() composed into an app's lifespan= function."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio
import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

import asignal.signals as builtin
from asignal import asgi
from asignal.asgi import (
    STATE_KEY,
    BackgroundSends,
    Receive,
    Scope,
    Send,
    SignalMiddleware,
)
from tests.asgi.conftest import (
    LIFESPAN_SIGNALS,
    Driver,
    Recorder,
    connected,
    http_scope,
    raises_through_harness,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from starlette.requests import Request

pytestmark = pytest.mark.anyio

STARTUP = {"type": "lifespan.startup"}
SHUTDOWN = {"type": "lifespan.shutdown"}


@pytest.fixture(params=["async", "sync"])
def rec(request: pytest.FixtureRequest) -> Any:
    """A recorder with async receivers, then one with sync receivers (threads)."""
    with Recorder(str(request.param), LIFESPAN_SIGNALS) as recorder:
        yield recorder


def app_with_lifespan(rec: Recorder, *, fail: bool = False) -> Starlette:
    """A Starlette app with its own lifespan and a route that shows its state."""

    @asynccontextmanager
    async def own_lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        rec.note("app startup")
        if fail:
            raise RuntimeError("database unreachable")
        yield {"db": "connected"}
        rec.note("app shutdown")

    async def state(request: Request) -> Response:
        owner = request.scope["state"].get(STATE_KEY)
        return JSONResponse(
            {
                "db": request.scope["state"].get("db"),
                "owner": type(owner).__name__,
            }
        )

    return Starlette(routes=[Route("/state", state)], lifespan=own_lifespan)


async def test_order_around_the_apps_own_lifespan(rec: Recorder) -> None:
    """lifespan_startup after the app's startup and before the server hears of it;
    lifespan_shutdown before the app's shutdown; requests see both states."""
    app = app_with_lifespan(rec)
    app.add_middleware(SignalMiddleware)
    async with LifespanManager(app) as manager:
        rec.note("server told: started")
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://t"
        ) as client:
            state = (await client.get("/state")).json()
        rec.note("server: shutting down")
    assert rec.names() == [
        "app startup",
        "lifespan_startup",
        "server told: started",
        "server: shutting down",
        "lifespan_shutdown",
        "app shutdown",
    ]
    assert state == {"db": "connected", "owner": "BackgroundSends"}
    assert rec.senders == [SignalMiddleware, SignalMiddleware]
    assert [kw["scope"]["type"] for kw in rec.events_of_signals()] == [
        "lifespan",
        "lifespan",
    ]


async def test_fastapi_without_own_lifespan(rec: Recorder) -> None:
    """A FastAPI app with no lifespan of its own still gets both signals."""
    app = FastAPI()
    app.add_middleware(SignalMiddleware)
    async with LifespanManager(app):
        assert rec.names() == ["lifespan_startup"]
    assert rec.names() == ["lifespan_startup", "lifespan_shutdown"]


async def test_app_without_lifespan_support(
    rec: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    """An app that rejects lifespan scopes (as the spec allows) is left out: the
    middleware answers the server itself and says so at INFO."""

    async def http_only(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            raise ValueError(f"unsupported scope {scope['type']}")

    caplog.set_level(logging.INFO, logger="asignal")
    driver = Driver([STARTUP, SHUTDOWN])
    await driver.run(SignalMiddleware(http_only), {"type": "lifespan", "state": {}})
    assert [m["type"] for m in driver.sent] == [
        "lifespan.startup.complete",
        "lifespan.shutdown.complete",
    ]
    assert rec.names() == ["lifespan_startup", "lifespan_shutdown"]
    assert any("does not support lifespan" in r.getMessage() for r in caplog.records)


async def test_app_that_returns_on_lifespan(rec: Recorder) -> None:
    """An app that just returns on a lifespan scope is also treated as unsupported."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        return None

    driver = Driver([STARTUP, SHUTDOWN])
    await driver.run(SignalMiddleware(app), {"type": "lifespan"})
    assert [m["type"] for m in driver.sent] == [
        "lifespan.startup.complete",
        "lifespan.shutdown.complete",
    ]
    assert rec.names() == ["lifespan_startup", "lifespan_shutdown"]


async def test_startup_receiver_failure_fails_the_startup(
    rec: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    """A lifespan_startup receiver's error becomes lifespan.startup.failed with its
    message, is logged with its traceback, the app still gets its shutdown, and
    the error is then raised (as Starlette does after a failed startup)."""

    async def failing(sender: object, **kwargs: Any) -> None:
        # Fail only once the recorder ran: a failing asend cancels the others.
        while "lifespan_startup" not in rec.names():
            await anyio.sleep(0)
        raise ConnectionError("cache unreachable")

    app = SignalMiddleware(app_with_lifespan(rec))
    driver = Driver([STARTUP])
    with (
        connected(builtin.lifespan_startup, failing),
        pytest.raises(ConnectionError, match="cache unreachable"),
    ):
        await driver.run(app, {"type": "lifespan", "state": {}})
    [answer] = driver.sent
    assert answer["type"] == "lifespan.startup.failed"
    assert "ConnectionError: cache unreachable" in answer["message"]
    assert rec.names() == ["app startup", "lifespan_startup", "app shutdown"]
    assert any(r.exc_info and r.levelname == "ERROR" for r in caplog.records)


async def test_apps_own_startup_failure_passes_through(rec: Recorder) -> None:
    """When the app's own startup fails, its startup.failed reaches the server,
    lifespan_startup is not sent, and the app's exception propagates."""
    driver = Driver([STARTUP])
    with pytest.raises(RuntimeError, match="database unreachable"):
        await driver.run(
            SignalMiddleware(app_with_lifespan(rec, fail=True)), {"type": "lifespan"}
        )
    [answer] = driver.sent
    assert answer["type"] == "lifespan.startup.failed"
    assert "database unreachable" in answer["message"]
    assert rec.names() == ["app startup"]


async def test_shutdown_receiver_failure_fails_the_shutdown(rec: Recorder) -> None:
    """A lifespan_shutdown receiver's error becomes lifespan.shutdown.failed, after
    the app's own shutdown ran; the other shutdown receivers still ran; then the
    error is raised."""

    async def failing(sender: object, **kwargs: Any) -> None:
        raise OSError("flush failed")

    driver = Driver([STARTUP, SHUTDOWN])
    with (
        connected(builtin.lifespan_shutdown, failing),
        pytest.raises(OSError, match="flush failed"),
    ):
        await driver.run(
            SignalMiddleware(app_with_lifespan(rec)), {"type": "lifespan", "state": {}}
        )
    assert [m["type"] for m in driver.sent] == [
        "lifespan.startup.complete",
        "lifespan.shutdown.failed",
    ]
    assert "OSError: flush failed" in driver.sent[1]["message"]
    assert rec.names()[-2:] == ["lifespan_shutdown", "app shutdown"]


async def test_startup_receiver_failure_under_lifespan_manager(rec: Recorder) -> None:
    """Under asgi_lifespan.LifespanManager (which ignores lifespan.startup.failed),
    a lifespan_startup receiver's failure is raised promptly, as itself, not as
    the manager's TimeoutError."""

    async def failing(sender: object, **kwargs: Any) -> None:
        raise ConnectionError("cache unreachable")

    app = SignalMiddleware(app_with_lifespan(rec))
    with (
        connected(builtin.lifespan_startup, failing),
        anyio.fail_after(3),  # the manager's own timeout is 5 s
        raises_through_harness(ConnectionError, "cache unreachable"),
    ):
        async with LifespanManager(app, startup_timeout=5):
            pytest.fail("the startup should have failed")  # pragma: no cover
    assert rec.names()[-1] == "app shutdown"


async def test_shutdown_receiver_failure_under_lifespan_manager(
    rec: Recorder,
) -> None:
    """Under LifespanManager, a lifespan_shutdown receiver's failure is raised
    promptly when the block ends, after the app's own shutdown ran."""

    async def failing(sender: object, **kwargs: Any) -> None:
        raise OSError("flush failed")

    app = SignalMiddleware(app_with_lifespan(rec))
    with (
        connected(builtin.lifespan_shutdown, failing),
        anyio.fail_after(3),
        raises_through_harness(OSError, "flush failed"),
    ):
        async with LifespanManager(app, shutdown_timeout=5):
            pass
    assert rec.names()[-1] == "app shutdown"


async def test_lifespan_false_leaves_the_lifespan_to_the_app(rec: Recorder) -> None:
    """With lifespan=False the app's own lifespan runs and no signal is sent."""
    app = app_with_lifespan(rec)
    app.add_middleware(SignalMiddleware, lifespan=False)
    async with LifespanManager(app):
        pass
    assert rec.names() == ["app startup", "app shutdown"]


async def test_lifespan_context_manager_in_starlette(rec: Recorder) -> None:
    """asignal.asgi.lifespan() inside an app's lifespan: signals in the order the
    user nests it, scope None, sender SignalMiddleware, and a namespaced state."""

    @asynccontextmanager
    async def own_lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        rec.note("app startup")
        async with asgi.lifespan() as state:
            yield {"db": "connected", **state}
        rec.note("app shutdown")

    seen: dict[str, Any] = {}

    async def state_route(request: Request) -> Response:
        seen.update(request.scope["state"])
        return Response("ok")

    app = Starlette(routes=[Route("/", state_route)], lifespan=own_lifespan)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://t"
        ) as client:
            await client.get("/")
    assert rec.names() == [
        "app startup",
        "lifespan_startup",
        "lifespan_shutdown",
        "app shutdown",
    ]
    assert [kw["scope"] for kw in rec.events_of_signals()] == [None, None]
    assert rec.senders == [SignalMiddleware, SignalMiddleware]
    assert seen["db"] == "connected"
    assert isinstance(seen[STATE_KEY], BackgroundSends)


async def test_lifespan_context_manager_in_fastapi(rec: Recorder) -> None:
    """The same in FastAPI, with a custom sender."""

    class Service:
        pass

    @asynccontextmanager
    async def own_lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        async with asgi.lifespan(sender=Service) as state:
            yield state

    async with LifespanManager(FastAPI(lifespan=own_lifespan)):
        assert rec.names() == ["lifespan_startup"]
    assert rec.names() == ["lifespan_startup", "lifespan_shutdown"]
    assert rec.senders == [Service, Service]


async def test_lifespan_context_manager_startup_failure_propagates(
    rec: Recorder,
) -> None:
    """A failing lifespan_startup receiver makes lifespan() raise on entry."""

    def failing(sender: object, **kwargs: Any) -> None:
        raise ConnectionError("cache unreachable")

    with connected(builtin.lifespan_startup, failing), pytest.raises(ConnectionError):
        async with asgi.lifespan():
            pass  # pragma: no cover
    assert rec.names() == ["lifespan_startup"]


async def test_lifespan_context_manager_shutdown_runs_every_receiver(
    rec: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    """On exit, every lifespan_shutdown receiver runs; a failure is logged and then
    raised, after the background owner was drained."""

    async def failing(sender: object, **kwargs: Any) -> None:
        raise OSError("flush failed")

    with (
        connected(builtin.lifespan_shutdown, failing),
        pytest.raises(OSError, match="flush failed"),
    ):
        async with asgi.lifespan():
            pass
    assert rec.names() == ["lifespan_startup", "lifespan_shutdown"]
    assert any("flush failed" in r.getMessage() for r in caplog.records)


async def _start_lifespan(
    mw: SignalMiddleware, tg: Any, state: dict[str, Any], sent: list[str]
) -> Any:
    """Run *mw*'s lifespan in *tg*; return the stream that feeds it messages."""
    feed, inbox = anyio.create_memory_object_stream[dict[str, Any]](10)

    async def lifespan_send(message: Any) -> None:
        sent.append(message["type"])

    async def run() -> None:
        async with inbox:
            await mw({"type": "lifespan", "state": state}, inbox.receive, lifespan_send)

    tg.start_soon(run)
    await feed.send(STARTUP)
    while not sent:
        await anyio.sleep(0)
    return feed


@pytest.mark.parametrize("drain_timeout", [10.0, 0.05])
async def test_shutdown_waits_for_requests_still_finishing(
    drain_timeout: float, caplog: pytest.LogCaptureFixture
) -> None:
    """lifespan_shutdown waits for a request still sending request_finished (as
    after a server cancelled it), bounded by drain_timeout with a warning."""
    release = anyio.Event()
    recorder = Recorder("async", LIFESPAN_SIGNALS)

    async def slow(sender: object, **kwargs: Any) -> None:
        recorder.note("finishing")
        await release.wait()
        recorder.note("finished")

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})

    mw = SignalMiddleware(app, finished_timeout=None, drain_timeout=drain_timeout)
    state: dict[str, Any] = {}
    sent: list[str] = []
    with (
        recorder,
        connected(builtin.request_finished, slow),
    ):
        async with anyio.create_task_group() as tg:
            feed = await _start_lifespan(mw, tg, state, sent)
            tg.start_soon(Driver([]).run, mw, http_scope("/", state=dict(state)))
            while "finishing" not in recorder.names():
                await anyio.sleep(0)
            async with feed:
                await feed.send(SHUTDOWN)
                if drain_timeout > 1:
                    for _ in range(20):
                        await anyio.sleep(0)
                    assert "lifespan_shutdown" not in recorder.names()
                    release.set()
                else:
                    while "lifespan_shutdown" not in recorder.names():
                        await anyio.sleep(0)
                    release.set()
    if drain_timeout > 1:
        assert recorder.names()[1:] == ["finishing", "finished", "lifespan_shutdown"]
    else:
        assert recorder.names()[1:3] == ["finishing", "lifespan_shutdown"]
        assert any("still running" in r.getMessage() for r in caplog.records)
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]

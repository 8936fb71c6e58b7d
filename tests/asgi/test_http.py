"""Request signals for HTTP, through real Starlette and FastAPI apps (httpx's ASGI
transport, in process) and through raw ASGI for what a test client cannot do."""

from __future__ import annotations

import logging
import threading
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

import asignal.signals as builtin
from asignal.asgi import ASGIApp, Message, Receive, Scope, Send, SignalMiddleware
from tests.asgi.conftest import (
    Driver,
    Recorder,
    connected,
    fastapi_app,
    http_scope,
    starlette_app,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from asignal import Signal

pytestmark = pytest.mark.anyio

REQUEST: dict[str, Signal] = {
    "request_started": builtin.request_started,
    "got_request_exception": builtin.got_request_exception,
    "request_finished": builtin.request_finished,
}


@pytest.fixture(params=["async", "sync"])
def rec(request: pytest.FixtureRequest) -> Any:
    """A recorder with async receivers, then one with sync receivers (threads)."""
    with Recorder(str(request.param), REQUEST) as recorder:
        yield recorder


@asynccontextmanager
async def client_for(
    app: ASGIApp, *, raise_app_exceptions: bool = True
) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=raise_app_exceptions)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver"
    ) as c:
        yield c


def finished_kwargs(rec: Recorder) -> dict[str, Any]:
    [kwargs] = rec.of("request_finished")
    return {key: value for key, value in kwargs.items() if key != "scope"}


async def test_plain_request_sends_started_then_finished(rec: Recorder) -> None:
    """A plain response: request_started before the endpoint, request_finished after,
    once each, from the middleware class, with the scope and final status."""
    app = starlette_app(rec)
    app.add_middleware(SignalMiddleware)
    async with client_for(app) as client:
        response = await client.get("/plain")
    assert response.text == "hello"
    assert rec.names() == ["request_started", "endpoint", "request_finished"]
    assert rec.senders == [SignalMiddleware, SignalMiddleware]
    assert rec.of("request_started")[0]["scope"]["path"] == "/plain"
    assert rec.of("request_finished")[0]["scope"]["path"] == "/plain"
    assert finished_kwargs(rec) == {
        "status": 200,
        "response_complete": True,
        "aborted": False,
        "close_code": None,
    }


async def test_sync_receivers_run_in_worker_threads() -> None:
    """Sync receivers of the request signals run off the event loop's thread."""
    with Recorder("sync", REQUEST) as rec:
        app = starlette_app(rec)
        app.add_middleware(SignalMiddleware)
        async with client_for(app) as client:
            await client.get("/plain")
    assert threading.get_ident() not in rec.threads
    assert len(rec.threads) == 2


async def test_streaming_response_finishes_after_the_last_chunk(rec: Recorder) -> None:
    """request_finished comes after every chunk of a streamed body."""
    app = starlette_app(rec)
    app.add_middleware(SignalMiddleware)
    async with client_for(app) as client:
        response = await client.get("/stream")
    assert response.text == "part0;part1;part2;"
    assert rec.names() == [
        "request_started",
        "chunk",
        "chunk",
        "chunk",
        "request_finished",
    ]
    assert finished_kwargs(rec)["response_complete"] is True


async def test_background_task_runs_before_request_finished(rec: Recorder) -> None:
    """A Starlette background task runs inside the request: request_finished waits."""
    app = starlette_app(rec)
    app.add_middleware(SignalMiddleware)
    async with client_for(app) as client:
        response = await client.get("/background")
    assert response.text == "ok"
    assert rec.names() == ["request_started", "background task", "request_finished"]


async def test_error_before_response_inside_error_middleware(rec: Recorder) -> None:
    """Added with add_middleware (inside ServerErrorMiddleware), an exception before
    the response is reported with response_started=False and no status: the 500
    is sent later, by the outer error middleware."""
    app = starlette_app(rec)
    app.add_middleware(SignalMiddleware)
    async with client_for(app, raise_app_exceptions=False) as client:
        response = await client.get("/error-before")
    assert response.status_code == 500
    assert rec.names() == [
        "request_started",
        "got_request_exception",
        "request_finished",
    ]
    [report] = rec.of("got_request_exception")
    assert isinstance(report["exception"], RuntimeError)
    assert str(report["exception"]) == "boom before"
    assert report["response_started"] is False
    assert report["scope"]["path"] == "/error-before"
    assert finished_kwargs(rec) == {
        "status": None,
        "response_complete": False,
        "aborted": False,
        "close_code": None,
    }


async def test_error_before_response_outside_error_middleware(rec: Recorder) -> None:
    """Wrapping the whole app (outside ServerErrorMiddleware) sees the 500 that was
    sent, then the re-raised exception."""
    app = SignalMiddleware(starlette_app(rec))
    async with client_for(app, raise_app_exceptions=False) as client:
        response = await client.get("/error-before")
    assert response.status_code == 500
    assert rec.names() == [
        "request_started",
        "got_request_exception",
        "request_finished",
    ]
    assert rec.of("got_request_exception")[0]["response_started"] is True
    assert finished_kwargs(rec) == {
        "status": 500,
        "response_complete": True,
        "aborted": False,
        "close_code": None,
    }


async def test_error_after_response_started(rec: Recorder) -> None:
    """An exception mid-stream is reported with response_started=True; the status
    already sent is 200 and the response never completed."""
    app = starlette_app(rec)
    app.add_middleware(SignalMiddleware)
    async with client_for(app, raise_app_exceptions=False) as client:
        await client.get("/error-after")
    assert rec.names() == [
        "request_started",
        "got_request_exception",
        "request_finished",
    ]
    [report] = rec.of("got_request_exception")
    assert str(report["exception"]) == "boom after"
    assert report["response_started"] is True
    assert finished_kwargs(rec) == {
        "status": 200,
        "response_complete": False,
        "aborted": False,
        "close_code": None,
    }


async def test_exception_propagates_after_the_signals(rec: Recorder) -> None:
    """The app's exception still reaches the caller after got_request_exception."""
    app = SignalMiddleware(starlette_app(rec))
    async with client_for(app) as client:
        with pytest.raises(RuntimeError, match="boom before"):
            await client.get("/error-before")
    assert rec.names()[-1] == "request_finished"


async def test_handled_http_exception_is_not_an_error(rec: Recorder) -> None:
    """An HTTPException handled by the app is a response, not got_request_exception."""
    app = starlette_app(rec)
    app.add_middleware(SignalMiddleware)
    async with client_for(app) as client:
        response = await client.get("/http-exception")
    assert response.status_code == 404
    assert rec.names() == ["request_started", "request_finished"]
    assert finished_kwargs(rec)["status"] == 404


async def test_fastapi_routes_and_errors(rec: Recorder) -> None:
    """FastAPI async and sync endpoints and an unhandled error send the same signals."""
    app = fastapi_app(rec)
    app.add_middleware(SignalMiddleware)
    async with client_for(app, raise_app_exceptions=False) as client:
        assert (await client.get("/items/7")).json() == {"item_id": 7}
        assert (await client.get("/boom")).status_code == 500
    assert rec.names() == [
        "request_started",
        "endpoint",
        "request_finished",
        "request_started",
        "got_request_exception",
        "request_finished",
    ]
    assert isinstance(rec.of("got_request_exception")[0]["exception"], ValueError)
    assert [kw["status"] for kw in rec.of("request_finished")] == [200, None]


async def test_concurrent_requests_keep_their_own_state(rec: Recorder) -> None:
    """Concurrent requests through one middleware each report their own scope and
    status: nothing per request is stored on the middleware."""
    app = SignalMiddleware(fastapi_app(rec))
    before = dict(vars(app))
    async with client_for(app) as client, anyio.create_task_group() as tg:
        for i in range(10):
            tg.start_soon(client.get, f"/items/{i}")
        tg.start_soon(client.get, "/missing")
    finished = rec.of("request_finished")
    assert len(finished) == 11
    by_path = {kw["scope"]["path"]: kw["status"] for kw in finished}
    assert by_path == {**{f"/items/{i}": 200 for i in range(10)}, "/missing": 404}
    assert len(rec.of("request_started")) == 11
    assert vars(app) == before


async def test_request_started_failure_stops_the_request() -> None:
    """A request_started receiver that raises: the app is not called, the error
    propagates, and request_finished is still sent once."""
    called: list[str] = []

    async def failing(sender: object, **kwargs: Any) -> None:
        raise LookupError("no tenant")

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        called.append("app")  # pragma: no cover - must not run

    with (
        Recorder("async", {"request_finished": builtin.request_finished}) as rec,
        connected(builtin.request_started, failing),
        pytest.raises(LookupError),
    ):
        await Driver([]).run(SignalMiddleware(app), http_scope("/"))
    assert called == []
    assert rec.names() == ["request_finished"]
    assert finished_kwargs(rec)["status"] is None


async def test_failing_request_finished_receiver_propagates() -> None:
    """By default a request_finished receiver's error propagates like an app error."""

    def failing(sender: object, **kwargs: Any) -> None:
        raise KeyError("receiver bug")

    app = SignalMiddleware(starlette_app(Recorder("async", {})))
    with connected(builtin.request_finished, failing):
        async with client_for(app) as client:
            with pytest.raises(KeyError, match="receiver bug"):
                await client.get("/plain")


async def test_robust_mode_logs_receiver_failures(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With robust=True, failing receivers are logged on 'asignal' and the request
    is unaffected; the other receivers still run."""

    def failing(sender: object, **kwargs: Any) -> None:
        raise KeyError("receiver bug")

    with Recorder("async", REQUEST) as rec:
        app = starlette_app(rec)
        app.add_middleware(SignalMiddleware, robust=True)
        with (
            connected(builtin.request_started, failing),
            connected(builtin.request_finished, failing),
        ):
            async with client_for(app) as client:
                response = await client.get("/plain")
    assert response.text == "hello"
    assert rec.names() == ["request_started", "endpoint", "request_finished"]
    errors = [
        r for r in caplog.records if r.name == "asignal" and r.levelname == "ERROR"
    ]
    assert len(errors) == 2
    assert all("receiver bug" in r.getMessage() for r in errors)


# -- raw ASGI: what a test client cannot produce -----------------------------------


async def test_client_disconnect_before_response_is_an_abort(rec: Recorder) -> None:
    """A disconnect read before the response completed makes aborted=True, and the
    app's resulting ClientDisconnect is not reported as an exception."""

    async def endpoint(scope: Scope, receive: Receive, send: Send) -> None:
        await Request(scope, receive).body()  # raises ClientDisconnect

    driver = Driver([{"type": "http.disconnect"}])
    with pytest.raises(ClientDisconnect):
        await driver.run(SignalMiddleware(endpoint), http_scope("/upload", "POST"))
    assert rec.names() == ["request_started", "request_finished"]
    assert finished_kwargs(rec) == {
        "status": None,
        "response_complete": False,
        "aborted": True,
        "close_code": None,
    }


async def test_disconnect_after_complete_response_is_not_an_abort(
    rec: Recorder,
) -> None:
    """http.disconnect read after the final body is the normal end, not an abort."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 201, "headers": []})
        await send({"type": "http.response.body", "body": b"done"})
        assert (await receive())["type"] == "http.disconnect"

    await Driver([{"type": "http.disconnect"}]).run(
        SignalMiddleware(app), http_scope("/")
    )
    assert finished_kwargs(rec) == {
        "status": 201,
        "response_complete": True,
        "aborted": False,
        "close_code": None,
    }


class LeftClient:
    """A server's receive() for a client that has left, as uvicorn's behaves: the
    request's (empty) body message if the app has not read it, then
    http.disconnect for ever, each returned without waiting. Its send() drops
    every message, as uvicorn does after a disconnect."""

    def __init__(self, body_unread: bool = True) -> None:
        self.messages: list[Message] = (
            [{"type": "http.request", "body": b"", "more_body": False}]
            if body_unread
            else []
        )
        self.dropped: list[Message] = []

    async def receive(self) -> Message:
        if self.messages:
            return self.messages.pop(0)
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        self.dropped.append(message)


async def test_client_gone_before_a_response_the_app_never_read_for(
    rec: Recorder,
) -> None:
    """A client that left while the app prepared a plain response (the app never
    calls receive(), the server drops what it sends) is reported as aborted, with
    the status the app sent and response_complete=False."""
    endpoint = Starlette(routes=[Route("/", lambda request: PlainTextResponse("x"))])
    client = LeftClient()
    await SignalMiddleware(endpoint)(http_scope("/"), client.receive, client.send)
    assert finished_kwargs(rec) == {
        "status": 200,
        "response_complete": False,
        "aborted": True,
        "close_code": None,
    }
    assert [m["type"] for m in client.dropped] == [
        "http.response.start",
        "http.response.body",
    ]


async def test_messages_read_to_see_a_disconnect_reach_the_app(rec: Recorder) -> None:
    """The body message read while looking for a disconnect is given to the app's
    next receive(), then the disconnect: the app sees what the server sent, in
    the same order."""
    seen: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"done"})
        seen.extend([await receive(), await receive(), await receive()])

    client = LeftClient()
    await SignalMiddleware(app)(http_scope("/"), client.receive, client.send)
    assert seen == [
        {"type": "http.request", "body": b"", "more_body": False},
        {"type": "http.disconnect"},
        {"type": "http.disconnect"},
    ]
    assert finished_kwargs(rec)["aborted"] is True


async def test_an_unread_request_body_is_never_read_by_the_middleware(
    rec: Recorder,
) -> None:
    """With a request body the app has not read, the middleware reads nothing
    (it would have to buffer the body), so such an abort stays unseen."""
    calls: list[str] = []

    async def receive() -> Message:
        calls.append("receive")
        return {"type": "http.disconnect"}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    scope = http_scope("/upload", "POST")
    scope["headers"].append((b"content-length", b"5"))
    await SignalMiddleware(app)(scope, receive, LeftClient().send)
    assert calls == []
    assert finished_kwargs(rec)["aborted"] is False


async def test_send_raising_oserror_is_an_abort(rec: Recorder) -> None:
    """An ASGI 2.4 server's send() raising OSError mid-stream makes aborted=True and
    is not reported as the app's exception (it still propagates)."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"a", "more_body": True})
        await send({"type": "http.response.body", "body": b"b"})

    driver = Driver([], fail_send_after=2)
    with pytest.raises(OSError, match="connection closed"):
        await driver.run(SignalMiddleware(app), http_scope("/stream"))
    assert rec.names() == ["request_started", "request_finished"]
    assert finished_kwargs(rec) == {
        "status": 200,
        "response_complete": False,
        "aborted": True,
        "close_code": None,
    }


async def test_disconnect_read_while_the_final_body_is_sent(rec: Recorder) -> None:
    """A disconnect that another task reads while the final body is still being
    sent (a server that reports it before send() returns) is not an abort."""
    disconnect_read = anyio.Event()

    async def slow_send(message: Message) -> None:
        if message["type"] == "http.response.body":
            await disconnect_read.wait()

    async def receive() -> Message:
        await anyio.lowlevel.checkpoint()
        return {"type": "http.disconnect"}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        async def listen() -> None:
            assert (await receive())["type"] == "http.disconnect"
            disconnect_read.set()

        async def send_final_body() -> None:
            await send({"type": "http.response.body", "body": b"end"})

        await send({"type": "http.response.start", "status": 200, "headers": []})
        async with anyio.create_task_group() as tg:
            tg.start_soon(send_final_body)
            await anyio.lowlevel.checkpoint()
            tg.start_soon(listen)

    await SignalMiddleware(app)(http_scope("/"), receive, slow_send)
    assert finished_kwargs(rec) == {
        "status": 200,
        "response_complete": True,
        "aborted": False,
        "close_code": None,
    }


@pytest.mark.parametrize(
    ("messages", "complete"),
    [
        pytest.param(
            [
                {"type": "http.response.start", "status": 200, "trailers": True},
                {"type": "http.response.body", "body": b"x"},
            ],
            False,
            id="trailers-pending",
        ),
        pytest.param(
            [
                {"type": "http.response.start", "status": 200, "trailers": True},
                {"type": "http.response.body", "body": b"x"},
                {"type": "http.response.trailers", "headers": []},
            ],
            True,
            id="trailers-sent",
        ),
        pytest.param(
            [
                {"type": "http.response.start", "status": 200},
                {"type": "http.response.pathsend", "path": "/etc/hostname"},
            ],
            True,
            id="pathsend",
        ),
        pytest.param(
            [
                {"type": "http.response.start", "status": 200},
                {"type": "http.response.body", "body": b"a", "more_body": True},
            ],
            False,
            id="more-body",
        ),
    ],
)
async def test_response_completion_messages(
    messages: list[Message], complete: bool
) -> None:
    """response_complete follows the ASGI completion rules: final body unless
    trailers are announced, final trailers, or pathsend."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        for message in messages:
            await send(message)

    with Recorder("async", REQUEST) as rec:
        await Driver([]).run(SignalMiddleware(app), http_scope("/"))
    assert finished_kwargs(rec)["response_complete"] is complete


async def test_request_finished_is_sent_while_cancelled(rec: Recorder) -> None:
    """A request task cancelled mid-request still sends request_finished, and its
    receivers can await (the send is shielded)."""
    entered = anyio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        entered.set()
        await anyio.sleep_forever()

    async def awaiting_receiver(sender: object, **kwargs: Any) -> None:
        await anyio.sleep(0)
        rec.note("awaited in request_finished")

    with connected(builtin.request_finished, awaiting_receiver):
        async with anyio.create_task_group() as tg:
            tg.start_soon(Driver([]).run, SignalMiddleware(app), http_scope("/slow"))
            await entered.wait()
            tg.cancel_scope.cancel()
    assert "got_request_exception" not in rec.names()
    assert rec.names().count("request_finished") == 1
    assert "awaited in request_finished" in rec.names()
    assert finished_kwargs(rec)["status"] is None


async def test_finished_timeout_bounds_a_stuck_receiver(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A request_finished receiver that never returns is cancelled after
    finished_timeout and the request ends with a warning naming the setting."""
    cancelled: list[bool] = []

    async def stuck(sender: object, **kwargs: Any) -> None:
        try:
            await anyio.sleep_forever()
        finally:
            cancelled.append(True)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    with connected(builtin.request_finished, stuck):
        await Driver([]).run(
            SignalMiddleware(app, finished_timeout=0.05), http_scope("/")
        )
    assert cancelled == [True]
    [warning] = [r for r in caplog.records if r.levelname == "WARNING"]
    assert "finished_timeout" in warning.getMessage()


async def test_other_scope_types_pass_through() -> None:
    """Scopes other than http, websocket and lifespan reach the app untouched, and
    send no signal; so does lifespan with lifespan=False."""
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    with Recorder("async") as rec:
        await Driver([]).run(SignalMiddleware(app), {"type": "custom"})
        await Driver([]).run(
            SignalMiddleware(app, lifespan=False), {"type": "lifespan"}
        )
    assert seen == ["custom", "lifespan"]
    assert rec.names() == []


async def test_constructor_rejects_bad_arguments() -> None:
    """Wrong middleware arguments fail at construction with a clear message."""
    with pytest.raises(TypeError, match="wraps an ASGI app"):
        SignalMiddleware("not an app")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="finished_timeout"):
        SignalMiddleware(starlette_app(Recorder("async", {})), finished_timeout=-1)
    with pytest.raises(ValueError, match="max_buffer"):
        SignalMiddleware(starlette_app(Recorder("async", {})), max_buffer=0)


def test_logging_uses_the_asignal_logger() -> None:
    """The integration logs on the 'asignal' logger, like the core."""
    import asignal.asgi._request as request_module

    assert request_module.logger is logging.getLogger("asignal")


def test_asgi_module_imports_no_framework() -> None:
    """asignal.asgi is pure ASGI: importing it loads no web framework or server,
    and importing asignal does not load asignal.asgi."""
    import subprocess
    import sys

    code = (
        "import sys, asignal; assert 'asignal.asgi' not in sys.modules; "
        "import asignal.asgi; "
        "bad = {'starlette', 'fastapi', 'uvicorn', 'httpx', 'asgiref', 'trio'}; "
        "print(sorted(bad & {m.split('.')[0] for m in sys.modules}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"

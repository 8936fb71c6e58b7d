"""End to end: SignalMiddleware in a real uvicorn server on 127.0.0.1, driven by
real clients (httpx over sockets, the websockets client).

These tests are synchronous and run on asyncio only: uvicorn runs its server on
an asyncio loop (it has no trio support), in a thread of its own here. The same
behaviour is covered on both backends in process by the other tests in this folder.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect as ws_connect

import asignal.signals as builtin
from asignal import Signal
from asignal.asgi import (
    ASGIApp,
    Receive,
    Scope,
    Send,
    SignalMiddleware,
    send_after_response,
)
from tests.asgi.conftest import (
    ALL_SIGNALS,
    Recorder,
    connected,
    fastapi_app,
    order_placed,
    starlette_app,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

SIGNALS = {**ALL_SIGNALS, "order_placed": order_placed}


@contextmanager
def serve(app: ASGIApp, **config: Any) -> Iterator[str]:
    """Serve *app* with uvicorn on a free 127.0.0.1 port; yield its base URL and
    shut the server down (lifespan shutdown included) on exit."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, lifespan="on", log_level="warning", **config)
    )
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, daemon=True
    )
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive():
                pytest.fail("uvicorn exited during startup")
            if time.monotonic() > deadline:  # pragma: no cover
                pytest.fail("uvicorn did not start within 10 s")
            time.sleep(0.01)
        yield f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()
        assert not thread.is_alive(), "uvicorn did not shut down within 15 s"


@pytest.fixture(params=["async", "sync"])
def rec(request: pytest.FixtureRequest) -> Iterator[Recorder]:
    """A recorder with async receivers, then one with sync receivers (threads)."""
    with Recorder(str(request.param), SIGNALS) as recorder:
        yield recorder


def request_events(rec: Recorder) -> list[str]:
    return [n for n in rec.names() if not n.startswith("lifespan_")]


def finished(rec: Recorder) -> dict[str, Any]:
    [kwargs] = rec.of("request_finished")
    return {key: value for key, value in kwargs.items() if key != "scope"}


def test_plain_streaming_and_background(rec: Recorder) -> None:
    """Plain, streamed and background-task responses over real HTTP: each request
    is framed by request_started and request_finished, inside the lifespan."""
    app = starlette_app(rec)
    app.add_middleware(SignalMiddleware)
    with serve(app) as host, httpx.Client(base_url=f"http://{host}") as client:
        assert client.get("/plain").text == "hello"
        rec.wait_for("request_finished", 1)
        assert client.get("/stream").text == "part0;part1;part2;"
        rec.wait_for("request_finished", 2)
        assert client.get("/background").text == "ok"
        rec.wait_for("request_finished", 3)
    assert rec.names() == [
        "lifespan_startup",
        "request_started",
        "endpoint",
        "request_finished",
        "request_started",
        "chunk",
        "chunk",
        "chunk",
        "request_finished",
        "request_started",
        "background task",
        "request_finished",
        "lifespan_shutdown",
    ]
    for kwargs in rec.of("request_finished"):
        assert kwargs["status"] == 200
        assert kwargs["response_complete"] is True
        assert kwargs["aborted"] is False
        assert kwargs["scope"]["server"][0] == "127.0.0.1"
    assert set(rec.senders) == {SignalMiddleware}


def test_errors_before_and_after_the_response_started(rec: Recorder) -> None:
    """An error before the response (the client gets a 500) and one mid-stream
    (the client gets a truncated 200) are each reported once."""
    app = starlette_app(rec)
    app.add_middleware(SignalMiddleware)
    # One connection per request: uvicorn closes a connection whose app raised.
    with serve(app) as host:
        assert httpx.get(f"http://{host}/error-before").status_code == 500
        rec.wait_for("request_finished", 1)
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://{host}/error-after")
        rec.wait_for("request_finished", 2)
    assert (
        request_events(rec)
        == [
            "request_started",
            "got_request_exception",
            "request_finished",
        ]
        * 2
    )
    before, after = rec.of("got_request_exception")
    assert (str(before["exception"]), before["response_started"]) == (
        "boom before",
        False,
    )
    assert (str(after["exception"]), after["response_started"]) == ("boom after", True)
    statuses = [
        (kw["status"], kw["response_complete"]) for kw in rec.of("request_finished")
    ]
    assert statuses == [(None, False), (200, False)]


def test_outermost_placement_sees_the_500(rec: Recorder) -> None:
    """Wrapped around the whole app, the middleware reports the 500 it saw sent."""
    with serve(SignalMiddleware(starlette_app(rec))) as host:
        assert httpx.get(f"http://{host}/error-before").status_code == 500
        rec.wait_for("request_finished")
    assert finished(rec)["status"] == 500
    assert rec.of("got_request_exception")[0]["response_started"] is True


def test_client_disconnect_mid_stream(rec: Recorder) -> None:
    """A client that closes the connection mid-stream: request_finished reports an
    abort with the 200 already sent, and no exception is reported."""
    app = starlette_app(rec)
    app.add_middleware(SignalMiddleware)
    with serve(app) as host:
        with (
            httpx.Client(base_url=f"http://{host}") as client,
            client.stream("GET", "/slow-stream") as response,
        ):
            assert next(response.iter_raw()) == b"first;"
            rec.wait_for("first chunk sent")
        rec.wait_for("request_finished")
    assert "got_request_exception" not in rec.names()
    assert finished(rec) == {
        "status": 200,
        "response_complete": False,
        "aborted": True,
        "close_code": None,
    }


def test_websocket_accept_close_reject_and_client_close(rec: Recorder) -> None:
    """Websockets over a real connection: an echo the app closes, a rejection (HTTP
    403), a client that closes first, and an app error after the handshake."""
    app = starlette_app(rec)
    app.add_middleware(SignalMiddleware)
    with serve(app) as host:
        with ws_connect(f"ws://{host}/ws/echo") as ws:
            ws.send("hi")
            assert ws.recv(timeout=5) == "echo:hi"
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=5)
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 4001
        rec.wait_for("request_finished", 1)
        with pytest.raises(InvalidStatus) as rejected:
            ws_connect(f"ws://{host}/ws/reject")
        assert rejected.value.response.status_code == 403
        rec.wait_for("request_finished", 2)
        with ws_connect(f"ws://{host}/ws/wait") as ws:
            ws.send("ping")
        rec.wait_for("request_finished", 3)
        with ws_connect(f"ws://{host}/ws/error") as ws, pytest.raises(ConnectionClosed):
            ws.recv(timeout=5)
        rec.wait_for("request_finished", 4)
    echo, reject, client_closed, error = (
        {k: v for k, v in kw.items() if k != "scope"}
        for kw in rec.of("request_finished")
    )
    assert echo == {
        "status": None,
        "response_complete": True,
        "aborted": False,
        "close_code": 4001,
    }
    assert reject == {
        "status": 403,
        "response_complete": True,
        "aborted": False,
        "close_code": None,
    }
    assert client_closed == {
        "status": None,
        "response_complete": False,
        "aborted": True,
        "close_code": 1000,
    }
    assert error == {
        "status": None,
        "response_complete": False,
        "aborted": False,
        "close_code": None,
    }
    [report] = rec.of("got_request_exception")
    assert (str(report["exception"]), report["response_started"]) == ("ws boom", True)
    assert "ws disconnect seen" in rec.names()


def test_lifespan_with_the_apps_own_lifespan(rec: Recorder) -> None:
    """Around a real server's lifespan, the signals nest inside the app's own."""

    @asynccontextmanager
    async def own_lifespan(app: Starlette) -> AsyncIterator[None]:
        rec.note("app startup")
        yield
        rec.note("app shutdown")

    app = Starlette(lifespan=own_lifespan)
    app.add_middleware(SignalMiddleware)
    with serve(app):
        assert rec.names() == ["app startup", "lifespan_startup"]
    assert rec.names() == [
        "app startup",
        "lifespan_startup",
        "lifespan_shutdown",
        "app shutdown",
    ]
    for kwargs in rec.of("lifespan_startup") + rec.of("lifespan_shutdown"):
        assert kwargs["scope"]["type"] == "lifespan"


def test_lifespan_for_an_app_without_lifespan_support(rec: Recorder) -> None:
    """A plain ASGI app that rejects lifespan still gets the lifespan signals under
    uvicorn's lifespan="on", and its requests work."""

    async def http_only(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            raise ValueError("http only")
        await send({"type": "http.response.start", "status": 202, "headers": []})
        await send({"type": "http.response.body", "body": b"accepted"})

    with serve(SignalMiddleware(http_only)) as host:
        assert httpx.get(f"http://{host}/").status_code == 202
        rec.wait_for("request_finished")
    assert rec.names() == [
        "lifespan_startup",
        "request_started",
        "request_finished",
        "lifespan_shutdown",
    ]


def test_custom_signal_handled_after_the_response(rec: Recorder) -> None:
    """A custom signal handed over by an endpoint is delivered after the response,
    after request_finished, and before the server finishes shutting down."""
    app = starlette_app(rec)
    app.add_middleware(SignalMiddleware)
    with serve(app) as host:
        assert httpx.get(f"http://{host}/after-response?id=11").text == "order 11"
        rec.wait_for("order_placed")
    assert rec.names() == [
        "lifespan_startup",
        "request_started",
        "endpoint",
        "request_finished",
        "order_placed",
        "lifespan_shutdown",
    ]
    assert rec.of("order_placed") == [{"order_id": 11}]


def test_fastapi_background_task_sync_endpoint_and_after_response(
    rec: Recorder,
) -> None:
    """FastAPI over real HTTP: the background task runs before request_finished,
    and sends handed over by async and sync endpoints come after it."""
    app = fastapi_app(rec)
    app.add_middleware(SignalMiddleware)
    with serve(app) as host, httpx.Client(base_url=f"http://{host}") as client:
        assert client.post("/orders/3").json() == {"order_id": 3}
        rec.wait_for("order_placed", 1)
        assert client.get("/sync-items/4").json() == {"item_id": 4}
        rec.wait_for("order_placed", 2)
    assert rec.names() == [
        "lifespan_startup",
        "request_started",
        "background task",
        "request_finished",
        "order_placed",
        "request_started",
        "sync endpoint",
        "request_finished",
        "order_placed",
        "lifespan_shutdown",
    ]
    assert [kw["order_id"] for kw in rec.of("order_placed")] == [3, 4]


def test_server_shutdown_cancels_a_request_in_flight(rec: Recorder) -> None:
    """uvicorn cancels a request still running when its graceful-shutdown timeout
    expires: request_finished is still sent once (shielded, its receivers can
    await), with no exception reported, before lifespan_shutdown."""

    async def awaiting(sender: object, **kwargs: Any) -> None:
        await anyio.sleep(0.01)
        rec.note("awaited in request_finished")

    app = starlette_app(rec)
    app.add_middleware(SignalMiddleware)
    outcome: list[str] = []

    def client(host: str) -> None:
        try:
            with httpx.stream("GET", f"http://{host}/slow-stream", timeout=10) as r:
                for _ in r.iter_raw():
                    pass
            outcome.append("ended")  # pragma: no cover - depends on the server
        except httpx.HTTPError as exc:
            outcome.append(type(exc).__name__)

    with (
        connected(builtin.request_finished, awaiting),
        serve(app, timeout_graceful_shutdown=0.2) as host,
    ):
        thread = threading.Thread(target=client, args=(host,), daemon=True)
        thread.start()
        rec.wait_for("first chunk sent")
    thread.join(10)
    assert outcome, "the client never returned"
    assert "got_request_exception" not in rec.names()
    assert rec.names().count("request_finished") == 1
    names = rec.names()
    assert names.index("awaited in request_finished") < names.index("lifespan_shutdown")
    assert names.index("request_finished") < names.index("lifespan_shutdown")
    assert finished(rec) == {
        "status": 200,
        "response_complete": False,
        "aborted": False,
        "close_code": None,
    }


def test_startup_receiver_failure_exits_uvicorn_with_code_3(tmp_path: Path) -> None:
    """Under the uvicorn command, a lifespan_startup receiver's failure ends the
    server with exit code 3 and logs the receiver's message, once, without the
    'Exception in lifespan protocol' noise (the middleware raises only after it
    reported lifespan.startup.failed)."""
    (tmp_path / "failing_startup_app.py").write_text(
        "from starlette.applications import Starlette\n"
        "from asignal import receiver\n"
        "from asignal.asgi import SignalMiddleware\n"
        "from asignal.signals import lifespan_startup\n\n"
        "@receiver(lifespan_startup)\n"
        "def connect_cache(sender, **kwargs):\n"
        "    raise ConnectionError('cache unreachable')\n\n"
        "app = SignalMiddleware(Starlette())\n"
    )
    result = subprocess.run(
        [
            *(sys.executable, "-m", "uvicorn", "failing_startup_app:app"),
            *("--host", "127.0.0.1", "--port", "0", "--lifespan", "on"),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 3, result.stderr
    message = "lifespan_startup receiver failed: ConnectionError: cache unreachable"
    assert result.stderr.count(message) == 1, result.stderr
    assert "Exception in 'lifespan' protocol" not in result.stderr


def test_bad_send_after_response_fails_the_request(rec: Recorder) -> None:
    """Over real HTTP, send_after_response() with arguments that signal.send()
    refuses fails the request itself (500, got_request_exception with the
    TypeError), in a sync and an async endpoint; nothing is delivered later."""
    strict = Signal(name="tests.strict", providing_args=["order_id"], strict=True)
    app = FastAPI()

    @app.get("/async")
    async def async_endpoint() -> dict[str, int]:
        send_after_response(order_placed, "shop", order_id=1, sender="again")
        return {}

    @app.get("/sync")
    def sync_endpoint() -> dict[str, int]:
        send_after_response(strict, "shop", oops=1)
        return {}

    with serve(SignalMiddleware(app)) as host:
        assert httpx.get(f"http://{host}/async").status_code == 500
        assert httpx.get(f"http://{host}/sync").status_code == 500
    errors = [str(kw["exception"]) for kw in rec.of("got_request_exception")]
    assert len(errors) == 2
    assert "sender twice" in errors[0]
    assert "oops" in errors[1]
    assert rec.of("order_placed") == []


@pytest.mark.parametrize("endpoint_kind", ["async", "sync"])
def test_client_gone_before_a_plain_response(rec: Recorder, endpoint_kind: str) -> None:
    """A client that closes its socket at 0.1 s while the endpoint (async or sync)
    takes 0.5 s to return a PlainTextResponse: request_finished reports the
    abort (uvicorn drops the response and the app never calls receive())."""
    app = FastAPI()

    @app.get("/slow-async", response_class=PlainTextResponse)
    async def slow_async() -> str:
        await anyio.sleep(0.5)
        rec.note("endpoint returned")
        return "late"

    @app.get("/slow-sync", response_class=PlainTextResponse)
    def slow_sync() -> str:
        time.sleep(0.5)
        rec.note("endpoint returned")
        return "late"

    with serve(SignalMiddleware(app)) as host:
        address, port = host.split(":")
        with socket.create_connection((address, int(port))) as client:
            client.sendall(
                f"GET /slow-{endpoint_kind} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
            )
            time.sleep(0.1)
        rec.wait_for("request_finished")
    assert rec.names().index("endpoint returned") < rec.names().index(
        "request_finished"
    )
    assert finished(rec) == {
        "status": 200,
        "response_complete": False,
        "aborted": True,
        "close_code": None,
    }

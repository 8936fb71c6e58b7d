"""Request signals for websockets, driving a real Starlette app with raw ASGI
messages (httpx has no websocket support; the uvicorn tests use a real client)."""

from __future__ import annotations

from typing import Any

import pytest

from asignal.asgi import Receive, Scope, Send, SignalMiddleware
from tests.asgi.conftest import (
    REQUEST_SIGNALS,
    Driver,
    Recorder,
    starlette_app,
    ws_scope,
)

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["async", "sync"])
def rec(request: pytest.FixtureRequest) -> Any:
    """A recorder with async receivers, then one with sync receivers (threads)."""
    with Recorder(str(request.param), REQUEST_SIGNALS) as recorder:
        yield recorder


def finished_kwargs(rec: Recorder) -> dict[str, Any]:
    [kwargs] = rec.of("request_finished")
    assert kwargs["scope"]["type"] == "websocket"
    return {key: value for key, value in kwargs.items() if key != "scope"}


def app_for(rec: Recorder) -> SignalMiddleware:
    return SignalMiddleware(starlette_app(rec))


async def test_accept_echo_close(rec: Recorder) -> None:
    """An accepted websocket that the app closes: no status, the app's close code,
    complete and not aborted."""
    driver = Driver(
        [{"type": "websocket.connect"}, {"type": "websocket.receive", "text": "hi"}]
    )
    await driver.run(app_for(rec), ws_scope("/ws/echo"))
    assert [m["type"] for m in driver.sent] == [
        "websocket.accept",
        "websocket.send",
        "websocket.close",
    ]
    assert driver.sent[1]["text"] == "echo:hi"
    assert rec.names() == ["request_started", "request_finished"]
    assert rec.senders == [SignalMiddleware, SignalMiddleware]
    assert rec.of("request_started")[0]["scope"]["path"] == "/ws/echo"
    assert finished_kwargs(rec) == {
        "status": None,
        "response_complete": True,
        "aborted": False,
        "close_code": 4001,
    }


async def test_reject_before_accept_is_a_403(rec: Recorder) -> None:
    """A close before accept is answered with HTTP 403: status is 403 and there is
    no websocket close code."""
    driver = Driver([{"type": "websocket.connect"}])
    await driver.run(app_for(rec), ws_scope("/ws/reject"))
    assert [m["type"] for m in driver.sent] == ["websocket.close"]
    assert finished_kwargs(rec) == {
        "status": 403,
        "response_complete": True,
        "aborted": False,
        "close_code": None,
    }


async def test_client_goes_away_first(rec: Recorder) -> None:
    """A client disconnect before the app closed: aborted, with the client's code,
    and the app's WebSocketDisconnect handling is not an error."""
    driver = Driver(
        [{"type": "websocket.connect"}, {"type": "websocket.disconnect", "code": 1001}]
    )
    await driver.run(app_for(rec), ws_scope("/ws/wait"))
    assert rec.names() == ["request_started", "ws disconnect seen", "request_finished"]
    assert finished_kwargs(rec) == {
        "status": None,
        "response_complete": False,
        "aborted": True,
        "close_code": 1001,
    }


async def test_error_after_accept(rec: Recorder) -> None:
    """An exception after accept is reported with response_started=True."""
    driver = Driver([{"type": "websocket.connect"}])
    with pytest.raises(RuntimeError, match="ws boom"):
        await driver.run(app_for(rec), ws_scope("/ws/error"))
    assert rec.names() == [
        "request_started",
        "got_request_exception",
        "request_finished",
    ]
    [report] = rec.of("got_request_exception")
    assert report["response_started"] is True
    assert str(report["exception"]) == "ws boom"
    assert finished_kwargs(rec) == {
        "status": None,
        "response_complete": False,
        "aborted": False,
        "close_code": None,
    }


async def test_denial_response(rec: Recorder) -> None:
    """A handshake answered with an HTTP denial response reports its status."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send(
            {"type": "websocket.http.response.start", "status": 401, "headers": []}
        )
        await send({"type": "websocket.http.response.body", "body": b"no"})

    await Driver([{"type": "websocket.connect"}]).run(
        SignalMiddleware(app), ws_scope("/")
    )
    assert finished_kwargs(rec) == {
        "status": 401,
        "response_complete": True,
        "aborted": False,
        "close_code": None,
    }


async def test_send_on_closed_websocket_is_an_abort(rec: Recorder) -> None:
    """A server whose send() raises OSError (the client is gone) makes the
    connection aborted, and the resulting error is not reported."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": "lost"})

    driver = Driver([{"type": "websocket.connect"}], fail_send_after=1)
    with pytest.raises(OSError, match="connection closed"):
        await driver.run(SignalMiddleware(app), ws_scope("/"))
    assert rec.names() == ["request_started", "request_finished"]
    assert finished_kwargs(rec)["aborted"] is True


async def test_disconnect_after_app_closed_is_not_an_abort(rec: Recorder) -> None:
    """The disconnect that follows the app's own close keeps the app's close code."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close"})
        assert (await receive())["type"] == "websocket.disconnect"

    driver = Driver(
        [{"type": "websocket.connect"}, {"type": "websocket.disconnect", "code": 1006}]
    )
    await driver.run(SignalMiddleware(app), ws_scope("/"))
    assert finished_kwargs(rec) == {
        "status": None,
        "response_complete": True,
        "aborted": False,
        "close_code": 1000,
    }


async def test_close_after_client_went_away_keeps_the_clients_code(
    rec: Recorder,
) -> None:
    """An app that closes after the client disconnected: aborted, with the
    client's close code, not the app's."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        assert (await receive())["type"] == "websocket.disconnect"
        await send({"type": "websocket.close", "code": 1000})

    driver = Driver(
        [{"type": "websocket.connect"}, {"type": "websocket.disconnect", "code": 1006}]
    )
    await driver.run(SignalMiddleware(app), ws_scope("/"))
    kwargs = finished_kwargs(rec)
    assert (kwargs["aborted"], kwargs["close_code"]) == (True, 1006)

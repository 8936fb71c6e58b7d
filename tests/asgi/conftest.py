"""Shared parts of the ASGI tests: a signal recorder, real Starlette and FastAPI
apps, and a small driver that talks raw ASGI to an app (both anyio backends)."""

from __future__ import annotations

import re
import sys
import threading
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import anyio
from fastapi import BackgroundTasks, FastAPI
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

import asignal.signals as builtin
from asignal import Signal
from asignal.asgi import ASGIApp, Message, Scope, send_after_response

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator, Mapping

    from starlette.requests import Request

REQUEST_SIGNALS: dict[str, Signal] = {
    "request_started": builtin.request_started,
    "got_request_exception": builtin.got_request_exception,
    "request_finished": builtin.request_finished,
}
LIFESPAN_SIGNALS: dict[str, Signal] = {
    "lifespan_startup": builtin.lifespan_startup,
    "lifespan_shutdown": builtin.lifespan_shutdown,
}
ALL_SIGNALS = {**REQUEST_SIGNALS, **LIFESPAN_SIGNALS}

#: A custom signal that endpoints hand to the background ("after the response").
order_placed = Signal(name="tests.order_placed", providing_args=["order_id"])


class Recorder:
    """Connects one async or one sync receiver to each given signal and records
    ``(name, kwargs)`` per call; app code can add its own entries with :meth:`note`.

    Thread-safe: sync receivers run in worker threads, uvicorn in another thread.
    """

    def __init__(self, mode: str, signals: Mapping[str, Signal] = ALL_SIGNALS) -> None:
        self.mode = mode
        self.signals = dict(signals)
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.senders: list[object] = []
        self.threads: list[int] = []
        self._cond = threading.Condition()
        self._receivers: list[tuple[Signal, Any]] = []

    def note(self, name: str, /, **data: Any) -> None:
        with self._cond:
            self.events.append((name, data))
            self._cond.notify_all()

    def _make(self, name: str) -> Any:
        if self.mode == "async":

            async def on_async(sender: object, **kwargs: Any) -> None:
                kwargs.pop("signal")
                self.senders.append(sender)
                self.threads.append(threading.get_ident())
                self.note(name, **kwargs)

            return on_async

        def on_sync(sender: object, **kwargs: Any) -> None:
            kwargs.pop("signal")
            self.senders.append(sender)
            self.threads.append(threading.get_ident())
            self.note(name, **kwargs)

        return on_sync

    def __enter__(self) -> Recorder:
        for name, signal in self.signals.items():
            fn = self._make(name)
            signal.connect(fn, weak=False)
            self._receivers.append((signal, fn))
        return self

    def __exit__(self, *exc: object) -> None:
        for signal, fn in self._receivers:
            signal.disconnect(fn)
        self._receivers.clear()

    def names(self) -> list[str]:
        with self._cond:
            return [name for name, _ in self.events]

    def of(self, name: str) -> list[dict[str, Any]]:
        with self._cond:
            return [data for event, data in self.events if event == name]

    def events_of_signals(self) -> list[dict[str, Any]]:
        """The kwargs of every recorded signal (not of :meth:`note` entries)."""
        with self._cond:
            return [data for name, data in self.events if name in self.signals]

    def wait_for(self, name: str, count: int = 1, timeout: float = 10) -> None:
        """Block until *name* was recorded *count* times (uvicorn tests)."""
        with self._cond:
            ok = self._cond.wait_for(
                lambda: sum(1 for n, _ in self.events if n == name) >= count, timeout
            )
        assert ok, f"{name} not recorded {count}x within {timeout}s: {self.names()}"


@contextmanager
def connected(signal: Signal, fn: Any) -> Iterator[Any]:
    """Connect *fn* strongly for the duration of the block."""
    signal.connect(fn, weak=False)
    try:
        yield fn
    finally:
        signal.disconnect(fn)


@contextmanager
def raises_through_harness(kind: type[BaseException], match: str) -> Iterator[None]:
    """Like ``pytest.raises(kind, match=match)``, also when a harness's task group
    wraps the error alone in exception groups (asgi_lifespan does on trio)."""
    try:
        yield
    except BaseException as exc:
        error: BaseException = exc
        while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
            error = error.exceptions[0]
        if isinstance(error, kind) and re.search(match, str(error)):
            return
        raise
    raise AssertionError(f"DID NOT RAISE {kind.__name__}")


# -- apps --------------------------------------------------------------------------


def starlette_app(rec: Recorder, **starlette_kwargs: Any) -> Starlette:
    """A real Starlette app whose endpoints note what they do in *rec*."""

    async def plain(request: Request) -> Response:
        rec.note("endpoint")
        return PlainTextResponse("hello")

    async def stream(request: Request) -> Response:
        async def chunks() -> AsyncIterator[bytes]:
            for i in range(3):
                rec.note("chunk", index=i)
                yield f"part{i};".encode()

        return StreamingResponse(chunks(), media_type="text/plain")

    async def background(request: Request) -> Response:
        def task() -> None:
            rec.note("background task")

        return PlainTextResponse("ok", background=BackgroundTask(task))

    async def error_before(request: Request) -> Response:
        raise RuntimeError("boom before")

    async def error_after(request: Request) -> Response:
        async def chunks() -> AsyncIterator[bytes]:
            yield b"first;"
            raise RuntimeError("boom after")

        return StreamingResponse(chunks(), media_type="text/plain")

    async def http_exception(request: Request) -> Response:
        raise HTTPException(status_code=404, detail="nope")

    async def after_response(request: Request) -> Response:
        order_id = int(request.query_params.get("id", "1"))
        send_after_response(order_placed, "shop", order_id=order_id)
        rec.note("endpoint", order_id=order_id)
        return PlainTextResponse(f"order {order_id}")

    async def slow_stream(request: Request) -> Response:
        async def chunks() -> AsyncIterator[bytes]:
            yield b"first;"
            rec.note("first chunk sent")
            await anyio.sleep(30)
            yield b"never"

        return StreamingResponse(chunks(), media_type="text/plain")

    async def ws_echo(websocket: WebSocket) -> None:
        await websocket.accept()
        text = await websocket.receive_text()
        await websocket.send_text(f"echo:{text}")
        await websocket.close(code=4001)

    async def ws_reject(websocket: WebSocket) -> None:
        await websocket.close(code=1008)

    async def ws_wait(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            while True:
                await websocket.receive_text()
        except WebSocketDisconnect:
            rec.note("ws disconnect seen")

    async def ws_error(websocket: WebSocket) -> None:
        await websocket.accept()
        raise RuntimeError("ws boom")

    routes = [
        Route("/plain", plain),
        Route("/stream", stream),
        Route("/background", background),
        Route("/error-before", error_before),
        Route("/error-after", error_after),
        Route("/http-exception", http_exception),
        Route("/after-response", after_response),
        Route("/slow-stream", slow_stream),
        WebSocketRoute("/ws/echo", ws_echo),
        WebSocketRoute("/ws/reject", ws_reject),
        WebSocketRoute("/ws/wait", ws_wait),
        WebSocketRoute("/ws/error", ws_error),
    ]
    return Starlette(routes=routes, **starlette_kwargs)


def fastapi_app(rec: Recorder, **fastapi_kwargs: Any) -> FastAPI:
    """A real FastAPI app with a background task and an after-response send."""
    app = FastAPI(**fastapi_kwargs)

    @app.get("/items/{item_id}")
    async def read_item(item_id: int) -> dict[str, int]:
        rec.note("endpoint", item_id=item_id)
        return {"item_id": item_id}

    @app.get("/sync-items/{item_id}")
    def read_item_sync(item_id: int) -> dict[str, int]:
        rec.note("sync endpoint", item_id=item_id)
        send_after_response(order_placed, "shop", order_id=item_id)
        return {"item_id": item_id}

    @app.post("/orders/{order_id}")
    async def place(order_id: int, tasks: BackgroundTasks) -> dict[str, int]:
        tasks.add_task(rec.note, "background task", order_id=order_id)
        send_after_response(order_placed, "shop", order_id=order_id)
        return {"order_id": order_id}

    @app.get("/boom")
    async def boom() -> dict[str, int]:
        raise ValueError("fastapi boom")

    return app


# -- a raw ASGI driver -------------------------------------------------------------


def http_scope(path: str, method: str = "GET", **extra: Any) -> Scope:
    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 1234),
        "server": ("testserver", 80),
    }
    scope.update(extra)
    return scope


def ws_scope(path: str, **extra: Any) -> Scope:
    scope: Scope = {
        "type": "websocket",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "scheme": "ws",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 1234),
        "server": ("testserver", 80),
        "subprotocols": [],
    }
    scope.update(extra)
    return scope


class Driver:
    """Feeds *incoming* messages to an app's ``receive`` (then waits forever, like a
    quiet client) and records what it sends. ``fail_send_after`` makes ``send``
    raise ``OSError`` (an ASGI 2.4 server's closed connection) after that many
    messages."""

    def __init__(
        self, incoming: list[Message], fail_send_after: int | None = None
    ) -> None:
        self.incoming = list(incoming)
        self.sent: list[Message] = []
        self.fail_send_after = fail_send_after

    async def receive(self) -> Message:
        if self.incoming:
            await anyio.lowlevel.checkpoint()
            return self.incoming.pop(0)
        await anyio.sleep_forever()
        raise AssertionError("unreachable")  # pragma: no cover

    async def send(self, message: Message) -> None:
        await anyio.lowlevel.checkpoint()
        if self.fail_send_after is not None and len(self.sent) >= self.fail_send_after:
            raise OSError("connection closed")
        self.sent.append(message)

    async def run(self, app: ASGIApp, scope: Scope) -> None:
        await app(scope, self.receive, self.send)

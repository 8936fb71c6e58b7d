"""A Starlette app that composes asignal into its own ``lifespan=`` function.

Instead of letting ``SignalMiddleware`` run the lifespan, the app enters
``asignal.asgi.lifespan()`` inside its own lifespan (after opening its "database",
so the ``lifespan_startup`` receivers can use it) and keeps the middleware for the
request signals only (``lifespan=False``).

- ``request_finished`` logs each request with its status and whether the whole
  response went out (a streamed report, here).
- ``POST /signup`` sends ``user_signed_up`` after the response; the receiver
  writes a welcome message into the database.

Needs Starlette, uvicorn and httpx. Run it::

    pip install -e . --group examples         # what the examples need (pip 25.1+)
    python examples/starlette_app.py          # http://127.0.0.1:8000 ($PORT or argv)
    curl -X POST 'http://127.0.0.1:8000/signup?name=ada'
    curl http://127.0.0.1:8000/welcomed

Self-check (what ``nox -s examples`` runs)::

    python examples/starlette_app.py --check

serves on a free 127.0.0.1 port with uvicorn, signs a user up and streams the
report over real HTTP (httpx), waits for the welcome written after the response,
checks that the lifespan signals ran in order, shuts down and exits 0 (1 on
failure) within about 20 seconds.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
import time
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from asignal import Signal, receiver
from asignal.asgi import SignalMiddleware, lifespan, send_after_response
from asignal.signals import lifespan_shutdown, lifespan_startup, request_finished

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from starlette.requests import Request

log = logging.getLogger("blog")

user_signed_up = Signal(name="blog.user_signed_up", providing_args=["name"])

#: The app's "database" while it runs, and what happened in which order.
db: dict[str, list[str]] = {}
events: list[str] = []


@receiver(lifespan_startup)
def warm_up(sender: object, **kwargs: Any) -> None:
    events.append(f"lifespan_startup (db open: {'welcomed' in db})")


@receiver(lifespan_shutdown)
def flush(sender: object, **kwargs: Any) -> None:
    events.append(f"lifespan_shutdown (db open: {'welcomed' in db})")


@receiver(user_signed_up)
async def welcome(sender: object, name: str, **kwargs: Any) -> None:
    db["welcomed"].append(f"Welcome, {name}!")


@receiver(request_finished)
def log_request(
    sender: object,
    scope: dict[str, Any],
    status: int | None,
    response_complete: bool,
    **kwargs: Any,
) -> None:
    log.info(
        "%s %s -> %s (complete: %s)",
        scope["method"],
        scope["path"],
        status,
        response_complete,
    )


@asynccontextmanager
async def app_lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
    db["welcomed"] = []  # "open the database" first ...
    async with lifespan() as asignal_state:  # ... then the lifespan signals
        yield {**asignal_state}
    db.clear()  # closed after lifespan_shutdown and the background drain
    events.append("database closed")


async def signup(request: Request) -> Response:
    name = request.query_params["name"]
    send_after_response(user_signed_up, "blog", name=name)
    return JSONResponse({"signed_up": name}, status_code=201)


async def welcomed(request: Request) -> Response:
    return JSONResponse(db.get("welcomed", []))


async def report(request: Request) -> Response:
    async def lines() -> AsyncIterator[str]:
        for i in range(3):
            yield f"line {i}\n"

    return StreamingResponse(lines(), media_type="text/plain")


app = Starlette(
    routes=[
        Route("/signup", signup, methods=["POST"]),
        Route("/welcomed", welcomed),
        Route("/report", report),
    ],
    lifespan=app_lifespan,
)
app.add_middleware(SignalMiddleware, lifespan=False)


def check() -> None:
    """Serve on a free port, exercise the app over real HTTP, and assert."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, lifespan="on", log_level="warning"))
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, daemon=True
    )
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert thread.is_alive(), "uvicorn exited during startup"
            assert time.monotonic() < deadline, "uvicorn did not start in 10 s"
            time.sleep(0.01)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            response = client.post("/signup", params={"name": "ada"})
            assert response.status_code == 201, response.text
            assert response.json() == {"signed_up": "ada"}
            assert client.get("/report").text == "line 0\nline 1\nline 2\n"
            deadline = time.monotonic() + 10
            while not client.get("/welcomed").json():
                assert time.monotonic() < deadline, "the welcome never came"
                time.sleep(0.02)
            assert client.get("/welcomed").json() == ["Welcome, ada!"]
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
    assert not thread.is_alive(), "uvicorn did not shut down in 10 s"
    assert events == [
        "lifespan_startup (db open: True)",
        "lifespan_shutdown (db open: True)",
        "database closed",
    ], events
    print("starlette_app --check: OK")


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if "--check" in argv:
        check()
        return 0
    port = int(argv[0]) if argv else int(os.environ.get("PORT", "8000"))
    uvicorn.run(app, host="127.0.0.1", port=port)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

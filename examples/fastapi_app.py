"""A FastAPI service that uses asignal's request signals and background sends.

- ``request_started``/``request_finished`` receivers time and log every request.
- ``POST /orders`` sends a custom ``order_placed`` signal *after the response*
  (``send_after_response``); its receiver "emails" a confirmation, so the client
  never waits for it. ``GET /outbox`` lists the confirmations sent so far.

Needs FastAPI, uvicorn and httpx. Run it::

    pip install -e . --group examples         # what the examples need (pip 25.1+)
    python examples/fastapi_app.py            # serves on http://127.0.0.1:8000
    python examples/fastapi_app.py 9000       # or PORT=9000 python examples/...
    curl -X POST 'http://127.0.0.1:8000/orders?item=book&quantity=2'
    curl http://127.0.0.1:8000/outbox

Self-check (what ``nox -s examples`` runs)::

    python examples/fastapi_app.py --check

starts a real uvicorn server on a free 127.0.0.1 port, places an order over HTTP
with httpx, checks the response, waits until the confirmation was handled after
the response, checks the request log, shuts the server down and exits 0 (1 on any
failure) within about 20 seconds.
"""

from __future__ import annotations

import contextvars
import logging
import os
import socket
import sys
import threading
import time
from typing import Any

import anyio
import httpx
import uvicorn
from fastapi import FastAPI

from asignal import Signal, receiver
from asignal.asgi import SignalMiddleware, send_after_response
from asignal.signals import request_finished, request_started

log = logging.getLogger("shop")

# -- a custom signal and its receiver ------------------------------------------------

order_placed = Signal(name="shop.order_placed", providing_args=["order_id", "item"])

#: Confirmations "emailed" so far, and what happened in which order (for --check).
outbox: list[dict[str, Any]] = []
timeline: list[str] = []


@receiver(order_placed)
async def email_confirmation(
    sender: object, order_id: int, item: str, **kwargs: Any
) -> None:
    """Runs after the response was sent: the client did not wait for this."""
    await anyio.sleep(0.05)  # pretend to talk to a mail server
    outbox.append({"order_id": order_id, "item": item})
    timeline.append(f"confirmation {order_id}")


# -- request timing and logging ------------------------------------------------------

_started_at: contextvars.ContextVar[float] = contextvars.ContextVar("started_at")


@receiver(request_started)
def start_timer(sender: object, scope: dict[str, Any], **kwargs: Any) -> None:
    # asignal copies a receiver's context-variable changes back to the request,
    # so request_finished's receivers see this value.
    _started_at.set(time.perf_counter())


@receiver(request_finished)
async def log_request(
    sender: object,
    scope: dict[str, Any],
    status: int | None,
    aborted: bool,
    **kwargs: Any,
) -> None:
    elapsed = (time.perf_counter() - _started_at.get(time.perf_counter())) * 1000
    outcome = "aborted" if aborted else status
    log.info(
        "%s %s -> %s in %.1f ms", scope.get("method"), scope["path"], outcome, elapsed
    )
    if scope["path"].startswith("/orders"):
        timeline.append("request finished")


# -- the app -------------------------------------------------------------------------

app = FastAPI(title="asignal shop")
app.add_middleware(SignalMiddleware)

_next_id = iter(range(1, 1_000_000))


@app.post("/orders")
async def place_order(item: str, quantity: int = 1) -> dict[str, Any]:
    order_id = next(_next_id)
    send_after_response(order_placed, "shop", order_id=order_id, item=item)
    timeline.append(f"response {order_id}")
    return {"order_id": order_id, "item": item, "quantity": quantity}


@app.get("/outbox")
async def get_outbox() -> list[dict[str, Any]]:
    return outbox


# -- running and checking ------------------------------------------------------------


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
            response = client.post("/orders", params={"item": "book", "quantity": 2})
            assert response.status_code == 200, response.text
            assert response.json() == {"order_id": 1, "item": "book", "quantity": 2}
            deadline = time.monotonic() + 10
            while not client.get("/outbox").json():
                assert time.monotonic() < deadline, "the confirmation never came"
                time.sleep(0.02)
            assert client.get("/outbox").json() == [{"order_id": 1, "item": "book"}]
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
    assert not thread.is_alive(), "uvicorn did not shut down in 10 s"
    # The confirmation was handled after the response and after request_finished.
    assert timeline == ["response 1", "request finished", "confirmation 1"], timeline
    print("fastapi_app --check: OK")


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

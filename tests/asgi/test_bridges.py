"""Bridges owned by the ASGI lifespan: ``SignalMiddleware(app, bridges=[...])`` and
``asignal.asgi.lifespan(bridges=[...])``.

In process (asgi_lifespan's ``LifespanManager`` and httpx's ASGI transport) on
asyncio and trio with ``memory://`` bridges; under a real uvicorn (asyncio only)
with ``memory://`` and with the machine's Redis.
"""

from __future__ import annotations

import importlib
import socket
import subprocess
import sys
import uuid
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio
import httpx
import pytest
from asgi_lifespan import LifespanManager
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

import asignal.signals as builtin
from asignal import Signal, asgi
from asignal.asgi import ASGIApp, SignalMiddleware, send_after_response
from asignal.bridge import (
    Bridge,
    BridgeClosedError,
    Publication,
    bridges_of,
    current_event,
)
from tests.asgi.conftest import connected, raises_through_harness
from tests.asgi.test_uvicorn import serve
from tests.bridge.bridge_support import wait_until
from tests.bridge.conftest import (
    REDIS_DB,
    REDIS_HOST,
    REDIS_PORT,
    delete_keys,
    redis_up,
)
from tests.conftest import require_service

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator
    from pathlib import Path

    from starlette.requests import Request


class Node:
    """One node's signal object (named like the others') and what it received from
    the other nodes, in order."""

    def __init__(self, name: str, bridge: Bridge) -> None:
        self.bridge = bridge
        self.signal = Signal(name=name)
        bridge.add(self.signal)
        self.received: list[int] = []
        self.signal.connect(self._record, weak=False)

    def _record(self, sender: object, product_id: int, **kwargs: Any) -> None:
        if current_event() is not None:
            self.received.append(product_id)


def app_sending(node: Node, style: str, *others: Bridge) -> ASGIApp:
    """A Starlette app whose lifespan owns *others* and then *node*'s bridge
    (through the middleware or through ``asignal.asgi.lifespan()``, per *style*).
    Its ``/save`` route sends the bridged signal, and once more after the
    response."""
    bridges = [*others, node.bridge]

    async def save(request: Request) -> PlainTextResponse:
        results = await node.signal.asend("shop", product_id=1)
        assert any(isinstance(result, Publication) for _, result in results)
        send_after_response(node.signal, "shop", product_id=2)
        return PlainTextResponse("saved")

    routes = [Route("/save", save, methods=["POST"])]
    if style == "middleware":
        return SignalMiddleware(Starlette(routes=routes), bridges=bridges)

    @asynccontextmanager
    async def own_lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        async with asgi.lifespan(bridges=bridges) as state:
            yield state

    return SignalMiddleware(
        Starlette(routes=routes, lifespan=own_lifespan), lifespan=False
    )


def memory_url() -> str:
    return f"memory://{uuid.uuid4().hex}"


@pytest.fixture
def name() -> str:
    return f"shop.product_saved.{uuid.uuid4().hex[:6]}"


@pytest.mark.anyio
@pytest.mark.parametrize("style", ["middleware", "lifespan"])
async def test_the_lifespan_owns_the_bridges(style: str, name: str) -> None:
    """The bridge is open from before lifespan_startup until after lifespan_shutdown
    and the background drain: sends from the startup and shutdown receivers, from a
    request and from after its response all reach the other node; once
    the lifespan ended the bridge is closed."""
    url = memory_url()
    web = Node(name, Bridge(url, node_id="web"))
    other = Node(name, Bridge(url, node_id="other"))

    async def on_startup(sender: object, **kwargs: Any) -> None:
        await web.signal.asend("shop", product_id=0)

    async def on_shutdown(sender: object, **kwargs: Any) -> None:
        await web.signal.asend("shop", product_id=3)

    app = app_sending(web, style)
    with (
        connected(builtin.lifespan_startup, on_startup),
        connected(builtin.lifespan_shutdown, on_shutdown),
        anyio.fail_after(10),
    ):
        async with other.bridge:
            async with LifespanManager(app) as manager:
                transport = httpx.ASGITransport(app=manager.app)
                async with httpx.AsyncClient(
                    transport=transport, base_url="http://test"
                ) as client:
                    response = await client.post("/save")
                    assert response.text == "saved"
            await wait_until(lambda: len(other.received) == 4)
    # The after-response send (2) may be drained after lifespan_shutdown (3).
    assert other.received[:2] == [0, 1]
    assert sorted(other.received) == [0, 1, 2, 3]
    with pytest.raises(BridgeClosedError):
        await web.signal.asend("shop", product_id=4)
    for node in (web, other):
        node.bridge.remove(node.signal)


@pytest.mark.anyio
@pytest.mark.parametrize("style", ["middleware", "lifespan"])
async def test_a_bridge_that_cannot_start_fails_the_startup(
    style: str, name: str
) -> None:
    """A bridge that fails to start fails the startup promptly with its own error
    (under LifespanManager, which ignores lifespan.startup.failed): no
    lifespan_startup receiver runs, and the bridges entered before it are closed
    again."""
    url = memory_url()
    first = Node(name, Bridge(url, node_id="first"))
    busy = Node(f"{name}.busy", Bridge(url, node_id="busy"))
    started: list[object] = []

    def on_startup(sender: object, **kwargs: Any) -> None:
        started.append(sender)

    if style == "middleware":
        app: ASGIApp = SignalMiddleware(
            Starlette(), bridges=[first.bridge, busy.bridge]
        )
    else:

        @asynccontextmanager
        async def own_lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
            async with asgi.lifespan(bridges=[first.bridge, busy.bridge]) as state:
                yield state

        app = Starlette(lifespan=own_lifespan)
    with connected(builtin.lifespan_startup, on_startup), anyio.fail_after(3):
        async with busy.bridge:  # entered already: entering it again fails
            with raises_through_harness(RuntimeError, "already open"):
                async with LifespanManager(app, startup_timeout=5):
                    pytest.fail("the startup should have failed")  # pragma: no cover
        async with first.bridge:  # closed again, so it can be entered
            pass
    assert started == []
    for node in (first, busy):
        node.bridge.remove(node.signal)


@pytest.fixture
def discovered_package(tmp_path: Path) -> Iterator[str]:
    """A package (of a name no other test uses) with a bridge in ``__init__`` and a
    ``signals`` module, found by autodiscovery, that adds a signal to it."""
    package = f"bridgedapp_{uuid.uuid4().hex[:8]}"
    (tmp_path / package).mkdir()
    (tmp_path / package / "__init__.py").write_text(
        f"from asignal.bridge import Bridge\n\nbridge = Bridge('memory://{package}')\n"
    )
    (tmp_path / package / "signals.py").write_text(
        "from asignal import Signal\n\n"
        "from . import bridge\n\n"
        "saved = Signal(name='shop.saved')\n"
        "bridge.add(saved)\n"
    )
    sys.path.insert(0, str(tmp_path))
    try:
        yield package
    finally:
        for module in [m for m in sys.modules if m.startswith(package)]:
            del sys.modules[module]
        sys.path.remove(str(tmp_path))


@pytest.mark.anyio
@pytest.mark.parametrize("style", ["middleware", "lifespan"])
async def test_bridges_are_entered_after_autodiscovery(
    style: str, discovered_package: str
) -> None:
    """A receiver module found by autodiscover may add its signals to a bridge the
    lifespan owns: the bridge is entered only after the imports (adding a signal to
    an open bridge raises), and sends of that signal are published."""
    package = importlib.import_module(discovered_package)
    bridge: Bridge = package.bridge
    if style == "middleware":
        app: ASGIApp = SignalMiddleware(
            Starlette(), autodiscover=[discovered_package], bridges=[bridge]
        )
    else:

        @asynccontextmanager
        async def own_lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
            async with asgi.lifespan(
                autodiscover=[discovered_package], bridges=[bridge]
            ) as state:
                yield state

        app = Starlette(lifespan=own_lifespan)
    with anyio.fail_after(5):
        async with LifespanManager(app):
            saved: Signal = sys.modules[f"{discovered_package}.signals"].saved
            assert bridges_of(saved) == [bridge]
            [(_, result)] = await saved.asend("shop")
            assert isinstance(result, Publication)
    bridge.remove(saved)


@pytest.mark.parametrize("anyio_backend", ["trio"])
@pytest.mark.anyio
async def test_a_redis_bridge_is_refused_under_trio(name: str) -> None:
    """A Redis bridge (redis-py is asyncio-only) fails a trio app's startup with the
    bridge's own error saying so; no Redis server is needed to see it."""
    node = Node(name, Bridge(f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}"))
    app = SignalMiddleware(Starlette(), bridges=[node.bridge])
    with (
        anyio.fail_after(3),
        raises_through_harness(RuntimeError, "runs only under asyncio"),
    ):
        async with LifespanManager(app, startup_timeout=5):
            pytest.fail("the startup should have failed")  # pragma: no cover
    node.bridge.remove(node.signal)


def test_bridges_are_checked_when_the_middleware_is_made() -> None:
    """bridges= takes Bridge objects, each once, and needs the lifespan."""
    bridge = Bridge(memory_url())
    with pytest.raises(TypeError, match=r"takes asignal\.bridge\.Bridge objects"):
        SignalMiddleware(Starlette(), bridges=["redis://127.0.0.1"])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="listed twice"):
        SignalMiddleware(Starlette(), bridges=[bridge, bridge])
    with pytest.raises(ValueError, match=r"asignal.asgi.lifespan\(bridges="):
        SignalMiddleware(Starlette(), lifespan=False, bridges=[bridge])


def two_nodes_app(url: str, name: str, **options: Any) -> tuple[ASGIApp, Node, Node]:
    """A Starlette app under SignalMiddleware owning two bridges on *url*: the
    ``web`` node that ``/save`` sends on, and an ``other`` node that receives."""
    web = Node(name, Bridge(url, node_id="web", **options))
    other = Node(name, Bridge(url, node_id="other", **options))
    return app_sending(web, "middleware", other.bridge), web, other


def serve_and_save(app: ASGIApp, web: Node, other: Node) -> None:
    """Over real HTTP: every send reaches the other node; the bridges are closed
    when uvicorn has shut down."""
    with serve(app) as host, httpx.Client(base_url=f"http://{host}") as client:
        assert client.post("/save").text == "saved"
        anyio.run(wait_until, lambda: other.received == [1, 2])
    assert web.bridge.statistics().published == 2
    with pytest.raises(BridgeClosedError):
        anyio.run(lambda: web.signal.asend("shop", product_id=4))
    for node in (web, other):
        node.bridge.remove(node.signal)


def test_uvicorn_with_memory_bridges(name: str) -> None:
    """Under a real uvicorn, the middleware's bridges carry a request's send and
    its after-response send to the other node."""
    app, web, other = two_nodes_app(memory_url(), name)
    serve_and_save(app, web, other)


def test_uvicorn_with_redis_bridges(name: str) -> None:
    """The same over the machine's Redis (at least once, a key prefix of this
    test's own, deleted afterwards)."""
    if not redis_up():
        require_service(f"no Redis server on {REDIS_HOST}:{REDIS_PORT}")
    url = f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}"
    prefix = f"asignal-test-{uuid.uuid4().hex[:12]}"
    app, web, other = two_nodes_app(url, name, prefix=prefix, delivery="at_least_once")
    try:
        serve_and_save(app, web, other)
    finally:
        anyio.run(delete_keys, url, prefix)


def test_bridge_failing_to_start_exits_uvicorn_with_code_3(tmp_path: Path) -> None:
    """Under the uvicorn command, a bridge that cannot reach its broker ends the
    server with exit code 3 and the bridge's error, its password redacted."""
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    (tmp_path / "bridged_app.py").write_text(
        "from starlette.applications import Starlette\n"
        "from asignal import Signal\n"
        "from asignal.asgi import SignalMiddleware\n"
        "from asignal.bridge import Bridge\n\n"
        f"bridge = Bridge('redis://:hunter2@127.0.0.1:{port}/0')\n"
        "bridge.add(Signal(name='shop.saved'))\n"
        "app = SignalMiddleware(Starlette(), bridges=[bridge])\n"
    )
    result = subprocess.run(
        [
            *(sys.executable, "-m", "uvicorn", "bridged_app:app"),
            *("--host", "127.0.0.1", "--port", "0", "--lifespan", "on"),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 3, result.stderr
    message = (
        "a bridge failed to start: TransportError: cannot reach Redis at "
        f"redis://:***@127.0.0.1:{port}/0"
    )
    assert result.stderr.count(message) == 1, result.stderr
    assert "hunter2" not in result.stderr

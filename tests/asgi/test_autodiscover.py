"""The ASGI lifespan runs asignal.autodiscover() at startup."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import asignal.signals as builtin
from asignal import AutodiscoverError, asgi
from asignal._state import discovered
from asignal.asgi import SignalMiddleware
from tests.asgi.conftest import Driver

pytestmark = pytest.mark.anyio

STARTUP = {"type": "lifespan.startup"}
SHUTDOWN = {"type": "lifespan.shutdown"}

RECEIVERS = """
import asignal.signals

started = []


def on_startup(sender, **kwargs):
    started.append(sender)


asignal.signals.lifespan_startup.connect(on_startup)
"""


@pytest.fixture
def package(tmp_path: Path) -> Iterator[str]:
    """A package whose signals module connects a lifespan_startup receiver."""
    (tmp_path / "lifeapp").mkdir()
    (tmp_path / "lifeapp" / "__init__.py").write_text("")
    (tmp_path / "lifeapp" / "signals.py").write_text(RECEIVERS)
    (tmp_path / "brokenapp").mkdir()
    (tmp_path / "brokenapp" / "__init__.py").write_text("")
    (tmp_path / "brokenapp" / "signals.py").write_text("raise KeyError('bad')\n")
    sys.path.insert(0, str(tmp_path))
    discovered.modules.clear()
    try:
        yield "lifeapp"
    finally:
        module = sys.modules.get("lifeapp.signals")
        if module is not None:
            builtin.lifespan_startup.disconnect(module.on_startup)
        for name in [m for m in sys.modules if m.startswith(("lifeapp", "brokenapp"))]:
            del sys.modules[name]
        discovered.modules.clear()
        sys.path.remove(str(tmp_path))


async def plain_app(scope: object, receive: object, send: object) -> None:
    raise RuntimeError("no lifespan here")  # the middleware runs the signals alone


async def test_middleware_discovers_before_startup_signal(package: str) -> None:
    """Receivers in the discovered module get lifespan_startup."""
    driver = Driver([STARTUP, SHUTDOWN])
    await driver.run(
        SignalMiddleware(plain_app, autodiscover=[package]),
        {"type": "lifespan", "state": {}},
    )
    assert [m["type"] for m in driver.sent] == [
        "lifespan.startup.complete",
        "lifespan.shutdown.complete",
    ]
    assert sys.modules["lifeapp.signals"].started == [SignalMiddleware]


async def test_middleware_import_error_fails_startup(package: str) -> None:
    """A receiver module that does not import fails the startup, naming it, and
    the error is raised after the server was told."""
    driver = Driver([STARTUP])
    with pytest.raises(AutodiscoverError, match=r"brokenapp\.signals"):
        await driver.run(
            SignalMiddleware(plain_app, autodiscover=["brokenapp"]),
            {"type": "lifespan", "state": {}},
        )
    [answer] = driver.sent
    assert answer["type"] == "lifespan.startup.failed"
    assert "brokenapp.signals" in answer["message"]


async def test_lifespan_helper_discovers(package: str) -> None:
    """asignal.asgi.lifespan(autodiscover=...) imports before lifespan_startup."""
    async with asgi.lifespan(autodiscover=[package]):
        pass
    assert sys.modules["lifeapp.signals"].started == [SignalMiddleware]

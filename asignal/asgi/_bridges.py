"""Bridges (``asignal.bridge``) owned by the ASGI lifespan.

The lifespan enters them after autodiscovery (whose imports may add signals to
them) and before ``lifespan_startup`` is sent, and closes them after
``lifespan_shutdown`` and the background drain (background sends may publish).
Entering and closing go through one ``AsyncExitStack``: the bridges close in the
reverse order of entry, and one that fails to start closes those already open.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING

import anyio

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator

    from anyio.abc import TaskGroup, TaskStatus

    from ..bridge import Bridge

__all__ = ["HeldBridges", "check_bridges", "open_bridges"]


def check_bridges(bridges: Iterable[Bridge]) -> tuple[Bridge, ...]:
    """*bridges* as a tuple, each checked to be an ``asignal.bridge.Bridge`` given
    once. ``asignal.bridge`` is imported only when there is a bridge to check."""
    checked = tuple(bridges)
    if not checked:
        return checked
    from ..bridge import Bridge

    for bridge in checked:
        if not isinstance(bridge, Bridge):  # pyright: ignore[reportUnnecessaryIsInstance]
            raise TypeError(
                f"bridges= takes asignal.bridge.Bridge objects, got {bridge!r}: "
                "pass bridges=[Bridge('redis://...')]."
            )
    if len({id(bridge) for bridge in checked}) != len(checked):
        raise ValueError(
            f"a bridge is listed twice in bridges={list(checked)!r}; a bridge is "
            "entered once, so list each one once."
        )
    return checked


@asynccontextmanager
async def open_bridges(bridges: tuple[Bridge, ...]) -> AsyncGenerator[None]:
    """Enter *bridges* in order; leave them in reverse order. A bridge's failure to
    start (or to close) propagates, after the ones already open were closed."""
    async with AsyncExitStack() as stack:
        for bridge in bridges:
            await stack.enter_async_context(bridge)
        yield


class HeldBridges:
    """Bridges held open by a task of the lifespan's task group.

    The middleware's lifespan opens its background owner *before* the app's startup
    and the bridges *after* it, yet must drain the owner *before* closing the
    bridges. Cancel scopes nest strictly within a task, so the bridges (which run
    task groups) cannot be opened inside the owner's block and closed outside it:
    a task of their own holds them between :meth:`start` and :meth:`close`.
    """

    def __init__(self, bridges: tuple[Bridge, ...]) -> None:
        self._bridges = bridges
        self._stop = anyio.Event()
        self._closed = anyio.Event()
        self._error: Exception | None = None
        self._started = False

    async def start(self, tg: TaskGroup) -> None:
        """Enter the bridges in a task of *tg*; return once all are open, or raise
        the failure of the first one that could not start (the others closed)."""
        if not self._bridges or self._started:
            return
        self._started = True
        await tg.start(self._hold, name="asignal: the lifespan's bridges")
        self._raise_error()

    async def close(self) -> None:
        """Close the bridges (last entered first) and wait until they are closed;
        raise the first failure to close. Does nothing if they were not started."""
        if not self._started:
            return
        self._stop.set()
        await self._closed.wait()
        self._raise_error()

    def _raise_error(self) -> None:
        error, self._error = self._error, None
        if error is not None:
            raise error

    async def _hold(self, *, task_status: TaskStatus[None]) -> None:
        # Errors are handed to start()/close() rather than raised here, where the
        # task group would wrap them in an exception group.
        ready = False
        try:
            async with open_bridges(self._bridges):
                ready = True
                task_status.started()
                await self._stop.wait()
        except Exception as exc:
            self._error = exc
            if not ready:
                task_status.started()
        finally:
            self._closed.set()

"""Running async receivers from the blocking ``send()``.

Three situations, decided per call:

* The calling thread is an AnyIO worker thread (``anyio.to_thread``, which Starlette
  and FastAPI use for sync endpoints): the coroutine runs on the host event loop,
  through ``anyio.from_thread.run``.
* The calling thread runs no event loop at all (plain sync code, a script, a WSGI
  worker): the coroutine runs on one event loop that asignal keeps in a daemon
  thread for the purpose, started on first use. Starting a loop per call costs about
  a millisecond (Django does this); reusing one costs a thread hop.
* The calling thread is itself running an event loop: blocking it would deadlock, so
  ``send()`` raises a ``RuntimeError`` that points at ``await signal.asend(...)``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio
import anyio.from_thread
import anyio.lowlevel

__all__ = ["check_can_block", "run_blocking"]

T = TypeVar("T")


class _KeptLoop:
    """An asyncio event loop in a daemon thread, serving a blocking portal.

    Every coroutine it runs is a task of the portal's task group, and each caller
    blocks until its own task has finished, so nothing outlives the call that
    started it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._portal: anyio.from_thread.BlockingPortal | None = None
        if hasattr(os, "register_at_fork"):
            # The loop thread does not exist in a forked child: start a new one there.
            os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        self._lock = threading.Lock()
        self._portal = None

    def portal(self) -> anyio.from_thread.BlockingPortal:
        portal = self._portal
        if portal is not None:
            return portal
        with self._lock:
            if self._portal is None:
                ready = threading.Event()
                box: list[anyio.from_thread.BlockingPortal] = []

                async def serve() -> None:
                    async with anyio.from_thread.BlockingPortal() as new_portal:
                        box.append(new_portal)
                        ready.set()
                        await new_portal.sleep_until_stopped()

                thread = threading.Thread(
                    target=anyio.run, args=(serve,), name="asignal-loop", daemon=True
                )
                thread.start()
                ready.wait()
                self._portal = box[0]
            return self._portal


_kept_loop = _KeptLoop()


def check_can_block(what: str) -> None:
    """Raise ``RuntimeError`` if this thread runs an event loop.

    :param what: how to name the call in the message, e.g. ``"<Signal 'x'>.send(...)"``.
    """
    try:
        anyio.lowlevel.current_token()
    except RuntimeError:
        pass  # no event loop in this thread: blocking is allowed
    else:
        raise RuntimeError(
            f"{what} cannot wait for async receivers here: this thread is running an "
            "event loop, and blocking it would deadlock. Use `await signal.asend(...)` "
            "(or `await signal.asend_robust(...)`) from async code."
        )


def run_blocking(func: Callable[[], Awaitable[T]]) -> T:
    """Run the coroutine function *func* to completion from synchronous code, on the
    host loop of an AnyIO worker thread or else on the kept loop. The caller has
    checked :func:`check_can_block` first."""
    coro_fn: Callable[[], Any] = func
    try:
        anyio.from_thread.check_cancelled()
    except anyio.NoEventLoopError:
        return _kept_loop.portal().call(coro_fn)  # type: ignore[no-any-return]
    return anyio.from_thread.run(coro_fn)  # type: ignore[no-any-return]

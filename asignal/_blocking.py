"""Running async receivers from the blocking ``send()``.

Three situations, decided per call:

* The calling thread is an AnyIO worker thread (``anyio.to_thread``, which Starlette
  and FastAPI use for sync endpoints): the coroutine runs on the host event loop,
  through ``anyio.from_thread.run``.
* The calling thread is a trio worker thread (``trio.to_thread.run_sync``): the
  coroutine runs in the host trio run, through ``trio.from_thread.run``, so
  receivers written for trio work. (``asyncio.to_thread`` threads offer no way back
  to their loop: they count as plain threads.)
* The calling thread runs no event loop at all (plain sync code, a script, a WSGI
  worker): the coroutine runs on one asyncio event loop that asignal keeps in a
  daemon thread for the purpose, started on first use. Starting a loop per call
  costs about a millisecond (Django does this); reusing one costs a thread hop.
* The calling thread is itself running an event loop: blocking it would deadlock, so
  ``send()`` raises a ``RuntimeError`` that points at ``await signal.asend(...)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import anyio
import anyio.from_thread
import anyio.lowlevel

__all__ = ["check_can_block", "run_blocking"]

T = TypeVar("T")


class _KeptLoop:
    """An asyncio event loop running forever in a daemon thread, started on first
    use and shared by every thread that sends without a loop of its own.

    Each coroutine submitted runs as a task whose result the submitting thread
    waits for (and which it cancels if it is interrupted), so no task outlives the
    call that started it. Resources a receiver creates on this loop (clients,
    pools) stay usable by later sends from any thread. The thread is a daemon so it
    never delays interpreter exit.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        if hasattr(os, "register_at_fork"):
            # The loop thread does not exist in a forked child: start a new one there.
            os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        self._lock = threading.Lock()
        self._loop = None

    def loop(self) -> asyncio.AbstractEventLoop:
        loop = self._loop
        if loop is not None:
            return loop
        with self._lock:
            if self._loop is None:
                new_loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=new_loop.run_forever, name="asignal-loop", daemon=True
                )
                thread.start()
                self._loop = new_loop
            return self._loop

    def run(self, func: Callable[[], Coroutine[Any, Any, T]]) -> T:
        future = asyncio.run_coroutine_threadsafe(func(), self.loop())
        try:
            return future.result()
        except BaseException:
            # Interrupted (KeyboardInterrupt) or failed: make sure the task is
            # finished before returning, cancelling it if it still runs.
            if not future.done():
                future.cancel()
                with contextlib.suppress(BaseException):
                    future.result(timeout=5)
            raise


_kept_loop = _KeptLoop()


def check_can_block(what: str) -> None:
    """Raise ``RuntimeError`` if this thread runs an event loop.

    :param what: how to name the call in the message, e.g. ``"<Signal 'x'>.send(...)"``.
    """
    try:
        anyio.lowlevel.current_token()
    except RuntimeError:
        # anyio sees no loop outside a task, but a callback the loop runs
        # (loop.call_soon, a future's done callback) is on its thread all the same.
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            running = False
        else:
            running = True
    else:
        running = True
    if running:
        raise RuntimeError(
            f"{what} cannot wait for async receivers here: this thread is running an "
            "event loop, and blocking it would deadlock. Use `await signal.asend(...)` "
            "(or `await signal.asend_robust(...)`) from async code."
        )


def run_blocking(func: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run the coroutine function *func* to completion from synchronous code: on the
    host loop of an AnyIO or trio worker thread, else on the kept loop. The caller
    has checked :func:`check_can_block` first.

    A cancelled host (AnyIO or trio worker thread) raises its cancellation here,
    before anything runs.
    """
    try:
        anyio.from_thread.check_cancelled()
    except anyio.NoEventLoopError:
        pass
    else:
        return anyio.from_thread.run(func)
    trio = _trio_host()
    if trio is not None:
        result: T = trio.from_thread.run(func)
        return result
    return _kept_loop.run(func)


def _trio_host() -> Any:
    """The ``trio`` module if this thread is a trio worker thread, else None.

    Not an import: if nothing imported trio, no thread can be one of its workers.
    """
    trio: Any = sys.modules.get("trio")
    # check_cancelled() came with trio 0.23; before it, the kept loop serves.
    from_thread = getattr(trio, "from_thread", None)
    check_cancelled = getattr(from_thread, "check_cancelled", None)
    if check_cancelled is None:
        return None
    try:
        check_cancelled()
    except RuntimeError:  # "this thread wasn't created by Trio"
        return None
    return trio

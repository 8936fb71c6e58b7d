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
  daemon thread for the purpose, started on first use (``_state.kept_loop``).
  Starting a loop per call costs about a millisecond (Django does this); reusing one
  costs a thread hop, and resources a receiver creates on it (clients, pools) stay
  usable by later sends from any thread.
* The calling thread is itself running an event loop: blocking it would deadlock, so
  ``send()`` raises a ``RuntimeError`` that points at ``await signal.asend(...)``.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import anyio
import anyio.from_thread
import anyio.lowlevel

from ._state import kept_loop

__all__ = ["check_can_block", "run_blocking", "runs_event_loop"]

T = TypeVar("T")


def _serve(loop: asyncio.AbstractEventLoop) -> None:
    """The kept loop's thread: run the loop for good.

    asyncio re-raises a task's ``KeyboardInterrupt`` or ``SystemExit`` out of
    ``run_forever`` (after handing it to the task's waiters); the loop is still
    sound, and the exception reaches the ``send()`` that ran the receiver through
    its task, so the loop just goes on serving.
    """
    while True:
        try:
            loop.run_forever()
        except BaseException:
            continue
        return


def _kept_loop() -> asyncio.AbstractEventLoop:
    loop = kept_loop.loop
    if loop is not None:
        return loop
    with kept_loop.lock:
        if kept_loop.loop is None:
            new_loop = asyncio.new_event_loop()
            threading.Thread(
                target=_serve, args=(new_loop,), name="asignal-loop", daemon=True
            ).start()
            kept_loop.loop = new_loop
        return kept_loop.loop


def _run_on_kept_loop(func: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run *func()* as a task on the kept loop and wait for it.

    If this thread is interrupted while waiting (``KeyboardInterrupt``), the task is
    cancelled and this still waits until it has finished (its receivers' cleanup
    included) before the interruption propagates: no receiver of the send is left
    running. A second interruption during that wait is held until it is over.
    """
    loop = _kept_loop()
    done = threading.Event()
    tasks: list[asyncio.Task[T]] = []

    def start() -> None:
        task = loop.create_task(func())
        task.add_done_callback(lambda _: done.set())
        tasks.append(task)

    def cancel() -> None:
        # Callbacks run in the order they were queued: if start() was queued at all,
        # it has run by now. If it was not (interrupted while queueing it), nothing
        # runs and there is nothing to wait for.
        if tasks:
            tasks[0].cancel()
        else:
            done.set()

    try:
        loop.call_soon_threadsafe(start)
        done.wait()
    except BaseException:
        while True:
            try:
                loop.call_soon_threadsafe(cancel)
                done.wait()
                break
            except BaseException:
                continue
        raise
    return tasks[0].result()


def runs_event_loop() -> bool:
    """Whether this thread is running an event loop (where blocking deadlocks)."""
    try:
        anyio.lowlevel.current_token()
    except RuntimeError:
        # anyio sees no loop outside a task, but a callback the loop runs
        # (loop.call_soon, a future's done callback) is on its thread all the same.
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return False
    return True


def check_can_block(what: str) -> None:
    """Raise ``RuntimeError`` if this thread runs an event loop.

    :param what: how to name the call in the message, e.g. ``"<Signal 'x'>.send(...)"``.
    """
    if runs_event_loop():
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
    return _run_on_kept_loop(func)


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

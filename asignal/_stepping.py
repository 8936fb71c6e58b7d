"""Running a coroutine's first step inline, and resuming it in the same task.

``asend`` calls each async receiver's first step directly in the sending task
(inside its task group), so a receiver that returns without ever suspending costs a
function call instead of a task. The first receiver that does suspend keeps running
in the sending task: :func:`resume` passes its suspension to the event loop and feeds
the loop's answers back, exactly as ``await`` would. It must stay in that task:
trio parks the task that yields, and a cancel scope the receiver entered in its first
step belongs to the task that entered it. The receivers after it become tasks.

Every step runs inside the receiver's own ``contextvars.Context``.
"""

from __future__ import annotations

import types
from collections.abc import Coroutine, Generator
from contextvars import Context
from typing import Any

__all__ = ["resume"]


@types.coroutine
def resume(
    ctx: Context, coro: Coroutine[Any, Any, Any], suspended_on: Any
) -> Generator[Any, Any, Any]:
    """Finish *coro*, which already ran its first step and yielded *suspended_on*.

    Values and exceptions the event loop sends (results, cancellation) go to the
    coroutine; its return value is returned, its exception raised.
    """
    yielded = suspended_on
    while True:
        try:
            value = yield yielded
        except GeneratorExit:
            ctx.run(coro.close)
            raise
        except BaseException as exc:  # cancellation and loop errors go in
            try:
                yielded = ctx.run(coro.throw, exc)
            except StopIteration as stop:
                return stop.value
        else:
            try:
                yielded = ctx.run(coro.send, value)
            except StopIteration as stop:
                return stop.value

"""The lifespan side of ``SignalMiddleware``: it stands between the server and the
wrapped app's own lifespan.

Order on startup: open the :class:`BackgroundSends` owner and publish it in the
lifespan ``state``; forward ``lifespan.startup`` to the app and wait for its answer;
import the autodiscovered receiver modules; enter the bridges; then send
``lifespan_startup``; then tell the server. Order on shutdown: wait (bounded) for
requests still sending ``request_finished``; send ``lifespan_shutdown``; drain the
owner; close the bridges; forward ``lifespan.shutdown`` to the app and wait for its
answer; then tell the server. An app that does not support lifespan
(it raises or returns instead of answering, as the spec allows) is left out and the
middleware answers the server alone.
"""

from __future__ import annotations

import logging
import math
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any

import anyio

from .. import signals
from .._discovery import autodiscover
from ._background import BackgroundSends
from ._bridges import HeldBridges
from ._handoff import RequestSends, request_sends
from ._types import STATE_KEY, ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from anyio.abc import TaskGroup
    from anyio.streams.memory import MemoryObjectReceiveStream

    from ..bridge import Bridge

__all__ = ["run_lifespan"]

logger = logging.getLogger("asignal")


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__qualname__}: {exc}"


class _AppLifespan:
    """The wrapped app's lifespan, run as a task that talks through two streams."""

    def __init__(self, app: ASGIApp, scope: Scope) -> None:
        self.app = app
        self.scope = scope
        self.to_app, self._app_inbox = anyio.create_memory_object_stream[Message](
            math.inf
        )
        self._app_outbox, self.from_app = anyio.create_memory_object_stream[Message](
            math.inf
        )
        self.error: Exception | None = None
        self.answers = 0
        self.reported = False  # the error was logged or sent to the server already
        self.done = anyio.Event()

    async def run(self) -> None:
        try:
            async with self._app_outbox:
                await self.app(self.scope, self._app_inbox.receive, self._answer)
        except Exception as exc:
            self.error = exc
        finally:
            self.done.set()

    async def _answer(self, message: Message) -> None:
        self.answers += 1
        await self._app_outbox.send(message)

    def close(self) -> None:
        for stream in (self.to_app, self._app_inbox, self._app_outbox, self.from_app):
            stream.close()

    async def ask(self, message: Message) -> Message | None:
        """Forward *message* to the app; its answer, or None if it ended instead."""
        try:
            await self.to_app.send(message)
        except anyio.BrokenResourceError:  # pragma: no cover - app ended and closed
            return None
        return await _next(self.from_app)


async def _next(stream: MemoryObjectReceiveStream[Message]) -> Message | None:
    try:
        return await stream.receive()
    except anyio.EndOfStream:
        return None


async def run_lifespan(
    sender: object,
    app: ASGIApp,
    scope: Scope,
    receive: Receive,
    send: Send,
    *,
    background: dict[str, Any],
    discover: tuple[str, ...] = (),
    bridges: tuple[Bridge, ...] = (),
) -> None:
    """Serve one lifespan scope for *app* (see the module docstring for the order).

    *discover* lists packages whose receiver modules are imported (with
    ``asignal.autodiscover``) before ``lifespan_startup`` is sent; an import error
    fails the startup like a receiver's failure. *bridges* are entered after
    that (a bridge that cannot start fails the startup with its error) and closed
    after the background drain (a failure to close fails the shutdown).

    A failed startup or shutdown is reported to the server with its message and
    then raised from here, as Starlette does: a server reads the message (uvicorn
    logs it and exits with code 3), a test harness that only watches the app
    (``asgi_lifespan.LifespanManager``) gets the exception at once instead of
    waiting for a message it ignores. What is raised: a ``lifespan_startup``
    receiver's exception; the first failed ``lifespan_shutdown`` receiver's (all
    ran, each is logged); an exception the app raised after it answered a
    lifespan message, as without the middleware. An exception that the app
    raises instead of answering ``lifespan.startup`` means "lifespan not
    supported" and is logged at INFO.
    """
    app_lifespan = _AppLifespan(app, scope)
    owner = BackgroundSends(**background)
    # The app's lifespan task, and the receivers of the lifespan signals, inherit
    # this: send_after_response() there queues on the owner at once.
    token = request_sends.set(RequestSends(owner))
    failure: BaseException | None = None
    try:
        async with anyio.create_task_group() as tg:
            try:
                # Raised below, outside the task group, so that it is not wrapped
                # in an exception group.
                failure = await _serve(
                    sender,
                    app_lifespan,
                    owner,
                    HeldBridges(bridges),
                    tg,
                    scope,
                    receive,
                    send,
                    discover,
                )
            finally:
                # An app still waiting for a lifespan message gets EndOfStream.
                app_lifespan.to_app.close()
    finally:
        app_lifespan.close()
        request_sends.reset(token)
    if failure is not None:
        raise failure
    if (
        app_lifespan.error is not None
        and app_lifespan.answers
        and not app_lifespan.reported
    ):
        raise app_lifespan.error


async def _close_bridges(held: HeldBridges) -> Exception | None:
    """Close the bridges; return (after logging it) a failure to close."""
    try:
        await held.close()
    except Exception as exc:
        logger.error("A bridge failed to close", exc_info=exc)
        return exc
    return None


async def _serve(
    sender: object,
    app_lifespan: _AppLifespan,
    owner: BackgroundSends,
    held: HeldBridges,
    tg: TaskGroup,
    scope: Scope,
    receive: Receive,
    send: Send,
    discover: tuple[str, ...],
) -> BaseException | None:
    """Run the lifespan; return the failure that the server was told about, to be
    raised once the app's lifespan task has ended."""
    # Leaving the stack closes the owner with the exception that ends this block,
    # if any; close_owner() closes it earlier, where the order needs it.
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(owner)
        close_owner = stack.aclose
        state = scope.get("state")
        if state is not None:
            state[STATE_KEY] = owner
        tg.start_soon(app_lifespan.run, name="asignal: the app's lifespan")

        message = await receive()
        if message.get("type") != "lifespan.startup":
            raise RuntimeError(
                "SignalMiddleware expected lifespan.startup from the server, "
                f"got {message!r}"
            )
        answer = await app_lifespan.ask(message)
        supported = answer is not None
        if answer is None:
            app_lifespan.reported = True
            logger.info(
                "The wrapped app does not support lifespan (%s); SignalMiddleware "
                "runs the lifespan signals alone.",
                "it returned"
                if app_lifespan.error is None
                else f"it raised {_describe(app_lifespan.error)}",
            )
        elif answer.get("type") != "lifespan.startup.complete":
            await close_owner()
            await send(answer)  # the app's own startup failed: pass that on
            return None  # the app raises (or not) for itself
        stage = "importing the autodiscovered receiver modules failed"
        try:
            if discover:
                autodiscover(*discover)
            stage = "a bridge failed to start"
            await held.start(tg)
            stage = "lifespan_startup receiver failed"
            await signals.lifespan_startup.asend(sender, scope=scope)
        except Exception as exc:
            logger.error("The lifespan startup failed: %s", stage, exc_info=exc)
            await close_owner()
            await _close_bridges(held)
            # The server will not send lifespan.shutdown after a failed startup:
            # give the app its shutdown now, so that what its startup opened closes.
            if supported:
                await app_lifespan.ask({"type": "lifespan.shutdown"})
            await send(
                {
                    "type": "lifespan.startup.failed",
                    "message": f"{stage}: {_describe(exc)}",
                }
            )
            return exc
        await send({"type": "lifespan.startup.complete"})

        message = await receive()
        failure = ""
        failed: BaseException | None = None
        await owner.wait_for_requests()
        # Robust: every shutdown receiver runs even if one fails (each failure
        # is logged with its traceback by asend_robust).
        results = await signals.lifespan_shutdown.asend_robust(sender, scope=scope)
        errors = [r for _, r in results if isinstance(r, BaseException)]
        if errors:
            failed = errors[0]
            failure = "lifespan_shutdown receiver(s) failed: " + "; ".join(
                _describe(exc) for exc in errors
            )
        await close_owner()
        closing = await _close_bridges(held)
        if closing is not None:
            failed = failed or closing
            closed = f"a bridge failed to close: {_describe(closing)}"
            failure = f"{failure}; {closed}" if failure else closed
        if supported:
            answer = await app_lifespan.ask(message)
            if answer is None:
                await app_lifespan.done.wait()
                if app_lifespan.error is not None:
                    app_lifespan.reported = True
                    logger.error(
                        "The wrapped app's lifespan raised instead of shutting down",
                        exc_info=app_lifespan.error,
                    )
                    failure = (
                        failure or f"the app raised {_describe(app_lifespan.error)}"
                    )
                    failed = failed or app_lifespan.error
            elif answer.get("type") != "lifespan.shutdown.complete":
                await send(answer)
                return failed
        if failure:
            await send({"type": "lifespan.shutdown.failed", "message": failure})
        else:
            await send({"type": "lifespan.shutdown.complete"})
        return failed

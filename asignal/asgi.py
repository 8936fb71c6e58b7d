"""Request and lifespan signals for any ASGI app (Starlette, FastAPI, Litestar, Quart,
plain ASGI), and background delivery owned by the lifespan.

Pure ASGI: this module imports no framework. Wrap the app::

    app = FastAPI()
    app.add_middleware(SignalMiddleware)      # inside Starlette's error middleware
    # or: app = SignalMiddleware(FastAPI())   # outside it: sees the 500 status

then ``@receiver(request_finished)`` works as in Django. The sender of every request
and lifespan signal is the middleware class (``type(middleware)``), as Django's
handler class is for its own.

For each ``http`` and ``websocket`` connection, in this order:

``request_started(scope=...)``
    before the app runs. A receiver that raises stops the request: the app is not
    called, ``request_finished`` is still sent, and the exception propagates.
``got_request_exception(scope=..., exception=..., response_started=...)``
    when an ``Exception`` escapes the app, before it propagates further; not when
    the client went away first (the app's ``ClientDisconnect``/``OSError`` is then
    the disconnect's consequence), and not for cancellation.
``request_finished(scope=..., status=..., response_complete=..., aborted=...,``
``close_code=...)``
    exactly once, after the app returned or raised: after a streamed body, after
    Starlette's background tasks, after an error, after a client abort. ``status``
    is the HTTP status sent (None if none was); ``response_complete`` says the
    final body (or trailers, or ``pathsend``) went out; ``aborted`` says the client
    went away first (a disconnect before completion, or ``send`` raising
    ``OSError``). For websockets, ``status`` is set only when the handshake got an
    HTTP answer (403 for a close before accept, or a denial response),
    ``close_code`` is the code of the app's close or of the client's disconnect, and
    ``response_complete`` means the app closed the connection; for HTTP
    ``close_code`` is None.

The signals are sent with ``asend`` (``asend_robust`` with ``robust=True``): async
receivers are awaited concurrently, sync receivers run in worker threads.

Cancellation: ``request_finished`` is sent inside ``anyio.move_on_after(
finished_timeout, shield=True)``, so a request task that is being cancelled (a
server shutting down, a client abort that cancels the handler) still reports its
end, and a stuck receiver is cancelled after ``finished_timeout`` seconds (logged
at WARNING). Limits of the shield: on asyncio it holds against anyio cancel scopes
and against a native ``Task.cancel()`` that came *before* it, but a native
``Task.cancel()`` issued *while* the receivers run (``asyncio.wait_for``,
``asyncio.timeout``, a server cancelling twice) interrupts them; a sync receiver
already running in a thread cannot be interrupted at all, so the send waits for it
past the timeout; and nothing runs once the event loop itself is closed. That last
one matters with uvicorn: past ``timeout_graceful_shutdown`` it cancels the requests
still running, runs the lifespan shutdown and closes the loop without waiting for
them. So the lifespan shutdown first waits (up to ``drain_timeout``) for requests
still finishing, then sends ``lifespan_shutdown``.

Lifespan (``lifespan=True``): ``lifespan_startup(scope=...)`` is sent after the
app's own startup completed and before the server is told; a receiver's failure is
reported as ``lifespan.startup.failed`` with its message (the app then gets its
shutdown). ``lifespan_shutdown(scope=...)`` is sent before the app's own shutdown,
with ``asend_robust`` so that every receiver gets to clean up; failures are logged
and reported as ``lifespan.shutdown.failed`` after the app shut down. An app
without lifespan support is left out and the middleware answers the server itself.
The lifespan also opens a :class:`BackgroundSends` owner, publishes it in the
lifespan state as ``"asignal.background"`` and drains it after ``lifespan_shutdown``
and before the app's shutdown.

Background delivery: :func:`send_after_response` in request code holds a send
until the response has ended, then queues it on that owner, which delivers it with
``asend_robust`` in its own task group (a full buffer raises
:class:`BackgroundBufferFull` at once; see :class:`BackgroundSends`). Where no
asignal lifespan ran there is no owner and it raises
:class:`NoBackgroundOwnerError`, saying how to give it one.

The middleware keeps no per-request state: everything lives in the call.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from . import signals
from ._asgi_background import BackgroundBufferFull as BackgroundBufferFull
from ._asgi_background import BackgroundSends as BackgroundSends
from ._asgi_background import BackgroundStatistics as BackgroundStatistics
from ._asgi_handoff import NoBackgroundOwnerError as NoBackgroundOwnerError
from ._asgi_handoff import background_sends as background_sends
from ._asgi_handoff import send_after_response as send_after_response
from ._asgi_lifespan import run_lifespan
from ._asgi_request import handle_connection
from ._asgi_types import STATE_KEY as STATE_KEY
from ._asgi_types import ASGIApp as ASGIApp
from ._asgi_types import Message as Message
from ._asgi_types import Receive as Receive
from ._asgi_types import Scope as Scope
from ._asgi_types import Send as Send
from ._discovery import autodiscover as _autodiscover

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator

__all__ = [
    "STATE_KEY",
    "ASGIApp",
    "BackgroundBufferFull",
    "BackgroundSends",
    "BackgroundStatistics",
    "Message",
    "NoBackgroundOwnerError",
    "Receive",
    "Scope",
    "Send",
    "SignalMiddleware",
    "background_sends",
    "lifespan",
    "send_after_response",
]


class SignalMiddleware:
    """Pure ASGI middleware that sends the request and lifespan signals around *app*.

    :param app: the ASGI app to wrap.
    :param lifespan: handle ``lifespan`` scopes (the lifespan signals and the
        background owner). With False they pass straight to *app*; use
        :func:`lifespan` inside the app's own lifespan instead.
    :param finished_timeout: seconds that the shielded ``request_finished`` send
        may take before its receivers are cancelled; None for no bound.
    :param robust: send the request signals with ``asend_robust``: a receiver's
        failure is logged on the ``asignal`` logger and never affects the request.
        By default (``asend``) it propagates like an error of the app.
    :param max_buffer: see :class:`BackgroundSends`.
    :param concurrency: see :class:`BackgroundSends`.
    :param drain_timeout: see :class:`BackgroundSends`.
    :param background_timeout: per-send timeout of background deliveries
        (``BackgroundSends(timeout=...)``).
    :param autodiscover: packages whose receiver modules (``<package>.signals``)
        are imported with :func:`asignal.autodiscover` at startup, before
        ``lifespan_startup`` is sent; an import error fails the startup.

    Other scope types pass through untouched. Add it with
    ``app.add_middleware(SignalMiddleware, ...)`` or wrap the app directly.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        lifespan: bool = True,
        finished_timeout: float | None = 5.0,
        robust: bool = False,
        max_buffer: int = 1000,
        concurrency: int = 1,
        drain_timeout: float = 10.0,
        background_timeout: float | None = None,
        autodiscover: Sequence[str] = (),
    ) -> None:
        if not callable(app):
            raise TypeError(
                f"SignalMiddleware wraps an ASGI app; got {app!r}. Write "
                "SignalMiddleware(app) or app.add_middleware(SignalMiddleware)."
            )
        if finished_timeout is not None and finished_timeout < 0:
            raise ValueError(
                "finished_timeout must be >= 0 seconds or None, "
                f"got {finished_timeout!r}."
            )
        self.app = app
        self.lifespan = lifespan
        self.finished_timeout = finished_timeout
        self.robust = robust
        self.autodiscover = tuple(autodiscover)
        self._background: dict[str, Any] = {
            "max_buffer": max_buffer,
            "concurrency": concurrency,
            "drain_timeout": drain_timeout,
            "timeout": background_timeout,
        }
        BackgroundSends(**self._background)  # check the options now, not at startup

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope.get("type")
        if kind in ("http", "websocket"):
            await handle_connection(
                type(self),
                self.app,
                scope,
                receive,
                send,
                finished_timeout=self.finished_timeout,
                robust=self.robust,
            )
        elif kind == "lifespan" and self.lifespan:
            await run_lifespan(
                type(self),
                self.app,
                scope,
                receive,
                send,
                background=self._background,
                discover=self.autodiscover,
            )
        else:
            await self.app(scope, receive, send)


@asynccontextmanager
async def lifespan(
    *,
    sender: object = SignalMiddleware,
    max_buffer: int = 1000,
    concurrency: int = 1,
    drain_timeout: float = 10.0,
    background_timeout: float | None = None,
    autodiscover: Sequence[str] = (),
) -> AsyncGenerator[dict[str, Any], None]:
    """The lifespan signals and the background owner, to compose into a Starlette or
    FastAPI ``lifespan=`` function instead of using the middleware's lifespan::

        @asynccontextmanager
        async def app_lifespan(app):
            db = await open_db()                       # your startup first,
            async with asignal.asgi.lifespan() as state:
                yield {"db": db, **state}              # then the signals
            await db.close()                           # your shutdown last

    On entry it imports the receiver modules of the *autodiscover* packages (with
    :func:`asignal.autodiscover`), opens a :class:`BackgroundSends` and sends
    ``lifespan_startup``
    (``scope=None``: the lifespan function never sees the ASGI scope); a receiver's
    failure propagates, which fails the startup. It yields
    ``{"asignal.background": owner}`` for the app's lifespan state. On exit it sends
    ``lifespan_shutdown`` with ``asend_robust`` (every receiver runs; the first
    failure is raised after all ran, each one logged), then drains the owner. Do
    not combine it with ``SignalMiddleware(lifespan=True)``, which would send the
    signals twice;
    ``SignalMiddleware(lifespan=False)`` finds this owner in the request's state.
    """
    async with BackgroundSends(
        max_buffer=max_buffer,
        concurrency=concurrency,
        drain_timeout=drain_timeout,
        timeout=background_timeout,
    ) as owner:
        if autodiscover:
            _autodiscover(*autodiscover)
        await signals.lifespan_startup.asend(sender, scope=None)
        try:
            yield {STATE_KEY: owner}
        finally:
            await owner.wait_for_requests()
            results = await signals.lifespan_shutdown.asend_robust(sender, scope=None)
            errors = [r for _, r in results if isinstance(r, BaseException)]
            if errors:  # each one was logged; the first fails the shutdown
                raise errors[0]

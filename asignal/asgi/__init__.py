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
    went away first: the app (or a Starlette helper) read ``http.disconnect``
    before completion, ``send`` raised ``OSError`` (ASGI 2.4), or, for a
    request with no body left to read, the server had a disconnect ready when
    the final message was about to go out (uvicorn, and other servers whose
    ``receive()`` returns a ready message without waiting). It cannot see a
    client that left while a request body the app never read is pending, nor
    one on a server whose ``receive()`` always suspends first (memory channels
    on trio); there ``aborted`` stays False. For websockets, ``status`` is set
    only when the handshake got an HTTP answer (403 for a close before accept,
    or a denial response), ``close_code`` is the code of the app's close or of
    the client's disconnect, and ``response_complete`` means the app closed the
    connection; for HTTP ``close_code`` is None.

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
and reported as ``lifespan.shutdown.failed`` after the app shut down. After either
message the middleware raises the (first) receiver's exception, as Starlette does:
servers read the message (uvicorn logs it and exits with code 3 after a failed
startup), test harnesses that watch only the app (``asgi_lifespan``'s
``LifespanManager``) get the exception at once. An app
without lifespan support is left out and the middleware answers the server itself.
The lifespan also opens a :class:`BackgroundSends` owner, publishes it in the
lifespan state as ``"asignal.background"`` and drains it after ``lifespan_shutdown``
and before the app's shutdown. ``bridges=[...]`` (``asignal.bridge.Bridge``
objects) are entered after the ``autodiscover`` imports and before
``lifespan_startup`` (one that cannot start fails the startup with its error), and
closed after the drain, before the app's shutdown.

Background delivery: :func:`send_after_response` in request code holds a send
until the response has ended, then queues it on that owner, which delivers it with
``asend_robust`` in its own task group (a full buffer raises
:class:`BackgroundBufferFull` at once; see :class:`BackgroundSends`). Where no
asignal lifespan ran there is no owner and it raises
:class:`NoBackgroundOwnerError`, saying how to give it one.

The middleware keeps no per-request state: everything lives in the call.
"""

from __future__ import annotations

from ._background import BackgroundBufferFull as BackgroundBufferFull
from ._background import BackgroundSends as BackgroundSends
from ._background import BackgroundStatistics as BackgroundStatistics
from ._background import background_statistics as background_statistics
from ._handoff import NoBackgroundOwnerError as NoBackgroundOwnerError
from ._handoff import background_sends as background_sends
from ._handoff import send_after_response as send_after_response
from ._middleware import SignalMiddleware as SignalMiddleware
from ._middleware import lifespan as lifespan
from ._types import STATE_KEY as STATE_KEY
from ._types import ASGIApp as ASGIApp
from ._types import Message as Message
from ._types import Receive as Receive
from ._types import Scope as Scope
from ._types import Send as Send

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
    "background_statistics",
    "lifespan",
    "send_after_response",
]


def _publish() -> None:
    from types import FunctionType, GenericAlias

    # Show the public path, asignal.asgi.X, in reprs and tracebacks (classes and
    # functions only: the type aliases and STATE_KEY have no __module__ to set;
    # Python 3.10 counts a generic alias such as Callable[...] as a type).
    for name in __all__:
        value = globals()[name]
        if isinstance(value, (type, FunctionType)) and not isinstance(
            value, GenericAlias
        ):
            value.__module__ = __name__


_publish()
del _publish

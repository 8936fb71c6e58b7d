"""``SignalMiddleware`` and ``lifespan()``: where the request and lifespan signals
meet an ASGI app. The contract is described in the ``asignal.asgi`` docstring."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from .. import autodiscover as run_autodiscover
from .. import signals
from ._background import BackgroundSends
from ._lifespan import run_lifespan
from ._request import handle_connection
from ._types import STATE_KEY, ASGIApp, Receive, Scope, Send

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator

__all__ = ["SignalMiddleware", "lifespan"]


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
            run_autodiscover(*autodiscover)
        await signals.lifespan_startup.asend(sender, scope=None)
        try:
            yield {STATE_KEY: owner}
        finally:
            await owner.wait_for_requests()
            results = await signals.lifespan_shutdown.asend_robust(sender, scope=None)
            errors = [r for _, r in results if isinstance(r, BaseException)]
            if errors:  # each one was logged; the first fails the shutdown
                raise errors[0]

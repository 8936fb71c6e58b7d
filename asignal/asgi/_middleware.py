"""``SignalMiddleware`` and ``lifespan()``: where the request and lifespan signals
meet an ASGI app. The contract is described in the ``asignal.asgi`` docstring."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from .. import autodiscover as run_autodiscover
from .. import signals
from ._background import BackgroundSends
from ._bridges import check_bridges, open_bridges
from ._lifespan import run_lifespan
from ._request import handle_connection
from ._types import STATE_KEY, ASGIApp, Receive, Scope, Send

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator

    from ..bridge import Bridge

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
    :param bridges: :class:`asignal.bridge.Bridge` objects the lifespan owns: they
        are entered after *autodiscover* and before ``lifespan_startup`` (one that
        cannot start fails the startup with its error, and those already open are
        closed), and closed after ``lifespan_shutdown`` and the background drain,
        before the app's own shutdown (a failure to close fails the shutdown).
        Needs ``lifespan=True``; with ``lifespan=False`` pass them to
        :func:`lifespan`.

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
        bridges: Sequence[Bridge] = (),
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
        self.bridges = check_bridges(bridges)
        if self.bridges and not lifespan:
            raise ValueError(
                "SignalMiddleware(lifespan=False) runs no lifespan, so it cannot own "
                "bridges: pass them to asignal.asgi.lifespan(bridges=[...]) in the "
                "app's own lifespan instead."
            )
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
                bridges=self.bridges,
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
    bridges: Sequence[Bridge] = (),
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
    :func:`asignal.autodiscover`), enters the *bridges* (``asignal.bridge.Bridge``
    objects, in order), opens a :class:`BackgroundSends` and sends
    ``lifespan_startup``
    (``scope=None``: the lifespan function never sees the ASGI scope); a receiver's
    failure, or a bridge's failure to start, propagates (what was opened is
    closed), which fails the startup. It yields
    ``{"asignal.background": owner}`` for the app's lifespan state. On exit it sends
    ``lifespan_shutdown`` with ``asend_robust`` (every receiver runs; the first
    failure is raised after all ran, each one logged), then drains the owner, then
    closes the bridges (last first; background sends may still publish). Do
    not combine it with ``SignalMiddleware(lifespan=True)``, which would send the
    signals twice;
    ``SignalMiddleware(lifespan=False)`` finds this owner in the request's state.
    """
    checked = check_bridges(bridges)
    if autodiscover:
        run_autodiscover(*autodiscover)
    # The bridges are entered before the owner, so that they close after its
    # drain: both run task groups, whose cancel scopes must nest.
    async with (
        open_bridges(checked),
        BackgroundSends(
            max_buffer=max_buffer,
            concurrency=concurrency,
            drain_timeout=drain_timeout,
            timeout=background_timeout,
        ) as owner,
    ):
        await signals.lifespan_startup.asend(sender, scope=None)
        try:
            yield {STATE_KEY: owner}
        finally:
            await owner.wait_for_requests()
            results = await signals.lifespan_shutdown.asend_robust(sender, scope=None)
            errors = [r for _, r in results if isinstance(r, BaseException)]
            if errors:  # each one was logged; the first fails the shutdown
                raise errors[0]

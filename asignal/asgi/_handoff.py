"""How request code reaches the lifespan's :class:`BackgroundSends`.

``SignalMiddleware`` sets a :class:`RequestSends` in a context variable for the code
it runs: :func:`send_after_response` holds sends there until the response has
ended. :func:`background_sends` finds the owner in any ASGI scope's lifespan state.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, cast

from ._background import BackgroundSends
from ._types import STATE_KEY

if TYPE_CHECKING:
    from .._signal import Signal
    from ._background import HeldSends

__all__ = [
    "NoBackgroundOwnerError",
    "RequestSends",
    "background_sends",
    "find_owner",
    "request_sends",
    "send_after_response",
]

_HOW_TO_FIX = (
    "Give it an owner: wrap the outermost ASGI app in asignal.asgi.SignalMiddleware "
    "and let the server run the lifespan (uvicorn runs it by default; in tests use "
    "asgi_lifespan.LifespanManager and send requests to manager.app), or enter "
    "asignal.asgi.lifespan() inside your app's lifespan= function. A mounted "
    "sub-app's lifespan never runs: put the middleware on the outer app."
)


class NoBackgroundOwnerError(RuntimeError):
    """Raised when a background send has no :class:`BackgroundSends` to own it."""


class RequestSends:
    """Where ``send_after_response()`` puts a send, for the code one request or
    lifespan runs.

    ``SignalMiddleware`` makes one per request, holding the sends until the
    response has ended, and one already ended for the lifespan, where a send is
    queued at once. It sets it in a context variable for the code it runs.
    """

    __slots__ = ("held", "owner", "why_none")

    def __init__(
        self,
        owner: BackgroundSends | None,
        *,
        held: HeldSends | None = None,
        why_none: str = "",
    ) -> None:
        self.owner = owner
        self.held = held  # None: the response has ended (or there is none)
        self.why_none = why_none

    def add(self, signal: Signal, sender: object, kwargs: dict[str, Any]) -> None:
        if self.owner is None:
            raise NoBackgroundOwnerError(
                f"send_after_response() has no owner for its send: {self.why_none}. "
                + _HOW_TO_FIX
            )
        if self.held is None:
            self.owner.send_soon(signal, sender, **kwargs)
        else:
            self.held.add(signal, sender, kwargs)

    def end(self) -> None:
        """Queue the held sends (the response has ended); never raises."""
        held, self.held = self.held, None
        if held is not None:
            held.release()


request_sends: ContextVar[RequestSends | None] = ContextVar(
    "asignal.asgi.request_sends", default=None
)


def send_after_response(signal: Signal, sender: object, /, **kwargs: Any) -> None:
    """Hand ``signal.asend_robust(sender, **kwargs)`` to the application, to be
    delivered after this request's response has ended.

    Call it from code that ``SignalMiddleware`` runs (an endpoint, a dependency, a
    Starlette background task). The send is held until the wrapped app has returned
    (the response is sent and its background tasks are done, or it raised) and
    ``request_finished`` was sent, then queued on the lifespan's
    :class:`BackgroundSends`, which delivers it in a copy of this call's context.
    Called outside a request (the lifespan, or a delivery already running in the
    background), the send is queued at once.

    :raises TypeError: ``signal.send(sender, **kwargs)`` would refuse these
        arguments (a keyword named ``sender`` or ``signal``, or a strict signal's
        ``providing_args`` not matched): checked at hand-over, in the request.
    :raises NoBackgroundOwnerError: no lifespan-owned :class:`BackgroundSends` is
        reachable from here (the message says why and how to fix it).
    :raises BackgroundBufferFull: the owner's buffer is full; nothing waits.
    """
    current = request_sends.get()
    if current is None:
        raise NoBackgroundOwnerError(
            "send_after_response() has no owner for its send: this code is not "
            "running inside a request or lifespan handled by "
            "asignal.asgi.SignalMiddleware. " + _HOW_TO_FIX
        )
    current.add(signal, sender, kwargs)


def find_owner(scope: Mapping[str, Any]) -> tuple[BackgroundSends | None, str]:
    """The owner published in *scope*'s lifespan state, or None and why not."""
    state = scope.get("state")
    if state is None:
        return None, (
            "the request's ASGI scope has no lifespan 'state' (the server did not "
            "run the lifespan, as a test client without lifespan does, or it does "
            "not support lifespan state)"
        )
    owner = state.get(STATE_KEY)
    if not isinstance(owner, BackgroundSends):
        return None, (
            f"the lifespan state has no {STATE_KEY!r} entry (the lifespan that ran "
            "was not asignal's, as for a mounted sub-app, or SignalMiddleware was "
            "given lifespan=False without asignal.asgi.lifespan())"
        )
    return owner, ""


def background_sends(scope_or_request: object) -> BackgroundSends:
    """The lifespan's :class:`BackgroundSends` for an ASGI *scope* or for an object
    with a ``.scope`` (a Starlette/FastAPI ``Request`` or ``WebSocket``).

    Its :meth:`~BackgroundSends.send_soon` queues a send at once; use it where
    ``SignalMiddleware`` does not run (with ``asignal.asgi.lifespan()`` alone).

    :raises NoBackgroundOwnerError: the scope carries no asignal lifespan state.
    """
    scope: object = getattr(scope_or_request, "scope", scope_or_request)
    if not isinstance(scope, Mapping):
        raise TypeError(
            "background_sends() takes an ASGI scope or a Request/WebSocket with a "
            f".scope, got {scope_or_request!r}."
        )
    owner, why = find_owner(cast("Mapping[str, Any]", scope))
    if owner is None:
        raise NoBackgroundOwnerError(f"No background owner: {why}. {_HOW_TO_FIX}")
    return owner

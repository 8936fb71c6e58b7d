"""The request signals for one ``http`` or ``websocket`` connection.

Everything about one request lives in :func:`handle_connection`'s locals and in one
:class:`_Tracker` made per call; the middleware object holds configuration only.
The tracker wraps ``send`` to see the status and the message that completes the
response, and ``receive`` to see a disconnect that comes before completion.

A client that leaves while the app works on a non-streaming response is seen by
neither: the app does not call ``receive()``, and servers such as uvicorn drop
messages sent after a disconnect without an error. So before the message that
would complete an HTTP response, the tracker asks ``receive()`` for a message that
is already there, without waiting (in a cancelled scope, as Starlette's
``Request.is_disconnected()`` does). It does so only when no request body is left
to read (the app read it all, or the request declares none), so what it reads is
the disconnect or the empty body message the app did not ask for, which is kept
and given to the app's next ``receive()``: the app sees the same messages in the
same order.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import anyio

from .. import signals
from .._integration import log_fields
from ._handoff import RequestSends, find_owner, request_sends

if TYPE_CHECKING:
    from .._signal import Signal
    from ._types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["handle_connection"]

logger = logging.getLogger("asignal")


class _Tracker:
    """What the app sent and received on one connection."""

    __slots__ = (
        "aborted",
        "accepted",
        "close_code",
        "complete",
        "finishing",
        "kept",
        "no_body_left",
        "started",
        "status",
        "trailers",
    )

    def __init__(self, scope: Scope) -> None:
        self.status: int | None = None
        self.started = False  # an HTTP response (or websocket accept) went out
        self.complete = False  # the response (or the app's side of a websocket) ended
        self.finishing = False  # the message that completes it is being sent
        self.trailers = False
        self.aborted = False  # the client went away before that
        self.accepted = False
        self.close_code: int | None = None
        self.kept: list[Message] = []  # read by peek(), not yet given to the app
        self.no_body_left = _declares_no_body(scope)

    def wrap_send(self, send: Send, receive: Receive) -> Send:
        async def tracked_send(message: Message) -> None:
            # A disconnect that the server reports while the final message is being
            # sent (another task may read it first) is the normal end, not an abort.
            self.finishing = self._completes(message)
            try:
                if (
                    self.finishing
                    and self.no_body_left
                    and not self.aborted
                    and message["type"].startswith("http.")
                ):
                    await self.peek(receive)
                await send(message)
            except OSError:
                # ASGI 2.4: sending on a closed connection raises an OSError.
                self.finishing = False
                if not self.complete:
                    self.aborted = True
                raise
            except BaseException:
                self.finishing = False
                raise
            self._sent(message)

        return tracked_send

    async def peek(self, receive: Receive) -> None:
        """Read the messages that *receive* has ready, without waiting, and keep
        them for the app; a disconnect among them is an abort.

        Called only when no request body is left, so it reads empty body
        messages at most; it stops at a non-empty one. A server whose
        ``receive()`` always suspends first (memory channels on trio) shows
        nothing: there the disconnect stays unseen.
        """
        while True:
            message: Message | None = None
            with anyio.CancelScope() as scope:
                scope.cancel()
                message = await receive()
            if message is None:
                return
            self.kept.append(message)
            kind = message.get("type")
            if kind == "http.disconnect":
                self.aborted = True
                return
            if kind != "http.request" or message.get("body"):
                return

    def wrap_receive(self, receive: Receive) -> Receive:
        async def tracked_receive() -> Message:
            if self.kept:
                message = self.kept[0]
                if message.get("type") != "http.disconnect":  # that one repeats
                    del self.kept[0]
                return message
            message = await receive()
            kind = message.get("type")
            if kind == "http.request" and not message.get("more_body", False):
                self.no_body_left = True
            if kind == "http.disconnect":
                # Also returned to any receive() made after a complete response:
                # only a disconnect before completion is an abort.
                if not (self.complete or self.finishing):
                    self.aborted = True
            elif kind == "websocket.disconnect" and not (
                self.complete or self.finishing
            ):
                self.aborted = True
                self.close_code = message.get("code", 1005)
            return message

        return tracked_receive

    def _completes(self, message: Message) -> bool:
        """Whether sending *message* completes the response (ASGI rules)."""
        kind = message.get("type")
        if kind in (
            "http.response.body",
            "http.response.zerocopysend",
            "websocket.http.response.body",
        ):
            return not message.get("more_body", False) and not self.trailers
        if kind == "http.response.trailers":
            return not message.get("more_trailers", False)
        return kind in ("http.response.pathsend", "websocket.close")

    def _sent(self, message: Message) -> None:
        kind = message.get("type")
        if kind == "http.response.start":
            self.status = message.get("status")
            self.trailers = bool(message.get("trailers", False))
            self.started = True
        elif kind == "websocket.accept":
            self.accepted = self.started = True
        elif kind == "websocket.close":
            if self.aborted:
                pass  # the client's close code stands
            elif self.accepted:
                self.close_code = message.get("code", 1000)
            else:
                self.status = 403  # a close before accept is an HTTP 403 (ASGI spec)
        elif kind == "websocket.http.response.start":
            self.status = message.get("status")
            self.started = True
        if self.finishing:
            self.finishing = False
            # After a disconnect that peek() found, the server drops the message.
            self.complete = not self.aborted


def _declares_no_body(scope: Scope) -> bool:
    """Whether an HTTP request's headers say it has no body (RFC 9112: neither
    Transfer-Encoding nor a non-zero Content-Length)."""
    if scope.get("type") != "http":
        return False
    for name, value in scope.get("headers", ()):
        key = bytes(name).lower()
        if key == b"transfer-encoding" or (
            key == b"content-length" and bytes(value).strip() != b"0"
        ):
            return False
    return True


async def _emit(signal: Signal, robust: bool, sender: object, **kwargs: Any) -> None:
    if robust:
        await signal.asend_robust(sender, **kwargs)
    else:
        await signal.asend(sender, **kwargs)


async def handle_connection(
    sender: object,
    app: ASGIApp,
    scope: Scope,
    receive: Receive,
    send: Send,
    *,
    finished_timeout: float | None,
    robust: bool,
) -> None:
    """Run *app* for one connection and send the request signals around it."""
    tracker = _Tracker(scope)
    owner, why_none = find_owner(scope)
    held = None if owner is None else owner.hold_for_request()
    sends = RequestSends(owner, held=held, why_none=why_none)
    token = request_sends.set(sends)
    try:
        await _emit(signals.request_started, robust, sender, scope=scope)
        try:
            await app(
                scope, tracker.wrap_receive(receive), tracker.wrap_send(send, receive)
            )
        except Exception as exc:
            # A client that went away first makes the app fail (ClientDisconnect,
            # WebSocketDisconnect, the server's OSError): that is not an error of
            # the app, so it is not reported; the exception still propagates.
            if not tracker.aborted:
                await _emit(
                    signals.got_request_exception,
                    robust,
                    sender,
                    scope=scope,
                    exception=exc,
                    response_started=tracker.started,
                )
            raise
    finally:
        try:
            # Shielded so that a request being cancelled still reports its end;
            # bounded so that a stuck receiver cannot hold the request forever.
            with anyio.move_on_after(finished_timeout, shield=True) as bound:
                await _emit(
                    signals.request_finished,
                    robust,
                    sender,
                    scope=scope,
                    status=tracker.status,
                    response_complete=tracker.complete,
                    aborted=tracker.aborted,
                    close_code=tracker.close_code,
                )
            if bound.cancelled_caught:
                logger.warning(
                    "request_finished receivers for %s %r did not finish within "
                    "finished_timeout=%s s and were cancelled; make them faster or "
                    "raise SignalMiddleware(finished_timeout=...).",
                    scope.get("type"),
                    scope.get("path"),
                    finished_timeout,
                    extra=log_fields(signals.request_finished, sender=sender),
                )
        finally:
            sends.end()
            request_sends.reset(token)

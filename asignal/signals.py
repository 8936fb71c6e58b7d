"""The built-in signals, with Django's names and keyword arguments.

Definitions only: the model signals are sent by ORM bridges (``asignal.sqlalchemy``),
the request and lifespan signals by ``asignal.asgi``. Receivers take
``(sender, **kwargs)``; each docstring names the sender and the keyword arguments.

Each is a typed signal (see the README's "Typed signals"): the type checkers verify
receivers against these payloads, and Django-style receivers such as
``def on_saved(sender, instance, created, **kwargs)`` fit. Model instances, the
session and the connection are ``Any``: the signals serve any model and any ORM
bridge. Receivers may return anything (``object``).
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any, Literal

from ._typed import signal

__all__ = [
    "got_request_exception",
    "lifespan_shutdown",
    "lifespan_startup",
    "m2m_changed",
    "post_delete",
    "post_init",
    "post_save",
    "pre_delete",
    "pre_init",
    "pre_save",
    "request_finished",
    "request_started",
]

# -- model signals --------------------------------------------------------------------


@signal
def pre_init(*, args: tuple[Any, ...], kwargs: dict[str, Any]) -> object:
    """Sent at the start of a model's ``__init__``.

    sender: the model class. kwargs: ``args`` (positional arguments of the constructor),
    ``kwargs`` (its keyword arguments).
    """


@signal
def post_init(*, instance: Any) -> object:
    """Sent at the end of a model's ``__init__`` (or when the ORM loads an instance).

    sender: the model class. kwargs: ``instance``.
    """


@signal
def pre_save(
    *,
    instance: Any,
    raw: bool,
    using: str,
    update_fields: frozenset[str] | None,
    session: Any,
    connection: Any,
) -> object:
    """Sent before a model instance is written (INSERT or UPDATE).

    sender: the model class. kwargs: ``instance``; ``raw`` (True when saved exactly as
    given, as by fixture loading); ``using`` (the database alias); ``update_fields``
    (a frozenset of the field names being updated, or None); ``session`` and
    ``connection`` (what the write goes through, so a receiver can write in the same
    transaction; ``asignal.sqlalchemy`` documents their types).
    """


@signal
def post_save(
    *,
    instance: Any,
    created: bool,
    raw: bool,
    using: str,
    update_fields: frozenset[str] | None,
    session: Any,
    connection: Any,
) -> object:
    """Sent after a model instance was written.

    sender: the model class. kwargs: ``instance``; ``created`` (True for an INSERT);
    ``raw``; ``using``; ``update_fields``; ``session``; ``connection``.
    """


@signal
def pre_delete(
    *,
    instance: Any,
    using: str,
    origin: Any,
    session: Any,
    connection: Any,
) -> object:
    """Sent before a model instance is deleted.

    sender: the model class. kwargs: ``instance``; ``using``; ``origin`` (the instance
    whose deletion started it, which differs from ``instance`` on a cascade);
    ``session``; ``connection``.
    """


@signal
def post_delete(
    *,
    instance: Any,
    using: str,
    origin: Any,
    session: Any,
    connection: Any,
) -> object:
    """Sent after a model instance was deleted.

    sender: the model class. kwargs: ``instance``; ``using``; ``origin``; ``session``;
    ``connection``.
    """


@signal
def m2m_changed(
    *,
    instance: Any,
    action: Literal[
        "pre_add", "post_add", "pre_remove", "post_remove", "pre_clear", "post_clear"
    ],
    reverse: bool,
    model: type[Any],
    pk_set: set[Any] | None,
    using: str,
    session: Any,
    connection: Any,
) -> object:
    """Sent when a many-to-many relation changes.

    sender: the intermediate model or association table. kwargs: ``instance`` (the
    object whose relation changed); ``action`` (one of ``"pre_add"``, ``"post_add"``,
    ``"pre_remove"``, ``"post_remove"``, ``"pre_clear"``, ``"post_clear"``); ``reverse``
    (True when the change was made from the reverse side); ``model`` (the class of the
    objects added or removed); ``pk_set`` (their primary keys; None for the clear
    actions); ``using``; ``session``; ``connection``.
    """


# -- request signals ------------------------------------------------------------------


@signal
def request_started(*, scope: MutableMapping[str, Any]) -> object:
    """Sent when an HTTP request or websocket connection starts, before the app runs.

    sender: the handler class (``asignal.asgi.SignalMiddleware``). kwargs: ``scope``
    (the ASGI connection scope; ``scope["type"]`` is ``"http"`` or ``"websocket"``). A
    receiver that raises stops the request (the app is not called).
    """


@signal
def request_finished(
    *,
    scope: MutableMapping[str, Any],
    status: int | None,
    response_complete: bool,
    aborted: bool,
    close_code: int | None,
) -> object:
    """Sent exactly once per request, after the app returned or raised.

    That is after the last body chunk of a streamed response, after Starlette's
    background tasks, after an error and after a client abort; it is sent even while
    the request task is being cancelled (shielded, with a bounded timeout).

    sender: the handler class. kwargs: ``scope``; ``status`` (the HTTP status sent, or
    None if none was); ``response_complete`` (the whole response was sent); ``aborted``
    (the client went away first); ``close_code`` (websockets: the close code of the
    app's close or of the client's disconnect; None for HTTP). For a websocket,
    ``status`` is set only when the handshake was answered with an HTTP response.
    """


@signal
def got_request_exception(
    *,
    scope: MutableMapping[str, Any],
    exception: Exception,
    response_started: bool,
) -> object:
    """Sent when an exception escapes the app while handling a request.

    Not sent when the client went away first, nor for cancellation; the exception
    still propagates after the receivers ran.

    sender: the handler class. kwargs: ``scope``; ``exception``; ``response_started``
    (whether the response had already started, so no error page could be sent).
    """


# -- lifespan signals -----------------------------------------------------------------


@signal
def lifespan_startup(*, scope: MutableMapping[str, Any] | None) -> object:
    """Sent once the application's own startup completed, before the server is told.

    sender: the handler class. kwargs: ``scope`` (the lifespan scope; None when sent by
    ``asignal.asgi.lifespan()``). A receiver's failure fails the startup.
    """


@signal
def lifespan_shutdown(*, scope: MutableMapping[str, Any] | None) -> object:
    """Sent when the server shuts the application down, before its own shutdown.

    sender: the handler class. kwargs: ``scope`` (the lifespan scope; None when sent by
    ``asignal.asgi.lifespan()``).
    """

"""The built-in signals, with Django's names and keyword arguments.

Definitions only: the model signals are sent by ORM bridges (``asignal.sqlalchemy``),
the request and lifespan signals by ``asignal.asgi``. Receivers take
``(sender, **kwargs)``; each docstring names the sender and the keyword arguments.
"""

from __future__ import annotations

from ._signal import Signal

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

pre_init = Signal(name="asignal.signals.pre_init", providing_args=["args", "kwargs"])
"""Sent at the start of a model's ``__init__``.

sender: the model class. kwargs: ``args`` (positional arguments of the constructor),
``kwargs`` (its keyword arguments).
"""

post_init = Signal(name="asignal.signals.post_init", providing_args=["instance"])
"""Sent at the end of a model's ``__init__`` (or when the ORM loads an instance).

sender: the model class. kwargs: ``instance``.
"""

pre_save = Signal(
    name="asignal.signals.pre_save",
    providing_args=[
        "instance",
        "raw",
        "using",
        "update_fields",
        "session",
        "connection",
    ],
)
"""Sent before a model instance is written (INSERT or UPDATE).

sender: the model class. kwargs: ``instance``; ``raw`` (True when saved exactly as
given, as by fixture loading); ``using`` (the database alias); ``update_fields``
(a frozenset of the field names being updated, or None); ``session`` and
``connection`` (what the write goes through, so a receiver can write in the same
transaction; ``asignal.sqlalchemy`` documents their types).
"""

post_save = Signal(
    name="asignal.signals.post_save",
    providing_args=[
        "instance",
        "created",
        "raw",
        "using",
        "update_fields",
        "session",
        "connection",
    ],
)
"""Sent after a model instance was written.

sender: the model class. kwargs: ``instance``; ``created`` (True for an INSERT);
``raw``; ``using``; ``update_fields``; ``session``; ``connection``.
"""

pre_delete = Signal(
    name="asignal.signals.pre_delete",
    providing_args=["instance", "using", "origin", "session", "connection"],
)
"""Sent before a model instance is deleted.

sender: the model class. kwargs: ``instance``; ``using``; ``origin`` (the instance
whose deletion started it, which differs from ``instance`` on a cascade);
``session``; ``connection``.
"""

post_delete = Signal(
    name="asignal.signals.post_delete",
    providing_args=["instance", "using", "origin", "session", "connection"],
)
"""Sent after a model instance was deleted.

sender: the model class. kwargs: ``instance``; ``using``; ``origin``; ``session``;
``connection``.
"""

m2m_changed = Signal(
    name="asignal.signals.m2m_changed",
    providing_args=[
        "instance",
        "action",
        "reverse",
        "model",
        "pk_set",
        "using",
        "session",
        "connection",
    ],
)
"""Sent when a many-to-many relation changes.

sender: the intermediate model or association table. kwargs: ``instance`` (the object
whose relation changed); ``action`` (one of ``"pre_add"``, ``"post_add"``,
``"pre_remove"``, ``"post_remove"``, ``"pre_clear"``, ``"post_clear"``); ``reverse``
(True when the change was made from the reverse side); ``model`` (the class of the
objects added or removed); ``pk_set`` (their primary keys; None for the clear
actions); ``using``; ``session``; ``connection``.
"""

# -- request signals ------------------------------------------------------------------

request_started = Signal(
    name="asignal.signals.request_started", providing_args=["scope"]
)
"""Sent when an HTTP request or websocket connection starts, before the app runs.

sender: the handler class (``asignal.asgi.SignalMiddleware``). kwargs: ``scope`` (the
ASGI connection scope; ``scope["type"]`` is ``"http"`` or ``"websocket"``). A
receiver that raises stops the request (the app is not called).
"""

request_finished = Signal(
    name="asignal.signals.request_finished",
    providing_args=["scope", "status", "response_complete", "aborted", "close_code"],
)
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

got_request_exception = Signal(
    name="asignal.signals.got_request_exception",
    providing_args=["scope", "exception", "response_started"],
)
"""Sent when an exception escapes the app while handling a request.

Not sent when the client went away first, nor for cancellation; the exception
still propagates after the receivers ran.

sender: the handler class. kwargs: ``scope``; ``exception``; ``response_started``
(whether the response had already started, so no error page could be sent).
"""

# -- lifespan signals -----------------------------------------------------------------

lifespan_startup = Signal(
    name="asignal.signals.lifespan_startup", providing_args=["scope"]
)
"""Sent once the application's own startup completed, before the server is told.

sender: the handler class. kwargs: ``scope`` (the lifespan scope; None when sent by
``asignal.asgi.lifespan()``). A receiver's failure fails the startup.
"""

lifespan_shutdown = Signal(
    name="asignal.signals.lifespan_shutdown", providing_args=["scope"]
)
"""Sent when the server shuts the application down, before its own shutdown.

sender: the handler class. kwargs: ``scope`` (the lifespan scope; None when sent by
``asignal.asgi.lifespan()``).
"""

"""ASGI type aliases for the ``asignal.asgi`` integration (no framework import).

Kept structural and local, in the style of ``starlette/types.py``, so that any ASGI
framework's app, receive and send callables type-check against them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = ["STATE_KEY", "ASGIApp", "Message", "Receive", "Scope", "Send"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: The key under which the background-send owner is published in the lifespan
#: ``state`` (namespaced, as the ASGI lifespan spec asks).
STATE_KEY = "asignal.background"

"""Sending a model signal from inside a SQLAlchemy flush or commit.

SQLAlchemy's ORM is synchronous code. ``AsyncSession`` runs it in a greenlet that
SQLAlchemy spawns from the awaiting task; from inside that greenlet, SQLAlchemy's
``await_`` (``await_only`` before 2.1) hands a coroutine to the task and switches back
with its result. That is how async receivers are really awaited here: in the task that
awaited ``flush()`` or ``commit()``, one after another in call order, with sync
receivers called inline between them.
"""

from __future__ import annotations

import importlib
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncConnection, async_session
from sqlalchemy.orm import Session

from ._integration import send_awaiting
from ._signal import Signal


def _outside_any_greenlet() -> object:  # pragma: no cover - no greenlet installed
    return None


try:  # greenlet ships no type information; SQLAlchemy's asyncio extra installs it
    _current_greenlet: Callable[[], object] = importlib.import_module(
        "greenlet"
    ).getcurrent
except ImportError:  # pragma: no cover - sqlalchemy installed without [asyncio]
    _current_greenlet = _outside_any_greenlet


__all__ = ["Delivery", "deliver", "describe_engine", "in_sqlalchemy_greenlet"]

_T = TypeVar("_T")

#: One pending send: ``(signal, sender, kwargs, robust)``.
Delivery = tuple[Signal, object, dict[str, Any], bool]

_concurrency: Any = importlib.import_module("sqlalchemy.util.concurrency")
# SQLAlchemy 2.1 renamed await_only() to await_(); 2.0 has only the old name.
_await_in_greenlet: Callable[[Awaitable[Any]], Any] = (
    getattr(_concurrency, "await_", None) or _concurrency.await_only
)


def in_sqlalchemy_greenlet() -> bool:
    """True inside the greenlet SQLAlchemy spawned for an ``AsyncSession`` call."""
    return bool(getattr(_current_greenlet(), "__sqlalchemy_greenlet_provider__", False))


def deliver(
    signal: Signal, sender: object, kwargs: dict[str, Any], robust: bool
) -> None:
    """Send *signal* for *sender* from ORM code, where nothing is awaited.

    Outside SQLAlchemy's greenlet (a plain ``Session``) this is ``send()`` or
    ``send_robust()``, with their rules: async receivers run on a loop of their own,
    and from a thread that runs an event loop they raise ``RuntimeError``. Inside it
    (an ``AsyncSession``), receivers are called in call order and each async
    receiver's coroutine is awaited by the task that awaited the session. A
    receiver's exception propagates and aborts the flush, unless *robust*: then it
    is logged, like ``send_robust()``.
    """
    if not in_sqlalchemy_greenlet():
        if robust:
            signal.send_robust(sender, **kwargs)
        else:
            signal.send(sender, **kwargs)
        return
    send_awaiting(signal, sender, kwargs, robust=robust, await_=_await_in_greenlet)


def deliver_all(deliveries: list[Delivery]) -> None:
    """Deliver in order; the first exception of a non-robust send stops the rest."""
    for signal, sender, kwargs, robust in deliveries:
        deliver(signal, sender, kwargs, robust)


# -- what receivers are given ----------------------------------------------------------

_engine_names: weakref.WeakKeyDictionary[Engine, str] = weakref.WeakKeyDictionary()


def describe_engine(engine: Engine, binds: dict[Engine, str]) -> str:
    """``using=``: the name the engine was given at ``install(binds=...)``, else its
    URL with the password hidden."""
    name = binds.get(engine)
    if name is not None:
        return name
    name = _engine_names.get(engine)
    if name is None:
        name = engine.url.render_as_string(hide_password=True)
        _engine_names[engine] = name
    return name


def facing_session(session: Session) -> object:
    """The session the application holds: its ``AsyncSession`` when there is one."""
    proxy = async_session(session)
    return proxy if proxy is not None else session


def facing_connection(connection: Connection, session: object) -> object:
    """The connection in the session's flavour: an ``AsyncConnection`` for an
    ``AsyncSession``, else the ``Connection`` itself."""
    if isinstance(session, Session):
        return connection
    return AsyncConnection._retrieve_proxy_for_target(connection)  # pyright: ignore[reportPrivateUsage]

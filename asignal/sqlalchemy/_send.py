"""Sending a model signal from inside a SQLAlchemy flush or commit, and what its
receivers are given.

SQLAlchemy's ORM is synchronous code. ``AsyncSession`` runs it in a greenlet that
SQLAlchemy spawns from the awaiting task; from inside that greenlet, SQLAlchemy's
``await_`` (``await_only`` before 2.1) hands a coroutine to the task and switches back
with its result. That is how async receivers are really awaited here: in the task that
awaited ``flush()`` or ``commit()``, one after another in call order, with sync
receivers called inline between them.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    AsyncSessionTransaction,
    async_session,
)
from sqlalchemy.orm import Session

from .. import Signal
from .._integration import log_fields, send_awaiting
from . import _state
from ._options import Options, post_delivery_for
from ._state import Delivery, flush_state

__all__ = [
    "deliver",
    "deliver_after_commit",
    "deliver_all",
    "describe_engine",
    "facing_connection",
    "facing_session",
    "in_sqlalchemy_greenlet",
    "row_kwargs",
    "send_post",
]


def _outside_any_greenlet() -> object:  # pragma: no cover - no greenlet installed
    return None


try:  # greenlet ships no type information; SQLAlchemy's asyncio extra installs it
    _current_greenlet: Callable[[], object] = importlib.import_module(
        "greenlet"
    ).getcurrent
except ImportError:  # pragma: no cover - sqlalchemy installed without [asyncio]
    _current_greenlet = _outside_any_greenlet

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
    if in_sqlalchemy_greenlet():
        send_awaiting(signal, sender, kwargs, robust=robust, await_=_await_in_greenlet)
    elif robust:
        signal.send_robust(sender, **kwargs)
    else:
        signal.send(sender, **kwargs)


def deliver_all(deliveries: list[Delivery]) -> None:
    """Deliver in order; the first exception of a non-robust send stops the rest."""
    for signal, sender, kwargs, robust in deliveries:
        deliver(signal, sender, kwargs, robust)


def deliver_after_commit(deliveries: list[Delivery]) -> BaseException | None:
    """Deliver the ``on_commit`` sends of a committed transaction, in order, and
    return the exception that stopped them, if any, for the caller to raise once
    SQLAlchemy has closed the transaction.

    Nothing may propagate from here: SQLAlchemy calls this between committing and
    closing the transaction, and an exception would leave the session stuck in its
    committed state. A non-robust send's exception stops the sends after it, as
    ``send()`` stops the receivers after a failing one (Django's non-robust
    ``on_commit`` callbacks do the same); each send not made is logged at ERROR on
    the ``asignal`` logger, naming it. Robust sends log their own failures and never
    stop the others.
    """
    for index, (signal, sender, kwargs, robust) in enumerate(deliveries):
        try:
            deliver(signal, sender, kwargs, robust)
        except BaseException as exc:  # cancellation too: it is raised, only later
            for skipped in deliveries[index + 1 :]:
                _log_not_sent(skipped, exc)
            return exc
    return None


_logger = logging.getLogger("asignal")


def _log_not_sent(delivery: Delivery, cause: BaseException) -> None:
    signal, sender, kwargs, _ = delivery
    about = ", ".join(
        f"{key}={_safe_repr(kwargs[key])}"
        for key in ("instance", "action")
        if key in kwargs
    )
    _logger.error(
        "%r from %s (%s) was not sent after the commit: an earlier on_commit "
        "receiver raised %s: %s, which propagates from commit().",
        signal,
        getattr(sender, "__qualname__", None) or repr(sender),
        about,
        type(cause).__qualname__,
        cause,
        extra=log_fields(signal, sender=sender),
    )


def _safe_repr(value: object) -> str:
    # A model's own __repr__ may fail (an expired attribute, a bug): the log line
    # must still be written, and nothing may escape from here.
    try:
        return repr(value)
    except Exception:
        return f"<{type(value).__qualname__} object>"


def send_post(session: Session, options: Options, delivery: Delivery) -> None:
    """Send a post_* signal now, or keep it for later, by the post-delivery mode."""
    mode = post_delivery_for(session, options)
    if mode == "flush":
        deliver(*delivery)
    elif mode == "after_flush":
        flush_state(session).after_flush.append(delivery)
    else:
        # After the commit the connection is gone: receivers get None, not a
        # connection they cannot use.
        delivery[2]["connection"] = None
        flush_state(session).on_commit.append(delivery)


# -- what receivers are given ----------------------------------------------------------


def row_kwargs(
    session: Session, connection: Connection, options: Options
) -> dict[str, Any]:
    """``using``, ``session`` and ``connection`` for a send about one row."""
    facing = facing_session(session)
    return {
        "using": describe_engine(connection.engine, options.binds),
        "session": facing,
        "connection": facing_connection(connection, facing),
    }


def describe_engine(engine: Engine, binds: dict[Engine, str]) -> str:
    """``using=``: the name the engine was given at ``install(binds=...)``, else its
    URL with the password hidden."""
    name = binds.get(engine)
    if name is not None:
        return name
    name = _state.engine_names.get(engine)
    if name is None:
        name = engine.url.render_as_string(hide_password=True)
        _state.engine_names[engine] = name
    return name


def facing_session(session: Session) -> object:
    """The session the application holds: its ``AsyncSession`` when there is one."""
    proxy = async_session(session)
    return proxy if proxy is not None else session


# SQLAlchemy 2.1.7 added AsyncSessionTransaction.connections: the AsyncConnection
# objects SQLAlchemy itself hands out for the transaction's connections.
_HAS_TRANSACTION_CONNECTIONS = hasattr(AsyncSessionTransaction, "connections")


def facing_connection(connection: Connection, session: object) -> object:
    """The connection in the session's flavour: the ``Connection`` itself for a
    ``Session``; for an ``AsyncSession``, an ``AsyncConnection`` on it.

    With SQLAlchemy 2.1.7 or later that is the object ``await session.connection()``
    returns, found through the public ``AsyncSessionTransaction.connections``.
    Before, there is no public lookup: it is an ``AsyncConnection`` made with
    SQLAlchemy's public constructors on the same connection, so in the same
    transaction.
    """
    if not isinstance(session, AsyncSession):
        return connection
    if _HAS_TRANSACTION_CONNECTIONS:
        transaction = session.get_transaction()
        if transaction is not None:
            # Read by name: type-checked against SQLAlchemy 2.0 and 2.1 alike.
            proxies: list[AsyncConnection] = getattr(transaction, "connections")  # noqa: B009
            for proxy in proxies:
                if proxy.sync_connection is connection:
                    return proxy
    return AsyncConnection(AsyncEngine(connection.engine), connection)

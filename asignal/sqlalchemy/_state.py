"""Everything ``asignal.sqlalchemy`` remembers, in one place.

SQLAlchemy's events are process-wide (the bridge listens on ``Mapper`` and
``Session`` themselves), so what the bridge keeps is process-wide too. It all lives
in this module; no other module of the package keeps module-level mutable state.

What ``install()`` and ``uninstall()`` change, only while holding :data:`lock`:

- :data:`targets`: the installed bases and registries, with their options;
- :data:`links` and :data:`listening`: the many-to-many relationships found under
  them, and the attribute listeners that record which side a change is made from.

Caches, cleared whenever the above change and rebuilt on demand by the event
handlers (any thread, no lock: a lookup that races a clear only recomputes):

- :data:`options_by_mapper`, :data:`options_by_class`, :data:`props_by_mapper`,
  :data:`engine_names`.

Per session and per connection, kept by the event handlers:

- :data:`sessions`: each session's :class:`SessionState` (the current flush, the
  ``on_commit`` sends waiting on each transaction);
- :data:`watched`: the session state each flushing connection reports to.

Every dictionary keyed by a SQLAlchemy object holds it weakly, so nothing here keeps
a class, mapper, engine, session or connection alive.
"""

from __future__ import annotations

import threading
import weakref
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import (
    InstanceState,
    Mapper,
    RelationshipProperty,
    Session,
    SessionTransaction,
)

from .. import Signal
from ._options import Options, Target

if TYPE_CHECKING:
    from ._m2m import Change, Link

__all__ = [
    "Delivery",
    "FlushState",
    "SessionState",
    "engine_names",
    "flush_state",
    "links",
    "listening",
    "lock",
    "options_by_class",
    "options_by_mapper",
    "props_by_mapper",
    "session_state",
    "sessions",
    "targets",
    "watched",
]

#: One pending send: ``(signal, sender, kwargs, robust)``.
Delivery = tuple[Signal, object, dict[str, Any], bool]

# -- changed by install() and uninstall() ----------------------------------------------

#: Held by ``install()``/``uninstall()`` while they change what follows.
lock = threading.Lock()

#: Installed base class or registry -> its options, in installation order (the
#: first that covers a class wins).
targets: dict[Target, Options] = {}

#: Many-to-many relationship (either side) -> the relation it is a side of.
links: dict[RelationshipProperty[Any], Link] = {}

#: ``(attribute, event name, listener)`` for every attribute listener added, so
#: that ``uninstall()`` can remove them.
listening: list[tuple[Any, str, Any]] = []

# -- caches ----------------------------------------------------------------------------

#: Mapper -> the options of the target covering it, or None when none does.
options_by_mapper: weakref.WeakKeyDictionary[Mapper[Any], Options | None] = (
    weakref.WeakKeyDictionary()
)
#: Mapped class -> as :data:`options_by_mapper` (the instance events know the class).
options_by_class: weakref.WeakKeyDictionary[type, Options | None] = (
    weakref.WeakKeyDictionary()
)
#: Mapper -> its relationships that are in :data:`links`.
props_by_mapper: weakref.WeakKeyDictionary[
    Mapper[Any], list[RelationshipProperty[Any]]
] = weakref.WeakKeyDictionary()
#: Engine -> its URL with the password hidden, the ``using=`` of an unnamed engine.
engine_names: weakref.WeakKeyDictionary[Engine, str] = weakref.WeakKeyDictionary()

# -- per session -----------------------------------------------------------------------


class FlushState:
    """What one flush of one session collected until ``after_flush_postexec``."""

    __slots__ = ("after_flush", "after_statement", "m2m", "on_commit", "origins")

    def __init__(self) -> None:
        self.after_flush: list[Delivery] = []
        self.on_commit: list[Delivery] = []
        #: InstanceState -> the object whose deletion cascaded to it.
        self.origins: dict[InstanceState[Any], object] = {}
        #: Association table -> pending many-to-many changes.
        self.m2m: dict[Any, list[Change]] = {}
        #: id(statement) -> post_add/post_remove deliveries waiting for it to run.
        self.after_statement: dict[
            int, tuple[Session, list[tuple[Delivery, Options]]]
        ] = {}


class SessionState:
    """What the bridge keeps about one session between its events."""

    __slots__ = ("__weakref__", "failed", "flush", "on_commit")

    def __init__(self) -> None:
        self.flush: FlushState | None = None
        #: Transaction (root or savepoint) -> on_commit deliveries flushed in it.
        self.on_commit: dict[SessionTransaction, list[Delivery]] = {}
        #: The root transaction whose on_commit delivery failed, and the exception
        #: to raise once SQLAlchemy has closed that transaction.
        self.failed: tuple[SessionTransaction, BaseException] | None = None


#: Session -> its state, made at its first event.
sessions: weakref.WeakKeyDictionary[Session, SessionState] = weakref.WeakKeyDictionary()

#: Connection of a session's transaction -> that session's state (weakly: the
#: connection may outlive the session in the pool).
watched: weakref.WeakKeyDictionary[Connection, weakref.ref[SessionState]] = (
    weakref.WeakKeyDictionary()
)


def session_state(session: Session) -> SessionState:
    """*session*'s state, made if this is the first event seen for it."""
    state = sessions.get(session)
    if state is None:
        state = sessions[session] = SessionState()
    return state


def flush_state(session: Session) -> FlushState:
    """The state of *session*'s current flush."""
    state = session_state(session)
    if state.flush is None:  # a flush that began before install()
        state.flush = FlushState()
    return state.flush

"""A signal's connections and the per-sender plans a send reads.

Connections change under a lock; sends never take it once warm. Each change drops
the routing table, and the next send rebuilds it: one frozen :class:`Plan` per
sender that has connections of its own, plus one for every other sender.

A receiver or sender that dies flags the table from a garbage-collector callback,
which may run while this thread holds the lock: the callback only sets flags, and the
next connect, disconnect or send prunes. References are always dropped after the
lock is released: dropping the last one can run a ``__del__`` that sends this same
signal, which would otherwise deadlock on the lock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Iterable
from typing import TYPE_CHECKING, Any

from ._connection import ANY_SENDER, Connection, sender_key_of

if TYPE_CHECKING:
    from ._watch import Watcher

__all__ = ["ASYNC", "INLINE", "THREAD", "Connections", "Plan"]

#: How ``asend`` runs a receiver: awaited, called on the loop, or in a worker thread.
ASYNC, INLINE, THREAD = 0, 1, 2


def _mode(connection: Connection) -> int:
    if connection.is_async:
        return ASYNC
    return INLINE if connection.inline else THREAD


class Plan:
    """The receivers one sender reaches, in call order (priority, then connection
    order), frozen until the next change. ``steps`` is ``(deref, mode)`` per
    receiver: a send calls ``deref()`` and skips a receiver that died since.

    ``watcher`` is set on the plan of a watched send (see ``_watch``); ``direct``
    says that a blocking send may simply call every receiver in its own thread (no
    async receiver, nothing watching)."""

    __slots__ = ("derefs", "direct", "has_async", "single_async", "steps", "watcher")

    def __init__(
        self,
        steps: tuple[tuple[Callable[[], Any], int], ...],
        watcher: Watcher | None = None,
    ) -> None:
        self.steps = steps
        self.watcher = watcher
        self.derefs = tuple(deref for deref, _ in steps)
        self.has_async = any(mode == ASYNC for _, mode in steps)
        self.direct = not self.has_async and watcher is None
        self.single_async = len(steps) == 1 and self.has_async and watcher is None

    @classmethod
    def of(cls, connections: list[Connection]) -> Plan:
        return cls(tuple((c.deref, _mode(c)) for c in connections))

    def only(self, keep: Callable[[Callable[..., Any]], bool]) -> Plan:
        """The receivers of this plan that are alive and that *keep* accepts."""
        if self.watcher is not None:
            return self.watcher.rewatch(self.watcher.plain.only(keep))
        return Plan(
            tuple(
                step
                for step in self.steps
                if (fn := step[0]()) is not None and keep(fn)
            )
        )

    def live(self) -> list[tuple[Callable[..., Any], int]]:
        """``(receiver, mode)`` for each receiver still alive."""
        return [(fn, mode) for deref, mode in self.steps if (fn := deref()) is not None]


def call_order(connections: Iterable[Connection]) -> list[Connection]:
    """*connections* (given in connection order) sorted by priority, ties kept."""
    return sorted(connections, key=lambda c: -c.priority)


Routing = tuple[dict[int, Plan], Plan]


class Connections:
    """The connections of one signal, keyed as ``entry_key`` says, in connection
    order (a reconnect is a new insertion, at the end)."""

    __slots__ = ("dead", "entries", "lock", "on_death", "routing")

    def __init__(self) -> None:
        #: Held while the connections change; Django tooling takes it too.
        self.lock: Any = threading.Lock()
        self.entries: dict[Hashable, Connection] = {}
        self.routing: Routing | None = None
        self.dead = False
        #: The weak references' callback, bound once: a bound method made per
        #: connection would cost every connection another object.
        self.on_death = self.flag_dead

    def flag_dead(self, _ref: object) -> None:
        """Weak-reference callback: something connected died. Only flags (see the
        module docstring); dropping the routing makes the next send prune."""
        self.dead = True
        self.routing = None

    def plan(self, sender: object) -> Plan:
        """The plan for *sender*: a dictionary read while warm, no lock."""
        routing = self.routing or self.route()
        return routing[0].get(id(sender), routing[1])

    def add(self, connection: Connection) -> None:
        """Keep *connection* unless its key is connected already (the first stays)."""
        with self.lock:
            dropped = self._prune() if self.dead else None
            if connection.key not in self.entries:
                self.entries[connection.key] = connection
                self.routing = None
        del dropped  # after the lock (see the module docstring)

    def remove(self, key: Hashable) -> bool:
        with self.lock:
            dropped = self._prune() if self.dead else None
            removed = self.entries.pop(key, None)
            if removed is not None:
                self.routing = None
        del dropped
        return removed is not None

    def snapshot(self) -> list[Connection]:
        """The live connections, in connection order."""
        with self.lock:
            dropped = self._prune() if self.dead else None
            connections = list(self.entries.values())
        del dropped
        return connections

    def replace(self, connections: Iterable[Connection]) -> None:
        entries: dict[Hashable, Connection] = {}
        for connection in connections:
            entries.setdefault(connection.key, connection)
        with self.lock:
            old, self.entries = self.entries, entries
            self.routing = None
            # Something may have died while the new entries were built.
            dropped = self._prune()
        del old, dropped

    def _prune(self) -> list[Connection]:
        """Drop dead connections (the caller holds the lock); return them, for the
        caller to release after the lock."""
        self.dead = False
        dead = [key for key, c in self.entries.items() if not c.is_alive()]
        dropped = [self.entries.pop(key) for key in dead]
        if dropped:
            self.routing = None
        return dropped

    def route(self) -> Routing:
        """Build the routing table (or read the one another thread just built)."""
        dropped: list[Connection] = []
        with self.lock:
            while True:
                if self.dead:
                    dropped += self._prune()
                routing = self.routing
                if routing is None:
                    routing = self.routing = self._build()
                if not self.dead:
                    break
                # Something died while the table was built and may be in it: a dead
                # sender's id() must never route, so build it again.
                self.routing = None
        del dropped
        return routing

    def _build(self) -> Routing:
        for_any: list[Connection] = []
        by_sender: dict[int, list[Connection]] = {}
        for connection in self.entries.values():
            skey = sender_key_of(connection.key)
            if skey == ANY_SENDER:
                for_any.append(connection)
            else:
                by_sender.setdefault(skey, []).append(connection)
        # A sender's plan interleaves its own connections with the any-sender ones
        # by priority, then connection order.
        order = {id(c): position for position, c in enumerate(self.entries.values())}
        plans = {
            skey: Plan.of(
                sorted(for_any + only, key=lambda c: (-c.priority, order[id(c)]))
            )
            for skey, only in by_sender.items()
        }
        return plans, Plan.of(call_order(for_any))

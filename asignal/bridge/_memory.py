"""``memory://NAME``: a broker inside the process, for tests and single-process apps.

Every ``Bridge("memory://NAME", node_id=...)`` in the process with the same NAME is a
node of the same broker, so cross-process logic can be tested in one test. Both
delivery modes behave as on Redis: *at most once* hands each message to the nodes
listening when it is published; *at least once* keeps a log per subject and one
consumer group per node (created at the end of the log the first time the node
opens), with pending messages redelivered after ``retry_later`` and after a node
reopens, receipts with an expiry, a dead-letter list and ``max_length`` trimming.

The broker's state lives as long as the process. Its nodes must share one event
loop (anyio events wake them); a bridge opened on another loop while nodes are
open on a first one is refused.
"""

from __future__ import annotations

import collections
import itertools
import logging
import time
from collections.abc import AsyncGenerator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import anyio
import anyio.lowlevel

from ._transport import (
    Channel,
    Delivery,
    Message,
    OnReconnect,
    Transport,
    TransportError,
    TransportOptions,
)

__all__ = ["DeadLetter", "MemoryTransport", "memory_broker"]

logger = logging.getLogger("asignal")

#: How many messages an at-most-once node buffers before dropping the oldest, as
#: Redis drops a Pub/Sub client that falls too far behind.
_PUBSUB_BUFFER = 10_000
#: The longest a fetch waits for something to arrive.
_FETCH_WAIT = 1.0


@dataclass(frozen=True)
class DeadLetter:
    """A message a node refused, as stored by the memory broker."""

    subject: str
    data: bytes
    reason: str
    node_id: str


@dataclass
class _Pending:
    subject: str
    seq: int
    data: bytes
    deliveries: int = 0
    due: float = 0.0
    in_flight: bool = False


@dataclass
class _Group:
    cursors: dict[str, int] = field(default_factory=dict[str, int])
    pending: dict[tuple[str, int], _Pending] = field(
        default_factory=dict[tuple[str, int], _Pending]
    )


class _Broker:
    def __init__(self, name: str) -> None:
        self.name = name
        self.logs: dict[str, collections.deque[tuple[int, bytes]]] = {}
        self.seqs = itertools.count(1)
        self.groups: dict[str, _Group] = {}
        self.receipts: dict[tuple[str, str], tuple[set[str], float]] = {}
        self.dead_letters: list[DeadLetter] = []
        self.channels: set[_MemoryChannel] = set()
        self.loop: object = None

    def log(self, subject: str) -> collections.deque[tuple[int, bytes]]:
        entries = self.logs.get(subject)
        if entries is None:
            entries = self.logs[subject] = collections.deque()
        return entries

    def end(self, subject: str) -> int:
        entries = self.logs.get(subject)
        return entries[-1][0] + 1 if entries else 0


_brokers: dict[str, _Broker] = {}


def memory_broker(name: str) -> _Broker:
    """The process's broker called *name* (made on first use)."""
    broker = _brokers.get(name)
    if broker is None:
        broker = _brokers[name] = _Broker(name)
    return broker


class MemoryTransport(Transport):
    """The in-process broker named by ``memory://NAME``."""

    def __init__(self, url: str) -> None:
        name = urlsplit(url).netloc
        if not name:
            raise ValueError(
                f"memory bridge URL {url!r} has no name: write memory://NAME; bridges "
                "with the same NAME are nodes of one in-process broker."
            )
        self._url = url
        self.broker = memory_broker(name)

    @property
    def display_url(self) -> str:
        return self._url

    @asynccontextmanager
    async def open(
        self,
        *,
        node_id: str,
        delivery: Delivery,
        subjects: Sequence[str],
        options: TransportOptions,
        on_reconnect: OnReconnect,
    ) -> AsyncGenerator[Channel]:
        broker = self.broker
        loop = anyio.lowlevel.current_token().native_token
        if broker.channels and broker.loop is not loop:
            raise RuntimeError(
                f"memory://{broker.name} already has nodes open on another event loop; "
                "the memory transport connects the bridges of one event loop. Use "
                "redis:// between loops, threads or processes."
            )
        broker.loop = loop
        if any(c.node_id == node_id for c in broker.channels):
            raise RuntimeError(
                f"node_id {node_id!r} is already open on memory://{broker.name}: "
                "give every node its own node_id."
            )
        channel = _MemoryChannel(broker, node_id, delivery, subjects, options)
        broker.channels.add(channel)
        try:
            yield channel
        finally:
            broker.channels.discard(channel)
            channel.closed = True


class _MemoryChannel(Channel):
    def __init__(
        self,
        broker: _Broker,
        node_id: str,
        delivery: Delivery,
        subjects: Sequence[str],
        options: TransportOptions,
    ) -> None:
        self.broker = broker
        self.node_id = node_id
        self.delivery = delivery
        self.subjects = frozenset(subjects)
        self.options = options
        self.closed = False
        self._wake = anyio.Event()
        self._buffer: collections.deque[Message] = collections.deque()
        self._group: _Group | None = None
        if delivery == "at_least_once":
            group = broker.groups.get(node_id)
            if group is None:
                group = broker.groups[node_id] = _Group()
            for subject in subjects:
                group.cursors.setdefault(subject, broker.end(subject))
            # A node that opens again resumes its pending messages, now.
            for pending in group.pending.values():
                pending.in_flight = False
                pending.due = 0.0
            self._group = group

    def _check_open(self) -> None:
        if self.closed:
            raise TransportError(f"memory://{self.broker.name} channel is closed")

    async def publish(self, subject: str, data: bytes) -> str:
        self._check_open()
        await anyio.lowlevel.checkpoint()
        broker = self.broker
        seq = next(broker.seqs)
        if self.delivery == "at_least_once":
            entries = broker.log(subject)
            entries.append((seq, data))
            while len(entries) > self.options.max_length:
                entries.popleft()
        for channel in broker.channels:
            if channel.delivery != self.delivery or subject not in channel.subjects:
                continue
            if channel.delivery == "at_most_once":
                if len(channel._buffer) >= _PUBSUB_BUFFER:
                    channel._buffer.popleft()
                    logger.warning(
                        "memory://%s: node %r fell %d messages behind; dropped the "
                        "oldest",
                        broker.name,
                        channel.node_id,
                        _PUBSUB_BUFFER,
                    )
                channel._buffer.append(Message(subject, data, 1, None))
            channel.wake()
        return str(seq)

    def wake(self) -> None:
        """Make a waiting fetch look again."""
        self._wake.set()

    async def fetch(self, max_messages: int) -> list[Message]:
        self._check_open()
        while True:
            found = self._take(max_messages)
            if found:
                await anyio.lowlevel.checkpoint()
                return found
            wait = _FETCH_WAIT
            if self._group is not None:
                dues = [p.due for p in self._group.pending.values() if not p.in_flight]
                if dues:
                    wait = max(0.0, min(wait, min(dues) - time.monotonic()))
            with anyio.move_on_after(wait):
                await self._wake.wait()
            if not self._wake.is_set():
                if not self._take_would_find():
                    return []
                continue
            self._wake = anyio.Event()

    def _take_would_find(self) -> bool:
        group = self._group
        if group is None:
            return bool(self._buffer)
        now = time.monotonic()
        return any(not p.in_flight and p.due <= now for p in group.pending.values())

    def _take(self, limit: int) -> list[Message]:
        group = self._group
        if group is None:
            taken: list[Message] = []
            while self._buffer and len(taken) < limit:
                taken.append(self._buffer.popleft())
            return taken
        now = time.monotonic()
        found: list[Message] = []
        for pending in group.pending.values():
            if len(found) >= limit:
                return found
            if not pending.in_flight and pending.due <= now:
                found.append(self._deliver(pending))
        for subject in sorted(self.subjects):
            entries = self.broker.logs.get(subject)
            if not entries:
                continue
            cursor = group.cursors.get(subject, 0)
            for seq, data in entries:
                if len(found) >= limit:
                    return found
                if seq < cursor:
                    continue
                pending = _Pending(subject, seq, data)
                group.pending[(subject, seq)] = pending
                group.cursors[subject] = seq + 1
                found.append(self._deliver(pending))
        return found

    @staticmethod
    def _deliver(pending: _Pending) -> Message:
        pending.deliveries += 1
        pending.in_flight = True
        return Message(pending.subject, pending.data, pending.deliveries, pending)

    async def ack(self, message: Message) -> None:
        self._settle(message)
        await anyio.lowlevel.checkpoint()

    def _settle(self, message: Message) -> _Pending | None:
        if self._group is None:
            return None
        pending: _Pending = message.handle
        return self._group.pending.pop((pending.subject, pending.seq), None)

    async def retry_later(self, message: Message, delay: float) -> None:
        await anyio.lowlevel.checkpoint()
        if self._group is None:
            return
        pending: _Pending = message.handle
        pending.in_flight = False
        pending.due = time.monotonic() + delay

    async def dead_letter(self, message: Message, reason: str) -> None:
        letters = self.broker.dead_letters
        letters.append(DeadLetter(message.subject, message.data, reason, self.node_id))
        del letters[: -self.options.max_length]
        await self.ack(message)

    async def succeeded(self, event_id: str) -> set[str]:
        await anyio.lowlevel.checkpoint()
        record = self.broker.receipts.get((self.node_id, event_id))
        if record is None or record[1] < time.monotonic():
            return set()
        return set(record[0])

    async def record_success(self, event_id: str, keys: Sequence[str]) -> None:
        await anyio.lowlevel.checkpoint()
        if not keys:
            return
        receipts = self.broker.receipts
        now = time.monotonic()
        if len(receipts) >= self.options.max_length:
            # Bounded like a stream: drop the expired records first.
            for stale in [k for k, (_, until) in receipts.items() if until < now]:
                del receipts[stale]
        key = (self.node_id, event_id)
        done, _ = receipts.get(key, (set[str](), 0.0))
        self.broker.receipts[key] = (
            done | set(keys),
            now + self.options.receipt_ttl,
        )

    def lag(self) -> int | None:
        group = self._group
        if group is None:
            return None
        behind = 0
        for subject in self.subjects:
            cursor = group.cursors.get(subject, 0)
            # A copy first: metrics readers call this from their own threads, and
            # iterating a deque the loop appends to meanwhile raises.
            log = list(self.broker.logs.get(subject, ()))
            behind += sum(1 for seq, _ in log if seq >= cursor)
        return behind

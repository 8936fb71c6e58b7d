"""The interface between the bridge and a broker.

A :class:`Transport` is made from a URL and opened once per ``async with bridge``;
opening yields a :class:`Channel`, the node's connection. The bridge never speaks a
broker's protocol: it publishes bytes to a *subject* (one per bridged signal, the
signal's name), pulls batches of :class:`Message` from the channel, and settles each
one with exactly one of :meth:`Channel.ack`, :meth:`Channel.retry_later` or
:meth:`Channel.dead_letter`.

The shape is the common ground of Redis and NATS:

* *at most once* (Redis Pub/Sub, core NATS): ``fetch`` returns what arrived while the
  node listened; settling does nothing; each reconnect calls ``on_reconnect(True)``.
* *at least once* (Redis Streams, JetStream): one durable consumer per node, so every
  node sees every event; a message stays pending until acknowledged; ``fetch``
  returns redeliveries (with their delivery count) as well as new messages;
  receipts (which receivers already succeeded for an event) live in the broker.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream

__all__ = [
    "Channel",
    "Delivery",
    "Message",
    "OnReconnect",
    "Transport",
    "TransportError",
    "TransportOptions",
    "open_transport",
    "receive_batch",
    "redact_url",
]

Delivery = Literal["at_most_once", "at_least_once"]

#: Called by a channel after it reconnected; the flag says whether events may have
#: been missed meanwhile.
OnReconnect = Callable[[bool, str], Awaitable[None]]


class TransportError(ConnectionError):
    """Raised when the broker cannot be reached or refuses an operation."""


@dataclass(frozen=True, eq=False)
class Message:
    """One message pulled from a channel.

    :ivar subject: the subject it was published to (the signal's name).
    :ivar data: the bytes published.
    :ivar deliveries: 1 the first time this node receives it, more on redelivery.
    :ivar handle: the transport's own reference, for settling it.
    """

    subject: str
    data: bytes
    deliveries: int
    handle: Any


class Channel(ABC):
    """One node's open connection to the broker. Only the bridge's loop uses it."""

    @abstractmethod
    async def publish(self, subject: str, data: bytes) -> str:
        """Publish *data*; return the broker's id for it. Raises
        :class:`TransportError` if the broker did not take it."""

    async def publish_event(self, subject: str, data: bytes, event_id: str) -> str:
        """:meth:`publish` for the event *event_id*: a transport whose broker drops
        a publish repeated with the same id (JetStream's ``Nats-Msg-Id``) sends the
        id along."""
        return await self.publish(subject, data)

    @abstractmethod
    async def fetch(self, max_messages: int) -> list[Message]:
        """Up to *max_messages* messages, redeliveries due first. Waits a bounded
        time (about a second) and may return an empty list; cancellation-safe in
        that a message lost to a cancelled fetch is redelivered (at least once) or
        was allowed to be lost (at most once)."""

    @abstractmethod
    async def ack(self, message: Message) -> None:
        """The node is done with *message*: never deliver it to this node again."""

    async def ack_many(self, messages: Sequence[Message]) -> None:
        """:meth:`ack` each of *messages*, in as few round trips as the broker
        allows. On :class:`TransportError` none, some or all were acknowledged: the
        others stay pending and are delivered again (at least once)."""
        for message in messages:
            await self.ack(message)

    async def ack_own(self, messages: Sequence[Message]) -> None:
        """Acknowledge messages that need no handling (the node's own events). A
        transport may defer this to its next :meth:`fetch` (one round trip for
        both): if the node dies first, they come back and are acknowledged then."""
        for message in messages:
            await self.ack(message)

    @abstractmethod
    async def retry_later(self, message: Message, delay: float) -> None:
        """Deliver *message* to this node again, no sooner than *delay* seconds."""

    @abstractmethod
    async def dead_letter(self, message: Message, reason: str) -> None:
        """Store *message* with *reason* where an operator can inspect it, and
        acknowledge it."""

    @abstractmethod
    async def succeeded(self, event_id: str) -> set[str]:
        """The receiver keys recorded as having succeeded for *event_id* here."""

    @abstractmethod
    async def record_success(self, event_id: str, keys: Sequence[str]) -> None:
        """Record that the receivers *keys* succeeded for *event_id* on this node;
        the record expires after the bridge's ``receipt_ttl``."""

    def lag(self) -> int | None:
        """Events published but not yet read by this node, when last known."""
        return None


class Transport(ABC):
    """A broker, chosen by a URL scheme; :meth:`open` once per bridge run."""

    #: Whether the client library only runs under asyncio.
    asyncio_only: bool = False
    #: The client library's name, for errors.
    client_library: str = "its client library"
    #: The broker's kind, as tracing names it (``messaging.system``).
    system: str = "memory"

    @property
    @abstractmethod
    def display_url(self) -> str:
        """The URL with any password replaced by ``***``: safe for logs."""

    @abstractmethod
    def open(
        self,
        *,
        node_id: str,
        delivery: Delivery,
        subjects: Sequence[str],
        options: TransportOptions,
        on_reconnect: OnReconnect,
    ) -> AbstractAsyncContextManager[Channel]:
        """Connect, subscribe to *subjects* and yield the channel; close it on exit.
        Background work the channel needs runs in a task group owned by this
        context."""


@dataclass(frozen=True)
class TransportOptions:
    """Settings every transport honours (see :class:`~asignal.bridge.Bridge`)."""

    prefix: str
    max_length: int
    receipt_ttl: float
    claim_idle: float
    max_deliveries: int = 5


def redact_url(url: str) -> str:
    """*url* with its password, if any (``user:password@`` or ``?password=``),
    replaced by ``***``."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        user = parts.username or ""
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        netloc = f"{user}:***@{host}"
        if parts.port is not None:
            netloc += f":{parts.port}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = "&".join(
            f"{name}=***" if name.lower() == "password" else f"{name}={value}"
            for name, value in pairs
        )
    shown = f"{parts.scheme}://{netloc}{parts.path}"
    return f"{shown}?{query}" if query else shown


def open_transport(url: str) -> Transport:
    """The transport for *url*'s scheme.

    :raises ValueError: an unknown scheme.
    :raises ImportError: the scheme's client library is missing (with the extra to
        install).
    """
    scheme = urlsplit(url).scheme
    if scheme == "memory":
        from ._memory import MemoryTransport

        return MemoryTransport(url)
    if scheme in ("redis", "rediss", "unix"):
        from ._redis import RedisTransport

        return RedisTransport(url)
    if scheme in ("nats", "tls"):
        from ._nats import NatsTransport

        return NatsTransport(url)
    raise ValueError(
        f"Bridge URL {redact_url(url)!r} has no transport: use redis://, rediss:// "
        "(pip install 'asignal[redis]'), nats:// (pip install 'asignal[nats]') or "
        "memory://NAME."
    )


async def receive_batch(
    received: MemoryObjectReceiveStream[Message], max_messages: int, wait: float
) -> list[Message]:
    """Up to *max_messages* of the messages a subscription's callback put in
    *received*: the first waited for at most *wait* seconds (none: an empty list),
    the rest only those already there."""
    found: list[Message] = []
    with anyio.move_on_after(wait):
        found.append(await received.receive())
    while found and len(found) < max_messages:
        try:
            found.append(received.receive_nowait())
        except anyio.WouldBlock:
            break
    return found

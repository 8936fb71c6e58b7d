"""``Bridge``: a signal sent in one process reaches the receivers of every process."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import socket
import threading
import uuid
import weakref
from collections.abc import AsyncGenerator, Callable, Iterable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any, get_args

import anyio
import anyio.from_thread
import anyio.lowlevel
import anyio.to_thread

from asignal import Signal
from asignal._integration import BridgeEvent, publishing

from ._consumer import Codec, Consumer, Counters, Registration, Settings
from ._envelope import Envelope, encode_envelope, encode_sender, sender_ref
from ._event import bridge_reconnected, delivering
from ._receivers import PUBLISHER_MARK
from ._transport import (
    Channel,
    Delivery,
    Transport,
    TransportOptions,
    open_transport,
)

__all__ = [
    "Bridge",
    "BridgeClosedError",
    "BridgeStatistics",
    "Publication",
    "bridges_of",
]

logger = logging.getLogger("asignal")


class BridgeClosedError(RuntimeError):
    """Raised when a bridged signal is sent while its bridge is not open."""


@dataclass(frozen=True)
class Publication:
    """The bridge's result in a send's results: what it published.

    :ivar event_id: the event's id (the same on every node).
    :ivar signal: the signal's name.
    :ivar url: the broker's URL, without password.
    :ivar message_id: the broker's id for the message (a stream entry id on Redis
        Streams).
    """

    event_id: str
    signal: str
    url: str
    message_id: str


@dataclass(frozen=True)
class BridgeStatistics:
    """A snapshot of a bridge's counters since it was made.

    :ivar published: events this node published.
    :ivar delivered: messages read from the broker (redeliveries included).
    :ivar acknowledged: events settled after every receiver succeeded (or this
        node's own events, when they were read back).
    :ivar redelivered: messages read again after a failure or a restart.
    :ivar dead_lettered: messages refused or given up on.
    :ivar receiver_errors: receiver runs that raised.
    :ivar in_flight: events read and not settled yet.
    :ivar lag: events in the broker this node has not read yet, when known.
    """

    published: int
    delivered: int
    acknowledged: int
    redelivered: int
    dead_lettered: int
    receiver_errors: int
    in_flight: int
    lag: int | None


def _default_node_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


#: The attribute of a bridge's own receiver that names its bridge (bridges_of()).
_OWNER = "_asignal_bridge"


#: The bridges open now (this package's only process-wide state): what
#: open_bridges() reports, for metrics. Guarded by _open_lock: metrics readers
#: list it from threads of their own while event loops add and discard bridges (a
#: set that changes size while it is listed raises RuntimeError).
_open: weakref.WeakSet[Bridge] = weakref.WeakSet()
_open_lock = threading.Lock()


def open_bridges() -> list[Bridge]:
    """Every bridge open now (inside its ``async with``), in no particular order:
    what metrics exporters read (``asignal.otel``'s bridge gauges). Thread-safe."""
    with _open_lock:
        return list(_open)


def bridges_of(signal: Signal) -> list[Bridge]:
    """The bridges *signal* is added to (and not removed from), in the order its
    receivers run: what tools such as ``asignal list`` show. Read from the signal's
    live receivers, so it holds no reference of its own."""
    found: list[Bridge] = []
    for info in signal.describe():
        bridge = getattr(info.receiver, _OWNER, None)
        if isinstance(bridge, Bridge):
            found.append(bridge)
    return found


def _running_asyncio() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class Bridge:
    """Carries the sends of the signals added to it to every node on the same
    broker, and runs the local receivers for events the other nodes send.

    :param url: the broker: ``redis://[:password@]host:port/db``, ``rediss://...``
        (extra ``asignal[redis]``), ``nats://host:port`` or ``tls://...`` (extra
        ``asignal[nats]``; JetStream settings as query parameters) or
        ``memory://NAME`` (in-process).
    :param node_id: this node's name, unique among the nodes. Required for
        ``at_least_once``, where it names the node's consumer group: a node that
        restarts with the same id resumes where it stopped. Defaults to
        ``host-pid-random`` for ``at_most_once``.
    :param delivery: ``"at_most_once"`` (Redis Pub/Sub, core NATS: nodes that are
        not listening miss the event) or ``"at_least_once"`` (Redis Streams,
        JetStream: an event is acknowledged only after every local receiver
        succeeded, else redelivered).
    :param prefix: the prefix of every key, stream, channel and subject the bridge
        uses.
    :param batch_size: most messages read per fetch.
    :param max_in_flight: most events held (read, not settled) by this node.
    :param max_deliveries: an event whose receivers still fail after this many
        deliveries is dead-lettered.
    :param retry_delay: first delay before a failed event is redelivered; it doubles
        per delivery, up to *max_retry_delay*.
    :param receipt_ttl: seconds a record of which receivers succeeded for an event is
        kept, so a redelivery does not run them again.
    :param max_length: approximate number of events kept per signal's stream.
    :param max_message_bytes: the largest encoded event; larger sends raise
        ``ValueError``, larger messages read are dead-lettered.
    :param claim_idle: seconds after which an event this node read but never settled
        (lost track of) is claimed and delivered again.
    :param shutdown_timeout: seconds the events in hand get to finish when the bridge
        closes.
    :param headers: called at each publish; the headers to send with the event
        (such as ``{"traceparent": ...}``).
    """

    def __init__(
        self,
        url: str,
        *,
        node_id: str | None = None,
        delivery: Delivery = "at_most_once",
        prefix: str = "asignal",
        batch_size: int = 100,
        max_in_flight: int = 100,
        max_deliveries: int = 5,
        retry_delay: float = 1.0,
        max_retry_delay: float = 60.0,
        receipt_ttl: float = 24 * 3600.0,
        max_length: int = 100_000,
        max_message_bytes: int = 1_000_000,
        claim_idle: float = 60.0,
        shutdown_timeout: float = 10.0,
        headers: Callable[[], Mapping[str, str]] | None = None,
    ) -> None:
        if delivery not in get_args(Delivery):
            raise ValueError(
                f"delivery must be 'at_most_once' or 'at_least_once', got {delivery!r}."
            )
        if node_id is None:
            if delivery == "at_least_once":
                raise ValueError(
                    "delivery='at_least_once' needs a stable node_id, e.g. "
                    "Bridge(url, node_id='web-1', delivery='at_least_once'): it names "
                    "the node's consumer group, so a restarted node resumes its "
                    "pending events."
                )
            node_id = _default_node_id()
        if (
            not isinstance(node_id, str)  # pyright: ignore[reportUnnecessaryIsInstance]
            or not node_id
            or any(c.isspace() or c == ":" for c in node_id)
        ):
            raise ValueError(
                f"node_id must be a non-empty string without spaces or ':', got "
                f"{node_id!r}."
            )
        for name, value in (
            ("batch_size", batch_size),
            ("max_in_flight", max_in_flight),
            ("max_deliveries", max_deliveries),
            ("max_length", max_length),
            ("max_message_bytes", max_message_bytes),
        ):
            if value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}.")
        self._transport: Transport = open_transport(url)
        self._display_url = self._transport.display_url
        self.node_id = node_id
        self.delivery: Delivery = delivery
        self._settings = Settings(
            node_id=node_id,
            delivery=delivery,
            batch_size=batch_size,
            max_in_flight=max_in_flight,
            max_deliveries=max_deliveries,
            retry_delay=retry_delay,
            max_retry_delay=max_retry_delay,
            max_message_bytes=max_message_bytes,
            shutdown_timeout=shutdown_timeout,
            system=self._transport.system,
        )
        self._options = TransportOptions(
            prefix=prefix,
            max_length=max_length,
            receipt_ttl=receipt_ttl,
            claim_idle=claim_idle,
            max_deliveries=max_deliveries,
        )
        self._headers = headers
        self._registrations: dict[str, Registration] = {}
        self._counters = Counters()
        self._channel: Channel | None = None
        self._token: anyio.lowlevel.EventLoopToken | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stack: AsyncExitStack | None = None

    def __repr__(self) -> str:
        return (
            f"<Bridge {self.url!r} node_id={self.node_id!r} delivery={self.delivery!r}>"
        )

    @property
    def url(self) -> str:
        """The broker's URL, without password."""
        return self._display_url

    # -- signals ---------------------------------------------------------------------

    def add(
        self,
        signal: Signal,
        *,
        codec: Codec | None = None,
        senders: Iterable[object] = (),
    ) -> Signal:
        """Bridge *signal*: its sends are published, and events other nodes publish
        run its local receivers. Return the signal.

        The bridge connects a receiver of its own to the signal (strongly, for any
        sender; it shows in ``signal.describe()``) whose result is a
        :class:`Publication`. While the bridge is closed, that receiver raises
        :class:`BridgeClosedError`: a send is never silently kept local.

        :param codec: encodes the keyword arguments for the wire and decodes them on
            the receiving nodes (see :class:`Codec`); without one they must be
            JSON-serialisable.
        :param senders: classes and functions that may travel as the sender (as
            ``module:qualname``); a receiving node maps a name back only to the
            senders it registered, never by importing.
        :raises ValueError: the signal has no ``name``, or another signal with its
            name was added.
        :raises RuntimeError: the bridge is open (add signals before entering it).
        """
        name = signal.name
        if not name:
            raise ValueError(
                f"{signal!r} has no name, and only named signals cross a bridge: "
                "create it as Signal(name='app.event', ...)."
            )
        if self._stack is not None:
            raise RuntimeError(f"add {signal!r} to {self!r} before entering it.")
        existing = self._registrations.get(name)
        if existing is not None and existing.signal is not signal:
            raise ValueError(
                f"another signal named {name!r} was already added to {self!r}; "
                "signal names identify them across processes, so they must be unique."
            )
        by_ref: dict[str, object] = {}
        for sender in senders:
            ref = sender_ref(sender)
            if ref is None or not (isinstance(sender, type) or callable(sender)):
                raise TypeError(
                    f"sender {sender!r} cannot be registered: only classes and "
                    "module-level functions travel by name."
                )
            by_ref[ref] = sender
        if existing is not None:
            existing.codec = codec
            existing.senders = by_ref
            return signal

        async def publish(signal: Signal, sender: object, **named: Any) -> Any:
            return await self._publish(registration, sender, named)

        publish.__qualname__ = f"Bridge({self.url!r}).publish"
        publish.__module__ = "asignal.bridge"
        setattr(publish, PUBLISHER_MARK, True)
        setattr(publish, _OWNER, self)
        registration = Registration(signal, name, codec, by_ref)
        self._registrations[name] = registration
        signal.connect(publish, weak=False, dispatch_uid=self._uid)
        return signal

    def remove(self, signal: Signal) -> bool:
        """Stop bridging *signal*; return whether it was added."""
        if self._stack is not None:
            raise RuntimeError(f"remove {signal!r} from {self!r} after leaving it.")
        registration = self._registrations.get(signal.name or "")
        if registration is None or registration.signal is not signal:
            return False
        del self._registrations[registration.name]
        signal.disconnect(dispatch_uid=self._uid)
        return True

    @property
    def _uid(self) -> str:
        # Per bridge object: two bridges on the same URL and node (a node reopened
        # in a test) each connect their own receiver.
        return f"asignal.bridge:{self.node_id}:{id(self):x}"

    @property
    def signals(self) -> list[Signal]:
        """The signals added, in the order they were added."""
        return [r.signal for r in self._registrations.values()]

    # -- publishing ------------------------------------------------------------------

    def _encode(
        self,
        registration: Registration,
        sender: object,
        named: dict[str, Any],
        headers: dict[str, str],
        event_id: str,
    ) -> bytes:
        name = registration.name
        wire_sender = encode_sender(sender, name)
        if (
            isinstance(wire_sender, dict)
            and wire_sender["ref"] not in registration.senders
        ):
            qualname = getattr(sender, "__qualname__", "...")
            raise TypeError(
                f"sender {sender!r} of signal {name!r} is not registered: add it with "
                f"bridge.add(signal, senders=[{qualname}]) on every node, so "
                "receiving nodes can map it back."
            )
        kwargs = named
        if registration.codec is not None:
            kwargs = registration.codec.encode(dict(named))
        envelope = Envelope(
            signal=name,
            sender=wire_sender,
            kwargs=kwargs,
            origin=self.node_id,
            headers=headers,
            id=event_id,
        )
        return encode_envelope(envelope, limit=self._settings.max_message_bytes)

    async def _publish(
        self, registration: Registration, sender: object, named: dict[str, Any]
    ) -> Publication | None:
        if delivering.get() is not None:
            # An event from another node, or a send made while handling one: every
            # node runs these receivers itself, so publishing would repeat them.
            return None
        headers = dict(self._headers()) if self._headers is not None else {}
        event_id = uuid.uuid4().hex
        event = BridgeEvent(
            signal=registration.name,
            system=self._transport.system,
            id=event_id,
            node=self.node_id,
            origin=self.node_id,
        )
        with publishing(event, headers):
            data = self._encode(registration, sender, named, headers, event_id)
            return await self._publish_encoded(registration, event_id, data)

    async def _publish_encoded(
        self, registration: Registration, event_id: str, data: bytes
    ) -> Publication:
        token = self._token
        if token is None:
            raise BridgeClosedError(
                f"{registration.signal!r} was sent while {self!r} is not open, so no "
                "other node would receive it: send it inside `async with bridge:` (or "
                "the ASGI lifespan that enters it)."
            )
        here = anyio.lowlevel.current_token()
        if here.native_token is token.native_token:
            return await self._publish_here(registration, event_id, data)
        # A send() from sync code ran this receiver on another loop (asignal's kept
        # loop, or another thread's): publish on the bridge's own loop, through its
        # own connection, and wait for the outcome here.
        loop = self._loop
        if loop is not None and _running_asyncio():
            future = asyncio.run_coroutine_threadsafe(
                self._publish_here(registration, event_id, data), loop
            )
            return await asyncio.wrap_future(future)

        async def publish_there() -> Publication:
            return await self._publish_here(registration, event_id, data)

        return await anyio.to_thread.run_sync(
            functools.partial(anyio.from_thread.run, publish_there, token=token)
        )

    async def _publish_here(
        self, registration: Registration, event_id: str, data: bytes
    ) -> Publication:
        channel = self._channel
        if channel is None:
            raise BridgeClosedError(
                f"{self!r} closed before {registration.signal!r} could be published."
            )
        message_id = await channel.publish_event(registration.name, data, event_id)
        self._counters.published += 1
        return Publication(
            event_id=event_id,
            signal=registration.name,
            url=self.url,
            message_id=message_id,
        )

    # -- running ---------------------------------------------------------------------

    async def __aenter__(self) -> Bridge:
        if self._stack is not None:
            raise RuntimeError(f"{self!r} is already open; enter it once at a time.")
        stack = self._stack = AsyncExitStack()
        try:
            await stack.enter_async_context(self._run())
        except BaseException:
            self._stack = None
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        stack, self._stack = self._stack, None
        if stack is None:
            raise RuntimeError(f"{self!r} was left without being entered.")
        return await stack.__aexit__(exc_type, exc, tb)

    @asynccontextmanager
    async def _run(self) -> AsyncGenerator[None]:
        if self._transport.asyncio_only and not _running_asyncio():
            raise RuntimeError(
                f"Bridge({self.url!r}) runs only under asyncio: its client library "
                f"({self._transport.client_library}) is asyncio-only. Run this bridge "
                "in an asyncio program, or use memory:// under trio."
            )
        async with AsyncExitStack() as stack:
            channel = await stack.enter_async_context(
                self._transport.open(
                    node_id=self.node_id,
                    delivery=self.delivery,
                    subjects=list(self._registrations),
                    options=self._options,
                    on_reconnect=self._reconnected,
                )
            )
            consumer = Consumer(
                channel, self._settings, dict(self._registrations), self._counters
            )
            tasks = await stack.enter_async_context(anyio.create_task_group())
            tasks.start_soon(consumer.run)
            self._channel = channel
            self._token = anyio.lowlevel.current_token()
            self._loop = asyncio.get_running_loop() if _running_asyncio() else None
            with _open_lock:
                _open.add(self)
            try:
                yield
            finally:
                with _open_lock:
                    _open.discard(self)
                self._channel = None
                self._token = None
                self._loop = None
                consumer.stop()

    async def _reconnected(self, missed: bool, reason: str) -> None:
        log = logger.warning if missed else logger.info
        log(
            "bridge node %r reconnected to %s%s: %s",
            self.node_id,
            self.url,
            "; events published meanwhile may be lost" if missed else "",
            reason,
        )
        await bridge_reconnected.asend_robust(self, missed=missed, reason=reason)

    def statistics(self) -> BridgeStatistics:
        """The counters now (see :class:`BridgeStatistics`)."""
        counters = self._counters
        channel = self._channel
        return BridgeStatistics(
            published=counters.published,
            delivered=counters.delivered,
            acknowledged=counters.acknowledged,
            redelivered=counters.redelivered,
            dead_lettered=counters.dead_lettered,
            receiver_errors=counters.receiver_errors,
            in_flight=counters.in_flight,
            lag=channel.lag() if channel is not None else None,
        )

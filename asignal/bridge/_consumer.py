"""A node's reading side: pull events from the channel, run local receivers, settle.

Order: events from one origin on one signal are handled one after another, in the
order the channel returned them (a *lane* per origin and signal); lanes run
concurrently. A redelivery comes after the events that were read meanwhile.

Bounds: at most ``max_in_flight`` events are held (read but not settled) at once;
the reader waits for room before fetching, so a slow node falls behind in the broker,
never in memory.
"""

from __future__ import annotations

import collections
import inspect
import logging
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import anyio
import anyio.abc
import anyio.lowlevel

from asignal import Signal
from asignal._integration import BridgeEvent, log_fields, processing

from ._envelope import Envelope, EnvelopeError, decode_envelope
from ._event import BridgedEvent, delivering
from ._receivers import run_receivers
from ._transport import Channel, Delivery, Message, TransportError

__all__ = ["Codec", "Consumer", "Counters", "Registration", "Settings"]

logger = logging.getLogger("asignal")


class Codec(Protocol):
    """Turns a signal's keyword arguments into JSON-serialisable values and back,
    for arguments JSON cannot carry (a model instance travelling as its key).

    ``encode`` runs in the sending code, before publishing; ``decode`` on each
    receiving node, before its receivers run, and may be a coroutine function (to
    load an object). An exception from ``decode`` dead-letters the event.
    """

    def encode(self, kwargs: dict[str, Any]) -> dict[str, Any]: ...

    def decode(
        self, data: dict[str, Any]
    ) -> dict[str, Any] | Awaitable[dict[str, Any]]: ...


@dataclass
class Registration:
    """A signal added to a bridge."""

    signal: Signal
    name: str
    codec: Codec | None
    senders: dict[str, object]

    def decode_sender(self, wire: object) -> object:
        """The sender for its wire form; a reference resolves only to a registered
        sender. :raises LookupError: an unregistered reference."""
        if isinstance(wire, dict):
            ref: str = wire["ref"]  # pyright: ignore[reportUnknownVariableType]
            try:
                return self.senders[ref]
            except KeyError:
                raise LookupError(
                    f"sender {ref!r} is not registered with "
                    f"bridge.add({self.name!r}, senders=[...]) on this node"
                ) from None
        return wire

    async def decode_kwargs(self, data: dict[str, Any]) -> dict[str, Any]:
        if self.codec is None:
            return data
        decoded = self.codec.decode(data)
        if inspect.isawaitable(decoded):
            decoded = await decoded
        return decoded


@dataclass
class Counters:
    """The bridge's running totals (see ``BridgeStatistics``)."""

    published: int = 0
    delivered: int = 0
    acknowledged: int = 0
    redelivered: int = 0
    dead_lettered: int = 0
    receiver_errors: int = 0
    in_flight: int = 0


@dataclass(frozen=True)
class Settings:
    node_id: str
    delivery: Delivery
    batch_size: int
    max_in_flight: int
    max_deliveries: int
    retry_delay: float
    max_retry_delay: float
    max_message_bytes: int
    shutdown_timeout: float
    #: The broker's kind (``Transport.system``), for tracing.
    system: str = "memory"


_Lane = tuple[str, str]


@dataclass
class Consumer:
    """Reads one channel until :meth:`stop`; see the module docstring."""

    channel: Channel
    settings: Settings
    registrations: Mapping[str, Registration]
    counters: Counters
    _read_scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    _lanes: dict[_Lane, collections.deque[tuple[Message, Envelope | str]]] = field(
        default_factory=dict[_Lane, collections.deque[tuple[Message, Envelope | str]]]
    )
    _idle: anyio.Event = field(default_factory=anyio.Event)
    #: Set when an event is settled, for a reader waiting for room.
    _room: anyio.Event = field(default_factory=anyio.Event)

    @property
    def _ack_batch(self) -> int:
        # A quarter of what can be held: the reader (waiting for half a batch of
        # room) fetches again while the lane goes on with the rest.
        settings = self.settings
        return max(1, min(settings.batch_size, settings.max_in_flight) // 4)

    def stop(self) -> None:
        """Stop reading; events already read are still handled (see :meth:`run`)."""
        self._read_scope.cancel()

    async def run(self) -> None:
        """Read and handle events until :meth:`stop`, then give the events in hand
        ``shutdown_timeout`` seconds to finish (those that do not are cancelled and,
        at least once, redelivered later)."""
        async with anyio.create_task_group() as lanes:
            with self._read_scope:
                await self._read(lanes)
            if self.counters.in_flight:
                self._idle = anyio.Event()
                with anyio.move_on_after(self.settings.shutdown_timeout) as waited:
                    await self._idle.wait()
                if waited.cancelled_caught:
                    logger.warning(
                        "bridge node %r: %d event(s) still running after "
                        "shutdown_timeout=%ss; cancelled them",
                        self.settings.node_id,
                        self.counters.in_flight,
                        self.settings.shutdown_timeout,
                    )
                    lanes.cancel_scope.cancel()

    async def _read(self, lanes: anyio.abc.TaskGroup) -> None:
        settings = self.settings
        # Fetch only once there is room for half a batch: fetching whenever one slot
        # frees would read one message per round trip while a lane is busy.
        low_water = max(1, min(settings.batch_size, settings.max_in_flight) // 2)
        failures = 0
        while True:
            while settings.max_in_flight - self.counters.in_flight < low_water:
                self._room = anyio.Event()
                await self._room.wait()
            room = settings.max_in_flight - self.counters.in_flight
            try:
                messages = await self.channel.fetch(min(settings.batch_size, room))
            except TransportError as exc:
                failures += 1
                if failures == 1:
                    logger.warning(
                        "bridge node %r cannot read from the broker (%s); retrying "
                        "with back-off",
                        settings.node_id,
                        exc,
                    )
                await anyio.sleep(min(0.1 * 2 ** (failures - 1), 5.0))
                continue
            if failures:
                logger.info("bridge node %r reads again", settings.node_id)
                failures = 0
            own: list[Message] = []
            for message in messages:
                self.counters.delivered += 1
                if message.deliveries > 1:
                    self.counters.redelivered += 1
                parsed: Envelope | str
                try:
                    parsed = decode_envelope(
                        message.data, limit=self.settings.max_message_bytes
                    )
                except EnvelopeError as exc:
                    parsed = f"malformed message: {exc}"
                if (
                    not isinstance(parsed, str)
                    and parsed.origin == self.settings.node_id
                ):
                    own.append(message)
                else:
                    self._enqueue(message, parsed, lanes)
            if own:
                await self._settle_own(own)
            if len(own) < len(messages):
                # Let the lanes begin on what was read before the next read goes
                # out (a lone event waits for one round trip less).
                await anyio.lowlevel.checkpoint()

    async def _settle_own(self, own: list[Message]) -> None:
        """Acknowledge this node's own events, in one go: their receivers ran here
        when they were sent."""
        try:
            await self.channel.ack_own(own)
        except TransportError as exc:
            # Left pending: claimed and settled again later (at least once).
            logger.error(
                "bridge node %r could not acknowledge its own events: %s",
                self.settings.node_id,
                exc,
            )
        else:
            self.counters.acknowledged += len(own)

    def _enqueue(
        self, message: Message, parsed: Envelope | str, lanes: anyio.abc.TaskGroup
    ) -> None:
        """Count *message* in flight and queue it on its lane (started if idle)."""
        self.counters.in_flight += 1
        lane: _Lane = ("", "")
        if not isinstance(parsed, str):
            lane = (message.subject, parsed.origin)
        queue = self._lanes.get(lane)
        if queue is not None:
            queue.append((message, parsed))
            return
        self._lanes[lane] = collections.deque([(message, parsed)])
        lanes.start_soon(self._run_lane, lane)

    async def _run_lane(self, lane: _Lane) -> None:
        """Handle the lane's events in order. Events whose receivers all succeeded
        are acknowledged together (one round trip) when the lane runs dry or
        ``ack_batch`` of them are waiting; until then they count as in flight."""
        queue = self._lanes[lane]
        done: list[Message] = []
        try:
            while queue:
                message, parsed = queue.popleft()
                settled = True
                try:
                    if await self._handle(message, parsed):
                        done.append(message)
                        settled = False
                except TransportError as exc:
                    # Unsettled: at least once, the broker delivers it again.
                    logger.error(
                        "bridge node %r could not settle an event of %r: %s",
                        self.settings.node_id,
                        message.subject,
                        exc,
                    )
                finally:
                    if settled:
                        self._settled(1)
                if done and (not queue or len(done) >= self._ack_batch):
                    await self._ack(done)
                    done = []
        finally:
            del self._lanes[lane]
            if done:
                # Cancelled (shutdown_timeout) with acknowledgements due: their
                # receivers finished, so try once, shielded and briefly.
                with anyio.CancelScope(shield=True), anyio.move_on_after(1.0):
                    await self._ack(done)

    def _settled(self, count: int) -> None:
        self.counters.in_flight -= count
        self._room.set()
        if not self.counters.in_flight:
            self._idle.set()

    async def _ack(self, messages: list[Message]) -> None:
        try:
            await self.channel.ack_many(messages)
        except TransportError as exc:
            # Left pending: delivered again later (at least once).
            logger.error(
                "bridge node %r could not acknowledge %d event(s): %s",
                self.settings.node_id,
                len(messages),
                exc,
            )
        else:
            self.counters.acknowledged += len(messages)
        finally:
            self._settled(len(messages))

    async def _refuse(self, message: Message, reason: str) -> None:
        logger.error(
            "bridge node %r dead-lettered a message on %r: %s",
            self.settings.node_id,
            message.subject,
            reason,
            extra=log_fields(message.subject),
        )
        await self.channel.dead_letter(message, reason)
        self.counters.dead_lettered += 1

    async def _handle(self, message: Message, parsed: Envelope | str) -> bool:
        """Run the event's receivers, or refuse it; whether it is to be
        acknowledged (every receiver succeeded). Failed, refused and retried events
        are settled here."""
        settings = self.settings
        if isinstance(parsed, str):
            await self._refuse(message, parsed)
            return False
        envelope = parsed
        registration = self.registrations.get(envelope.signal)
        if registration is None or envelope.signal != message.subject:
            await self._refuse(
                message,
                f"unknown signal {envelope.signal!r} (not added to this node's "
                "bridge, or published on another signal's subject)",
            )
            return False
        if message.deliveries > settings.max_deliveries:
            await self._refuse(
                message,
                f"event {envelope.id} was delivered {message.deliveries - 1} times "
                f"(max_deliveries={settings.max_deliveries}) and receivers kept "
                "failing",
            )
            return False
        try:
            sender = registration.decode_sender(envelope.sender)
        except LookupError as exc:
            await self._refuse(message, str(exc))
            return False
        try:
            kwargs = await registration.decode_kwargs(envelope.kwargs)
        except Exception as exc:
            await self._refuse(
                message, f"the codec of {envelope.signal!r} rejected it: {exc!r}"
            )
            return False
        at_least_once = settings.delivery == "at_least_once"
        skip: set[str] = set()
        if at_least_once and message.deliveries > 1:
            skip = await self.channel.succeeded(envelope.id)
        event = BridgedEvent(
            id=envelope.id,
            signal=envelope.signal,
            origin=envelope.origin,
            time=envelope.time,
            deliveries=message.deliveries,
            headers=envelope.headers,
        )
        watched = BridgeEvent(
            signal=envelope.signal,
            system=settings.system,
            id=envelope.id,
            node=settings.node_id,
            origin=envelope.origin,
            deliveries=message.deliveries,
        )
        token = delivering.set(event)
        try:
            with processing(watched, envelope.headers):
                outcomes = await run_receivers(
                    registration.signal, sender, kwargs, skip=skip
                )
        finally:
            delivering.reset(token)
        failed = sum(1 for _, error in outcomes if error is not None)
        self.counters.receiver_errors += failed
        if failed and at_least_once:
            if message.deliveries >= settings.max_deliveries:
                errors = [f"{key}: {error!r}" for key, error in outcomes if error]
                await self._refuse(
                    message,
                    f"event {envelope.id}: receivers still failing after "
                    f"{message.deliveries} deliveries (max_deliveries="
                    f"{settings.max_deliveries}): {'; '.join(errors)}",
                )
                return False
            await self.channel.record_success(
                envelope.id, [key for key, error in outcomes if error is None]
            )
            delay = min(
                settings.retry_delay * 2 ** (message.deliveries - 1),
                settings.max_retry_delay,
            )
            await self.channel.retry_later(message, delay)
            return False
        return True

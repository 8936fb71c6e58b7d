"""The JetStream channel, for at least once (see ``_nats``'s docstring).

One stream takes every ``{prefix}.>`` subject (created if missing, limited by age,
size and ``max_length`` events per signal, with a duplicate window on the event id).
The node reads through one durable pull consumer per bridged signal, named after the
node and the signal (a NATS server before 2.10 filters a consumer on one subject
only), created at the stream's end the first time, with explicit acknowledgement,
``ack_wait`` and ``max_deliver`` one above the bridge's ``max_deliveries`` (the
bridge dead-letters an event at that last delivery, so none is dropped unseen).

Messages the node holds (running, or waiting for their retry) are reported in
progress every third of ``ack_wait``, so JetStream redelivers only what a node lost
track of (it died, or its connection did). A retry waits here and is then negatively
acknowledged, which JetStream counts as a delivery. When the channel closes, it
withdraws its open pull requests (unsubscribing their inbox, confirmed by the server
before the channel is closed), so events published afterwards wait for the node's
next run, and negatively acknowledges every message still held, with a delay of a
second, so that run gets it then. If the server lost the stream or the consumers
(restarted without its store), they are created again from the start of the new
stream, with back-off, and ``on_reconnect(True, ...)`` says events may have been
lost.
"""

from __future__ import annotations

import asyncio
import heapq
import json
import logging
import time
from collections.abc import AsyncGenerator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.abc
import anyio.lowlevel

from ._nats import NatsSettings, name_token, nats_errors, synced
from ._nats_core import dead_letter_headers, dead_letter_subject
from ._transport import (
    Channel,
    Message,
    OnReconnect,
    TransportError,
    TransportOptions,
)

__all__ = ["JetStreamChannel"]

logger = logging.getLogger("asignal")

#: The longest a fetch waits for something to arrive.
_FETCH_WAIT = 1.0
#: Seconds after which the messages a closing node held are delivered again.
_HAND_BACK_DELAY = 1.0
#: The longest back-off between attempts to create a lost stream again.
_MAX_BACKOFF = 5.0


@dataclass
class _Consumer:
    durable: str
    subject: str
    signal: str
    pull: Any = None


class JetStreamChannel(Channel):
    """At least once: a stream, durable consumers per node (module docstring)."""

    def __init__(
        self,
        client: Any,
        display_url: str,
        node_id: str,
        subjects: Sequence[str],
        options: TransportOptions,
        settings: NatsSettings,
        on_reconnect: OnReconnect,
    ) -> None:
        self.client = client
        self.js: Any = client.jetstream(timeout=5)
        self.display_url = display_url
        self.node = name_token(node_id)
        self.node_id = node_id
        self.options = options
        self.settings = settings
        self.on_reconnect = on_reconnect
        self.stream = settings.stream or name_token(options.prefix)
        self.dead_stream = f"{self.stream}-dead-letter"
        self.bucket = settings.receipts or f"{self.stream}-receipts"
        self.ack_wait = settings.ack_wait or options.claim_idle
        self.consumers = [
            _Consumer(
                f"{self.node}--{name_token(signal)}",
                f"{options.prefix}.{signal}",
                signal,
            )
            for signal in subjects
        ]
        self._kv: Any = None
        #: Messages read and not settled, by stream sequence.
        self._held: dict[int, Any] = {}
        #: (due, stream sequence) of failed messages waiting for their back-off.
        self._retries: list[tuple[float, int]] = []
        self._turn = 0
        self._lag: int | None = None
        self._next_lag = 0.0
        self._backoff = 0.1

    def failed(self, action: str, exc: BaseException) -> TransportError:
        return TransportError(
            f"NATS at {self.display_url}: {action} failed: {type(exc).__name__}: {exc}"
        )

    # -- setting up ------------------------------------------------------------------

    @asynccontextmanager
    async def running(self, tasks: anyio.abc.TaskGroup) -> AsyncGenerator[None]:
        """Create what is missing and bind the consumers; keep held messages alive
        from *tasks*; on exit, hand back what is still held."""
        try:
            await self._set_up(first_time=True)
        except nats_errors() as exc:
            raise self.failed("setting up JetStream", exc) from exc
        tasks.start_soon(self._keep_alive)
        try:
            yield
        finally:
            with anyio.CancelScope(shield=True):
                await self._hand_back()

    async def _set_up(self, *, first_time: bool) -> None:
        from nats.js.api import (
            AckPolicy,
            ConsumerConfig,
            DeliverPolicy,
            StorageType,
            StreamConfig,
        )

        options, settings = self.options, self.settings
        window = settings.duplicate_window
        if settings.max_age > 0:
            window = min(window, settings.max_age)  # JetStream's own rule
        await self._ensure_stream(
            StreamConfig(
                name=self.stream,
                subjects=[f"{options.prefix}.>"],
                max_age=settings.max_age,
                max_bytes=settings.max_bytes,
                max_msgs_per_subject=options.max_length,
                duplicate_window=window,
                storage=StorageType.FILE,
            )
        )
        await self._ensure_stream(
            StreamConfig(
                name=self.dead_stream,
                subjects=[dead_letter_subject(options.prefix, ">")],
                max_age=settings.max_age,
                max_bytes=settings.max_bytes,
                max_msgs=options.max_length,
                duplicate_window=window,
                storage=StorageType.FILE,
            )
        )
        from nats.js.errors import BucketNotFoundError

        try:
            self._kv = await self.js.key_value(self.bucket)
        except BucketNotFoundError:
            self._kv = await self.js.create_key_value(
                bucket=self.bucket, history=1, ttl=options.receipt_ttl
            )
        for consumer in self.consumers:
            config = ConsumerConfig(
                durable_name=consumer.durable,
                filter_subject=consumer.subject,
                # The first time at the stream's end, as a new node has nothing to
                # catch up on; after a loss, from the start of the new stream.
                deliver_policy=DeliverPolicy.NEW if first_time else DeliverPolicy.ALL,
                ack_policy=AckPolicy.EXPLICIT,
                ack_wait=self.ack_wait,
                max_deliver=options.max_deliveries + 1,
                max_ack_pending=-1,
            )
            await self._ensure_consumer(config)
            # After a loss: a request of the old subscription must not take events.
            try:
                await self._unsubscribe(consumer)
            except nats_errors():
                pass  # the connection's subscriptions are gone with it
            consumer.pull = await self.js.pull_subscribe_bind(
                consumer=consumer.durable, stream=self.stream
            )

    async def _ensure_stream(self, config: Any) -> None:
        from nats.js.errors import NotFoundError

        try:
            info = await self.js.stream_info(config.name)
        except NotFoundError:
            await self.js.add_stream(config)
            return
        wanted = config.subjects[0]
        if wanted not in (info.config.subjects or []):
            raise TransportError(
                f"NATS at {self.display_url}: the stream {config.name!r} exists but "
                f"does not take {wanted!r}: give the bridge another stream "
                "(?stream=NAME in the URL) or another prefix."
            )

    async def _ensure_consumer(self, config: Any) -> None:
        from nats.js.errors import BadRequestError, NotFoundError

        try:
            await self.js.consumer_info(self.stream, config.durable_name)
        except NotFoundError:
            await self.js.add_consumer(self.stream, config)
            return
        try:
            await self.js.add_consumer(self.stream, config)
        except BadRequestError as exc:
            logger.warning(
                "NATS at %s: kept consumer %r as it was (%s)",
                self.display_url,
                config.durable_name,
                exc,
            )

    async def _keep_alive(self) -> None:
        """Report held messages in progress, so JetStream does not redeliver what
        this node is still working on or waiting to retry."""
        period = max(0.05, self.ack_wait / 3)
        while True:
            await anyio.sleep(period)
            for msg in list(self._held.values()):
                try:
                    await msg.in_progress()
                except nats_errors():
                    break  # disconnected: JetStream redelivers after ack_wait

    async def _hand_back(self) -> None:
        """Withdraw this node's pull requests, then hand back what it holds.

        The reader stops in the middle of a fetch, so a pull request of this node is
        usually still open on the server (for up to ``_FETCH_WAIT``). Were the
        client just closed, JetStream could hand that request an event published
        right after the channel closed (the server may see the publish before it
        sees this connection go) and the event would come back only after
        ``ack_wait``. Unsubscribing the requests' inbox withdraws them (JetStream
        drops a request nobody listens to before delivering), and :func:`synced`
        returns once the server has done so. The held messages are negatively
        acknowledged after the unsubscribing, so JetStream gives them to the node's
        next run (after ``_HAND_BACK_DELAY``), not to this run's requests. A message
        the server sent to an open request in the last instant, before the
        unsubscribing reached it, is redelivered after ``ack_wait``, as after a
        crash.
        """
        try:
            for consumer in self.consumers:
                await self._unsubscribe(consumer)
            for msg in self._held.values():
                # Delayed: nats-server 2.9 mishandles several plain NAKs in a row
                # from a closing node (the last message delivered came back twice,
                # once counted as a first delivery, and another never came back).
                await msg.nak(delay=_HAND_BACK_DELAY)
            await synced(self.client, timeout=2)
        except nats_errors():
            pass  # unacknowledged: redelivered after ack_wait
        finally:
            self._held.clear()
            self._retries.clear()

    @staticmethod
    async def _unsubscribe(consumer: _Consumer) -> None:
        """Drop *consumer*'s pull subscription, and with it its open requests."""
        pull, consumer.pull = consumer.pull, None
        if pull is not None:
            await pull.unsubscribe()

    # -- the channel -----------------------------------------------------------------

    async def publish(self, subject: str, data: bytes) -> str:
        return await self._publish(subject, data, None)

    async def publish_event(self, subject: str, data: bytes, event_id: str) -> str:
        return await self._publish(subject, data, {"Nats-Msg-Id": event_id})

    async def _publish(
        self, subject: str, data: bytes, headers: dict[str, str] | None
    ) -> str:
        try:
            ack: Any = await self.js.publish(
                f"{self.options.prefix}.{subject}", data, headers=headers
            )
        except nats_errors() as exc:
            raise self.failed(f"publishing to {subject!r}", exc) from exc
        return str(ack.seq)

    async def fetch(self, max_messages: int) -> list[Message]:
        from nats.js.errors import NotFoundError, ServiceUnavailableError

        try:
            found = await self._fetch(max_messages)
        except (NotFoundError, ServiceUnavailableError) as exc:
            await self._recover(exc)
            return []
        except nats_errors() as exc:
            raise self.failed("reading", exc) from exc
        self._backoff = 0.1
        return found

    async def _fetch(self, max_messages: int) -> list[Message]:
        import nats.errors

        now = time.monotonic()
        if now >= self._next_lag:
            self._next_lag = now + 5.0
            await self._update_lag()
        while self._retries and self._retries[0][0] <= now:
            _, seq = heapq.heappop(self._retries)
            msg = self._held.pop(seq, None)
            if msg is not None:
                await msg.nak()  # JetStream delivers it again, counted
        wait = _FETCH_WAIT
        if self._retries:
            wait = max(0.01, min(wait, self._retries[0][0] - now))
        count = len(self.consumers)
        if count > 1:
            wait = max(0.05, wait / count)
        for _ in range(count):
            consumer = self.consumers[self._turn % count]
            self._turn += 1
            try:
                msgs: list[Any] = await consumer.pull.fetch(max_messages, timeout=wait)
            except (nats.errors.TimeoutError, asyncio.TimeoutError, TimeoutError):
                continue
            found: list[Message] = []
            for msg in msgs:
                metadata = msg.metadata
                self._held[metadata.sequence.stream] = msg
                found.append(
                    Message(consumer.signal, msg.data, metadata.num_delivered, msg)
                )
            if found:
                return found
        return []

    async def _recover(self, exc: BaseException) -> None:
        backoff = self._backoff
        self._backoff = min(backoff * 2, _MAX_BACKOFF)
        logger.error(
            "NATS at %s lost the stream %r or the consumers of node %r (%s; server "
            "restarted without its store?); events published before may be lost. "
            "Creating them again in %.1fs",
            self.display_url,
            self.stream,
            self.node_id,
            exc,
            backoff,
        )
        await anyio.sleep(backoff)
        self._held.clear()
        self._retries.clear()
        try:
            await self._set_up(first_time=False)
        except nats_errors() as error:
            raise self.failed("creating the stream again", error) from error
        await self.on_reconnect(
            True, "NATS lost the stream or consumers; created them again"
        )

    def check_soon(self) -> None:
        """Look at the consumers at the next fetch (after a reconnect: a fetch from
        a consumer the server lost only ever times out)."""
        self._next_lag = 0.0

    async def _update_lag(self) -> None:
        """Read the consumers' lag; a consumer gone raises ``NotFoundError``."""
        from nats.js.errors import NotFoundError

        total = 0
        for consumer in self.consumers:
            try:
                info: Any = await self.js.consumer_info(self.stream, consumer.durable)
            except NotFoundError:
                raise
            except nats_errors():
                return
            total += int(info.num_pending or 0)
        self._lag = total

    def lag(self) -> int | None:
        return self._lag

    def _release(self, message: Message) -> Any:
        msg = message.handle
        self._held.pop(msg.metadata.sequence.stream, None)
        return msg

    async def ack(self, message: Message) -> None:
        msg = self._release(message)
        try:
            await msg.ack()
        except nats_errors() as exc:
            raise self.failed("acknowledging", exc) from exc

    async def retry_later(self, message: Message, delay: float) -> None:
        seq: int = message.handle.metadata.sequence.stream
        heapq.heappush(self._retries, (time.monotonic() + delay, seq))
        await anyio.lowlevel.checkpoint()

    async def dead_letter(self, message: Message, reason: str) -> None:
        seq: int = message.handle.metadata.sequence.stream
        headers = dead_letter_headers(self.node_id, reason)
        headers["Nats-Msg-Id"] = f"{self.node}-{self.stream}-{seq}"
        try:
            await self.js.publish(
                dead_letter_subject(self.options.prefix, message.subject),
                message.data,
                headers=headers,
            )
        except nats_errors() as exc:
            raise self.failed("dead-lettering", exc) from exc
        await self.ack(message)

    def _receipt_key(self, event_id: str) -> str:
        return f"{self.node}.{name_token(event_id)}"

    async def succeeded(self, event_id: str) -> set[str]:
        from nats.js.errors import KeyNotFoundError

        try:
            entry: Any = await self._kv.get(self._receipt_key(event_id))
        except KeyNotFoundError:
            return set()
        except nats_errors() as exc:
            raise self.failed("reading receipts", exc) from exc
        keys: list[str] = json.loads(entry.value or b"[]")
        return set(keys)

    async def record_success(self, event_id: str, keys: Sequence[str]) -> None:
        if not keys:
            return
        done = await self.succeeded(event_id) | set(keys)
        try:
            await self._kv.put(
                self._receipt_key(event_id), json.dumps(sorted(done)).encode()
            )
        except nats_errors() as exc:
            raise self.failed("recording receipts", exc) from exc

"""What both Redis channels share (receipts, dead letters, errors) and the Pub/Sub
channel for at most once."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import anyio
import anyio.abc

from ._transport import (
    Channel,
    Message,
    OnReconnect,
    TransportError,
    TransportOptions,
    receive_batch,
)

__all__ = ["BLOCK_MS", "MAX_BACKOFF", "PubSubChannel", "RedisChannel", "redis_errors"]

logger = logging.getLogger("asignal")

#: The longest a read waits for something to arrive.
BLOCK_MS = 1000
#: The longest back-off between reconnection attempts.
MAX_BACKOFF = 5.0

#: redis-py's annotations are loose (bytes | str everywhere, untyped kwargs): the
#: channels treat its client as Any and check what they read.
Redis = Any


def redis_errors() -> tuple[type[BaseException], ...]:
    from redis.exceptions import ConnectionError, TimeoutError

    return (ConnectionError, TimeoutError, OSError)


class RedisChannel(Channel):
    def __init__(
        self,
        client: Redis,
        display_url: str,
        node_id: str,
        subjects: Sequence[str],
        options: TransportOptions,
        on_reconnect: OnReconnect,
    ) -> None:
        self.client = client
        self.display_url = display_url
        self.node_id = node_id
        self.options = options
        self.on_reconnect = on_reconnect
        self.keys = {f"{options.prefix}:{subject}": subject for subject in subjects}

    def key(self, subject: str) -> str:
        return f"{self.options.prefix}:{subject}"

    def failed(self, action: str, exc: BaseException) -> TransportError:
        return TransportError(f"Redis at {self.display_url}: {action} failed: {exc}")

    def receipt_key(self, event_id: str) -> str:
        return f"{self.options.prefix}:done:{self.node_id}:{event_id}"

    async def succeeded(self, event_id: str) -> set[str]:
        try:
            members: set[bytes] = await self.client.smembers(self.receipt_key(event_id))
        except redis_errors() as exc:
            raise self.failed("reading receipts", exc) from exc
        return {m.decode() for m in members}

    async def record_success(self, event_id: str, keys: Sequence[str]) -> None:
        if not keys:
            return
        key = self.receipt_key(event_id)
        try:
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.sadd(key, *keys)
                pipe.expire(key, max(1, int(self.options.receipt_ttl)))
                await pipe.execute()
        except redis_errors() as exc:
            raise self.failed("recording receipts", exc) from exc

    async def dead_letter(self, message: Message, reason: str) -> None:
        try:
            await self.client.xadd(
                f"{self.options.prefix}:dead-letter",
                {
                    "subject": message.subject,
                    "data": message.data,
                    "reason": reason,
                    "node": self.node_id,
                },
                maxlen=self.options.max_length,
                approximate=True,
            )
        except redis_errors() as exc:
            raise self.failed("dead-lettering", exc) from exc
        await self.ack(message)


class PubSubChannel(RedisChannel):
    """At most once: ``PUBLISH``/``SUBSCRIBE``; a listener task fills a bounded
    buffer, so a slow node pushes back on its socket (and Redis drops a client
    that falls too far behind, which is a reconnect)."""

    def __init__(
        self,
        client: Redis,
        display_url: str,
        node_id: str,
        subjects: Sequence[str],
        options: TransportOptions,
        on_reconnect: OnReconnect,
    ) -> None:
        super().__init__(client, display_url, node_id, subjects, options, on_reconnect)
        self.buffer, self.received = anyio.create_memory_object_stream[Message](1000)

    async def listen(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        backoff = 0.1
        connected_once = False
        failing = False
        while True:
            pubsub = self.client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(*self.keys)
                if connected_once:
                    await self.on_reconnect(
                        True, "Pub/Sub subscribed again after losing the connection"
                    )
                else:
                    connected_once = True
                    task_status.started()
                backoff = 0.1
                failing = False
                while True:
                    raw: dict[str, Any] | None = await pubsub.get_message(timeout=1.0)
                    if raw is None:
                        continue
                    channel: str = raw["channel"].decode()
                    data: bytes = raw["data"]
                    await self.buffer.send(
                        Message(self.keys.get(channel, channel), data, 1, None)
                    )
            except redis_errors() as exc:
                if not connected_once:
                    raise self.failed("subscribing", exc) from exc
                # One warning per outage; the retries themselves at DEBUG.
                (logger.debug if failing else logger.warning)(
                    "Redis Pub/Sub at %s lost (%s); reconnecting in %.1fs",
                    self.display_url,
                    exc,
                    backoff,
                )
                failing = True
            finally:
                with anyio.CancelScope(shield=True):
                    try:
                        await pubsub.aclose()
                    except redis_errors():
                        pass
            await anyio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)

    async def publish(self, subject: str, data: bytes) -> str:
        try:
            await self.client.publish(self.key(subject), data)
        except redis_errors() as exc:
            raise self.failed(f"publishing to {subject!r}", exc) from exc
        return ""

    async def fetch(self, max_messages: int) -> list[Message]:
        return await receive_batch(self.received, max_messages, BLOCK_MS / 1000)

    async def ack(self, message: Message) -> None:
        pass

    async def retry_later(self, message: Message, delay: float) -> None:
        pass

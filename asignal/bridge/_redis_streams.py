"""The Streams channel for at least once (see ``_redis``'s docstring)."""

from __future__ import annotations

import heapq
import logging
import time
from collections.abc import Sequence
from typing import Any

import anyio
import anyio.lowlevel

from ._redis_channel import BLOCK_MS, MAX_BACKOFF, Redis, RedisChannel, redis_errors
from ._transport import Message, OnReconnect, TransportOptions

__all__ = ["StreamChannel"]

logger = logging.getLogger("asignal")


class StreamChannel(RedisChannel):
    """At least once: Streams and one consumer group per node (module docstring)."""

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
        #: (due, stream, entry id) of failed entries waiting for their back-off.
        self._retries: list[tuple[float, str, str]] = []
        #: Entries read and not settled, which a sweep must leave alone.
        self._held: set[tuple[str, str]] = set()
        #: Streams whose entries left pending by an earlier run are still being
        #: claimed, with the XAUTOCLAIM cursor to go on from.
        self._resume_from = dict.fromkeys(self.keys, "0-0")
        self._next_sweep = time.monotonic() + options.claim_idle
        self._nogroup_backoff = 0.1
        self._lag: int | None = None
        self._next_lag = 0.0
        #: The node's own entries, acknowledged with the next read.
        self._own_acks: dict[str, list[str]] = {}

    async def create_groups(self, start: str) -> None:
        from redis.exceptions import ResponseError

        for key in self.keys:
            try:
                await self.client.xgroup_create(key, self.node_id, start, mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
            except redis_errors() as exc:
                raise self.failed("creating consumer groups", exc) from exc

    async def publish(self, subject: str, data: bytes) -> str:
        try:
            entry_id: bytes = await self.client.xadd(
                self.key(subject),
                {"data": data},
                maxlen=self.options.max_length,
                approximate=True,
            )
        except redis_errors() as exc:
            raise self.failed(f"publishing to {subject!r}", exc) from exc
        return entry_id.decode()

    async def fetch(self, max_messages: int) -> list[Message]:
        from redis.exceptions import ResponseError

        try:
            found = await self._fetch(max_messages)
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise self.failed("reading", exc) from exc
            await self._recover()
            return []
        except redis_errors() as exc:
            raise self.failed("reading", exc) from exc
        self._nogroup_backoff = 0.1
        return found

    async def _fetch(self, max_messages: int) -> list[Message]:
        now = time.monotonic()
        if now >= self._next_lag:
            self._next_lag = now + 5.0
            await self._update_lag()
        if self._resume_from:
            resumed = await self._resume(max_messages)
            if resumed:
                return resumed
        if now >= self._next_sweep:
            self._next_sweep = now + self.options.claim_idle / 2
            swept = await self._sweep(max_messages)
            if swept:
                return swept
        due: list[tuple[str, str]] = []
        while self._retries and self._retries[0][0] <= now and len(due) < max_messages:
            _, key, entry_id = heapq.heappop(self._retries)
            due.append((key, entry_id))
        if due:
            return await self._claim(due)
        block = BLOCK_MS
        if self._retries:
            block = max(1, min(block, int((self._retries[0][0] - now) * 1000)))
        async with self.client.pipeline(transaction=False) as pipe:
            self._queue_acks(pipe)
            pipe.xreadgroup(
                self.node_id,
                self.node_id,
                dict.fromkeys(self.keys, ">"),
                count=max_messages,
                block=block,
            )
            replies: list[Any] = await pipe.execute()
        response: Any = replies[-1]
        found: list[Message] = []
        for key, entries in response or ():
            key = key.decode()
            for entry_id, fields in entries:
                found.append(self._message(key, entry_id.decode(), fields, 1))
        return found

    def _message(
        self, key: str, entry_id: str, fields: dict[bytes, bytes] | None, count: int
    ) -> Message:
        self._held.add((key, entry_id))
        data = (fields or {}).get(b"data", b"")
        return Message(self.keys[key], data, count, (key, entry_id))

    async def _resume(self, max_messages: int) -> list[Message]:
        """The next batch of what an earlier run of this node left pending
        (``XAUTOCLAIM`` from a cursor per stream, any idle time), until none is
        left."""
        found: list[Message] = []
        for key, cursor in list(self._resume_from.items()):
            response: Any = await self.client.xautoclaim(
                key,
                self.node_id,
                self.node_id,
                min_idle_time=0,
                start_id=cursor,
                count=max_messages - len(found),
            )
            next_cursor: str = response[0].decode()
            if next_cursor == "0-0":
                del self._resume_from[key]
            else:
                self._resume_from[key] = next_cursor
            entries = [(entry_id.decode(), fields) for entry_id, fields in response[1]]
            counts = await self._counts(key, [entry_id for entry_id, _ in entries])
            for entry_id, fields in entries:
                found.append(self._message(key, entry_id, fields, counts[entry_id]))
            if len(found) >= max_messages:
                break
        return found

    async def _sweep(self, max_messages: int) -> list[Message]:
        """Claim entries pending here for ``claim_idle`` seconds that nothing in this
        run holds (lost track of). Entries held (running, or waiting for their
        back-off) are left alone, so their delivery count stays true."""
        min_idle = int(self.options.claim_idle * 1000)
        found: list[Message] = []
        for key in self.keys:
            pending: Any = await self.client.xpending_range(
                key,
                self.node_id,
                min="-",
                max="+",
                count=max_messages,
                consumername=self.node_id,
                idle=min_idle,
            )
            ids = [
                entry_id
                for entry in pending
                if (key, entry_id := entry["message_id"].decode()) not in self._held
            ]
            if ids:
                found.extend(await self._claim_ids(key, ids, min_idle))
        return found

    async def _claim(self, due: list[tuple[str, str]]) -> list[Message]:
        by_key: dict[str, list[str]] = {}
        for key, entry_id in due:
            by_key.setdefault(key, []).append(entry_id)
        found: list[Message] = []
        for key, ids in by_key.items():
            found.extend(await self._claim_ids(key, ids, 0))
        return found

    async def _claim_ids(
        self, key: str, ids: list[str], min_idle: int
    ) -> list[Message]:
        """``XCLAIM`` *ids* (which counts a delivery) and make messages of those
        claimed. One not claimed was trimmed away (``MAXLEN``) or, with *min_idle*,
        touched meanwhile."""
        response: Any = await self.client.xclaim(
            key, self.node_id, self.node_id, min_idle_time=min_idle, message_ids=ids
        )
        claimed = {entry_id.decode(): fields for entry_id, fields in response}
        counts = await self._counts(key, list(claimed))
        found: list[Message] = []
        for entry_id in ids:
            if entry_id in claimed:
                found.append(
                    self._message(key, entry_id, claimed[entry_id], counts[entry_id])
                )
            elif not min_idle:
                # Trimmed while it waited for its retry: nothing left to deliver.
                self._held.discard((key, entry_id))
                await self.client.xack(key, self.node_id, entry_id)
        return found

    async def _counts(self, key: str, ids: list[str]) -> dict[str, int]:
        """Each entry's delivery count, from the pending list."""
        if not ids:
            return {}
        async with self.client.pipeline(transaction=False) as pipe:
            for entry_id in ids:
                pipe.xpending_range(
                    key, self.node_id, min=entry_id, max=entry_id, count=1
                )
            replies: list[Any] = await pipe.execute()
        counts: dict[str, int] = {}
        for entry_id, reply in zip(ids, replies, strict=True):
            counts[entry_id] = int(reply[0]["times_delivered"]) if reply else 1
        return counts

    async def _recover(self) -> None:
        backoff = self._nogroup_backoff
        self._nogroup_backoff = min(backoff * 2, MAX_BACKOFF)
        logger.error(
            "Redis at %s lost the streams or consumer groups of node %r (restarted "
            "without persistence?); events published before may be lost. Creating "
            "them again in %.1fs",
            self.display_url,
            self.node_id,
            backoff,
        )
        await anyio.sleep(backoff)
        self._retries.clear()
        self._held.clear()
        # From the start of the new streams: whatever was published since Redis came
        # back is kept there and must reach this node.
        await self.create_groups("0")
        await self.on_reconnect(
            True, "Redis lost the streams or consumer groups; created them again"
        )

    async def _update_lag(self) -> None:
        total = 0
        for key in self.keys:
            try:
                groups: Any = await self.client.xinfo_groups(key)
            except redis_errors():
                return
            except Exception:  # the stream is gone: NOGROUP handling follows
                return
            for group in groups:
                if group["name"].decode() == self.node_id:
                    lag = group.get("lag")
                    if lag is None:
                        return
                    total += int(lag)
        self._lag = total

    def lag(self) -> int | None:
        return self._lag

    async def ack(self, message: Message) -> None:
        key, entry_id = message.handle
        try:
            await self.client.xack(key, self.node_id, entry_id)
        except redis_errors() as exc:
            raise self.failed("acknowledging", exc) from exc
        self._held.discard((key, entry_id))

    async def ack_own(self, messages: Sequence[Message]) -> None:
        # Sent with the next XREADGROUP, in one pipeline (see flush_acks).
        for message in messages:
            key, entry_id = message.handle
            self._own_acks.setdefault(key, []).append(entry_id)
        await anyio.lowlevel.checkpoint()

    async def flush_acks(self) -> None:
        """Send the deferred acknowledgements now (when the channel closes)."""
        if self._own_acks:
            async with self.client.pipeline(transaction=False) as pipe:
                self._queue_acks(pipe)
                await pipe.execute()

    def _queue_acks(self, pipe: Any) -> None:
        for key, ids in self._own_acks.items():
            pipe.xack(key, self.node_id, *ids)
            for entry_id in ids:
                self._held.discard((key, entry_id))
        self._own_acks = {}

    async def retry_later(self, message: Message, delay: float) -> None:
        key, entry_id = message.handle
        heapq.heappush(self._retries, (time.monotonic() + delay, key, entry_id))

"""The Streams channel for at least once (see ``_redis``'s docstring)."""

from __future__ import annotations

import hashlib
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


#: Field holding the publishing node's id next to ``data``: the read script uses it
#: to acknowledge the node's own entries inside Redis instead of sending them back.
ORIGIN_FIELD = "origin"

#: New entries for group and consumer ARGV[1] (at most ARGV[2]) from the streams
#: KEYS, without blocking. Entries whose origin field is ARGV[1] (the node's own
#: events: their receivers ran when they were sent) are acknowledged here; the reply
#: is {own count, {stream, {entry...}}...} with the others.
_SKIM = """
local streams = {'XREADGROUP', 'GROUP', ARGV[1], ARGV[1], 'COUNT', ARGV[2], 'STREAMS'}
for i = 1, #KEYS do streams[#streams + 1] = KEYS[i] end
for _ = 1, #KEYS do streams[#streams + 1] = '>' end
local reply = redis.call(unpack(streams))
local own = 0
local found = {}
if not reply then return {0, found} end
for _, stream in ipairs(reply) do
  local theirs = {}
  local mine = {}
  for _, entry in ipairs(stream[2]) do
    local fields = entry[2] or {}
    local is_own = false
    for i = 1, #fields, 2 do
      if fields[i] == 'origin' then is_own = fields[i + 1] == ARGV[1] end
    end
    if is_own then mine[#mine + 1] = entry[1] else theirs[#theirs + 1] = entry end
  end
  if #mine > 0 then
    redis.call('XACK', stream[1], ARGV[1], unpack(mine))
    own = own + #mine
  end
  if #theirs > 0 then found[#found + 1] = {stream[1], theirs} end
end
return {own, found}
"""

_SKIM_SHA = hashlib.sha1(_SKIM.encode()).hexdigest()

#: XADD the event (KEYS[1]; ARGV: node id, approximate MAXLEN, data) with its
#: origin field; if it is the very next entry for the node's own group (the group
#: has read everything before it), read and acknowledge it for that group right
#: away, so the node's blocked read is not woken to be sent its own event. The
#: reply is the entry id.
_PUBLISH = """
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local before = '0-0'
if last[1] then before = last[1][1] end
local found, groups = pcall(redis.call, 'XINFO', 'GROUPS', KEYS[1])
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*',
                      'data', ARGV[3], 'origin', ARGV[1])
-- Added: from here on nothing may fail the script (the caller would publish again).
if not found then return id end
for _, group in ipairs(groups) do
  local name, delivered
  for i = 1, #group, 2 do
    if group[i] == 'name' then name = group[i + 1] end
    if group[i] == 'last-delivered-id' then delivered = group[i + 1] end
  end
  if name == ARGV[1] and delivered == before then
    local read, entries = pcall(redis.call, 'XREADGROUP', 'GROUP', name, name,
                                'COUNT', 1, 'STREAMS', KEYS[1], '>')
    if read and entries and entries[1][2][1] then
      pcall(redis.call, 'XACK', KEYS[1], name, entries[1][2][1][1])
    end
  end
end
return id
"""
_PUBLISH_SHA = hashlib.sha1(_PUBLISH.encode()).hexdigest()


def _refusing_scripts(exc: Exception) -> bool:
    """Whether Redis refused to run a script at all (ACL, or scripting renamed
    away), rather than a command inside it failing."""
    from redis.exceptions import NoPermissionError

    return isinstance(exc, NoPermissionError) or "unknown command" in str(exc).lower()


def _pairs(fields: Any) -> dict[bytes, bytes]:
    """An entry's fields from a script's flat reply."""
    return dict(zip(fields[::2], fields[1::2], strict=True))


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
        #: Whether Redis runs the bridge's scripts (see _PUBLISH and _SKIM); if it
        #: refuses them, plain XADD and XREADGROUP.
        self._scripting = True
        #: Whether the last read filled its batch (more may be waiting): then the
        #: script reads, else a blocking read waits for the next entry (woken by
        #: the node's own publishes too: one round trip, and its own entries come
        #: back and are acknowledged with the next read).
        self._backlog = True

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
        from redis.exceptions import NoScriptError, ResponseError

        key = self.key(subject)
        refused: tuple[type[BaseException], ...] = (*redis_errors(), ResponseError)
        entry_id: bytes
        try:
            if self._scripting:
                args = (self.node_id, self.options.max_length, data)
                try:
                    try:
                        entry_id = await self.client.evalsha(
                            _PUBLISH_SHA, 1, key, *args
                        )
                    except NoScriptError:
                        await self.client.script_load(_PUBLISH)
                        entry_id = await self.client.evalsha(
                            _PUBLISH_SHA, 1, key, *args
                        )
                    return entry_id.decode()
                except ResponseError as exc:
                    # Nothing was added: the script fails only before XADD.
                    if not _refusing_scripts(exc):
                        raise
                    self._refused_scripts(exc)
            entry_id = await self.client.xadd(
                key,
                {"data": data, ORIGIN_FIELD: self.node_id},
                maxlen=self.options.max_length,
                approximate=True,
            )
        except refused as exc:
            raise self.failed(f"publishing to {subject!r}", exc) from exc
        return entry_id.decode()

    def _refused_scripts(self, exc: Exception) -> None:
        logger.warning(
            "Redis at %s refused the bridge's scripts (%s): node %r publishes with "
            "XADD and reads with XREADGROUP from now on, and so reads back its own "
            "events",
            self.display_url,
            exc,
            self.node_id,
        )
        self._scripting = False

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
        if self._scripting and self._backlog:
            read, skimmed = await self._skim_new(max_messages)
            self._backlog = read >= max_messages
            if read:
                return skimmed
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
        self._backlog = len(found) >= max_messages
        return found

    async def _skim_new(self, max_messages: int) -> tuple[int, list[Message]]:
        """New entries without blocking, the node's own acknowledged in Redis and
        not sent here (a node catching up reads back nothing it published); and how
        many entries were read in all."""
        from redis.exceptions import NoScriptError, ResponseError

        keys = list(self.keys)
        try:
            try:
                replies = await self._run_skim(keys, max_messages)
            except NoScriptError:
                # Redis restarted or flushed its scripts: load it once more.
                await self.client.script_load(_SKIM)
                replies = await self._run_skim(keys, max_messages)
        except ResponseError as exc:
            if not _refusing_scripts(exc):
                raise  # NOGROUP and the others: fetch() handles them
            self._refused_scripts(exc)
            return 0, []
        own, streams = replies[-1]
        found: list[Message] = []
        for key, entries in streams:
            key = key.decode()
            for entry_id, fields in entries:
                found.append(self._message(key, entry_id.decode(), _pairs(fields), 1))
        return int(own) + len(found), found

    async def _run_skim(self, keys: list[str], max_messages: int) -> list[Any]:
        async with self.client.pipeline(transaction=False) as pipe:
            self._queue_acks(pipe)
            pipe.evalsha(_SKIM_SHA, len(keys), *keys, self.node_id, max_messages)
            replies: list[Any] = await pipe.execute()
        return replies

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

    async def ack_many(self, messages: Sequence[Message]) -> None:
        by_key: dict[str, list[str]] = {}
        for message in messages:
            key, entry_id = message.handle
            by_key.setdefault(key, []).append(entry_id)
        try:
            if len(by_key) == 1:
                [(key, ids)] = by_key.items()
                await self.client.xack(key, self.node_id, *ids)
            else:
                async with self.client.pipeline(transaction=False) as pipe:
                    for key, ids in by_key.items():
                        pipe.xack(key, self.node_id, *ids)
                    await pipe.execute()
        except redis_errors() as exc:
            raise self.failed("acknowledging", exc) from exc
        finally:
            # Acknowledged, or left pending and held by nothing any more: the sweep
            # claims those after claim_idle.
            for key, ids in by_key.items():
                for entry_id in ids:
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

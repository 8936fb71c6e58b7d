"""``redis://`` and ``rediss://``: Pub/Sub for at most once, Streams for at least once.

Keys, all under the bridge's ``prefix``:

* ``{prefix}:{signal}``: the signal's stream (at least once) or Pub/Sub channel;
* ``{prefix}:dead-letter``: a stream of refused messages with their reason;
* ``{prefix}:done:{node}:{event id}``: the receivers that succeeded for an event
  on a node, a set that expires after ``receipt_ttl``.

At least once, each node is a consumer group named by its ``node_id`` on every
stream (created at the stream's end the first time), with one consumer of the same
name. New entries are read with ``XREADGROUP ... >`` in batches; an entry stays in
the node's pending list until ``XACK``. An entry holds the envelope (``data``) and
the publishing node's id (``origin``): publishing is a script that adds the entry
and settles it for the publisher's own group when it is that group's next entry,
and a node with a backlog reads through a script that acknowledges its own entries
inside Redis, so a node is not sent back what it published. A failed entry is
claimed back (``XCLAIM``, which counts the delivery) once its back-off has passed;
entries pending from an earlier run of the node are claimed with ``XAUTOCLAIM``
when the node opens, and entries it lost track of (pending, held by nothing) with
``XPENDING ... IDLE`` and ``XCLAIM`` every ``claim_idle / 2`` seconds. If Redis
lost the streams or groups (restart without persistence: ``NOGROUP``), the groups
are created again from the start of the new streams, with back-off, and
``on_reconnect(True, ...)`` says events may have been lost.
"""

from __future__ import annotations

import importlib.util
from collections.abc import AsyncGenerator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import anyio

from ._redis_channel import PubSubChannel, redis_errors
from ._redis_streams import StreamChannel
from ._transport import (
    Channel,
    Delivery,
    OnReconnect,
    Transport,
    TransportError,
    TransportOptions,
    redact_url,
)

__all__ = ["RedisTransport"]


class RedisTransport(Transport):
    """Redis through redis-py's asyncio client."""

    asyncio_only = True
    client_library = "redis-py"
    system = "redis"

    def __init__(self, url: str) -> None:
        if importlib.util.find_spec("redis") is None:
            raise ImportError(
                f"Bridge({redact_url(url)!r}) needs redis-py: "
                "pip install 'asignal[redis]'"
            )
        self._url = url

    @property
    def display_url(self) -> str:
        return redact_url(self._url)

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
        from redis.asyncio import Redis

        client: Any = Redis.from_url(  # pyright: ignore[reportUnknownMemberType]
            self._url, socket_connect_timeout=5
        )
        try:
            try:
                await client.ping()
            except redis_errors() as exc:
                raise TransportError(
                    f"cannot reach Redis at {self.display_url}: {exc}"
                ) from None
            if delivery == "at_most_once":
                pubsub = PubSubChannel(
                    client, self.display_url, node_id, subjects, options, on_reconnect
                )
                with pubsub.buffer, pubsub.received:
                    async with anyio.create_task_group() as tasks:
                        await tasks.start(pubsub.listen)
                        yield pubsub
                        tasks.cancel_scope.cancel()
            else:
                streams = StreamChannel(
                    client, self.display_url, node_id, subjects, options, on_reconnect
                )
                await streams.create_groups("$")
                try:
                    yield streams
                finally:
                    with anyio.CancelScope(shield=True):
                        try:
                            await streams.flush_acks()
                        except redis_errors():
                            pass  # they come back at the next start, and are acked
        finally:
            await client.aclose()

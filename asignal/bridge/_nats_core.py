"""The core NATS channel, for at most once (see ``_nats``'s docstring)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncGenerator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import anyio

from ._nats import nats_errors, synced
from ._transport import (
    Channel,
    Message,
    TransportError,
    TransportOptions,
    receive_batch,
)

__all__ = ["CoreChannel"]

logger = logging.getLogger("asignal")

#: Messages buffered for the bridge; behind it, nats-py's own bounded pending queue,
#: and past that nats-py drops messages (a slow consumer) and says so.
_BUFFER = 1000
#: The longest a fetch waits for something to arrive.
_FETCH_WAIT = 1.0


class CoreChannel(Channel):
    """One subscription per bridged signal; what arrives while the node listens is
    handed over, nothing is kept for a node that does not."""

    def __init__(
        self, client: Any, display_url: str, node_id: str, options: TransportOptions
    ) -> None:
        self.client = client
        self.display_url = display_url
        self.node_id = node_id
        self.options = options
        self.buffer, self.received = anyio.create_memory_object_stream[Message](_BUFFER)
        self.subjects: dict[str, str] = {}

    def failed(self, action: str, exc: BaseException) -> TransportError:
        return TransportError(
            f"NATS at {self.display_url}: {action} failed: {type(exc).__name__}: {exc}"
        )

    @asynccontextmanager
    async def subscribed(self, subjects: Sequence[str]) -> AsyncGenerator[None]:
        """Subscribe to every signal's subject; unsubscribe (by closing the client)
        when done. Once this yields, the server has the subscriptions: a message
        published after that reaches the node."""
        self.subjects = {f"{self.options.prefix}.{s}": s for s in subjects}
        with self.buffer, self.received:
            try:
                for subject in self.subjects:
                    await self.client.subscribe(subject, cb=self._arrived)
                # Not flush(): its PONG can come back before the server has the
                # subscriptions (see synced).
                await synced(self.client, timeout=5)
            except nats_errors() as exc:
                raise self.failed("subscribing", exc) from exc
            yield

    async def _arrived(self, msg: Any) -> None:
        # Runs in nats-py's task for the subscription: waiting here pushes back on
        # nats-py's bounded queue for that subscription.
        subject: str = msg.subject
        # Once the node closed, what arrives is dropped (at most once).
        with contextlib.suppress(anyio.ClosedResourceError, anyio.BrokenResourceError):
            await self.buffer.send(
                Message(self.subjects.get(subject, subject), msg.data, 1, None)
            )

    async def publish(self, subject: str, data: bytes) -> str:
        try:
            await self.client.publish(f"{self.options.prefix}.{subject}", data)
        except nats_errors() as exc:
            raise self.failed(f"publishing to {subject!r}", exc) from exc
        return ""

    async def fetch(self, max_messages: int) -> list[Message]:
        return await receive_batch(self.received, max_messages, _FETCH_WAIT)

    async def ack(self, message: Message) -> None:
        pass

    async def retry_later(self, message: Message, delay: float) -> None:
        pass

    async def dead_letter(self, message: Message, reason: str) -> None:
        """Core NATS keeps nothing: publish the refused message with its reason on
        the dead-letter subject, for whoever listens (a JetStream stream does, once
        a node at least once has created it)."""
        await _publish_dead_letter(self, message, reason)

    async def succeeded(self, event_id: str) -> set[str]:
        return set()

    async def record_success(self, event_id: str, keys: Sequence[str]) -> None:
        pass


def dead_letter_subject(prefix: str, subject: str) -> str:
    return f"{prefix}-dead-letter.{subject}"


def dead_letter_headers(node_id: str, reason: str) -> dict[str, str]:
    # A header is one line: the reason's line breaks become spaces.
    flat = " ".join(reason.split())[:4000]
    return {"Asignal-Reason": flat, "Asignal-Node": node_id}


async def _publish_dead_letter(
    channel: CoreChannel, message: Message, reason: str
) -> None:
    try:
        await channel.client.publish(
            dead_letter_subject(channel.options.prefix, message.subject),
            message.data,
            headers=dead_letter_headers(channel.node_id, reason),
        )
    except nats_errors() as exc:
        raise channel.failed("dead-lettering", exc) from exc

"""``nats://`` and ``tls://``: core NATS for at most once, JetStream for at least once.

Subjects, all under the bridge's ``prefix``:

* ``{prefix}.{signal}``: the signal's subject (core NATS) and, at least once, the
  subject the stream stores it under (the stream takes ``{prefix}.>``);
* ``{prefix}-dead-letter.{signal}``: refused messages, stored by a stream of their
  own with the reason in the ``Asignal-Reason`` header.

At least once, the node's receipts (receivers that succeeded for an event) are keys
``{node}.{event id}`` of a JetStream key-value bucket whose entries expire after
``receipt_ttl``. Settings JetStream needs beyond the bridge's own come as query
parameters of the URL (see :class:`NatsSettings`); nats-py gets the URL without them.

nats-py reconnects by itself: its callbacks only queue the state change, and a task
of the channel's own task group logs it (one line per change) and calls
``on_reconnect``, so no bridge code runs inside nats-py's tasks.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import importlib.util
import logging
import re
from collections.abc import AsyncGenerator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import anyio
import anyio.abc
from anyio.streams.memory import MemoryObjectSendStream

from ._transport import (
    Channel,
    Delivery,
    OnReconnect,
    Transport,
    TransportError,
    TransportOptions,
    redact_url,
)

if TYPE_CHECKING:
    from nats.aio.client import Client

    from ._nats_core import CoreChannel
    from ._nats_jetstream import JetStreamChannel

__all__ = ["NatsSettings", "NatsTransport", "name_token", "nats_errors", "synced"]

logger = logging.getLogger("asignal")

_SUBJECT_TOKEN = re.compile(r"[^\s*>.]+")
_NAME = re.compile(r"[A-Za-z0-9_-]+")


def name_token(text: str) -> str:
    """*text* as a JetStream stream, consumer, bucket or key token: itself when it
    is one already, else its unsafe characters replaced and a short hash appended
    (so two different texts never share a token)."""
    if _NAME.fullmatch(text):
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    return f"{re.sub(r'[^A-Za-z0-9_-]', '_', text)}-{digest}"


def nats_errors() -> tuple[type[BaseException], ...]:
    """The errors that mean the broker did not do what was asked (nats-py's own,
    the socket's, and asyncio's timeouts, which nats-py lets through)."""
    import nats.errors

    return (nats.errors.Error, OSError, asyncio.TimeoutError, TimeoutError)


async def synced(client: Any, timeout: float) -> None:
    """Return once the server has processed everything *client* sent before the
    call (subscriptions, unsubscriptions, publishes, acknowledgements).

    nats-py's ``flush()`` does not promise that: it writes its PING straight to the
    socket, ahead of the commands still queued for nats-py's flusher task, so the
    PONG can come back before the server has seen them (a SUB then takes effect
    after a publish made once ``flush()`` returned, and that message never reaches
    the subscriber). A message to an inbox of our own goes through the same queue
    as those commands, after them, and the server handles one connection's
    commands in order: when it comes back, they were all handled.

    :raises: one of :func:`nats_errors` (for example a timeout while reconnecting).
    """
    inbox = client.new_inbox()
    sub = await client.subscribe(inbox)
    try:
        await client.publish(inbox, b"")
        await sub.next_msg(timeout=timeout)
    finally:
        with contextlib.suppress(*nats_errors()):
            await sub.unsubscribe()


def check_subject(what: str, subject: str) -> None:
    """:raises ValueError: *subject* is not a NATS subject without wildcards."""
    if not all(_SUBJECT_TOKEN.fullmatch(token) for token in subject.split(".")):
        raise ValueError(
            f"{what} {subject!r} cannot be a NATS subject: use dot-separated tokens "
            "without spaces, '*' or '>' (for example 'shop.order_paid')."
        )


@dataclass(frozen=True)
class NatsSettings:
    """JetStream settings, from the URL's query (``nats://host:4222?stream=SHOP``).

    :ivar stream: the stream's name (default: the prefix, made a valid name).
    :ivar max_age: seconds a stream keeps an event (0: no limit).
    :ivar max_bytes: bytes a stream keeps (-1: no limit).
    :ivar duplicate_window: seconds within which a publish with the same event id
        (``Nats-Msg-Id``) is stored once.
    :ivar ack_wait: seconds before JetStream redelivers an event the node read and
        neither acknowledged nor reported as in progress (default: the bridge's
        ``claim_idle``).
    :ivar receipts: the key-value bucket of receipts (default ``{stream}-receipts``).
    """

    stream: str | None = None
    max_age: float = 7 * 24 * 3600.0
    max_bytes: int = -1
    duplicate_window: float = 120.0
    ack_wait: float | None = None
    receipts: str | None = None

    @classmethod
    def from_query(cls, query: str, display_url: str) -> NatsSettings:
        known = {"stream", "max_age", "max_bytes", "duplicate_window", "ack_wait"}
        known.add("receipts")
        values: dict[str, Any] = {}
        for key, value in parse_qsl(query, keep_blank_values=True):
            try:
                if key in ("stream", "receipts"):
                    if not _NAME.fullmatch(value):
                        raise ValueError("letters, digits, '-' and '_' only")
                    values[key] = value
                elif key == "max_bytes":
                    values[key] = int(value)
                elif key in known:
                    values[key] = float(value)
                    if values[key] <= 0 and key != "max_age":
                        raise ValueError("must be positive")
                else:
                    raise ValueError(f"unknown; known: {', '.join(sorted(known))}")
            except ValueError as exc:
                raise ValueError(
                    f"Bridge URL {display_url!r}: query parameter {key}={value!r}: "
                    f"{exc}"
                ) from None
        return cls(**values)


@dataclass
class Connection:
    """nats-py's connection callbacks, queueing the state changes they report."""

    display_url: str
    changes: MemoryObjectSendStream[tuple[str, str]]
    failing: bool = False

    async def on_disconnected(self) -> None:
        self._queue("disconnected", "")

    async def on_reconnected(self) -> None:
        self.failing = False
        self._queue("reconnected", "")

    async def on_error(self, exc: Exception) -> None:
        # nats-py reports every failed reconnection attempt: one line per outage.
        if self.failing:
            logger.debug("NATS at %s: %s", self.display_url, exc)
            return
        self.failing = True
        self._queue("error", f"{type(exc).__name__}: {exc}")

    def _queue(self, change: str, detail: str) -> None:
        # A burst of changes: the ones already queued say enough.
        with contextlib.suppress(
            anyio.WouldBlock, anyio.ClosedResourceError, anyio.BrokenResourceError
        ):
            self.changes.send_nowait((change, detail))


class NatsTransport(Transport):
    """NATS through nats-py (asyncio only)."""

    asyncio_only = True
    client_library = "nats-py"
    system = "nats"

    def __init__(self, url: str) -> None:
        if importlib.util.find_spec("nats") is None:
            raise ImportError(
                f"Bridge({redact_url(url)!r}) needs nats-py: "
                "pip install 'asignal[nats]'"
            )
        parts = urlsplit(url)
        self._url = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
        self.settings = NatsSettings.from_query(parts.query, self.display_url)

    @property
    def display_url(self) -> str:
        parts = urlsplit(self._url)
        if parts.username is not None and parts.password is None:
            # nats://TOKEN@host: the user part is the secret.
            host = parts.netloc.rpartition("@")[2]
            return f"{parts.scheme}://***@{host}{parts.path}"
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
        # Both import this module: imported here, once it is loaded.
        from ._nats_core import CoreChannel
        from ._nats_jetstream import JetStreamChannel

        check_subject("prefix", options.prefix)
        for subject in subjects:
            check_subject("signal name", subject)
        send, receive = anyio.create_memory_object_stream[tuple[str, str]](16)
        with send, receive:
            client = await self._connect(node_id, Connection(self.display_url, send))
            try:
                async with anyio.create_task_group() as tasks:
                    channel: CoreChannel | JetStreamChannel
                    if delivery == "at_most_once":
                        channel = CoreChannel(
                            client, self.display_url, node_id, options
                        )
                        opened = channel.subscribed(subjects)
                    else:
                        channel = JetStreamChannel(
                            client,
                            self.display_url,
                            node_id,
                            subjects,
                            options,
                            self.settings,
                            on_reconnect,
                        )
                        opened = channel.running(tasks)
                    tasks.start_soon(_report, receive, channel, delivery, on_reconnect)
                    async with opened:
                        yield channel
                    tasks.cancel_scope.cancel()
            finally:
                with anyio.CancelScope(shield=True):
                    try:
                        await client.close()
                    except nats_errors():
                        pass

    async def _connect(self, node_id: str, connection: Connection) -> Client:
        """A client connected to the server, reconnecting by itself (forever, a
        second apart) and reporting to *connection*.

        :raises TransportError: the first connection failed.
        """
        from nats.aio.client import Client

        client = Client()
        try:
            await client.connect(
                self._url,
                name=f"asignal-bridge-{node_id}",
                connect_timeout=5,
                reconnect_time_wait=1,
                # The first connection: two attempts, then an error (nats-py would
                # retry forever with -1); once connected, reconnect forever.
                max_reconnect_attempts=1,
                allow_reconnect=True,
                error_cb=connection.on_error,
                disconnected_cb=connection.on_disconnected,
                reconnected_cb=connection.on_reconnected,
            )
        except nats_errors() as exc:
            raise TransportError(
                f"cannot reach NATS at {self.display_url}: {type(exc).__name__}: {exc}"
            ) from None
        client.options["max_reconnect_attempts"] = -1
        connection.failing = False  # the next outage gets its own line
        return client


async def _report(
    changes: anyio.abc.ObjectReceiveStream[tuple[str, str]],
    channel: CoreChannel | JetStreamChannel,
    delivery: Delivery,
    on_reconnect: OnReconnect,
) -> None:
    """Log each connection state change once and turn reconnects into
    ``on_reconnect`` calls, in the channel's task group."""
    display_url = channel.display_url
    async for change, detail in changes:
        if change == "disconnected":
            logger.warning("NATS at %s: disconnected; reconnecting", display_url)
        elif change == "error":
            logger.warning("NATS at %s: %s", display_url, detail)
        elif delivery == "at_most_once":
            await on_reconnect(
                True,
                "core NATS reconnected; messages published while this node was "
                "disconnected never reach it",
            )
        else:
            from ._nats_jetstream import JetStreamChannel

            if isinstance(channel, JetStreamChannel):
                # A fetch from a consumer the server lost only times out: look.
                channel.check_soon()
            await on_reconnect(
                False, "NATS reconnected; JetStream kept the events meanwhile"
            )

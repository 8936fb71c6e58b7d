"""Fixtures for the bridge suite: one behaviour suite parametrised over transports.

``transport`` is ``memory``, ``redis`` (the machine's Redis on 127.0.0.1:6379, a
key prefix of each test's own, deleted afterwards) or ``nats`` (the machine's NATS
on 127.0.0.1:4222, a subject prefix and streams of each test's own, deleted
afterwards). Redis and NATS run only on asyncio;
memory runs on both backends. A new transport joins by adding a case and a branch
in ``bridge_url`` (and the fixtures that reach into the broker).
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from asignal.bridge import Bridge
from tests.conftest import require_service as require_service

from . import nats_support
from .bridge_support import MakeBridge

REDIS_HOST = os.environ.get("ASIGNAL_TEST_REDIS_HOST", "127.0.0.1")
REDIS_PORT = int(os.environ.get("ASIGNAL_TEST_REDIS_PORT", "6379"))
#: A database of our own on the shared Redis, so flushing nothing else matters.
REDIS_DB = 13


def redis_up(host: str = REDIS_HOST, port: int = REDIS_PORT) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((host, port)) == 0


#: (transport, backend) pairs the behaviour suite runs on: redis-py and nats-py are
#: asyncio-only (test_redis_refuses_trio, test_nats_refuses_trio).
CASES = [
    ("memory", "asyncio"),
    ("memory", "trio"),
    ("redis", "asyncio"),
    ("nats", "asyncio"),
]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run every test that takes ``transport`` once per case."""
    if "bridge_case" in metafunc.fixturenames:
        metafunc.parametrize(
            "bridge_case", CASES, ids=[f"{t}-{backend}" for t, backend in CASES]
        )


@pytest.fixture
def transport(bridge_case: tuple[str, str]) -> str:
    """The transport under test: ``memory``, ``redis`` or ``nats``."""
    return bridge_case[0]


@pytest.fixture
def anyio_backend(bridge_case: tuple[str, str]) -> str:
    """The backend the case runs on (tests in this directory that do not take
    ``transport`` choose theirs with ``@pytest.mark.parametrize``)."""
    return bridge_case[1]


@pytest.fixture
def prefix() -> str:
    """A key prefix no other test uses."""
    return f"asignal-test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def bridge_url(transport: str) -> str:
    """The test's broker; Redis must be up (skip, or fail in CI)."""
    if transport == "redis":
        if not redis_up():
            require_service(f"no Redis server on {REDIS_HOST}:{REDIS_PORT}")
        return f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}"
    if transport == "nats":
        if not nats_support.nats_up():
            require_service(f"no NATS server at {nats_support.NATS_URL}")
        return nats_support.NATS_URL
    return f"memory://{uuid.uuid4().hex}"


@pytest.fixture
async def make_bridge(
    bridge_url: str, prefix: str, transport: str
) -> AsyncIterator[MakeBridge]:
    """Make bridges (nodes) on the test's broker; their signals are removed and, on
    Redis, the test's keys deleted afterwards."""
    made: list[Bridge] = []

    def make(node_id: str | None = None, **options: Any) -> Bridge:
        options.setdefault("retry_delay", 0.05)
        bridge = Bridge(bridge_url, node_id=node_id, prefix=prefix, **options)
        made.append(bridge)
        return bridge

    yield make
    for bridge in made:
        for signal in bridge.signals:
            bridge.remove(signal)
    if transport == "redis":
        await delete_keys(bridge_url, prefix)
    if transport == "nats":
        await nats_support.delete_streams(bridge_url, prefix)


async def delete_keys(url: str, prefix: str) -> None:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}:*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture
def name() -> str:
    """A signal name of this test's own."""
    return f"shop.order_paid.{uuid.uuid4().hex[:6]}"


Inject = Callable[[str, bytes], Awaitable[None]]


@pytest.fixture
async def inject(transport: str, bridge_url: str, prefix: str) -> AsyncIterator[Inject]:
    """Write raw bytes straight into a subject's stream (at least once), as a
    broken or hostile publisher would."""
    if transport == "redis":
        import redis.asyncio as aioredis

        client: Any = aioredis.Redis.from_url(bridge_url)  # pyright: ignore[reportUnknownMemberType]

        async def to_redis(subject: str, data: bytes) -> None:
            await client.xadd(f"{prefix}:{subject}", {"data": data})

        yield to_redis
        await client.aclose()
    elif transport == "nats":

        async def to_nats(subject: str, data: bytes) -> None:
            await nats_support.publish_raw(bridge_url, prefix, subject, data)

        yield to_nats
    else:
        from asignal.bridge._memory import memory_broker

        broker = memory_broker(bridge_url.removeprefix("memory://"))

        async def to_memory(subject: str, data: bytes) -> None:
            broker.log(subject).append((next(broker.seqs), data))
            for channel in broker.channels:
                channel.wake()

        yield to_memory


DeadLetters = Callable[[], Awaitable[list[str]]]


@pytest.fixture
async def dead_letters(transport: str, bridge_url: str, prefix: str) -> DeadLetters:
    """Read the reasons stored with dead-lettered messages, oldest first."""

    async def read() -> list[str]:
        if transport == "redis":
            import redis.asyncio as aioredis

            client: Any = aioredis.Redis.from_url(bridge_url)  # pyright: ignore[reportUnknownMemberType]
            try:
                entries = await client.xrange(f"{prefix}:dead-letter")
            finally:
                await client.aclose()
            return [fields[b"reason"].decode() for _, fields in entries]
        if transport == "nats":
            return await nats_support.dead_letter_reasons(bridge_url, prefix)
        from asignal.bridge._memory import memory_broker

        broker = memory_broker(bridge_url.removeprefix("memory://"))
        return [letter.reason for letter in broker.dead_letters]

    return read

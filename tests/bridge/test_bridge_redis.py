"""What only Redis has: OS processes as nodes, killed consumers, a restarted broker,
Pub/Sub reconnects, asyncio only, passwords kept out of sight.

Fault tests start a ``redis-server`` of their own (the binary on the machine) on a
free port in a temporary directory, so they can kill and restart it.
"""

from __future__ import annotations

import logging
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import anyio
import pytest

from asignal import Signal
from asignal.bridge import Bridge, TransportError, bridge_reconnected

from .bridge_support import Node, wait_until
from .conftest import (
    REDIS_DB,
    REDIS_HOST,
    REDIS_PORT,
    delete_keys,
    redis_up,
    require_service,
)
from .node_processes import NodeProcesses as _Nodes
from .node_processes import send_when_up as _send_when_up
from .redis_server import RedisServer

#: redis-py is asyncio-only; test_redis_refuses_trio shows the trio side.
asyncio_only = pytest.mark.parametrize("anyio_backend", ["asyncio"])
pytestmark = pytest.mark.anyio


@pytest.fixture
def shared_redis() -> str:
    """The machine's Redis (skip without it, fail in CI)."""
    if not redis_up():
        require_service(f"no Redis server on {REDIS_HOST}:{REDIS_PORT}")
    return f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}"


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own, without persistence."""
    if shutil.which("redis-server") is None:
        require_service("redis-server is not installed")
    server = RedisServer(tmp_path, persistent=False)
    server.start()
    yield server
    server.kill()


@pytest.fixture
def reconnects() -> Iterator[list[tuple[bool, str]]]:
    """Every bridge_reconnected send during the test."""
    seen: list[tuple[bool, str]] = []

    def on_reconnect(sender: object, missed: bool, reason: str, **kwargs: Any) -> None:
        seen.append((missed, reason))

    bridge_reconnected.connect(on_reconnect)
    yield seen
    bridge_reconnected.disconnect(on_reconnect)


def _name() -> str:
    return f"shop.event.{uuid.uuid4().hex[:6]}"


@pytest.fixture
async def nodes(tmp_path: Path, shared_redis: str) -> Any:
    prefix = f"asignal-test-{uuid.uuid4().hex[:12]}"
    group = _Nodes(tmp_path, shared_redis, prefix, _name())
    yield group
    group.stop_all()
    await delete_keys(shared_redis, prefix)


@asyncio_only
@pytest.mark.parametrize("delivery", ["at_most_once", "at_least_once"])
async def test_fan_out_to_three_processes(
    nodes: _Nodes, delivery: Literal["at_most_once", "at_least_once"]
) -> None:
    """Every node process runs its receivers for every event, in publish order."""
    for node_id in ("n1", "n2", "n3"):
        nodes.start(node_id, delivery)
    for node_id in ("n1", "n2", "n3"):
        await nodes.wait_ready(node_id)
    publisher = Node(
        Bridge(nodes.url, node_id="pub", prefix=nodes.prefix, delivery=delivery),
        nodes.name,
    )
    async with publisher.bridge:
        for n in range(30):
            await publisher.signal.asend(None, n=n)
        await wait_until(
            lambda: all(len(nodes.events(n)) == 30 for n in ("n1", "n2", "n3")), 15
        )
    publisher.bridge.remove(publisher.signal)
    for node_id in ("n1", "n2", "n3"):
        assert nodes.events(node_id) == list(range(30))


@asyncio_only
async def test_consumer_killed_mid_stream_resumes(nodes: _Nodes) -> None:
    """kill -9 of a consumer mid-stream loses nothing: restarted with the same
    node_id it handles every event it had not acknowledged, and at most the one in
    hand when it died twice."""
    nodes.start("worker", "at_least_once", delay=0.02)
    await nodes.wait_ready("worker")
    publisher = Node(
        Bridge(nodes.url, node_id="pub", prefix=nodes.prefix, delivery="at_least_once"),
        nodes.name,
    )
    async with publisher.bridge:
        for n in range(60):
            await publisher.signal.asend(None, n=n)
        await wait_until(lambda: len(nodes.events("worker")) >= 10, 15)
        nodes.kill("worker")
        handled = len(nodes.events("worker"))
        assert handled < 60
        nodes.start("worker", "at_least_once")
        await wait_until(lambda: len(set(nodes.events("worker"))) == 60, 15)
    publisher.bridge.remove(publisher.signal)
    events = nodes.events("worker")
    assert sorted(set(events)) == list(range(60))
    assert len(events) - 60 <= 1  # max_in_flight=1: one event may have run twice


@asyncio_only
async def test_broker_restart_without_persistence(
    own_redis: RedisServer,
    reconnects: list[tuple[bool, str]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Redis restarted without persistence loses the groups: the nodes create them
    again (with back-off), log the possible loss, send bridge_reconnected with
    missed=True, and events published afterwards arrive."""
    name = _name()
    a, b = (
        Node(
            Bridge(
                own_redis.url, node_id=n, delivery="at_least_once", retry_delay=0.05
            ),
            name,
        )
        for n in "ab"
    )
    async with a.bridge, b.bridge:
        await a.signal.asend(None, n=1)
        await wait_until(lambda: len(b.seen) == 1)
        own_redis.restart()
        await wait_until(lambda: any(missed for missed, _ in reconnects), 15)
        await _send_when_up(a.signal, n=2)
        await wait_until(lambda: len(b.seen) == 2, 15)
    for node in (a, b):
        node.bridge.remove(node.signal)
    assert [s.kwargs["n"] for s in b.seen] == [1, 2]
    assert any("may be lost" in r.getMessage() for r in caplog.records)


@asyncio_only
async def test_broker_restart_with_persistence_loses_nothing(tmp_path: Path) -> None:
    """Redis restarted with persistence keeps streams, groups and pending events:
    events sent while a node was down reach it after the restart."""
    if shutil.which("redis-server") is None:
        require_service("redis-server is not installed")
    server = RedisServer(tmp_path, persistent=True)
    server.start()
    try:
        name = _name()
        a, b = (
            Node(Bridge(server.url, node_id=n, delivery="at_least_once"), name)
            for n in "ab"
        )
        async with b.bridge:  # creates b's group
            pass
        async with a.bridge:
            for n in range(5):
                await a.signal.asend(None, n=n)
        server.restart()
        async with b.bridge:
            await wait_until(lambda: len(b.seen) == 5, 15)
        assert [s.kwargs["n"] for s in b.seen] == list(range(5))
        for node in (a, b):
            node.bridge.remove(node.signal)
    finally:
        server.kill()


@asyncio_only
async def test_pubsub_reconnect_sends_bridge_reconnected(
    own_redis: RedisServer, reconnects: list[tuple[bool, str]]
) -> None:
    """At most once: after the connection is lost and back, the node subscribes
    again, sends bridge_reconnected(missed=True), and receives new events."""
    name = _name()
    a, b = (Node(Bridge(own_redis.url, node_id=n), name) for n in "ab")
    async with a.bridge, b.bridge:
        own_redis.restart()
        await wait_until(lambda: len(reconnects) >= 2, 15)  # both nodes
        await _send_when_up(a.signal, n=1)
        await wait_until(lambda: b.seen, 10)
    for node in (a, b):
        node.bridge.remove(node.signal)
    assert all(missed for missed, _ in reconnects)


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_redis_refuses_trio() -> None:
    """Under trio, entering a Redis bridge raises a clear error (memory:// works)."""
    bridge = Bridge("redis://127.0.0.1:6379/0")
    with pytest.raises(RuntimeError, match=r"only under asyncio.*memory://"):
        async with bridge:
            pass


@asyncio_only
async def test_password_never_shown(caplog: pytest.LogCaptureFixture) -> None:
    """A password in the URL appears in no repr, describe(), error or log line."""
    caplog.set_level(logging.DEBUG)
    port = _closed_port()
    bridge = Bridge(f"redis://:s3cret@127.0.0.1:{port}/0")
    signal = Signal(name=_name())
    bridge.add(signal)
    try:
        shown = [repr(bridge), bridge.url, *(i.name for i in signal.describe())]
        with pytest.raises(TransportError) as error:
            async with bridge:
                pass
        shown.append(str(error.value))
    finally:
        bridge.remove(signal)
    shown.extend(r.getMessage() for r in caplog.records)
    assert "redis://:***@127.0.0.1" in bridge.url
    assert not any("s3cret" in text for text in shown)


def _closed_port() -> int:
    from .redis_server import free_port

    return free_port()


@asyncio_only
async def test_publish_failure_raises_in_asend_and_is_returned_by_robust(
    own_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """With the broker gone, asend raises TransportError; asend_robust logs it and
    returns it as the bridge's result, after running the local receivers."""
    node = Node(Bridge(own_redis.url, node_id="a"), _name())
    async with node.bridge:
        own_redis.kill()
        with pytest.raises(TransportError, match="publishing"):
            await node.signal.asend(None, n=1)
        results = await node.signal.asend_robust(None, n=2)
        own_redis.start()
    node.bridge.remove(node.signal)
    assert any(isinstance(result, TransportError) for _, result in results)
    assert [s.kwargs["n"] for s in node.seen][-1] == 2
    assert any(r.levelno == logging.ERROR for r in caplog.records)


@asyncio_only
async def test_entry_lost_track_of_is_claimed_after_claim_idle(
    shared_redis: str,
) -> None:
    """An entry pending for the node that nothing in the node holds (read by
    another client under the node's name while the node was busy) is claimed and
    run once it has been idle for claim_idle."""
    import redis.asyncio as aioredis

    prefix = f"asignal-test-{uuid.uuid4().hex[:12]}"
    name = _name()
    a = Node(
        Bridge(shared_redis, node_id="a", prefix=prefix, delivery="at_least_once"),
        name,
    )
    b = Node(
        Bridge(
            shared_redis,
            node_id="b",
            prefix=prefix,
            delivery="at_least_once",
            claim_idle=0.5,
            max_in_flight=1,
        ),
        name,
    )
    gate = anyio.Event()

    async def busy(sender: object, n: int, **kwargs: Any) -> None:
        if n == 1:
            await gate.wait()

    b.signal.connect(busy)
    client: Any = aioredis.Redis.from_url(shared_redis)  # pyright: ignore[reportUnknownMemberType]
    try:
        async with a.bridge, b.bridge:
            await a.signal.asend(None, n=1)
            await wait_until(lambda: b.seen)  # b is busy with n=1, reading nothing
            await a.signal.asend(None, n=2)
            # Another client takes n=2 under b's name, then "dies".
            taken = await client.xreadgroup("b", "b", {f"{prefix}:{name}": ">"})
            assert taken
            await anyio.sleep(0.6)
            gate.set()
            await wait_until(lambda: len(b.seen) == 2, 10)
            event = b.seen[1].event
        assert event is not None
        assert (b.seen[1].kwargs["n"], event.deliveries) == (2, 2)
    finally:
        for node in (a, b):
            node.bridge.remove(node.signal)
        await client.aclose()
        await delete_keys(shared_redis, prefix)


async def _xack_calls(client: Any) -> int:
    stats: dict[str, Any] = await client.info("commandstats")
    return int(stats.get("cmdstat_xack", {}).get("calls", 0))


@asyncio_only
async def test_publishing_node_is_not_sent_its_own_events(shared_redis: str) -> None:
    """At least once, a node publishing on a stream it reads is not sent its own
    events back (they are settled for its group when published): it reads nothing,
    its local receivers ran once at the send, and nothing is left pending."""
    import redis.asyncio as aioredis

    prefix = f"asignal-test-{uuid.uuid4().hex[:12]}"
    name = _name()
    a, b = (
        Node(
            Bridge(shared_redis, node_id=n, prefix=prefix, delivery="at_least_once"),
            name,
        )
        for n in "ab"
    )
    client: Any = aioredis.Redis.from_url(shared_redis)  # pyright: ignore[reportUnknownMemberType]
    try:
        async with a.bridge, b.bridge:
            for n in range(20):
                await a.signal.asend(None, n=n)
            await wait_until(lambda: len(b.delivered) == 20)
            await anyio.sleep(0.2)
            assert a.bridge.statistics().delivered == 0
            assert [s.kwargs["n"] for s in a.seen] == list(range(20))
            assert not a.delivered
            pending: Any = await client.xpending(f"{prefix}:{name}", "a")
            assert pending["pending"] == 0
    finally:
        await client.aclose()
        await delete_keys(shared_redis, prefix)


@asyncio_only
async def test_backlog_acknowledged_in_few_round_trips(own_redis: RedisServer) -> None:
    """Events a node handles in a row are acknowledged together: a backlog of 50
    takes a few XACK commands, not one per event, and none is left pending."""
    import redis.asyncio as aioredis

    name = _name()
    a = Node(Bridge(own_redis.url, node_id="a", delivery="at_least_once"), name)
    b = Node(Bridge(own_redis.url, node_id="b", delivery="at_least_once"), name)
    client: Any = aioredis.Redis.from_url(own_redis.url)  # pyright: ignore[reportUnknownMemberType]
    try:
        async with b.bridge:
            pass  # b's consumer group exists from here on
        async with a.bridge:
            for n in range(50):
                await a.signal.asend(None, n=n)
            await client.config_resetstat()
            async with b.bridge:
                await wait_until(lambda: len(b.delivered) == 50)
                await anyio.sleep(0.2)
        assert [s.kwargs["n"] for s in b.delivered] == list(range(50))
        assert await _xack_calls(client) <= 5
        pending: Any = await client.xpending(f"asignal:{name}", "b")
        assert pending["pending"] == 0
    finally:
        await client.aclose()


@asyncio_only
async def test_redis_refusing_scripts_still_bridges(
    own_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A Redis that refuses scripts (ACL) gets plain XADD and XREADGROUP, with a
    warning: events still reach the other node, and the publishing node's own
    events are read back and acknowledged without running its receivers again."""
    import redis.asyncio as aioredis

    client: Any = aioredis.Redis.from_url(own_redis.url)  # pyright: ignore[reportUnknownMemberType]
    await client.acl_setuser(
        "default",
        enabled=True,
        nopass=True,
        commands=["+@all", "-@scripting"],
        keys=["*"],
        channels=["*"],
    )
    name = _name()
    a = Node(Bridge(own_redis.url, node_id="a", delivery="at_least_once"), name)
    b = Node(Bridge(own_redis.url, node_id="b", delivery="at_least_once"), name)
    try:
        async with a.bridge, b.bridge:
            for n in range(5):
                await a.signal.asend(None, n=n)
            await wait_until(lambda: len(b.delivered) == 5)
            await wait_until(lambda: a.bridge.statistics().delivered == 5)
        assert [s.kwargs["n"] for s in a.seen] == list(range(5))
        assert any("refused the bridge's scripts" in r.message for r in caplog.records)
        for node in "ab":
            pending: Any = await client.xpending(f"asignal:{name}", node)
            assert pending["pending"] == 0
    finally:
        await client.aclose()

"""What only NATS has: OS processes as nodes over core NATS and JetStream, a killed
consumer, a restarted server (with and without its store), publish de-duplication,
the consumer's settings, asyncio only, secrets kept out of sight.

Fault tests start a ``nats-server -js`` of their own on a free port with a
temporary store directory, so they can kill and restart it.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, Literal

import anyio
import pytest

from asignal import Signal
from asignal.bridge import Bridge, Publication, TransportError, bridge_reconnected

from .bridge_support import Node, wait_until
from .conftest import require_service
from .nats_server import NatsServer, nats_server_binary
from .nats_support import NATS_URL, connect, delete_streams, nats_up
from .node_processes import NodeProcesses, send_when_up
from .redis_server import free_port

#: nats-py is asyncio-only; test_nats_refuses_trio shows the trio side.
asyncio_only = pytest.mark.parametrize("anyio_backend", ["asyncio"])
pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]


def _name() -> str:
    return f"shop.event.{uuid.uuid4().hex[:6]}"


def _prefix() -> str:
    return f"asignal-test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def shared_nats() -> str:
    """The machine's NATS (skip without it, fail in CI)."""
    if not nats_up():
        require_service(f"no NATS server at {NATS_URL}")
    return NATS_URL


@pytest.fixture
def own_nats(tmp_path: Path) -> Iterator[NatsServer]:
    """A nats-server -js of this test's own, storing in a temporary directory."""
    if nats_server_binary() is None:
        require_service("nats-server is not installed")
    server = NatsServer(tmp_path / "store")
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


@pytest.fixture
async def nodes(tmp_path: Path, shared_nats: str) -> AsyncIterator[NodeProcesses]:
    """Node processes on the machine's NATS; JetStream redelivers what a killed
    node held after one second (``?ack_wait=1``)."""
    prefix = _prefix()
    group = NodeProcesses(tmp_path, f"{shared_nats}?ack_wait=1", prefix, _name())
    yield group
    group.stop_all()
    await delete_streams(shared_nats, prefix)


def _forget(*nodes: Node) -> None:
    for node in nodes:
        node.bridge.remove(node.signal)


@asyncio_only
@pytest.mark.parametrize("delivery", ["at_most_once", "at_least_once"])
async def test_fan_out_to_three_processes(
    nodes: NodeProcesses, delivery: Literal["at_most_once", "at_least_once"]
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
    _forget(publisher)
    for node_id in ("n1", "n2", "n3"):
        assert nodes.events(node_id) == list(range(30))


@asyncio_only
async def test_consumer_killed_mid_stream_resumes(nodes: NodeProcesses) -> None:
    """kill -9 of a JetStream consumer mid-stream loses nothing: restarted with the
    same node_id it handles every event it had not acknowledged (what it held comes
    back after ack_wait), and at most the one in hand when it died twice."""
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
        assert len(nodes.events("worker")) < 60
        nodes.start("worker", "at_least_once")
        await wait_until(lambda: len(set(nodes.events("worker"))) == 60, 15)
    _forget(publisher)
    events = nodes.events("worker")
    assert sorted(set(events)) == list(range(60))
    assert len(events) - 60 <= 1  # max_in_flight=1: one event may have run twice


@asyncio_only
async def test_server_restart_keeps_streams_and_pending_events(
    own_nats: NatsServer, reconnects: list[tuple[bool, str]]
) -> None:
    """JetStream with its store: events sent while a node was closed reach it after
    a server restart; open nodes reconnect (missed=False) and go on."""
    name = _name()
    a, b = (
        Node(Bridge(own_nats.url, node_id=n, delivery="at_least_once"), name)
        for n in "ab"
    )
    async with b.bridge:  # creates b's consumer
        pass
    async with a.bridge:
        for n in range(5):
            await a.signal.asend(None, n=n)
    own_nats.restart()
    async with a.bridge, b.bridge:
        await wait_until(lambda: len(b.seen) == 5, 15)
        own_nats.restart()
        await wait_until(lambda: len(reconnects) >= 2, 15)  # both nodes
        await send_when_up(a.signal, n=5)
        await wait_until(lambda: len(b.seen) == 6, 15)
    _forget(a, b)
    assert [s.kwargs["n"] for s in b.seen] == list(range(6))
    assert not any(missed for missed, _ in reconnects)


@asyncio_only
async def test_server_losing_its_store_recreates_stream(
    own_nats: NatsServer,
    tmp_path: Path,
    reconnects: list[tuple[bool, str]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A server back without its store has no stream or consumers: the nodes create
    them again (with back-off), log the possible loss, send bridge_reconnected with
    missed=True, and events published afterwards arrive."""
    name = _name()
    a, b = (
        Node(
            Bridge(own_nats.url, node_id=n, delivery="at_least_once", retry_delay=0.05),
            name,
        )
        for n in "ab"
    )
    async with a.bridge, b.bridge:
        await a.signal.asend(None, n=1)
        await wait_until(lambda: len(b.seen) == 1)
        own_nats.restart(tmp_path / "empty-store")
        await wait_until(lambda: any(missed for missed, _ in reconnects), 15)
        await send_when_up(a.signal, n=2)
        await wait_until(lambda: len(b.seen) == 2, 15)
    _forget(a, b)
    assert [s.kwargs["n"] for s in b.seen] == [1, 2]
    assert any("may be lost" in r.getMessage() for r in caplog.records)


@asyncio_only
async def test_core_nats_reconnect_sends_bridge_reconnected(
    own_nats: NatsServer,
    reconnects: list[tuple[bool, str]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """At most once: after the server is back, nats-py reconnects, the node sends
    bridge_reconnected(missed=True) and receives new events; the outage is logged
    once per state change, not once per retry."""
    name = _name()
    a, b = (Node(Bridge(own_nats.url, node_id=n), name) for n in "ab")
    async with a.bridge, b.bridge:
        own_nats.kill()
        await anyio.sleep(2.5)  # several reconnection attempts fail meanwhile
        own_nats.start()
        await wait_until(lambda: len(reconnects) >= 2, 15)  # both nodes
        await send_when_up(a.signal, n=1)
        await wait_until(lambda: b.seen, 10)
    _forget(a, b)
    assert all(missed for missed, _ in reconnects)
    disconnected = [r for r in caplog.records if "disconnected;" in r.getMessage()]
    assert len(disconnected) == 2  # one per node
    errors = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(errors) <= 8  # per node: disconnected, first error, reconnected


@asyncio_only
async def test_publish_carries_event_id_and_duplicates_are_dropped(
    shared_nats: str,
) -> None:
    """The event id travels as Nats-Msg-Id, so the same event published again
    within the duplicate window is stored once and delivered once."""
    prefix, name = _prefix(), _name()
    a, b = (
        Node(
            Bridge(shared_nats, node_id=n, prefix=prefix, delivery="at_least_once"),
            name,
        )
        for n in "ab"
    )
    client: Any = await connect(shared_nats)
    try:
        async with a.bridge, b.bridge:
            results = await a.signal.asend(None, n=1)
            (publication,) = [r for _, r in results if isinstance(r, Publication)]
            js = client.jetstream()
            stored: Any = await js.get_msg(prefix, int(publication.message_id))
            assert stored.headers["Nats-Msg-Id"] == publication.event_id
            again: Any = await js.publish(
                f"{prefix}.{name}",
                stored.data,
                headers={"Nats-Msg-Id": publication.event_id},
            )
            assert again.duplicate
            await wait_until(lambda: b.seen)
            await anyio.sleep(0.3)
        assert len(b.seen) == 1
    finally:
        _forget(a, b)
        await client.close()
        await delete_streams(shared_nats, prefix)


@asyncio_only
async def test_stream_and_consumer_settings(shared_nats: str) -> None:
    """The stream takes the prefix's subjects with the URL's limits; the node's
    consumer is durable, filtered to its signal, acknowledges explicitly, waits
    ack_wait and stops at max_deliveries + 1 (the bridge dead-letters at the
    last)."""
    prefix, name = _prefix(), _name()
    url = f"{shared_nats}?stream={prefix}-s&max_age=60&max_bytes=1000000&ack_wait=7"
    node = Node(
        Bridge(
            url,
            node_id="web-1",
            prefix=prefix,
            delivery="at_least_once",
            max_deliveries=4,
        ),
        name,
    )
    client: Any = await connect(shared_nats)
    js = client.jetstream()
    try:
        async with node.bridge:
            stream: Any = await js.stream_info(f"{prefix}-s")
            consumers: Any = await js.consumers_info(f"{prefix}-s")
            names = {info.config.name async for info in _streams(js)}
        assert {f"{prefix}-s-dead-letter", f"KV_{prefix}-s-receipts"} <= names
        (consumer,) = consumers
        assert stream.config.subjects == [f"{prefix}.>"]
        assert (stream.config.max_age, stream.config.max_bytes) == (60, 1000000)
        assert consumer.config.durable_name.startswith("web-1--")
        assert consumer.config.filter_subject == f"{prefix}.{name}"
        assert consumer.config.ack_policy == "explicit"
        assert consumer.config.ack_wait == 7
        assert consumer.config.max_deliver == 5
    finally:
        _forget(node)
        await delete_streams(shared_nats, prefix, stream=f"{prefix}-s")
        await client.close()


async def _streams(js: Any) -> AsyncIterator[Any]:
    for info in await js.streams_info():
        yield info


@asyncio_only
async def test_held_event_kept_in_progress_past_ack_wait(shared_nats: str) -> None:
    """A receiver running longer than ack_wait is not redelivered meanwhile: the
    node reports what it holds in progress."""
    prefix, name = _prefix(), _name()
    url = f"{shared_nats}?ack_wait=0.6"
    a, b = (
        Node(Bridge(url, node_id=n, prefix=prefix, delivery="at_least_once"), name)
        for n in "ab"
    )
    runs: list[int] = []

    async def slow(sender: object, **kwargs: Any) -> None:
        event = b.seen[-1].event
        assert event is not None
        runs.append(event.deliveries)
        await anyio.sleep(2)

    b.signal.connect(slow)
    try:
        async with a.bridge, b.bridge:
            await a.signal.asend(None)
            await wait_until(lambda: b.bridge.statistics().acknowledged == 1, 10)
            await anyio.sleep(1)
        assert runs == [1]
    finally:
        _forget(a, b)
        await delete_streams(shared_nats, prefix)


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_nats_refuses_trio() -> None:
    """Under trio, entering a NATS bridge raises a clear error (memory:// works)."""
    bridge = Bridge("nats://127.0.0.1:4222")
    with pytest.raises(RuntimeError, match=r"only under asyncio.*nats-py.*memory://"):
        async with bridge:
            pass


def test_url_settings_checked() -> None:
    """Unknown or invalid query parameters are refused, naming the known ones."""
    with pytest.raises(ValueError, match="unknown; known: ack_wait"):
        Bridge("nats://127.0.0.1:4222?streem=X")
    with pytest.raises(ValueError, match=r"ack_wait='-1'.*positive"):
        Bridge("nats://127.0.0.1:4222?ack_wait=-1")
    with pytest.raises(ValueError, match=r"stream='a\.b'"):
        Bridge("nats://127.0.0.1:4222?stream=a.b")


@asyncio_only
async def test_signal_name_must_be_a_subject() -> None:
    """A signal name that cannot be a NATS subject is refused when the bridge
    opens, before connecting."""
    bridge = Bridge(f"nats://127.0.0.1:{free_port()}")
    signal = Signal(name="shop order*")
    bridge.add(signal)
    try:
        with pytest.raises(ValueError, match="cannot be a NATS subject"):
            async with bridge:
                pass
    finally:
        bridge.remove(signal)


@asyncio_only
@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("nats://s3cret@127.0.0.1:{port}", "nats://***@127.0.0.1"),
        ("nats://me:s3cret@127.0.0.1:{port}", "nats://me:***@127.0.0.1"),
    ],
)
async def test_secret_never_shown(
    url: str, shown: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A token or password in the URL appears in no repr, describe(), error or log
    line."""
    caplog.set_level(logging.DEBUG)
    bridge = Bridge(url.format(port=free_port()))
    signal = Signal(name=_name())
    bridge.add(signal)
    try:
        texts = [repr(bridge), bridge.url, *(i.name for i in signal.describe())]
        with pytest.raises(TransportError) as error:
            async with bridge:
                pass
        texts.append(str(error.value))
    finally:
        bridge.remove(signal)
    texts.extend(r.getMessage() for r in caplog.records)
    assert shown in bridge.url
    assert not any("s3cret" in text for text in texts)


def test_dead_letter_reason_stored_as_one_header_line() -> None:
    """A reason with line breaks becomes one header line (NATS headers cannot
    carry a break)."""
    from asignal.bridge._nats_core import dead_letter_headers

    headers = dead_letter_headers("web-1", "a\r\nb\nc")
    assert headers == {"Asignal-Reason": "a b c", "Asignal-Node": "web-1"}
    assert json.dumps(headers)


@pytest.mark.timeout(60)
def test_distributed_example_runs_on_nats(shared_nats: str) -> None:
    """``examples/distributed/run.py --check`` passes with BRIDGE_URL on NATS."""
    run = Path(__file__).resolve().parents[2] / "examples" / "distributed" / "run.py"
    result = subprocess.run(
        [sys.executable, str(run), "--check"],
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
        env={**os.environ, "BRIDGE_URL": shared_nats},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "distributed --check: OK" in result.stdout

"""The bridge's behaviour, the same on every transport (memory, Redis and NATS).

Each node is a bridge with its own ``Signal`` object of the same name, as each
process has its own after importing the same module.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import anyio
import anyio.lowlevel
import anyio.to_thread
import pytest

from asignal import Signal
from asignal.bridge import (
    Bridge,
    BridgeClosedError,
    Publication,
    bridge_reconnected,
    current_event,
)

from .bridge_support import MakeBridge, Node, Order, wait_until
from .conftest import DeadLetters, Inject

pytestmark = pytest.mark.anyio

DELIVERIES = ["at_most_once", "at_least_once"]


@pytest.mark.parametrize("delivery", DELIVERIES)
async def test_send_reaches_every_node_once(
    make_bridge: MakeBridge, name: str, delivery: str
) -> None:
    """A send runs the sender's receivers once (locally) and every other node's
    once, with the sender and arguments as sent, in order for one publisher."""
    a, b, c = (Node(make_bridge(n, delivery=delivery), name) for n in "abc")
    async with a.bridge, b.bridge, c.bridge:
        results = [
            await a.signal.asend("shop", order_id=i, total=9.5) for i in range(5)
        ]
        await wait_until(lambda: len(b.seen) == 5 and len(c.seen) == 5)
        await anyio.sleep(0.1)
    publications = [r for sent in results for _, r in sent if r is not None]
    assert all(isinstance(p, Publication) for p in publications)
    assert len(publications) == 5
    assert [s.kwargs["order_id"] for s in a.seen] == list(range(5))
    assert a.delivered == []
    for node in (b, c):
        assert [s.kwargs for s in node.seen] == [
            {"order_id": i, "total": 9.5} for i in range(5)
        ]
        assert all(s.sender == "shop" for s in node.seen)
        assert all(s.event is not None and s.event.origin == "a" for s in node.seen)
        event = node.seen[0].event
        assert event is not None
        assert event.id == publications[0].event_id


@pytest.mark.parametrize("delivery", DELIVERIES)
async def test_no_echo_and_no_loop(
    make_bridge: MakeBridge, name: str, delivery: str
) -> None:
    """A delivered event is not published again, nor is a send a receiver makes
    while handling it, so two nodes never ping-pong."""
    a, b = (Node(make_bridge(n, delivery=delivery), name) for n in "ab")
    relay = {node: Signal(name=name + ".relay") for node in (a, b)}
    relayed: dict[Node, list[bool]] = {a: [], b: []}

    def wire(node: Node) -> None:
        async def on_paid(sender: object, **kwargs: Any) -> None:
            await relay[node].asend(sender)

        async def on_relay(sender: object, **kwargs: Any) -> None:
            relayed[node].append(current_event() is not None)

        node.bridge.add(relay[node])
        node.signal.connect(on_paid, weak=False)
        relay[node].connect(on_relay, weak=False)

    wire(a)
    wire(b)
    async with a.bridge, b.bridge:
        await a.signal.asend(None)
        await wait_until(lambda: len(relayed[b]) == 2)
        await anyio.sleep(0.3)
    # a: paid and relay, both published. b: paid from a, whose relay stays local,
    # and relay from a.
    assert relayed[a] == [False]
    assert sorted(relayed[b]) == [True, True]
    assert len(b.seen) == 1
    assert a.bridge.statistics().published == 2
    assert b.bridge.statistics().published == 0


async def test_registered_class_sender_travels_by_name(
    make_bridge: MakeBridge, name: str
) -> None:
    """A class sender registered on both nodes arrives as the class itself."""
    a, b = (Node(make_bridge(n), name, senders=(Order,)) for n in "ab")
    async with a.bridge, b.bridge:
        await a.signal.asend(Order, order_id=2)
        await wait_until(lambda: b.seen)
    assert b.seen[0].sender is Order


async def test_unregistered_sender_refused_at_send(
    make_bridge: MakeBridge, name: str
) -> None:
    """A class sender nobody registered fails the send with a TypeError saying how
    to register it; the robust send logs it and returns it."""
    a = Node(make_bridge("a"), name)
    async with a.bridge:
        with pytest.raises(TypeError, match=r"senders=\[Order\]"):
            await a.signal.asend(Order)
        results = await a.signal.asend_robust(Order)
    assert any(isinstance(result, TypeError) for _, result in results)


async def test_unserialisable_argument_named_in_error(
    make_bridge: MakeBridge, name: str
) -> None:
    """A keyword argument JSON cannot carry raises TypeError naming it and the
    signal."""
    a = Node(make_bridge("a"), name)
    async with a.bridge:
        with pytest.raises(TypeError, match=r"argument 'order' of signal 'shop"):
            await a.signal.asend(None, order=object())


async def test_oversized_send_refused(make_bridge: MakeBridge, name: str) -> None:
    """An event larger than max_message_bytes raises ValueError at the send."""
    a = Node(make_bridge("a", max_message_bytes=1000), name)
    async with a.bridge:
        with pytest.raises(ValueError, match="max_message_bytes=1000"):
            await a.signal.asend(None, blob="x" * 2000)


async def test_codec_carries_objects(make_bridge: MakeBridge, name: str) -> None:
    """A codec sends an object as its key; the receiving node gets the object
    back, through an async decode."""

    class OrderCodec:
        def encode(self, kwargs: dict[str, Any]) -> dict[str, Any]:
            return {"order": kwargs["order"].pk}

        async def decode(self, data: dict[str, Any]) -> dict[str, Any]:
            await anyio.lowlevel.checkpoint()
            return {"order": Order(data["order"])}

    a, b = (Node(make_bridge(n), name, codec=OrderCodec()) for n in "ab")
    async with a.bridge, b.bridge:
        await a.signal.asend(None, order=Order(7))
        await wait_until(lambda: b.seen)
    order = b.seen[0].kwargs["order"]
    assert isinstance(order, Order)
    assert order.pk == 7


async def test_headers_travel(make_bridge: MakeBridge, name: str) -> None:
    """Headers given by the publishing bridge reach the receivers' event."""
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    a = Node(make_bridge("a", headers=lambda: {"traceparent": traceparent}), name)
    b = Node(make_bridge("b"), name)
    async with a.bridge, b.bridge:
        await a.signal.asend(None)
        await wait_until(lambda: b.seen)
    event = b.seen[0].event
    assert event is not None
    assert event.headers == {"traceparent": traceparent}


async def test_send_while_closed_raises(make_bridge: MakeBridge, name: str) -> None:
    """Sending a bridged signal while its bridge is closed raises instead of
    silently staying local."""
    a = Node(make_bridge("a"), name)
    with pytest.raises(BridgeClosedError, match="not open"):
        await a.signal.asend(None)


async def test_bridge_shows_in_describe(make_bridge: MakeBridge, name: str) -> None:
    """The bridge's receiver is visible to tooling, and removable."""
    bridge = make_bridge("a")
    signal = Signal(name=name)
    bridge.add(signal)
    (info,) = signal.describe()
    assert info.name.startswith("asignal.bridge.Bridge(")
    assert bridge.url in info.name
    assert bridge.remove(signal)
    assert signal.describe() == []


async def test_failing_receiver_redelivered_until_it_succeeds(
    make_bridge: MakeBridge, name: str
) -> None:
    """At least once: a receiver failing twice gets the event a third time; a
    receiver that succeeded the first time is not run again."""
    a, b = (Node(make_bridge(n, delivery="at_least_once"), name) for n in "ab")
    flaky_runs: list[int] = []

    async def flaky(sender: object, **kwargs: Any) -> None:
        event = current_event()
        assert event is not None
        flaky_runs.append(event.deliveries)
        if len(flaky_runs) < 3:
            raise RuntimeError("not yet")

    b.signal.connect(flaky)
    async with a.bridge, b.bridge:
        await a.signal.asend(None)
        await wait_until(lambda: b.bridge.statistics().acknowledged >= 1, timeout=10)
        stats = b.bridge.statistics()
    assert flaky_runs == [1, 2, 3]
    assert len(b.seen) == 1  # the steady receiver ran once
    assert stats.redelivered == 2
    assert stats.receiver_errors == 2
    assert stats.dead_lettered == 0


async def test_dead_letter_after_max_deliveries(
    make_bridge: MakeBridge, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    """At least once: an event whose receiver always fails is dead-lettered after
    max_deliveries, logged at ERROR, and the node goes on with the next."""
    a = Node(make_bridge("a", delivery="at_least_once"), name)
    b = Node(make_bridge("b", delivery="at_least_once", max_deliveries=3), name)
    runs: list[int] = []

    async def broken(sender: object, **kwargs: Any) -> None:
        event = current_event()
        assert event is not None
        runs.append(event.deliveries)
        if kwargs["n"] == 1:
            raise RuntimeError("always")

    b.signal.connect(broken)
    async with a.bridge, b.bridge:
        await a.signal.asend(None, n=1)
        await wait_until(lambda: b.bridge.statistics().dead_lettered == 1, timeout=10)
        await a.signal.asend(None, n=2)
        await wait_until(lambda: b.bridge.statistics().acknowledged == 1)
    assert runs == [1, 2, 3, 1]
    assert any(
        r.levelno == logging.ERROR and "dead-lettered" in r.getMessage()
        for r in caplog.records
    )


async def test_at_most_once_failure_not_redelivered(
    make_bridge: MakeBridge, name: str
) -> None:
    """At most once: a failing receiver is logged and the event is gone."""
    a, b = (Node(make_bridge(n), name) for n in "ab")
    runs: list[int] = []

    async def broken(sender: object, **kwargs: Any) -> None:
        runs.append(1)
        raise RuntimeError("boom")

    b.signal.connect(broken)
    async with a.bridge, b.bridge:
        await a.signal.asend(None)
        await wait_until(lambda: b.bridge.statistics().receiver_errors == 1)
        await anyio.sleep(0.3)
    assert runs == [1]
    assert b.bridge.statistics().redelivered == 0


async def test_restarted_node_resumes_pending(
    make_bridge: MakeBridge, name: str
) -> None:
    """At least once: events sent while a node is down reach it when it opens again
    with the same node_id, at once and in order (none went to a read the closed node
    left open: with the default claim_idle it would come back only after a
    minute)."""
    a = Node(make_bridge("a", delivery="at_least_once"), name)
    b = Node(make_bridge("b", delivery="at_least_once"), name)
    async with a.bridge:
        async with b.bridge:
            await a.signal.asend(None, n=0)
            await wait_until(lambda: len(b.seen) == 1)
        for n in (1, 2):
            await a.signal.asend(None, n=n)
        b2 = make_bridge("b", delivery="at_least_once")
        b2.add(b.signal)
        async with b2:
            await wait_until(lambda: len(b.seen) == 3)
    assert [s.kwargs["n"] for s in b.seen] == [0, 1, 2]


async def test_sync_send_from_worker_thread_publishes(
    make_bridge: MakeBridge, name: str
) -> None:
    """send() from a worker thread publishes through the bridge's own loop."""
    a, b = (Node(make_bridge(n), name) for n in "ab")
    async with a.bridge, b.bridge:
        results = await anyio.to_thread.run_sync(lambda: a.signal.send(None, n=5))
        await wait_until(lambda: b.seen)
    assert b.seen[0].kwargs == {"n": 5}
    assert any(isinstance(r, Publication) for _, r in results)


async def test_sync_send_from_plain_thread_publishes(
    make_bridge: MakeBridge, name: str
) -> None:
    """send() from a thread with no loop (asignal's kept loop runs the receivers)
    hops to the bridge's loop to publish."""
    import threading

    a, b = (Node(make_bridge(n), name) for n in "ab")
    results: list[Any] = []
    async with a.bridge, b.bridge:
        thread = threading.Thread(
            target=lambda: results.extend(a.signal.send(None, n=6))
        )

        def start_and_join() -> None:
            thread.start()
            thread.join()

        await anyio.to_thread.run_sync(start_and_join)
        await wait_until(lambda: b.seen)
    assert b.seen[0].kwargs == {"n": 6}
    assert any(isinstance(r, Publication) for _, r in results)


async def test_statistics_count(make_bridge: MakeBridge, name: str) -> None:
    """statistics() counts what was published, delivered and acknowledged."""
    a, b = (Node(make_bridge(n, delivery="at_least_once"), name) for n in "ab")
    async with a.bridge, b.bridge:
        for _ in range(3):
            await a.signal.asend(None)
        await wait_until(lambda: b.bridge.statistics().acknowledged == 3)
        stats = b.bridge.statistics()
    assert a.bridge.statistics().published == 3
    assert (stats.delivered, stats.in_flight, stats.dead_lettered) == (3, 0, 0)
    assert stats.lag is not None
    assert b.bridge.statistics().lag is None  # closed: nothing to ask


def test_reconnect_signal_is_connectable() -> None:
    """bridge_reconnected is a named signal with the documented arguments."""
    assert bridge_reconnected.name == "asignal.bridge.reconnected"
    assert bridge_reconnected.providing_args == frozenset({"missed", "reason"})


def test_at_least_once_needs_node_id() -> None:
    """at_least_once without a node_id is refused with the fix."""
    with pytest.raises(ValueError, match="needs a stable node_id"):
        Bridge("memory://x", delivery="at_least_once")


def test_unnamed_signal_refused() -> None:
    """Only named signals can be added."""
    with pytest.raises(ValueError, match="has no name"):
        Bridge("memory://x").add(Signal())


def test_unknown_scheme_refused() -> None:
    """An unknown URL scheme names the supported ones, without the password."""
    with pytest.raises(ValueError, match=r"redis://.*memory://") as info:
        Bridge("amqp://user:secret@host/")
    assert "secret" not in str(info.value)


def _envelope(name: str, **changes: Any) -> bytes:
    fields: dict[str, Any] = {
        "v": 1,
        "id": "0" * 32,
        "signal": name,
        "sender": None,
        "kwargs": {},
        "origin": "intruder",
        "time": 0.0,
        "headers": {},
    }
    fields.update(changes)
    return json.dumps(fields).encode()


async def test_untrusted_messages_dead_lettered(
    make_bridge: MakeBridge,
    name: str,
    inject: Inject,
    dead_letters: DeadLetters,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Malformed, unknown-signal, oversized, unregistered-sender and
    codec-rejected messages written into the stream are dead-lettered with their
    reason, never run, and the node goes on to the next good event."""

    class StrictCodec:
        def encode(self, kwargs: dict[str, Any]) -> dict[str, Any]:
            return kwargs

        def decode(self, data: dict[str, Any]) -> dict[str, Any]:
            if "bad" in data:
                raise ValueError("no such order")
            return data

    b = Node(
        make_bridge("b", delivery="at_least_once", max_message_bytes=2000),
        name,
        codec=StrictCodec(),
    )
    async with b.bridge:
        await inject(name, b"\x80not json")
        await inject(name, b"[1, 2]")
        await inject(name, _envelope(name, v=99))
        await inject(name, _envelope("other.signal"))
        await inject(name, _envelope(name, kwargs={"blob": "x" * 3000}))
        await inject(name, _envelope(name, sender={"ref": "os:system"}))
        await inject(name, _envelope(name, sender={"ref": 1}))
        await inject(name, _envelope(name, kwargs={"bad": 1}))
        await inject(name, _envelope(name, kwargs={"good": 1}))
        await wait_until(lambda: b.seen)
        await wait_until(lambda: b.bridge.statistics().dead_lettered == 8)
    assert [s.kwargs for s in b.seen] == [{"good": 1}]
    reasons = await dead_letters()
    assert len(reasons) == 8
    for expected in (
        "not a JSON event",
        "not a JSON object",
        "version 99",
        "unknown signal 'other.signal'",
        "exceeds the limit 2000",
        "sender 'os:system' is not registered",
        "not {'ref': '...'}",
        "codec",
    ):
        assert any(expected in reason for reason in reasons), expected
    assert sum("dead-lettered" in r.getMessage() for r in caplog.records) == 8


async def test_slow_node_bounded_and_others_unaffected(
    make_bridge: MakeBridge, name: str
) -> None:
    """At least once: a slow node holds at most max_in_flight events while it falls
    behind; a fast node gets everything meanwhile."""
    a = Node(make_bridge("a", delivery="at_least_once"), name)
    slow = Node(make_bridge("slow", delivery="at_least_once", max_in_flight=4), name)
    fast = Node(make_bridge("fast", delivery="at_least_once"), name)
    gate = anyio.Event()
    peak = 0

    async def stuck(sender: object, **kwargs: Any) -> None:
        nonlocal peak
        peak = max(peak, slow.bridge.statistics().in_flight)
        await gate.wait()

    slow.signal.connect(stuck)
    async with a.bridge, slow.bridge, fast.bridge:
        for i in range(100):
            await a.signal.asend(None, i=i)
        await wait_until(lambda: len(fast.seen) == 100)
        assert slow.bridge.statistics().in_flight <= 4
        assert len(slow.seen) <= 4
        gate.set()
        await wait_until(lambda: len(slow.seen) == 100, timeout=10)
    assert peak <= 4
    assert [s.kwargs["i"] for s in slow.seen] == list(range(100))


async def test_shutdown_lets_events_in_hand_finish(
    make_bridge: MakeBridge, name: str
) -> None:
    """At least once: leaving the bridge stops reading but lets a running receiver
    finish and acknowledges it, so reopening does not deliver it again."""
    a = Node(make_bridge("a", delivery="at_least_once"), name)
    b = Node(make_bridge("b", delivery="at_least_once"), name)
    started = anyio.Event()
    finished: list[int] = []

    async def slow(sender: object, n: int, **kwargs: Any) -> None:
        started.set()
        await anyio.sleep(0.3)
        finished.append(n)

    b.signal.connect(slow)
    async with a.bridge:
        async with b.bridge:
            await a.signal.asend(None, n=1)
            await started.wait()
        assert finished == [1]
        assert b.bridge.statistics().acknowledged == 1
        b2 = make_bridge("b", delivery="at_least_once")
        b2.add(b.signal)
        async with b2:
            await anyio.sleep(0.3)
    assert finished == [1]


async def test_shutdown_timeout_cancels_and_redelivers(
    make_bridge: MakeBridge, name: str
) -> None:
    """At least once: a receiver still running after shutdown_timeout is cancelled,
    and the event is delivered again when the node opens next."""
    a = Node(make_bridge("a", delivery="at_least_once"), name)
    b = Node(make_bridge("b", delivery="at_least_once", shutdown_timeout=0.2), name)
    runs: list[int] = []
    started = anyio.Event()

    async def hangs_first_time(sender: object, **kwargs: Any) -> None:
        runs.append(1)
        started.set()
        if len(runs) == 1:
            await anyio.sleep_forever()

    b.signal.connect(hangs_first_time)
    async with a.bridge:
        with anyio.fail_after(5):
            async with b.bridge:
                await a.signal.asend(None)
                await started.wait()
        b2 = make_bridge("b", delivery="at_least_once")
        b2.add(b.signal)
        async with b2:
            await wait_until(lambda: len(runs) == 2)
            await wait_until(lambda: b2.statistics().acknowledged == 1)


async def test_restart_resumes_failed_events_beyond_one_batch(
    make_bridge: MakeBridge, name: str
) -> None:
    """At least once: events left pending by a failing run (more than one batch)
    all run when the node opens again, counted as redeliveries."""
    a = Node(make_bridge("a", delivery="at_least_once"), name)
    b = Node(make_bridge("b", delivery="at_least_once", retry_delay=30.0), name)
    failing = True
    runs: list[tuple[int, int]] = []

    async def until_fixed(sender: object, n: int, **kwargs: Any) -> None:
        event = current_event()
        assert event is not None
        runs.append((n, event.deliveries))
        if failing:
            raise RuntimeError("bug")

    b.signal.connect(until_fixed)
    async with a.bridge:
        async with b.bridge:
            for n in range(7):
                await a.signal.asend(None, n=n)
            await wait_until(lambda: b.bridge.statistics().receiver_errors == 7)
        failing = False
        b2 = make_bridge("b", delivery="at_least_once", batch_size=2)
        b2.add(b.signal)
        async with b2:
            await wait_until(lambda: b2.statistics().acknowledged == 7)
    assert sorted(runs[7:]) == [(n, 2) for n in range(7)]
    assert [s.kwargs["n"] for s in b.seen] == list(range(7))  # not run again


async def test_entered_once_at_a_time(make_bridge: MakeBridge, name: str) -> None:
    """Entering an open bridge again is refused; after leaving, it can be entered
    again."""
    a = Node(make_bridge("a"), name)
    async with a.bridge:
        with pytest.raises(RuntimeError, match="already open"):
            async with a.bridge:
                pass
    async with a.bridge:
        await a.signal.asend(None)


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_event_from_one_bridge_not_forwarded_by_another(
    anyio_backend: str, name: str
) -> None:
    """A signal on two bridges: an event delivered by one is not published on the
    other, so bridges never forward each other's events."""
    a = Node(Bridge("memory://one-" + name, node_id="a"), name)
    b = Node(Bridge("memory://one-" + name, node_id="b"), name)
    elsewhere = Bridge("memory://two-" + name, node_id="b")
    elsewhere.add(b.signal)
    try:
        async with a.bridge, b.bridge, elsewhere:
            await a.signal.asend(None)
            await wait_until(lambda: b.seen)
            await anyio.sleep(0.1)
        assert elsewhere.statistics().published == 0
        assert len(b.seen) == 1
    finally:
        for bridge, signal in ((a.bridge, a.signal), (b.bridge, b.signal)):
            bridge.remove(signal)
        elsewhere.remove(b.signal)

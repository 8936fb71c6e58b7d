"""The raw nats-py side of ``benchmarks/bridge.py`` (``--url nats://...``).

The raw loop does what the bridge does per event: JSON-encode an envelope, publish
(at least once: a JetStream publish with ``Nats-Msg-Id``, waiting for the stream's
acknowledgement; at most once: a core NATS publish), read in batches (a durable
pull consumer, ``fetch(100)``), JSON-decode, call a receiver, acknowledge each.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from pathlib import Path
from typing import Any


def _envelope() -> tuple[str, bytes]:
    event_id = uuid.uuid4().hex
    data = json.dumps(
        {
            "v": 1,
            "id": event_id,
            "signal": "bench.event",
            "sender": None,
            "kwargs": {"sent": time.time()},
            "origin": "publisher",
            "time": time.time(),
            "headers": {},
        }
    )
    return event_id, data.encode()


async def consume_raw_nats(
    url: str, prefix: str, delivery: str, total: int, out: str
) -> None:
    import nats
    from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

    client = await nats.connect(url)
    subject = f"{prefix}.bench.event"
    received: list[tuple[float, float]] = []

    def receiver(event: dict[str, Any]) -> None:
        received.append((time.time(), event["kwargs"]["sent"]))

    if delivery == "at_least_once":
        js = client.jetstream()
        await js.add_stream(name=prefix, subjects=[f"{prefix}.>"])
        await js.add_consumer(
            prefix,
            ConsumerConfig(
                durable_name="consumer",
                filter_subject=subject,
                deliver_policy=DeliverPolicy.NEW,
                ack_policy=AckPolicy.EXPLICIT,
            ),
        )
        pull = await js.pull_subscribe_bind(consumer="consumer", stream=prefix)
        Path(out).write_text("ready")
        while len(received) < total:
            try:
                msgs = await pull.fetch(100, timeout=1)
            except (nats.errors.TimeoutError, asyncio.TimeoutError):
                continue
            for msg in msgs:
                receiver(json.loads(msg.data))
                await msg.ack()
    else:
        arrived: asyncio.Queue[bytes] = asyncio.Queue()

        async def on_message(msg: Any) -> None:
            await arrived.put(msg.data)

        await client.subscribe(subject, cb=on_message)
        await client.flush()
        Path(out).write_text("ready")
        while len(received) < total:
            receiver(json.loads(await arrived.get()))
    await client.close()
    Path(out).write_text(json.dumps(received))


async def publish_raw_nats(
    url: str, prefix: str, delivery: str, events: int, paced: int
) -> list[float]:
    import nats

    client = await nats.connect(url)
    js = client.jetstream()
    subject = f"{prefix}.bench.event"

    async def send() -> None:
        event_id, data = _envelope()
        if delivery == "at_least_once":
            await js.publish(subject, data, headers={"Nats-Msg-Id": event_id})
        else:
            await client.publish(subject, data)

    starts = [time.time()]
    for _ in range(events):
        await send()
    for _ in range(paced):
        await send()
        await asyncio.sleep(0.002)
    await client.close()
    return starts


async def cleanup_nats(url: str, prefix: str) -> None:
    import nats
    from nats.js.errors import NotFoundError

    client = await nats.connect(url)
    js = client.jetstream()
    for stream in (prefix, f"{prefix}-dead-letter", f"KV_{prefix}-receipts"):
        with contextlib.suppress(NotFoundError):
            await js.delete_stream(stream)
    await client.close()

"""Bridge throughput and latency against a raw redis-py loop doing the same work.

    python benchmarks/bridge.py [--events 3000] [--paced 300] [--rounds 3]
                                [--url redis://...]
    python benchmarks/bridge.py --url nats://127.0.0.1:4222   # JetStream, core NATS

For each mode (at least once: Streams; at most once: Pub/Sub) and each side
(``asignal.bridge`` and a raw redis-py loop), one process publishes and another
consumes, in the same run:

* throughput: the publisher sends ``--events`` events back to back (``await
  signal.asend`` / ``XADD`` or ``PUBLISH``); events per second from the first send
  to the last receipt;
* latency: ``--paced`` more, one every 2 ms, each carrying its send time; p50 and
  p99 of receipt time minus send time.

Each round runs both sides back to back (taking turns to go first); the tables give
the median of the rounds, and the bridge/raw row the median of each round's own
ratio, since the machine's load drifts between rounds.

The raw loop does what the bridge does per event: JSON-encode an envelope, publish,
read in batches (``XREADGROUP COUNT 100``), JSON-decode, await a receiver, and
acknowledge the batch with one ``XACK`` once its receivers ran (as the bridge
does). Keys go under a prefix of the run's own and are deleted afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

PACE = 0.002


def _report(
    latencies: list[float], count: int, first: float, last: float
) -> dict[str, float]:
    ordered = sorted(latencies)
    return {
        "rate": count / (last - first) if last > first else float("nan"),
        "p50_ms": statistics.median(ordered) * 1000,
        "p99_ms": ordered[int(len(ordered) * 0.99) - 1] * 1000,
    }


# -- consumers (run in a child process) ---------------------------------------------


async def consume_bridge(
    url: str, prefix: str, delivery: str, total: int, out: str
) -> None:
    from asignal import Signal
    from asignal.bridge import Bridge

    signal = Signal(name="bench.event")
    bridge = Bridge(url, node_id="consumer", prefix=prefix, delivery=delivery)  # type: ignore[arg-type]
    bridge.add(signal)
    received: list[tuple[float, float]] = []
    done = asyncio.Event()

    async def receiver(sender: object, sent: float, **kwargs: Any) -> None:
        received.append((time.time(), sent))
        if len(received) == total:
            done.set()

    signal.connect(receiver)
    async with bridge:
        Path(out).write_text("ready")
        await done.wait()
    Path(out).write_text(json.dumps(received))


async def consume_raw(
    url: str, prefix: str, delivery: str, total: int, out: str
) -> None:
    if url.startswith("nats://"):
        from bridge_nats import consume_raw_nats

        return await consume_raw_nats(url, prefix, delivery, total, out)
    import redis.asyncio as aioredis

    client: Any = aioredis.Redis.from_url(url)
    key = f"{prefix}:bench.event"
    received: list[tuple[float, float]] = []

    async def receiver(event: dict[str, Any]) -> None:
        received.append((time.time(), event["kwargs"]["sent"]))

    if delivery == "at_least_once":
        await client.xgroup_create(key, "consumer", "$", mkstream=True)
        Path(out).write_text("ready")
        while len(received) < total:
            response = await client.xreadgroup(
                "consumer", "consumer", {key: ">"}, count=100, block=1000
            )
            for _, entries in response or ():
                for _, fields in entries:
                    await receiver(json.loads(fields[b"data"]))
                # Like the bridge: one XACK for a batch whose receivers all ran.
                await client.xack(
                    key, "consumer", *(entry_id for entry_id, _ in entries)
                )
    else:
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(key)
        Path(out).write_text("ready")
        while len(received) < total:
            message = await pubsub.get_message(timeout=1.0)
            if message is not None:
                await receiver(json.loads(message["data"]))
        await pubsub.aclose()
    await client.aclose()
    Path(out).write_text(json.dumps(received))


# -- publishers (this process) ------------------------------------------------------


async def publish_bridge(
    url: str, prefix: str, delivery: str, events: int, paced: int
) -> list[float]:
    from asignal import Signal
    from asignal.bridge import Bridge

    signal = Signal(name="bench.event")
    bridge = Bridge(url, node_id="publisher", prefix=prefix, delivery=delivery)  # type: ignore[arg-type]
    bridge.add(signal)
    starts: list[float] = []
    async with bridge:
        starts.append(time.time())
        for _ in range(events):
            await signal.asend(None, sent=time.time())
        for _ in range(paced):
            await signal.asend(None, sent=time.time())
            await asyncio.sleep(PACE)
    return starts


async def publish_raw(
    url: str, prefix: str, delivery: str, events: int, paced: int
) -> list[float]:
    if url.startswith("nats://"):
        from bridge_nats import publish_raw_nats

        return await publish_raw_nats(url, prefix, delivery, events, paced)
    import redis.asyncio as aioredis

    client: Any = aioredis.Redis.from_url(url)
    key = f"{prefix}:bench.event"

    async def send() -> None:
        data = json.dumps(
            {
                "v": 1,
                "id": uuid.uuid4().hex,
                "signal": "bench.event",
                "sender": None,
                "kwargs": {"sent": time.time()},
                "origin": "publisher",
                "time": time.time(),
                "headers": {},
            }
        )
        if delivery == "at_least_once":
            await client.xadd(key, {"data": data}, maxlen=100_000, approximate=True)
        else:
            await client.publish(key, data)

    starts = [time.time()]
    for _ in range(events):
        await send()
    for _ in range(paced):
        await send()
        await asyncio.sleep(PACE)
    await client.aclose()
    return starts


async def cleanup(url: str, prefix: str) -> None:
    if url.startswith("nats://"):
        from bridge_nats import cleanup_nats

        return await cleanup_nats(url, prefix)
    import redis.asyncio as aioredis

    client: Any = aioredis.Redis.from_url(url)
    keys = [key async for key in client.scan_iter(match=f"{prefix}:*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


def run_case(side: str, delivery: str, args: argparse.Namespace) -> dict[str, float]:
    prefix = f"asignal-bench-{uuid.uuid4().hex[:8]}"
    out = Path(f"/tmp/{prefix}.json")
    total = args.events + args.paced
    child = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--consume",
            side,
            delivery,
            args.url,
            prefix,
            str(total),
            str(out),
        ]
    )
    try:
        deadline = time.monotonic() + 15
        while not (out.exists() and out.read_text() == "ready"):
            if time.monotonic() > deadline:
                raise SystemExit("the consumer did not start")
            time.sleep(0.05)
        publish = publish_bridge if side == "bridge" else publish_raw
        starts = asyncio.run(
            publish(args.url, prefix, delivery, args.events, args.paced)
        )
        child.wait(timeout=120)
        received: list[list[float]] = json.loads(out.read_text())
    finally:
        if child.poll() is None:
            child.kill()
        out.unlink(missing_ok=True)
        asyncio.run(cleanup(args.url, prefix))
    flood = received[: args.events]
    paced = received[args.events :]
    result = _report([r - s for r, s in paced], len(flood), starts[0], flood[-1][0])
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--paced", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--url", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--consume", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.consume:
        side, delivery, url, prefix, total, out = args.consume
        consume = consume_bridge if side == "bridge" else consume_raw
        asyncio.run(consume(url, prefix, delivery, int(total), out))
        return
    print(
        f"{args.events} events back to back, "
        f"then {args.paced} paced at {PACE * 1000:.0f} ms; "
        f"median of {args.rounds} rounds (raw and bridge side by side in each, "
        "taking turns to go first)\n"
    )
    print("| mode | side | events/s | p50 ms | p99 ms |")
    print("|---|---|---:|---:|---:|")
    for delivery in ("at_least_once", "at_most_once"):
        rounds: list[dict[str, dict[str, float]]] = []
        for n in range(args.rounds):
            order = ("raw", "bridge") if n % 2 == 0 else ("bridge", "raw")
            rounds.append({side: run_case(side, delivery, args) for side in order})
        for side in ("raw", "bridge"):
            rate, p50, p99 = (
                statistics.median(r[side][column] for r in rounds)
                for column in ("rate", "p50_ms", "p99_ms")
            )
            print(f"| {delivery} | {side} | {rate:.0f} | {p50:.2f} | {p99:.2f} |")
        ratios = [r["bridge"]["rate"] / r["raw"]["rate"] for r in rounds]
        deltas = [r["bridge"]["p50_ms"] - r["raw"]["p50_ms"] for r in rounds]
        print(
            f"| {delivery} | bridge/raw | {statistics.median(ratios):.2f}x | "
            f"{statistics.median(deltas):+.2f} | |"
        )
        print(
            f"<!-- {delivery} per round: "
            + ", ".join(
                f"{ratio:.2f}x {delta:+.2f} ms"
                for ratio, delta in zip(ratios, deltas, strict=True)
            )
            + " -->"
        )


if __name__ == "__main__":
    main()

"""One node of the distributed example: a FastAPI web process, or a worker.

    python app.py web --node web-1 --port 8001 [--broker URL] [--prefix P] [--db FILE]
    python app.py worker --node worker-1 --audit FILE [--broker URL] ...

``--broker`` is a Redis (``redis://...``, the default) or NATS (``nats://...``) URL.

Every process imports the same ``product_saved`` signal and adds it to a
``Bridge`` (at least once). A web process hands its bridge to ``SignalMiddleware``,
whose lifespan opens it before the app serves and closes it after the last
request; the worker enters its own with ``async with``. A web process caches products
in memory; ``PUT /products/{id}`` writes the database, then sends
``product_saved``: the receiver drops the product from the cache in this process
and, through the broker, in every other web process. The worker only receives, and
appends an audit line per change.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sqlite3
from pathlib import Path
from typing import Any

from asignal import Signal
from asignal.bridge import Bridge, bridge_reconnected, current_event

product_saved = Signal(name="shop.product_saved", providing_args=["product_id"])

cache: dict[int, float] = {}


def invalidate(sender: object, product_id: int, **kwargs: Any) -> None:
    """Drop a saved product from this process's cache (local and remote saves)."""
    cache.pop(product_id, None)


def forget_everything(sender: object, missed: bool, **kwargs: Any) -> None:
    """Events may have been lost while the broker was away: start from scratch."""
    if missed:
        cache.clear()


def make_bridge(args: argparse.Namespace) -> Bridge:
    bridge = Bridge(
        args.broker, node_id=args.node, delivery="at_least_once", prefix=args.prefix
    )
    bridge.add(product_saved)
    return bridge


def read_price(db: str, product_id: int) -> float:
    with sqlite3.connect(db) as conn:
        row = conn.execute(
            "SELECT price FROM products WHERE id = ?", (product_id,)
        ).fetchone()
    return float(row[0]) if row else 0.0


def write_price(db: str, product_id: int, price: float) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute(
            "INSERT INTO products (id, price) VALUES (?, ?) "
            "ON CONFLICT(id) DO UPDATE SET price = excluded.price",
            (product_id, price),
        )


def web(args: argparse.Namespace) -> None:
    import uvicorn
    from fastapi import FastAPI

    with sqlite3.connect(args.db) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS products (id INTEGER PRIMARY KEY, price REAL)"
        )
    bridge = make_bridge(args)
    product_saved.connect(invalidate)
    bridge_reconnected.connect(forget_everything)

    from asignal.asgi import SignalMiddleware

    app = FastAPI()
    app.add_middleware(SignalMiddleware, bridges=[bridge])

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"node": args.node}

    @app.get("/products/{product_id}")
    async def get_product(product_id: int) -> dict[str, Any]:
        hit = product_id in cache
        if not hit:
            cache[product_id] = read_price(args.db, product_id)
        return {"id": product_id, "price": cache[product_id], "cached": hit}

    @app.put("/products/{product_id}")
    async def put_product(product_id: int, price: float) -> dict[str, Any]:
        write_price(args.db, product_id, price)
        await product_saved.asend("shop", product_id=product_id)
        return {"id": product_id, "price": price}

    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


async def worker(args: argparse.Namespace) -> None:
    bridge = make_bridge(args)
    audit = Path(args.audit)

    def record(sender: object, product_id: int, **kwargs: Any) -> None:
        event = current_event()
        line = {"product_id": product_id, "from": event.origin if event else None}
        with audit.open("a") as out:
            out.write(json.dumps(line) + "\n")

    product_saved.connect(record)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with bridge:
        audit.touch()
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("role", choices=["web", "worker"])
    parser.add_argument("--node", required=True)
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument(
        "--broker", "--redis", dest="broker", default="redis://127.0.0.1:6379/0"
    )
    parser.add_argument("--prefix", default="asignal-example")
    parser.add_argument("--db", default="products.sqlite3")
    parser.add_argument("--audit", default="audit.jsonl")
    args = parser.parse_args()
    if args.role == "web":
        web(args)
    else:
        asyncio.run(worker(args))


if __name__ == "__main__":
    main()

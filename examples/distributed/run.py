"""Run the distributed example: two web processes and a worker on the local Redis
(or NATS).

    python examples/distributed/run.py            # serves until Ctrl-C
    python examples/distributed/run.py --check    # self-test, exits 0 or 1
    python examples/distributed/run.py --nats     # on nats://127.0.0.1:4222

``--check`` starts the three processes (a key prefix of its own, a temporary
database), reads product 1 through both web processes so both cache it, changes
its price through web-1, and checks that web-2 serves the new price (its cache was
invalidated through the broker) and that the worker audited the change; then
stops everything and deletes its keys (or streams). ``BRIDGE_URL`` picks the broker
(``REDIS_URL`` too, for Redis; ``redis://127.0.0.1:6379/0`` by default, and
``nats://127.0.0.1:4222`` with ``--nats``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

APP = Path(__file__).with_name("app.py")
BROKER_URL = os.environ.get(
    "BRIDGE_URL",
    "nats://127.0.0.1:4222"
    if "--nats" in sys.argv
    else os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
)
ON_NATS = BROKER_URL.startswith(("nats://", "tls://"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def request(method: str, url: str) -> Any:
    import httpx

    response = httpx.request(method, url, timeout=5)
    response.raise_for_status()
    return response.json()


def wait_for(condition: Any, what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except Exception:
            pass
        time.sleep(0.1)
    raise SystemExit(f"timed out waiting for {what}")


def broker_reachable() -> bool:
    from urllib.parse import urlsplit

    parts = urlsplit(BROKER_URL)
    address = (parts.hostname or "127.0.0.1", parts.port or (4222 if ON_NATS else 6379))
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(address) == 0


def main(check: bool) -> int:
    if not broker_reachable():
        print(f"distributed: no broker at {BROKER_URL}", file=sys.stderr)
        # Like the test suite: a laptop without the broker skips, CI must have it.
        in_ci = os.environ.get("CI", "").lower() in ("1", "true", "yes")
        if check and not in_ci:
            print("distributed --check: skipped")
            return 0
        return 1
    workdir = Path(tempfile.mkdtemp(prefix="asignal-distributed-"))
    prefix = f"asignal-example-{uuid.uuid4().hex[:8]}" if check else "asignal-example"
    common = ["--broker", BROKER_URL, "--prefix", prefix]
    common += ["--db", str(workdir / "products.sqlite3")]
    audit = workdir / "audit.jsonl"
    ports = {"web-1": free_port(), "web-2": free_port()}
    app = [sys.executable, str(APP)]
    processes = [
        subprocess.Popen([*app, "web", "--node", node, "--port", str(port), *common])
        for node, port in ports.items()
    ]
    worker = ["worker", "--node", "worker-1", "--audit", str(audit)]
    processes.append(subprocess.Popen([*app, *worker, *common]))
    base = {node: f"http://127.0.0.1:{port}" for node, port in ports.items()}
    try:
        for url in base.values():
            wait_for(lambda url=url: request("GET", f"{url}/health"), url)
        wait_for(audit.exists, "the worker")
        if not check:
            for node, url in base.items():
                print(f"{node}: {url}/products/1")
            print("PUT a price with: curl -X PUT '<url>/products/1?price=12.5'")
            processes[0].wait()
            return 0
        request("PUT", f"{base['web-1']}/products/1?price=10")
        for url in base.values():
            request("GET", f"{url}/products/1")  # both caches hold 10
        assert request("GET", f"{base['web-2']}/products/1")["cached"]
        request("PUT", f"{base['web-1']}/products/1?price=20")
        wait_for(
            lambda: request("GET", f"{base['web-2']}/products/1")["price"] == 20,
            "web-2 to serve the new price",
        )
        wait_for(lambda: len(audit.read_text().splitlines()) == 2, "the worker's audit")
        lines = [json.loads(line) for line in audit.read_text().splitlines()]
        assert all(line["from"] == "web-1" for line in lines), lines
        print("distributed --check: OK")
        return 0
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        if check:
            cleanup(prefix)


def cleanup(prefix: str) -> None:
    if ON_NATS:
        asyncio.run(delete_streams(prefix))
        return
    import redis

    client = redis.Redis.from_url(BROKER_URL)
    keys = list(client.scan_iter(match=f"{prefix}:*"))
    if keys:
        client.delete(*keys)
    client.close()


async def delete_streams(prefix: str) -> None:
    """The streams the bridge made for *prefix* (named after it by default)."""
    import nats
    from nats.js.errors import NotFoundError

    client = await nats.connect(BROKER_URL.split("?")[0])
    js = client.jetstream()
    for stream in (prefix, f"{prefix}-dead-letter", f"KV_{prefix}-receipts"):
        with contextlib.suppress(NotFoundError):
            await js.delete_stream(stream)
    await client.close()


if __name__ == "__main__":
    sys.exit(main("--check" in sys.argv))

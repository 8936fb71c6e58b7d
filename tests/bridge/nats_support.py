"""The NATS side of the bridge fixtures: the machine's server, raw access to the
test's stream (to inject and read dead letters), and cleaning up what a test made."""

from __future__ import annotations

import contextlib
import os
import socket
from typing import Any

NATS_HOST = os.environ.get("ASIGNAL_TEST_NATS_HOST", "127.0.0.1")
NATS_PORT = int(os.environ.get("ASIGNAL_TEST_NATS_PORT", "4222"))
NATS_URL = f"nats://{NATS_HOST}:{NATS_PORT}"


def nats_up(host: str = NATS_HOST, port: int = NATS_PORT) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((host, port)) == 0


def stream_name(prefix: str) -> str:
    """The stream a bridge with *prefix* uses by default (test prefixes are valid
    names as they are)."""
    return prefix


async def connect(url: str) -> Any:
    import nats

    return await nats.connect(url, connect_timeout=5, max_reconnect_attempts=0)


async def delete_streams(url: str, prefix: str, stream: str | None = None) -> None:
    """Delete the streams and the receipts bucket of *prefix* (or of *stream*),
    if they exist."""
    from nats.js.errors import NotFoundError

    client = await connect(url)
    try:
        js = client.jetstream()
        stream = stream or stream_name(prefix)
        for name in (stream, f"{stream}-dead-letter", f"KV_{stream}-receipts"):
            with contextlib.suppress(NotFoundError):
                await js.delete_stream(name)
    finally:
        await client.close()


async def publish_raw(url: str, prefix: str, subject: str, data: bytes) -> None:
    client = await connect(url)
    try:
        await client.jetstream().publish(f"{prefix}.{subject}", data)
    finally:
        await client.close()


async def dead_letter_reasons(url: str, prefix: str) -> list[str]:
    """The reasons stored with the dead letters of *prefix*, oldest first."""
    from nats.js.errors import NotFoundError

    client = await connect(url)
    try:
        js = client.jetstream()
        stream = f"{stream_name(prefix)}-dead-letter"
        try:
            info: Any = await js.stream_info(stream)
        except NotFoundError:
            return []
        reasons: list[str] = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            raw: Any = await js.get_msg(stream, seq)
            reasons.append((raw.headers or {}).get("Asignal-Reason", ""))
        return reasons
    finally:
        await client.close()

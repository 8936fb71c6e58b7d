"""Bridge nodes as OS processes (``node_process.py``), and sending while a broker
comes back, for the tests of every real transport."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio

from asignal import Signal
from asignal.bridge import TransportError

from .bridge_support import wait_until

NODE_SCRIPT = Path(__file__).with_name("node_process.py")


class NodeProcesses:
    """Node processes (node_process.py) and the files they write."""

    def __init__(self, tmp_path: Path, url: str, prefix: str, name: str) -> None:
        self.tmp_path = tmp_path
        self.url = url
        self.prefix = prefix
        self.name = name
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def out(self, node_id: str) -> Path:
        return self.tmp_path / f"{node_id}.txt"

    def start(self, node_id: str, delivery: str, delay: float = 0.0) -> None:
        self.processes[node_id] = subprocess.Popen(
            [
                sys.executable,
                str(NODE_SCRIPT),
                self.url,
                self.prefix,
                node_id,
                self.name,
                delivery,
                str(self.out(node_id)),
                str(delay),
            ],
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        )

    def lines(self, node_id: str) -> list[str]:
        path = self.out(node_id)
        return path.read_text().splitlines() if path.exists() else []

    def events(self, node_id: str) -> list[int]:
        return [int(line) for line in self.lines(node_id) if line != "ready"]

    async def wait_ready(self, node_id: str, count: int = 1) -> None:
        await wait_until(lambda: self.lines(node_id).count("ready") >= count, 15)

    def kill(self, node_id: str, sig: int = signal.SIGKILL) -> None:
        process = self.processes.pop(node_id)
        process.send_signal(sig)
        process.wait(timeout=10)

    def stop_all(self) -> None:
        for node_id in list(self.processes):
            self.kill(node_id, signal.SIGTERM)


async def send_when_up(signal: Signal, **kwargs: Any) -> None:
    """Send, retrying while the publishing connection is still being re-made."""
    deadline = time.monotonic() + 10
    while True:
        try:
            await signal.asend(None, **kwargs)
            return
        except TransportError:
            if time.monotonic() > deadline:
                raise
            await anyio.sleep(0.1)

"""A throwaway ``nats-server -js`` on a free loopback port, for tests that kill it."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from .redis_server import free_port


def nats_server_binary() -> str | None:
    return shutil.which("nats-server") or (
        "/usr/sbin/nats-server" if Path("/usr/sbin/nats-server").exists() else None
    )


class NatsServer:
    """``nats-server`` with JetStream storing in *directory* (file storage, so a
    restart keeps streams and consumers unless the directory is changed)."""

    def __init__(self, directory: Path) -> None:
        binary = nats_server_binary()
        if binary is None:
            raise FileNotFoundError("nats-server is not installed")
        self.binary = binary
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                self.binary,
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-sd",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                sock.settimeout(0.2)
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.02)
        raise RuntimeError(f"nats-server did not start on port {self.port}")

    def kill(self) -> None:
        """kill -9, and wait for it to be gone."""
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
            self.process = None

    def restart(self, directory: Path | None = None) -> None:
        """Kill and start again; with *directory*, on an empty store (as if the
        server lost its data)."""
        self.kill()
        if directory is not None:
            self.directory = directory
        self.start()

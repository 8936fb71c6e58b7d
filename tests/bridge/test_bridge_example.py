"""``examples/distributed/run.py --check``: two web processes and a worker on Redis."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from .conftest import REDIS_HOST, REDIS_PORT, redis_up, require_service

RUN = Path(__file__).resolve().parents[2] / "examples" / "distributed" / "run.py"


def test_distributed_example_checks_itself() -> None:
    """A save through one web process invalidates the other's cache, and the
    worker audits it."""
    if not redis_up():
        require_service(f"no Redis server on {REDIS_HOST}:{REDIS_PORT}")
    result = subprocess.run(
        [sys.executable, str(RUN), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "REDIS_URL": f"redis://{REDIS_HOST}:{REDIS_PORT}/13"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "distributed --check: OK" in result.stdout

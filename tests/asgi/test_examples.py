"""The web examples serve a real uvicorn server and check themselves (--check).

Run in a subprocess, as ``nox -s examples`` does; asyncio only, as uvicorn is."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.parametrize("name", ["fastapi_app.py", "starlette_app.py"])
def test_example_checks_itself(name: str) -> None:
    """``python examples/<name> --check`` serves, exercises and exits 0."""
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name), "--check"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{name.removesuffix('.py')} --check: OK" in result.stdout

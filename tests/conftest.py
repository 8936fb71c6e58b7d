"""Shared fixtures: every async test runs on asyncio and on trio."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator

import pytest

import asignal.signals as builtin_signals
from asignal import Signal

#: In CI a missing server (PostgreSQL, uvicorn's port) is an error, not a skip.
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


#: trio is absent only where the core runs alone, with no extra installed
#: (``nox -s core_only``): there the trio half of each async test is skipped.
_NO_TRIO = importlib.util.find_spec("trio") is None


@pytest.fixture(
    params=[
        "asyncio",
        pytest.param(
            "trio",
            marks=pytest.mark.skipif(_NO_TRIO, reason="trio is not installed"),
        ),
    ]
)
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Run each ``@pytest.mark.anyio`` test once per backend."""
    return str(request.param)


@pytest.fixture
def signal() -> Signal:
    """A fresh signal per test, so tests never share receivers."""
    return Signal(name="test-signal")


@pytest.fixture(autouse=True)
def _builtin_signals_stay_clean() -> Iterator[None]:
    """Fail a test that leaves live receivers on a built-in signal (Django's
    ``assertTestIsClean``): a leaked receiver would fire in later tests."""
    yield
    leaked = {
        name: [info.name for info in sig.describe()]
        for name in builtin_signals.__all__
        if (sig := getattr(builtin_signals, name)).describe()
    }
    assert not leaked, f"receivers left connected to built-in signals: {leaked}"


def require_service(reason: str) -> None:
    """Skip the calling test because a server is missing, or fail in CI."""
    if IN_CI:
        pytest.fail(f"{reason} (CI must provide it)")
    pytest.skip(reason)

"""Smoke test that the fixtures work on both backends."""

from __future__ import annotations

import pytest

from asignal import Signal

pytestmark = pytest.mark.anyio


async def test_asend_reaches_receiver(signal: Signal, anyio_backend: str) -> None:
    """An async receiver is awaited and its result returned."""

    async def handler(sender: object, **kwargs: object) -> str:
        return f"{anyio_backend}:{sender}"

    signal.connect(handler)
    assert await signal.asend("s") == [(handler, f"{anyio_backend}:s")]

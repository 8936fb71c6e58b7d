"""Static checks (mypy and pyright, not pytest): ``asignal.bridge`` keeps types."""

from __future__ import annotations

from typing import Any

from typing_extensions import assert_type

from asignal import Signal
from asignal.bridge import (
    Bridge,
    BridgedEvent,
    BridgeStatistics,
    Codec,
    current_event,
)

signal = Signal(name="typing.bridge")
bridge = Bridge("memory://typing", node_id="n", delivery="at_least_once")

assert_type(bridge.add(signal), Signal)
assert_type(bridge.remove(signal), bool)
assert_type(bridge.statistics(), BridgeStatistics)
assert_type(bridge.url, str)
assert_type(current_event(), BridgedEvent | None)


class ByKey:
    """A codec with an async decode satisfies the protocol."""

    def encode(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        return kwargs

    async def decode(self, data: dict[str, Any]) -> dict[str, Any]:
        return data


codec: Codec = ByKey()


async def use() -> None:
    async with bridge as entered:
        assert_type(entered, Bridge)

"""Helpers for the bridge tests: a node with its own signal object, and waiting."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio

from asignal import Signal
from asignal.bridge import Bridge, BridgedEvent, Codec, current_event

MakeBridge = Callable[..., Bridge]


@dataclass(frozen=True)
class Seen:
    sender: object
    kwargs: dict[str, Any]
    event: BridgedEvent | None


class Order:
    """A model-like sender class, registered with bridges by name."""

    def __init__(self, pk: int) -> None:
        self.pk = pk


class Node:
    """One process's view in a single-process test: a bridge and its own signal
    object (named like the others' so they are the same signal across nodes), with
    a receiver that records every call."""

    def __init__(
        self,
        bridge: Bridge,
        name: str,
        *,
        senders: tuple[object, ...] = (),
        codec: Codec | None = None,
    ) -> None:
        self.bridge = bridge
        self.signal = Signal(name=name)
        bridge.add(self.signal, senders=senders, codec=codec)
        self.seen: list[Seen] = []
        self.signal.connect(self._record, weak=False)

    async def _record(self, sender: object, **kwargs: Any) -> None:
        kwargs.pop("signal")
        self.seen.append(Seen(sender, kwargs, current_event()))

    @property
    def delivered(self) -> list[Seen]:
        """Calls made for events from other nodes."""
        return [s for s in self.seen if s.event is not None]


async def wait_until(condition: Callable[[], object], timeout: float = 5.0) -> None:
    """Poll *condition* until true; fail after *timeout* seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await anyio.sleep(0.01)

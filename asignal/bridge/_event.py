"""What a receiver can learn about the bridged event it is handling."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field

from asignal import Signal

__all__ = ["BridgedEvent", "bridge_reconnected", "current_event", "delivering"]


@dataclass(frozen=True)
class BridgedEvent:
    """The event a node is delivering to its receivers (see :func:`current_event`).

    :ivar id: the event's id, the same on every node.
    :ivar signal: the signal's name.
    :ivar origin: the ``node_id`` that published it.
    :ivar time: when it was published, seconds since the epoch.
    :ivar deliveries: 1 the first time this node runs it, more on redelivery.
    :ivar headers: the headers it was published with (such as ``traceparent``).
    """

    id: str
    signal: str
    origin: str
    time: float
    deliveries: int
    headers: dict[str, str] = field(default_factory=dict[str, str])


#: Set while a bridge runs receivers for an event from another node. The bridge's own
#: receiver reads it to never publish that event (or anything a receiver sends while
#: handling it) again: every node runs those receivers itself, so publishing would
#: deliver the same thing once per node.
delivering: ContextVar[BridgedEvent | None] = ContextVar(
    "asignal_bridge_delivering", default=None
)


def current_event() -> BridgedEvent | None:
    """The bridged event being delivered, inside a receiver run by a bridge; ``None``
    for a local send."""
    return delivering.get()


#: Sent (robustly, with the bridge as sender) after a bridge reconnected to its
#: broker. ``missed`` is True when events published meanwhile may never arrive:
#: after every Pub/Sub reconnect, and when Redis lost the streams (restarted
#: without persistence). ``reason`` says what happened.
bridge_reconnected = Signal(
    name="asignal.bridge.reconnected", providing_args=["missed", "reason"]
)

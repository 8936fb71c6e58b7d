"""Signals across processes: ``Bridge`` carries the sends of the signals added to it
to every process (node) on the same broker.

Transports, picked by the URL's scheme: ``redis://``/``rediss://`` (extra
``asignal[redis]``: Pub/Sub for ``at_most_once``, Streams for ``at_least_once``),
``nats://`` (extra ``asignal[nats]``: core NATS for ``at_most_once``, JetStream for
``at_least_once``) and ``memory://NAME`` (in-process, for tests). See the README's
"Across processes".
"""

from __future__ import annotations

from ._bridge import Bridge as Bridge
from ._bridge import BridgeClosedError as BridgeClosedError
from ._bridge import BridgeStatistics as BridgeStatistics
from ._bridge import Publication as Publication
from ._bridge import bridges_of as bridges_of
from ._bridge import open_bridges as open_bridges
from ._consumer import Codec as Codec
from ._envelope import EnvelopeError as EnvelopeError
from ._event import BridgedEvent as BridgedEvent
from ._event import bridge_reconnected as bridge_reconnected
from ._event import current_event as current_event
from ._transport import TransportError as TransportError

__all__ = [
    "Bridge",
    "BridgeClosedError",
    "BridgeStatistics",
    "BridgedEvent",
    "Codec",
    "EnvelopeError",
    "Publication",
    "TransportError",
    "bridge_reconnected",
    "bridges_of",
    "current_event",
    "open_bridges",
]


def _publish() -> None:
    # Show the public path, asignal.bridge.X, in reprs and tracebacks.
    for name in __all__:
        obj = globals()[name]
        if isinstance(obj, type):
            obj.__module__ = __name__


_publish()
del _publish

"""asignal: Django's signals for async Python, on anyio (asyncio and trio).

The public API is re-exported here; the implementation lives in private modules.
Integrations are public submodules that this package never imports:
``asignal.signals`` (built-in signals), ``asignal.asgi``, ``asignal.testing``,
``asignal.sqlalchemy``, ``asignal.bridge``, ``asignal.otel``.
"""

from __future__ import annotations

from ._connection import Connection as Connection
from ._connection import ReceiverInfo as ReceiverInfo
from ._discovery import AutodiscoverError as AutodiscoverError
from ._discovery import autodiscover as autodiscover
from ._signal import Signal as Signal
from ._signal import SignalArgumentsWarning as SignalArgumentsWarning
from ._typed import TypedReceiver as TypedReceiver
from ._typed import TypedSignal as TypedSignal
from ._typed import Undeclared as Undeclared
from ._typed import receiver as receiver
from ._typed import signal as signal
from ._watch import set_slow_threshold as set_slow_threshold

__all__ = [
    "AutodiscoverError",
    "Connection",
    "ReceiverInfo",
    "Signal",
    "SignalArgumentsWarning",
    "TypedReceiver",
    "TypedSignal",
    "Undeclared",
    "autodiscover",
    "receiver",
    "set_slow_threshold",
    "signal",
]

__version__ = "0.1.0"


def _publish() -> None:
    # Show the public path, asignal.X, in reprs, tracebacks and pickles.
    for name in __all__:
        globals()[name].__module__ = __name__


_publish()
del _publish

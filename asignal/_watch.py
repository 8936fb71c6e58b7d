"""Watching sends: instruments (``asignal.otel``) and slow-receiver warnings.

Nothing here runs while nothing watches: a send reads one flag (``hooks.active``, in
``Signal.prepare``, shared with ``asignal.testing``'s hooks) and takes its usual
path. While something watches, ``prepare`` hands the send :func:`watched_plan`: the
same receivers, each behind a wrapper that runs every instrument's receiver context
around the call and times it. The send itself runs through :meth:`Watcher.run` (or
:meth:`Watcher.arun`), inside every instrument's send context, and the results it
returns hold the receivers themselves, never their wrappers.

Every context manager an instrument gives is entered and exited in the context
(thread, task, ``contextvars.Context``) of what it is about, so an instrument may
make its span current there: the receiver's span is current while the receiver
runs, and every receiver's span is a child of its send's.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, cast

from ._receivers import describe_callable, log_fields
from ._routing import ASYNC, INLINE, Plan
from ._state import hooks, refresh_flags, watch

if TYPE_CHECKING:
    from ._signal import Signal

__all__ = [
    "BridgeEvent",
    "Instrument",
    "Watcher",
    "add_instrument",
    "following",
    "processing",
    "publishing",
    "remove_instrument",
    "set_slow_threshold",
    "watched_plan",
]

logger = logging.getLogger("asignal")

_NOTHING = contextlib.nullcontext()

Results = list[tuple[Callable[..., Any], Any]]

#: How a receiver ran, as instruments are told: awaited on the event loop, called
#: in the sending thread or on the loop, or in a worker thread.
MODE_NAMES = {ASYNC: "async", INLINE: "inline"}


class Instrument(Protocol):
    """What something that watches every send provides (``asignal.otel``).

    Each method returns a context manager around what it is about; an exception
    that ends it (a receiver's failure, also in a robust send before it becomes
    the result; a cancellation; a timeout) passes through its ``__exit__`` and must
    not be swallowed.
    """

    def send(
        self, signal: Signal, sender: object, method: str, receivers: int
    ) -> AbstractContextManager[object]:
        """Around one send (``method`` is ``send``, ``asend_robust``, ...) that
        reaches *receivers* receivers."""
        ...

    def receiver(
        self,
        signal: Signal,
        sender: object,
        receiver: Callable[..., Any],
        method: str,
        mode: str,
    ) -> AbstractContextManager[object]:
        """Around one receiver's run; *mode* is ``async``, ``inline`` or
        ``thread`` (see :data:`MODE_NAMES`)."""
        ...

    def follow(self, signal: Signal, reason: str) -> AbstractContextManager[object]:
        """Around a send made on behalf of code that has moved on (*reason*:
        ``background``, a send after the response): it follows from the current
        work rather than being part of it."""
        ...

    def publish(
        self, event: BridgeEvent, headers: dict[str, str]
    ) -> AbstractContextManager[object]:
        """Around a bridge's publish of one event; it may add to *headers*, which
        travel with the event."""
        ...

    def process(
        self, event: BridgeEvent, headers: Mapping[str, str]
    ) -> AbstractContextManager[object]:
        """Around the local run of an event that arrived from another node, with
        the headers it carried."""
        ...


@dataclass(frozen=True)
class BridgeEvent:
    """An event crossing a bridge, as instruments see it.

    :ivar signal: the signal's name. :ivar system: the broker (``redis``, ``nats``,
    ``memory``). :ivar id: the event's id. :ivar node: this node's ``node_id``.
    :ivar origin: the publishing node's ``node_id``. :ivar deliveries: how often
    this node has received it (1 on publish).
    """

    signal: str
    system: str
    id: str
    node: str
    origin: str
    deliveries: int = 1


def add_instrument(instrument: Instrument) -> None:
    """Watch every send with *instrument* from now on (once, however often added)."""
    with hooks.lock:
        if instrument not in watch.instruments:
            watch.instruments = (*watch.instruments, instrument)
        refresh_flags()


def remove_instrument(instrument: Instrument) -> None:
    """Stop watching with *instrument*; nothing if it was not added."""
    with hooks.lock:
        watch.instruments = tuple(i for i in watch.instruments if i is not instrument)
        refresh_flags()


def set_slow_threshold(seconds: float | None) -> float | None:
    """Log a WARNING on the ``asignal`` logger for every receiver run, of any signal
    without a threshold of its own (``Signal(slow_threshold=...)``), that takes
    longer than *seconds* (the time from its call to its end, suspensions
    included); None turns it off. Returns the previous threshold.

    :raises ValueError: *seconds* is negative or not a number.
    """
    checked = check_threshold(seconds)
    with hooks.lock:
        previous, watch.slow_threshold = watch.slow_threshold, checked
        refresh_flags()
    return previous


def check_threshold(seconds: float | None) -> float | None:
    if seconds is None:
        return None
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, (int, float))  # pyright: ignore[reportUnnecessaryIsInstance]
        or not seconds >= 0
    ):
        raise ValueError(
            f"a slow-receiver threshold is a number of seconds >= 0, or None to turn "
            f"it off; got {seconds!r}."
        )
    return float(seconds)


def watch_signal(signal: Signal, threshold: float | None) -> None:
    """Record whether *signal* has a slow-receiver threshold of its own."""
    with hooks.lock:
        if threshold is None:
            watch.slow_signals.discard(signal)
        else:
            watch.slow_signals.add(signal)
        refresh_flags()


def watched_plan(signal: Signal, plan: Plan, sender: object, method: str) -> Plan:
    """*plan* as this send runs it while something watches: each receiver behind a
    wrapper, and a :class:`Watcher` for the send; *plan* itself when nothing
    applies to *signal*."""
    threshold = signal.slow_threshold
    if threshold is None:
        threshold = watch.slow_threshold
    instruments = watch.instruments
    if not instruments and threshold is None:
        if not watch.slow_signals:
            # The signals that had a threshold of their own have died since: stop
            # sends from taking this path.
            with hooks.lock:
                refresh_flags()
        return plan
    return Watcher(signal, sender, method, instruments, threshold, plan).plan()


class Watcher:
    """One watched send: the instruments and threshold that apply, and the plan it
    wraps (so a redelivery's ``Plan.only`` filters the receivers themselves)."""

    __slots__ = (
        "inner",
        "instruments",
        "method",
        "plain",
        "sender",
        "signal",
        "threshold",
    )

    def __init__(
        self,
        signal: Signal,
        sender: object,
        method: str,
        instruments: tuple[Instrument, ...],
        threshold: float | None,
        plain: Plan,
    ) -> None:
        self.signal = signal
        self.sender = sender
        self.method = method
        self.instruments = instruments
        self.threshold = threshold
        self.plain = plain
        #: The wrapped receivers as a plan of their own, unwatched: what the send
        #: runs inside :meth:`run` or :meth:`arun` (and so takes every fast path).
        self.inner = plain

    def plan(self) -> Plan:
        """The plan this watcher's send runs: each receiver behind a wrapper."""
        # A blocking send calls every sync receiver in the sending thread.
        blocking = not self.method.startswith("a")
        steps = tuple(
            (self.deref(deref, INLINE if blocking and mode != ASYNC else mode), mode)
            for deref, mode in self.plain.steps
        )
        self.inner = Plan(steps)
        return Plan(steps, self)

    def rewatch(self, plain: Plan) -> Plan:
        """*plain* (a part of this send's plan) watched as this send is."""
        return Watcher(
            self.signal,
            self.sender,
            self.method,
            self.instruments,
            self.threshold,
            plain,
        ).plan()

    def run(self, run: Callable[[], Results]) -> Results:
        """Run the blocking send *run* inside every instrument's send context;
        its results with the receivers themselves, not their wrappers."""
        with self._entered(self._send_contexts):
            return _receivers_of(run())

    async def arun(self, run: Callable[[], Awaitable[Results]]) -> Results:
        """:meth:`run` for an async send."""
        with self._entered(self._send_contexts):
            return _receivers_of(await run())

    def _send_contexts(self) -> Iterator[AbstractContextManager[object]]:
        count = len(self.plain.steps)
        for instrument in self.instruments:
            yield instrument.send(self.signal, self.sender, self.method, count)

    def _entered(
        self, contexts: Callable[[], Iterable[AbstractContextManager[object]]]
    ) -> AbstractContextManager[object]:
        """The instruments' *contexts*, entered; a shared no-op context without
        instruments (the slow-receiver clock alone stays cheap)."""
        return _entered(contexts()) if self.instruments else _NOTHING

    def deref(self, deref: Callable[[], Any], mode: int) -> Callable[[], Any]:
        """*deref* giving the receiver behind its wrapper (None if it died)."""

        def watched_deref() -> Any:
            receiver = deref()
            return None if receiver is None else self._wrap(receiver, mode)

        return watched_deref

    def _wrap(self, receiver: Callable[..., Any], mode: int) -> Callable[..., Any]:
        entered, timed = self._entered, self._timed
        mode_name = MODE_NAMES.get(mode, "thread")

        def contexts() -> Iterator[AbstractContextManager[object]]:
            for instrument in self.instruments:
                yield instrument.receiver(
                    self.signal, self.sender, receiver, self.method, mode_name
                )

        wrapper: Any
        if mode == ASYNC:

            async def watched_async(**kwargs: Any) -> Any:
                start = time.perf_counter()
                try:
                    with entered(contexts):
                        return await receiver(**kwargs)
                finally:
                    timed(receiver, start)

            wrapper = watched_async
        else:

            def watched(**kwargs: Any) -> Any:
                start = time.perf_counter()
                try:
                    with entered(contexts):
                        return receiver(**kwargs)
                finally:
                    timed(receiver, start)

            wrapper = watched
        # Failures are logged (and TypeErrors worded) with the receiver's name:
        # describe_callable() follows __wrapped__.
        wrapper.__wrapped__ = receiver
        return cast("Callable[..., Any]", wrapper)

    def _timed(self, receiver: Callable[..., Any], start: float) -> None:
        threshold = self.threshold
        if threshold is not None:
            elapsed = time.perf_counter() - start
            if elapsed > threshold:
                self._slow(receiver, elapsed)

    def _slow(self, receiver: Callable[..., Any], elapsed: float) -> None:
        name = describe_callable(receiver)
        # A broken handler must not break the send it reports on.
        with contextlib.suppress(Exception):
            logger.warning(
                "Slow receiver: %s took %.3f s in %r.%s() (threshold %s s)",
                name,
                elapsed,
                self.signal,
                self.method,
                self.threshold,
                extra={
                    **log_fields(
                        self.signal,
                        receiver=receiver,
                        sender=self.sender,
                        method=self.method,
                    ),
                    "duration": elapsed,
                },
            )


# -- seams for integrations (asignal.asgi, asignal.bridge) --------------------------


def _receivers_of(results: Results) -> Results:
    return [(cast("Any", wrapper).__wrapped__, result) for wrapper, result in results]


def _entered(
    contexts: Iterable[AbstractContextManager[object]],
) -> AbstractContextManager[object]:
    """*contexts* entered in order, as one context that leaves them in reverse; if
    one fails to enter, those before it are left before the error propagates."""
    stack = contextlib.ExitStack()
    try:
        for context in contexts:
            stack.enter_context(context)
    except BaseException:
        stack.close()
        raise
    return stack


def following(signal: Signal, reason: str) -> AbstractContextManager[object]:
    """Around a send that follows from work that has moved on: every instrument's
    ``follow`` context, entered."""
    return _entered(i.follow(signal, reason) for i in watch.instruments)


def publishing(
    event: BridgeEvent, headers: dict[str, str]
) -> AbstractContextManager[object]:
    """Around a bridge's publish of one event: every instrument's ``publish``
    context (which may add to *headers*), entered."""
    return _entered(i.publish(event, headers) for i in watch.instruments)


def processing(
    event: BridgeEvent, headers: Mapping[str, str]
) -> AbstractContextManager[object]:
    """Around the local run of an event from another node: every instrument's
    ``process`` context, entered."""
    return _entered(i.process(event, headers) for i in watch.instruments)

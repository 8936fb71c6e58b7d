"""The ``Signal`` class and the ``@receiver`` decorator: the public API.

Connections are kept by ``_routing``; every send goes through :meth:`Signal._prepare`
(the one prelude) and then through ``_dispatch.Delivery`` (the one delivery path).
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Any, TypeVar

import anyio
import anyio.lowlevel

from ._connection import Connection, ReceiverInfo, entry_key, make_connection
from ._dispatch import Delivery, Results, arun, call_each
from ._hooks import intercept
from ._receivers import check_receiver
from ._routing import Connections, Plan, call_order
from ._state import hooks, signals, watch
from ._watch import check_threshold, watch_signal, watched_plan

__all__ = ["RESERVED_NAMES", "Signal", "SignalArgumentsWarning", "receiver"]

F = TypeVar("F", bound=Callable[..., Any])

_MISSING: Any = object()

#: Keyword names no payload may use, in any send method or in ``providing_args``:
#: receivers are given the signal and the sender under the first two, and
#: ``asend``/``asend_robust`` take their deadline as ``timeout=``. One rule for every
#: method, so whatever ``send()`` delivers, ``asend()`` delivers too.
RESERVED_NAMES = frozenset({"signal", "sender", "timeout"})

_DEFAULT_THREAD_LIMIT = 40  # anyio's own default for to_thread


def all_signals() -> list[Signal]:
    """Every live ``Signal`` in the process, in no particular order."""
    return list(signals)


def _debug_enabled() -> bool:
    return sys.flags.dev_mode or os.environ.get("ASIGNAL_DEBUG", "") not in ("", "0")


class SignalArgumentsWarning(UserWarning):
    """Warned (in debug mode) when a send's keyword arguments differ from the
    ``providing_args`` the signal declared."""


class _PlanCache:
    """``signal.sender_receivers_cache``: kept for tooling written for Django, which
    calls ``.clear()`` after changing ``signal.receivers`` by hand."""

    __slots__ = ("_connections",)

    def __init__(self, connections: Connections) -> None:
        self._connections = connections

    def clear(self) -> None:
        self._connections.routing = None


class Signal:
    """A signal that receivers connect to and senders send, as in ``django.dispatch``.

    :param providing_args: the keyword arguments a send is documented to carry (the
        spelling of Django's old docs). Kept as :attr:`providing_args` for
        introspection; with ``strict=True`` a send that omits or adds arguments raises
        ``TypeError``, and in debug mode (``python -X dev`` or ``ASIGNAL_DEBUG=1``)
        it warns with :class:`SignalArgumentsWarning`. ``signal``, ``sender`` and
        ``timeout`` are reserved (:data:`RESERVED_NAMES`): ``ValueError``.
    :param use_caching: accepted for Django compatibility. asignal always keeps a
        per-sender snapshot of the receivers, rebuilt after each connect or
        disconnect, that never keeps a sender alive; this flag changes nothing.
    :param name: identifies the signal in reprs, logs and across processes.
    :param strict: enforce ``providing_args`` on every send.
    :param thread_limit: how many of this signal's sync receivers may run in worker
        threads at once under :meth:`asend`; an ``int`` (40 by default, like
        ``anyio.to_thread``) gives each event loop a limiter of its own. An
        ``anyio.CapacityLimiter`` is shared as it is, and belongs to the backend
        (asyncio or trio) it is first used on: a send from the other backend raises
        ``RuntimeError``; pass an ``int`` to a signal used on both.
    :param slow_threshold: seconds; a receiver of this signal that runs longer (from
        its call to its end, suspensions included) is logged at WARNING on the
        ``asignal`` logger. None (the default) uses the process-wide threshold,
        :func:`asignal.set_slow_threshold`, which is off until set.
    """

    def __init__(
        self,
        *,
        use_caching: bool = False,
        providing_args: Iterable[str] | None = None,
        name: str | None = None,
        strict: bool = False,
        thread_limit: int | anyio.CapacityLimiter = _DEFAULT_THREAD_LIMIT,
        slow_threshold: float | None = None,
    ) -> None:
        if isinstance(providing_args, str):
            raise TypeError(
                "providing_args must be a list of argument names, e.g. "
                f"providing_args=[{providing_args!r}], not a string."
            )
        if strict and providing_args is None:
            raise ValueError(
                "strict=True checks sends against providing_args; declare them too, "
                "e.g. Signal(providing_args=['instance', 'created'], strict=True)."
            )
        if isinstance(thread_limit, int) and thread_limit < 1:
            raise ValueError(f"thread_limit must be at least 1, got {thread_limit}.")
        self.providing_args: frozenset[str] | None = (
            None if providing_args is None else frozenset(providing_args)
        )
        reserved = sorted(RESERVED_NAMES & (self.providing_args or frozenset()))
        if reserved:
            raise ValueError(
                f"providing_args may not include {', '.join(map(repr, reserved))}: "
                "receivers get the signal and the sender as signal= and sender=, and "
                "asend() takes timeout= as its deadline. Rename the argument, e.g. "
                f"{reserved[0]!r} -> '{reserved[0]}_value'."
            )
        self.use_caching = use_caching
        self.name = name
        self.strict = strict
        self._thread_limit = thread_limit
        self._limiter_backend: type | None = None
        self._limiters = anyio.lowlevel.RunVar[anyio.CapacityLimiter](
            f"asignal-thread-limiter-{id(self):x}"
        )
        self._check_args = self.providing_args is not None and (
            strict or _debug_enabled()
        )
        self._connections = Connections()
        self.sender_receivers_cache = _PlanCache(self._connections)
        self._slow_threshold: float | None = None
        self.slow_threshold = slow_threshold
        signals.add(self)

    def __repr__(self) -> str:
        if self.name is not None:
            return f"<Signal {self.name!r}>"
        return f"<Signal at {id(self):#x}>"

    @property
    def lock(self) -> Any:
        """Held while the connections change; Django tooling takes it too."""
        return self._connections.lock

    @lock.setter
    def lock(self, lock: Any) -> None:
        self._connections.lock = lock

    # -- connections -----------------------------------------------------------------

    def connect(
        self,
        receiver: F,
        sender: object = None,
        weak: bool = True,
        dispatch_uid: Hashable | None = None,
        *,
        priority: int = 0,
        inline: bool = False,
    ) -> F:
        """Connect *receiver* and return it unchanged.

        :param receiver: a function or coroutine function taking ``(sender, **kwargs)``;
            it is called as ``receiver(signal=..., sender=..., **payload)``. Wrappers
            (``functools.partial``, ``staticmethod``, bound methods, objects with an
            ``async def __call__``) are awaited when what they wrap is ``async def``.
        :param sender: only sends from this object (matched by identity) reach the
            receiver; ``None`` means any sender. A sender that supports weak
            references is held weakly and its connections end when it is collected;
            one that does not is kept alive while connected.
        :param weak: hold the receiver by a weak reference (``WeakMethod`` for bound
            methods), so connecting does not keep it alive.
        :param dispatch_uid: identifies the receiver instead of the receiver object.
        :param priority: receivers with a higher priority are called first; ties are
            called in connection order.
        :param inline: for a sync receiver, let :meth:`asend` call it on the event
            loop instead of in a worker thread. Only for cheap, non-blocking code.
        :raises TypeError: *receiver* is not callable, is a coroutine object, or cannot
            be weakly referenced while ``weak=True``.
        :raises ValueError: *receiver* does not accept ``**kwargs``.

        Connecting the same receiver (or ``dispatch_uid``) for the same sender again
        changes nothing: the first connection stays, with its priority.
        """
        is_async = check_receiver(receiver)
        if not isinstance(priority, int):  # pyright: ignore[reportUnnecessaryIsInstance]
            raise TypeError(f"priority must be an int, got {priority!r}.")
        self._connections.add(
            make_connection(
                receiver,
                is_async=is_async,
                sender=sender,
                weak=weak,
                dispatch_uid=dispatch_uid,
                priority=priority,
                inline=inline,
                on_death=self._connections.on_death,
            )
        )
        return receiver

    def disconnect(
        self,
        receiver: Callable[..., Any] | None = None,
        sender: object = None,
        dispatch_uid: Hashable | None = None,
    ) -> bool:
        """Disconnect a receiver; return whether one was connected.

        The receiver is found by the key it was connected with: the same receiver (or
        ``dispatch_uid``) and the same *sender*. The connection is released after
        the signal's lock, so a receiver whose ``__del__`` sends this signal is safe.
        """
        if dispatch_uid is None and receiver is None:
            raise TypeError("disconnect() needs the receiver or its dispatch_uid.")
        return self._connections.remove(entry_key(receiver, sender, dispatch_uid))

    def has_listeners(self, sender: object = None) -> bool:
        """Whether a send from *sender* would call any receiver.

        As in Django, ``has_listeners()`` (``sender=None``) counts only receivers
        connected for any sender.
        """
        return bool(self._connections.entries) and bool(
            self._connections.plan(sender).live()
        )

    def live_receivers(self, sender: object = None) -> list[Callable[..., Any]]:
        """The live receivers a send from *sender* calls, in call order."""
        if not self._connections.entries:
            return []
        return [fn for fn, _ in self._connections.plan(sender).live()]

    def describe(self) -> list[ReceiverInfo]:
        """Every live connection, in call order (priority, then connection order)."""
        ordered = call_order(self._connections.snapshot())
        return [info for c in ordered if (info := c.info()) is not None]

    @property
    def receivers(self) -> list[Connection]:
        """One entry per connection, in connection order (``[]`` when none).

        A copy: assign a list (for example one read earlier, from this signal or
        another) to replace the connections, as Django test tooling does to mute a
        signal. Assigning makes new entries that belong to this signal; those whose
        receiver or sender has died are left out.
        """
        return self._connections.snapshot()

    @receivers.setter
    def receivers(self, connections: Iterable[Connection]) -> None:
        given = list(connections)
        for connection in given:
            if not isinstance(connection, Connection):  # pyright: ignore[reportUnnecessaryIsInstance]
                raise TypeError(
                    "signal.receivers only takes Connection entries, such as a list "
                    f"read from signal.receivers earlier; got {connection!r}."
                )
        # Rebuilt rather than reused: a connection reports deaths to the signal that
        # made it, and this one must hear of them, or a dead sender's reused id()
        # could route here.
        rebuilt = (c.rebuilt(self._connections.on_death) for c in given)
        self._connections.replace(c for c in rebuilt if c is not None)

    @property
    def thread_limiter(self) -> anyio.CapacityLimiter:
        """The limiter for this signal's sync receivers in worker threads, for the
        running event loop (see ``thread_limit``)."""
        limit = self._thread_limit
        if isinstance(limit, int):
            limiter = self._limiters.get(None)
            if limiter is None:
                limiter = anyio.CapacityLimiter(limit)
                self._limiters.set(limiter)
            return limiter
        backend = anyio.lowlevel.current_token().backend_class
        if self._limiter_backend is None:
            self._limiter_backend = backend
        elif backend is not self._limiter_backend:
            raise RuntimeError(
                f"{self!r} was given an anyio.CapacityLimiter that was first used on "
                f"another async backend ({self._limiter_backend.__name__}); a limiter "
                "belongs to one backend. Pass thread_limit as an int to get a limiter "
                "per event loop, or give each backend a signal of its own."
            )
        return limit

    @property
    def slow_threshold(self) -> float | None:
        """This signal's slow-receiver threshold in seconds, or None to use the
        process-wide one (see the constructor); settable."""
        return self._slow_threshold

    @slow_threshold.setter
    def slow_threshold(self, seconds: float | None) -> None:
        self._slow_threshold = check_threshold(seconds)
        watch_signal(self, self._slow_threshold)

    # -- sending ---------------------------------------------------------------------

    def prepare(
        self, sender: object, named: dict[str, Any], method: str
    ) -> Plan | None:
        """The checks every send method makes, in one place, before it calls
        anything (the sender given once, reserved names, ``providing_args``, the
        testing hooks); the plan of receivers to run, or None when nothing is to be
        called (nothing connected, or muted by ``asignal.testing``).

        *named* is completed with ``signal`` and ``sender`` into the receivers'
        keyword arguments: pass a dict of your own. For integrations that deliver a
        send their own way (SQLAlchemy's greenlet); application code wants
        :meth:`send` or :meth:`asend`.
        """
        if sender is _MISSING:
            sender = _pop_sender(named, method)
        if named and not RESERVED_NAMES.isdisjoint(named):
            _reject_reserved(named, method)
        if self._check_args:
            self._check_payload(named, method)
        # One flag for the testing hooks and for watching: a send pays one check.
        hooked = hooks.active
        if hooked and intercept(self, sender, dict(named), method):
            return None
        connections = self._connections
        if not connections.entries:
            return None
        named["signal"] = self
        named["sender"] = sender
        routing = connections.routing or connections.route()
        if hooked and watch.active:
            plan = routing[0].get(id(sender), routing[1])
            return watched_plan(self, plan, sender, method)
        return routing[0].get(id(sender), routing[1])

    def _check_payload(self, named: dict[str, Any], method: str) -> None:
        message = _payload_mismatch(self, named, method)
        if message is None:
            return
        if self.strict:
            raise TypeError(message)
        # Every send method calls prepare(), which calls this: the sending line is
        # always three frames up.
        warnings.warn(message, SignalArgumentsWarning, stacklevel=4)

    def send(self, sender: object = _MISSING, /, **named: Any) -> Results:
        """Call every receiver for *sender* and return ``[(receiver, result), ...]``.

        Blocking. Receivers are called in call order (priority, then connection
        order); each sync receiver in the calling thread, one after another.
        Neighbouring async receivers are awaited together, concurrently, on an event
        loop: the host loop from an AnyIO or trio worker thread, else a loop asignal
        keeps in a thread of its own. The first exception propagates as the receiver
        raised it, and no later receiver is called. Interrupted (Ctrl-C) while async
        receivers run, it cancels them and waits for them to finish before the
        interruption propagates.

        :param sender: positionally or as ``sender=``.
        :raises RuntimeError: an async receiver is connected and this thread runs an
            event loop; use ``await signal.asend(...)`` there.
        """
        plan = self.prepare(sender, named, "send")
        if plan is None:
            return []
        if plan.direct:
            return call_each(self, plan.derefs, named, False, "send")
        return Delivery(self, plan, named, "send", False).run_blocking()

    def send_robust(self, sender: object = _MISSING, /, **named: Any) -> Results:
        """Like :meth:`send`, but every receiver is called: an ``Exception`` a
        receiver raises becomes its result (with ``__traceback__``) and is logged at
        ERROR on the ``asignal`` logger. ``BaseException`` (cancellation,
        ``KeyboardInterrupt``) still propagates."""
        plan = self.prepare(sender, named, "send_robust")
        if plan is None:
            return []
        if plan.direct:
            return call_each(self, plan.derefs, named, True, "send_robust")
        return Delivery(self, plan, named, "send_robust", True).run_blocking()

    async def asend(
        self,
        sender: object = _MISSING,
        /,
        *,
        timeout: float | None = None,
        **named: Any,
    ) -> Results:
        """Run every receiver for *sender* concurrently; return
        ``[(receiver, result), ...]`` in call order, whatever order they finish in.

        Async receivers run concurrently in one task group (each one's first step in
        this task: see the README's "Tasks"); sync receivers run in worker threads
        (at most ``thread_limit`` at once), or on the loop if connected with
        ``inline=True``. The first failure cancels the others and propagates as it
        was raised; several at once, as an ``ExceptionGroup``. Cancelling the caller
        cancels every receiver; a sync receiver already running in a thread cannot be
        interrupted, so the send waits for it to return before the cancellation (or
        timeout) propagates. Nothing is left running when ``asend`` returns.

        :param timeout: seconds for the whole send; past it, the receivers are
            cancelled and ``TimeoutError`` is raised. (``timeout`` is reserved: no
            payload argument may use the name.)
        """
        plan = self.prepare(sender, named, "asend")
        if plan is None:
            return []
        return await arun(self, plan, named, "asend", False, timeout)

    async def asend_robust(
        self,
        sender: object = _MISSING,
        /,
        *,
        timeout: float | None = None,
        **named: Any,
    ) -> Results:
        """Like :meth:`asend`, but every receiver runs to the end: an ``Exception``
        becomes that receiver's result and is logged at ERROR on the ``asignal``
        logger; a receiver still running at *timeout* is cancelled and gets a
        ``TimeoutError`` result. Cancellation of the caller always propagates, even
        when a receiver turns it into an exception."""
        plan = self.prepare(sender, named, "asend_robust")
        if plan is None:
            return []
        return await arun(self, plan, named, "asend_robust", True, timeout)


def _pop_sender(named: dict[str, Any], method: str) -> object:
    try:
        return named.pop("sender")
    except KeyError:
        raise TypeError(
            f"{method}() needs the sender: pass it positionally, "
            f"signal.{method}(MyModel, ...), or as "
            f"signal.{method}(sender=MyModel, ...); use sender=None for no particular "
            "sender."
        ) from None


def _payload_mismatch(signal: Signal, named: dict[str, Any], method: str) -> str | None:
    """What is wrong with *named* against the signal's ``providing_args``, if
    anything."""
    declared = signal.providing_args or frozenset()
    missing = sorted(declared - named.keys())
    extra = sorted(named.keys() - declared)
    if not (missing or extra):
        return None
    parts: list[str] = []
    if missing:
        parts.append(f"missing {', '.join(missing)}")
    if extra:
        parts.append(f"undeclared {', '.join(extra)}")
    return (
        f"{signal!r}.{method}() arguments do not match providing_args "
        f"{sorted(declared)}: {'; '.join(parts)}."
    )


def _reject_reserved(named: dict[str, Any], method: str) -> None:
    if "sender" in named:
        raise TypeError(
            f"{method}() got the sender twice, positionally and as sender=...; "
            "pass it once."
        )
    if "signal" in named:
        raise TypeError(
            f"{method}() got a 'signal' keyword argument, but receivers are given the "
            "signal itself as signal=...; rename that argument."
        )
    raise TypeError(
        f"{method}() got a 'timeout' payload argument, but timeout= is asend()'s "
        "deadline and is reserved in every send method, so that send() and asend() "
        "deliver the same arguments. Rename it, e.g. timeout_seconds=...."
    )


def check_send(
    signal: Signal, sender: object, named: dict[str, Any], method: str
) -> None:
    """The checks ``signal.<method>(sender, **named)`` makes on its arguments, for a
    send handed over to be made later: they fail now, in the caller."""
    if not RESERVED_NAMES.isdisjoint(named):
        _reject_reserved(named, method)
    if signal.strict:
        message = _payload_mismatch(signal, named, method)
        if message is not None:
            raise TypeError(message)


def receiver(
    signal: Signal | Sequence[Signal],
    *,
    sender: object = None,
    weak: bool = True,
    dispatch_uid: Hashable | None = None,
    priority: int = 0,
    inline: bool = False,
) -> Callable[[F], F]:
    """Decorator: connect the function to *signal* (or to each of a list or tuple of
    signals) with the given ``connect()`` options, and return it unchanged::

        @receiver(post_save, sender=MyModel)
        def on_saved(sender, instance, created, **kwargs): ...
    """
    if isinstance(signal, Signal):
        signals_: Sequence[Signal] = (signal,)
    elif isinstance(signal, (list, tuple)):
        signals_ = tuple(signal)
    else:
        raise TypeError(
            f"@receiver() takes a Signal or a list or tuple of them, got {signal!r}. "
            "Write @receiver(my_signal), with the signal, above the function."
        )
    for each in signals_:
        if not isinstance(each, Signal):  # pyright: ignore[reportUnnecessaryIsInstance]
            raise TypeError(
                f"@receiver() takes a Signal or a list of them, got {each!r}."
            )

    def decorator(func: F) -> F:
        for each in signals_:
            each.connect(
                func,
                sender=sender,
                weak=weak,
                dispatch_uid=dispatch_uid,
                priority=priority,
                inline=inline,
            )
        return func

    return decorator

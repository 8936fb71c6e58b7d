"""The ``Signal`` class and the ``@receiver`` decorator."""

from __future__ import annotations

import os
import sys
import threading
import warnings
import weakref
from collections.abc import Callable, Hashable, Iterable, Sequence
from contextvars import Context, copy_context
from types import CoroutineType, FunctionType
from typing import Any, TypeVar

import anyio
import anyio.lowlevel

from . import _hooks
from ._blocking import check_can_block, run_blocking
from ._connection import (
    ANY_SENDER,
    Connection,
    ReceiverInfo,
    check_receiver,
    entry_key,
    make_connection,
    returned_coroutine,
    sender_key_of,
)
from ._dispatch import (
    Call,
    log_failure,
    merge_contexts,
    run_concurrently,
    sync_result,
)

__all__ = ["Signal", "SignalArgumentsWarning", "receiver"]

F = TypeVar("F", bound=Callable[..., Any])

_MISSING: Any = object()

#: Every Signal ever created and still alive, for tooling (``asignal.testing``,
#: ``asignal list``). Weak, so a signal made in a test goes away with it.
_all_signals: weakref.WeakSet[Signal] = weakref.WeakSet()

_DEFAULT_THREAD_LIMIT = 40  # anyio's own default for to_thread


def all_signals() -> list[Signal]:
    """Every live ``Signal`` in the process, in no particular order."""
    return list(_all_signals)


def _debug_enabled() -> bool:
    return sys.flags.dev_mode or os.environ.get("ASIGNAL_DEBUG", "") not in ("", "0")


class SignalArgumentsWarning(UserWarning):
    """Warned (in debug mode) when a send's keyword arguments differ from the
    ``providing_args`` the signal declared."""


class _Plan:
    """The receivers that one sender reaches, in call order, frozen until the next
    connect or disconnect. A send dereferences ``derefs`` and calls; nothing else."""

    __slots__ = ("connections", "derefs", "has_async", "single_async", "steps")

    def __init__(self, ranked: list[tuple[int, int, Connection]]) -> None:
        ranked.sort()  # (-priority, position): ranks are unique, never ties
        connections = [connection for _, _, connection in ranked]
        self.connections = tuple(connections)
        self.derefs = tuple(c.deref for c in connections)
        #: ``(deref, is_async, inline)`` per receiver, read once here rather than
        #: through the connections' properties on every ``asend``.
        self.steps = tuple((c.deref, c.is_async, c.inline) for c in connections)
        self.has_async = any(c.is_async for c in connections)
        self.single_async = len(connections) == 1 and connections[0].is_async

    def live(self) -> list[tuple[Connection, Callable[..., Any]]]:
        pairs: list[tuple[Connection, Callable[..., Any]]] = []
        for connection in self.connections:
            fn = connection.deref()
            if fn is not None:
                pairs.append((connection, fn))
        return pairs


def _ranked(connections: Iterable[Connection]) -> list[tuple[int, int, Connection]]:
    """Rank connections for call order: priority, then position in *connections*,
    which is connection order for ``Signal._entries`` (a dict keeps insertion
    order; a reconnect is a new insertion, at the end)."""
    return [(-c.priority, position, c) for position, c in enumerate(connections)]


class _PlanCache:
    """``signal.sender_receivers_cache``: kept for tooling written for Django, which
    calls ``.clear()`` after changing ``signal.receivers`` by hand."""

    __slots__ = ("_signal",)

    def __init__(self, signal: Signal) -> None:
        self._signal = signal

    def clear(self) -> None:
        self._signal._routing = None  # pyright: ignore[reportPrivateUsage]


class Signal:
    """A signal that receivers connect to and senders send, as in ``django.dispatch``.

    :param providing_args: the keyword arguments a send is documented to carry (the
        spelling of Django's old docs). Kept as :attr:`providing_args` for
        introspection; with ``strict=True`` a send that omits or adds arguments raises
        ``TypeError``, and in debug mode (``python -X dev`` or ``ASIGNAL_DEBUG=1``)
        it warns with :class:`SignalArgumentsWarning`.
    :param use_caching: accepted for Django compatibility. asignal always keeps a
        per-sender snapshot of the receivers, rebuilt after each connect or
        disconnect, that never keeps a sender alive; this flag changes nothing.
    :param name: identifies the signal in reprs, logs and across processes.
    :param strict: enforce ``providing_args`` on every send.
    :param thread_limit: how many of this signal's sync receivers may run in worker
        threads at once under :meth:`asend` (per event loop); 40 by default, like
        ``anyio.to_thread``. Pass an ``anyio.CapacityLimiter`` to share one.
    """

    def __init__(
        self,
        *,
        use_caching: bool = False,
        providing_args: Iterable[str] | None = None,
        name: str | None = None,
        strict: bool = False,
        thread_limit: int | anyio.CapacityLimiter = _DEFAULT_THREAD_LIMIT,
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
        self.use_caching = use_caching
        self.name = name
        self.strict = strict
        self._thread_limit = thread_limit
        self._limiters = anyio.lowlevel.RunVar[anyio.CapacityLimiter](
            f"asignal-thread-limiter-{id(self):x}"
        )
        self._check_args = self.providing_args is not None and (
            strict or _debug_enabled()
        )
        #: Held while the connections change; Django tooling takes it too.
        self.lock = threading.Lock()
        self._entries: dict[Hashable, Connection] = {}
        self._routing: tuple[dict[int, _Plan], _Plan] | None = None
        self._dead = False
        self.sender_receivers_cache = _PlanCache(self)
        # One bound method shared by every weak reference's callback: creating it
        # per connect would cost each connection another object.
        self._on_death = self._flag_dead
        _all_signals.add(self)

    def __repr__(self) -> str:
        if self.name is not None:
            return f"<Signal {self.name!r}>"
        return f"<Signal at {id(self):#x}>"

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
            it is called as ``receiver(signal=..., sender=..., **payload)``.
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
        connection = make_connection(
            receiver,
            is_async=is_async,
            sender=sender,
            weak=weak,
            dispatch_uid=dispatch_uid,
            priority=priority,
            inline=inline,
            on_death=self._on_death,
        )
        key = connection.key
        with self.lock:
            if self._dead:
                self._prune()
            if key not in self._entries:
                self._entries[key] = connection
                self._routing = None
        return receiver

    def disconnect(
        self,
        receiver: Callable[..., Any] | None = None,
        sender: object = None,
        dispatch_uid: Hashable | None = None,
    ) -> bool:
        """Disconnect a receiver; return whether one was connected.

        The receiver is found by the key it was connected with: the same receiver (or
        ``dispatch_uid``) and the same *sender*.
        """
        if dispatch_uid is None and receiver is None:
            raise TypeError("disconnect() needs the receiver or its dispatch_uid.")
        if dispatch_uid is None and sender is None and type(receiver) is FunctionType:
            # entry_key's first case, inline: the call is a tenth of a disconnect.
            key: Hashable = weakref.ref(receiver)
        else:
            key = entry_key(receiver, sender, dispatch_uid)
        with self.lock:
            if self._dead:
                self._prune()
            removed = self._entries.pop(key, None) is not None
            if removed:
                self._routing = None
        return removed

    def has_listeners(self, sender: object = None) -> bool:
        """Whether a send from *sender* would call any receiver.

        As in Django, ``has_listeners()`` (``sender=None``) counts only receivers
        connected for any sender.
        """
        if not self._entries:
            return False
        return bool(self._plan(sender).live())

    def live_receivers(self, sender: object = None) -> list[Callable[..., Any]]:
        """The live receivers a send from *sender* calls, in call order."""
        if not self._entries:
            return []
        return [fn for _, fn in self._plan(sender).live()]

    def describe(self) -> list[ReceiverInfo]:
        """Every live connection, in call order (priority, then connection order)."""
        with self.lock:
            if self._dead:
                self._prune()
            ranked = sorted(_ranked(self._entries.values()))
        return [info for _, _, c in ranked if (info := c.info()) is not None]

    @property
    def receivers(self) -> list[Connection]:
        """One entry per connection, in connection order (``[]`` when none).

        A copy: assign a list (for example one read earlier, from this signal or
        another) to replace the connections, as Django test tooling does to mute a
        signal. Assigning makes new entries that belong to this signal; those whose
        receiver or sender has died are left out.
        """
        with self.lock:
            if self._dead:
                self._prune()
            return list(self._entries.values())

    @receivers.setter
    def receivers(self, connections: Iterable[Connection]) -> None:
        given = list(connections)
        for connection in given:
            if not isinstance(connection, Connection):  # pyright: ignore[reportUnnecessaryIsInstance]
                raise TypeError(
                    "signal.receivers only takes Connection entries, such as a list "
                    f"read from signal.receivers earlier; got {connection!r}."
                )
        # Rebuilt rather than reused: a connection's weak references report deaths
        # to the signal that made it, and this one must hear of them, or a dead
        # sender's reused id() could route here. A connection whose receiver or
        # sender already died (a list saved long ago) is left out.
        entries: dict[Hashable, Connection] = {}
        for connection in given:
            rebuilt = connection.rebuilt(self._on_death)
            if rebuilt is not None:
                entries.setdefault(rebuilt.key, rebuilt)
        with self.lock:
            self._entries = entries
            self._routing = None
            # Something may have died while the list was rebuilt.
            self._prune()

    def _flag_dead(self, _ref: object) -> None:
        # Called by the garbage collector, possibly while self.lock is held by this
        # very thread: only set a flag and drop the routing; the next connect,
        # disconnect or send prunes. Dropping the routing here is what lets a send
        # check one attribute (``_routing is None``) instead of two.
        self._dead = True
        self._routing = None

    def _prune(self) -> None:
        """Drop dead connections; the caller holds ``self.lock``."""
        self._dead = False
        dead = [key for key, c in self._entries.items() if not c.is_alive()]
        for key in dead:
            del self._entries[key]
        if dead:
            self._routing = None

    def _plan(self, sender: object) -> _Plan:
        routing = self._routing
        if routing is None:
            routing = self._route()
        return routing[0].get(id(sender), routing[1])

    def _route(self) -> tuple[dict[int, _Plan], _Plan]:
        with self.lock:
            while True:
                if self._dead:
                    self._prune()
                routing = self._routing
                if routing is None:
                    routing = self._routing = self._build_routing()
                if not self._dead:
                    return routing
                # Something died while the routing was built, and may be in it: a
                # dead sender's id() must never route, so build it again.
                self._routing = None

    def _build_routing(self) -> tuple[dict[int, _Plan], _Plan]:
        for_any: list[tuple[int, int, Connection]] = []
        by_sender: dict[int, list[tuple[int, int, Connection]]] = {}
        for ranked in _ranked(self._entries.values()):
            skey = sender_key_of(ranked[2].key)
            if skey == ANY_SENDER:
                for_any.append(ranked)
            else:
                by_sender.setdefault(skey, []).append(ranked)
        plans = {skey: _Plan(for_any + only) for skey, only in by_sender.items()}
        return plans, _Plan(for_any)

    @property
    def thread_limiter(self) -> anyio.CapacityLimiter:
        """The limiter for this signal's sync receivers in worker threads, for the
        running event loop."""
        if isinstance(self._thread_limit, anyio.CapacityLimiter):
            return self._thread_limit
        limiter = self._limiters.get(None)
        if limiter is None:
            limiter = anyio.CapacityLimiter(self._thread_limit)
            self._limiters.set(limiter)
        return limiter

    # -- sending ---------------------------------------------------------------------

    def _check_payload(
        self, named: dict[str, Any], method: str, stacklevel: int = 3
    ) -> None:
        declared = self.providing_args or frozenset()
        missing = sorted(declared - named.keys())
        extra = sorted(named.keys() - declared)
        if not (missing or extra):
            return
        parts: list[str] = []
        if missing:
            parts.append(f"missing {', '.join(missing)}")
        if extra:
            parts.append(f"undeclared {', '.join(extra)}")
        message = (
            f"{self!r}.{method}() arguments do not match providing_args "
            f"{sorted(declared)}: {'; '.join(parts)}."
        )
        if self.strict:
            raise TypeError(message)
        # Point at the line that sent: send() -> here is 3 frames up, the robust
        # methods go through _begin() and are one frame deeper.
        warnings.warn(message, SignalArgumentsWarning, stacklevel=stacklevel)

    def _begin(
        self, sender: object, named: dict[str, Any], method: str
    ) -> _Plan | None:
        """The checks every send makes before calling receivers; the plan to run, or
        None when there is nothing to call (nothing connected, or muted).

        ``send`` and ``asend`` repeat these lines inline instead of calling this:
        on the hot path a function call is a measurable share of the cost.
        """
        if "signal" in named:
            _reject_signal_kwarg(method)
        if self._check_args:
            self._check_payload(named, method, 4)
        if _hooks.active and _hooks.intercept(self, sender, named, method):
            return None
        if not self._entries:
            return None
        return self._plan(sender)

    def send(
        self, sender: object = _MISSING, /, **named: Any
    ) -> list[tuple[Callable[..., Any], Any]]:
        """Call every receiver for *sender* and return ``[(receiver, result), ...]``.

        Blocking. Receivers are called in call order (priority, then connection
        order); each sync receiver in the calling thread, one after another.
        Neighbouring async receivers are awaited together, concurrently, on an event
        loop: the host loop from an AnyIO worker thread, else a loop asignal keeps in
        a thread of its own. The first exception propagates, and no later receiver
        is called.

        :param sender: positionally or as ``sender=``.
        :raises RuntimeError: an async receiver is connected and this thread runs an
            event loop; use ``await signal.asend(...)`` there.
        """
        if sender is _MISSING:
            sender = _pop_sender(named, "send")
        if named:  # most sends to few receivers carry no payload: skip the lookups
            if "sender" in named:
                _reject_second_sender("send")
            if "signal" in named:
                _reject_signal_kwarg("send")
        if self._check_args:
            self._check_payload(named, "send")
        if _hooks.active and _hooks.intercept(self, sender, named, "send"):
            return []
        if not self._entries:
            return []
        routing = self._routing
        if routing is None:
            routing = self._route()
        plan = routing[0].get(id(sender), routing[1])
        if plan.has_async:
            return self._send_blocking(plan, sender, named, robust=False, method="send")
        # The hot path (benchmarks/, S1-S3). One receiver is the commonest case and
        # needs no loop. A plain loop beats a comprehension on Python 3.11, where the
        # comprehension is a function of its own made on every call, and ties with
        # it on 3.12+; not unpacking an empty **named saves a dict copy per call.
        # A sync receiver that returns a coroutine (a decorator hiding `async def`)
        # would be lost silently: one type check per call refuses it.
        derefs = plan.derefs
        if len(derefs) == 1:
            receiver = derefs[0]()
            if receiver is None:
                return []
            if named:
                result = receiver(signal=self, sender=sender, **named)
            else:
                result = receiver(signal=self, sender=sender)
            if result is not None and type(result) is CoroutineType:
                raise returned_coroutine(receiver, result)
            return [(receiver, result)]
        # A receiver collected since the plan was built dereferences to None, and
        # calling None raises TypeError: checking for it only then costs nothing
        # per receiver (try is free until it raises, on 3.11+).
        results: list[tuple[Callable[..., Any], Any]] = []
        for deref in derefs:
            receiver = deref()
            try:
                if named:
                    result = receiver(signal=self, sender=sender, **named)
                else:
                    result = receiver(signal=self, sender=sender)
            except TypeError:
                if receiver is None:
                    continue
                raise
            if result is not None and type(result) is CoroutineType:
                raise returned_coroutine(receiver, result)
            results.append((receiver, result))
        return results

    def send_robust(
        self, sender: object = _MISSING, /, **named: Any
    ) -> list[tuple[Callable[..., Any], Any]]:
        """Like :meth:`send`, but every receiver is called: an ``Exception`` a
        receiver raises becomes its result (with ``__traceback__``) and is logged at
        ERROR on the ``asignal`` logger. ``BaseException`` (cancellation,
        ``KeyboardInterrupt``) still propagates."""
        if sender is _MISSING:
            sender = _pop_sender(named, "send_robust")
        elif "sender" in named:
            _reject_second_sender("send_robust")
        plan = self._begin(sender, named, "send_robust")
        if plan is None:
            return []
        if plan.has_async:
            return self._send_blocking(
                plan, sender, named, robust=True, method="send_robust"
            )
        results: list[tuple[Callable[..., Any], Any]] = []
        for deref in plan.derefs:
            receiver = deref()
            if receiver is None:
                continue
            try:
                result = sync_result(
                    receiver, receiver(signal=self, sender=sender, **named)
                )
            except Exception as exc:
                log_failure(self, receiver, exc, "send_robust")
                result = exc
            results.append((receiver, result))
        return results

    def _send_blocking(
        self,
        plan: _Plan,
        sender: object,
        named: dict[str, Any],
        *,
        robust: bool,
        method: str,
    ) -> list[tuple[Callable[..., Any], Any]]:
        check_can_block(f"{self!r}.{method}(...)")
        results: list[tuple[Callable[..., Any], Any]] = []
        batch: list[Call] = []

        def run_batch() -> None:
            base = copy_context()
            contexts: list[Context | None] = []
            calls = list(batch)
            batch.clear()

            async def run() -> list[tuple[Callable[..., Any], Any]]:
                return await run_concurrently(
                    self,
                    calls,
                    sender,
                    named,
                    robust=robust,
                    timeout=None,
                    method=method,
                    base=base,
                    contexts=contexts,
                )

            try:
                results.extend(run_blocking(run))
            finally:
                merge_contexts(base, contexts)

        for connection, receiver in plan.live():
            if connection.is_async:
                batch.append((receiver, True, False))
                continue
            if batch:
                run_batch()
            if robust:
                try:
                    result = sync_result(
                        receiver, receiver(signal=self, sender=sender, **named)
                    )
                except Exception as exc:
                    log_failure(self, receiver, exc, method)
                    result = exc
            else:
                result = sync_result(
                    receiver, receiver(signal=self, sender=sender, **named)
                )
            results.append((receiver, result))
        if batch:
            run_batch()
        return results

    async def asend(
        self,
        sender: object = _MISSING,
        /,
        *,
        timeout: float | None = None,
        **named: Any,
    ) -> list[tuple[Callable[..., Any], Any]]:
        """Run every receiver for *sender* concurrently; return
        ``[(receiver, result), ...]`` in call order, whatever order they finish in.

        Async receivers run concurrently in one task group (each one's first step in
        this task: see the README's "Tasks"); sync receivers run in worker threads
        (at most ``thread_limit`` at once), or on the loop if connected with
        ``inline=True``. The first failure cancels the others and propagates: a lone
        error as itself, several as an ``ExceptionGroup``. Cancelling the caller
        cancels every receiver; a sync receiver already running in a thread cannot be
        interrupted, so the send waits for it to return before the cancellation (or
        timeout) propagates. Nothing is left running when ``asend`` returns.

        :param timeout: seconds for the whole send; past it, the receivers are
            cancelled and ``TimeoutError`` is raised.
        """
        if sender is _MISSING:
            sender = _pop_sender(named, "asend")
        if named:  # most sends to few receivers carry no payload: skip the lookups
            if "sender" in named:
                _reject_second_sender("asend")
            if "signal" in named:
                _reject_signal_kwarg("asend")
        if self._check_args:
            self._check_payload(named, "asend")
        if _hooks.active and _hooks.intercept(self, sender, named, "asend"):
            return []
        if not self._entries:
            return []
        routing = self._routing
        if routing is None:
            routing = self._route()
        plan = routing[0].get(id(sender), routing[1])
        if plan.single_async:
            # One coroutine: await it in this task. A task group would add tens of
            # microseconds and change nothing observable (see _dispatch).
            receiver = plan.derefs[0]()
            if receiver is None:
                return []
            if timeout is None:
                if named:
                    result = await receiver(signal=self, sender=sender, **named)
                else:
                    result = await receiver(signal=self, sender=sender)
                return [(receiver, result)]
            with anyio.fail_after(timeout):
                return [(receiver, await receiver(signal=self, sender=sender, **named))]
        return await self._asend_concurrently(
            plan, sender, named, False, timeout, "asend"
        )

    async def asend_robust(
        self,
        sender: object = _MISSING,
        /,
        *,
        timeout: float | None = None,
        **named: Any,
    ) -> list[tuple[Callable[..., Any], Any]]:
        """Like :meth:`asend`, but every receiver runs to the end: an ``Exception``
        becomes that receiver's result and is logged at ERROR on the ``asignal``
        logger; a receiver still running at *timeout* is cancelled and gets a
        ``TimeoutError`` result. Cancellation of the caller always propagates."""
        if sender is _MISSING:
            sender = _pop_sender(named, "asend_robust")
        elif "sender" in named:
            _reject_second_sender("asend_robust")
        plan = self._begin(sender, named, "asend_robust")
        if plan is None:
            return []
        return await self._asend_concurrently(
            plan, sender, named, True, timeout, "asend_robust"
        )

    async def _asend_concurrently(
        self,
        plan: _Plan,
        sender: object,
        named: dict[str, Any],
        robust: bool,
        timeout: float | None,
        method: str,
    ) -> list[tuple[Callable[..., Any], Any]]:
        calls: list[Call] = [
            (fn, is_async, inline)
            for deref, is_async, inline in plan.steps
            if (fn := deref()) is not None
        ]
        if not calls:
            return []
        base = copy_context()
        contexts: list[Context | None] = []
        try:
            return await run_concurrently(
                self,
                calls,
                sender,
                named,
                robust=robust,
                timeout=timeout,
                method=method,
                base=base,
                contexts=contexts,
            )
        finally:
            merge_contexts(base, contexts)


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


def _reject_second_sender(method: str) -> None:
    raise TypeError(
        f"{method}() got the sender twice, positionally and as sender=...; "
        "pass it once."
    )


def _reject_signal_kwarg(method: str) -> None:
    raise TypeError(
        f"{method}() got a 'signal' keyword argument, but receivers are given the "
        "signal itself as signal=...; rename that argument."
    )


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
        signals: Sequence[Signal] = (signal,)
    elif isinstance(signal, (list, tuple)):
        signals = tuple(signal)
    else:
        raise TypeError(
            f"@receiver() takes a Signal or a list or tuple of them, got {signal!r}. "
            "Write @receiver(my_signal), with the signal, above the function."
        )
    for each in signals:
        if not isinstance(each, Signal):  # pyright: ignore[reportUnnecessaryIsInstance]
            raise TypeError(
                f"@receiver() takes a Signal or a list of them, got {each!r}."
            )

    def decorator(func: F) -> F:
        for each in signals:
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

"""Helpers for testing code that sends or receives signals, in any test runner.

* :func:`capture_signals` records every send of some (or all) signals, even when
  nothing is connected and even while muted, and asserts on what was sent.
* :class:`mute` stops receivers from being called inside a block or a decorated
  function, in the current task (and what it starts) only.
* :func:`connected_to` connects a receiver for the length of a block.
* :func:`isolated` restores the receivers of some (or all) signals after a block.

This module does not import pytest; the pytest fixtures built on it live in
``asignal.pytest_plugin``. Every context manager here works with ``with`` and with
``async with``.
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Callable, Iterator
from contextvars import Token
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Generic, TypeVar, cast

import anyio

from . import _hooks
from ._signal import Signal, all_signals

__all__ = [
    "SentSignal",
    "SignalRecorder",
    "capture_signals",
    "connected_to",
    "isolated",
    "mute",
]

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")

_ANY: Any = object()


@dataclass(frozen=True)
class SentSignal:
    """One recorded send.

    :ivar signal: the signal that was sent
    :ivar sender: the sender it was sent from
    :ivar kwargs: the keyword arguments (a copy taken at the send)
    :ivar method: which method sent it: ``send``, ``send_robust``, ``asend`` or
        ``asend_robust``
    """

    signal: Signal
    sender: object
    kwargs: dict[str, Any] = field(default_factory=dict[str, Any])
    method: str = "send"

    def __str__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.kwargs.items())
        return f"{self.signal!r}.{self.method}(sender={self.sender!r}, {args})"


def _describe(records: list[SentSignal]) -> str:
    if not records:
        return "nothing was sent"
    return "sent:\n" + "\n".join(f"  {record}" for record in records)


class SignalRecorder:
    """What :func:`capture_signals` recorded, with assertions.

    Records arrive from any thread or task; reading them is thread-safe.
    """

    def __init__(self, signals: tuple[Signal, ...]) -> None:
        self._signals = frozenset(signals)
        self._lock = threading.Lock()
        self._records: list[SentSignal] = []

    def observe(
        self, signal: Signal, sender: object, kwargs: dict[str, Any], method: str
    ) -> None:
        """The hook :func:`capture_signals` installs: record one send if it is of a
        captured signal. Called by asignal for each send; tests read the records."""
        if self._signals and signal not in self._signals:
            return
        record = SentSignal(signal, sender, dict(kwargs), method)
        with self._lock:
            self._records.append(record)

    @property
    def records(self) -> list[SentSignal]:
        """Every recorded send, oldest first (a copy)."""
        with self._lock:
            return list(self._records)

    def sent(self, signal: Signal | None = None) -> list[SentSignal]:
        """The recorded sends of *signal* (of every captured signal if None)."""
        return [r for r in self.records if signal is None or r.signal is signal]

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[SentSignal]:
        return iter(self.records)

    @staticmethod
    def _matches(
        record: SentSignal, signal: Signal, sender: object, kwargs: dict[str, Any]
    ) -> bool:
        if record.signal is not signal:
            return False
        if sender is not _ANY and record.sender is not sender:
            return False
        return all(
            key in record.kwargs and record.kwargs[key] == value
            for key, value in kwargs.items()
        )

    def assert_sent(
        self, signal: Signal, sender: object = _ANY, **kwargs: Any
    ) -> SentSignal:
        """Assert that at least one send of *signal* matches: the same sender (by
        identity) if one is given, and keyword arguments that include *kwargs*.
        Return the first matching record."""
        records = self.records
        for record in records:
            if self._matches(record, signal, sender, kwargs):
                return record
        wanted = _wanted(signal, sender, kwargs)
        raise AssertionError(f"expected {wanted}; {_describe(records)}")

    def assert_sent_once_with(
        self, signal: Signal, sender: object = _ANY, **kwargs: Any
    ) -> SentSignal:
        """Assert that *signal* was sent exactly once, with exactly this sender (if
        given) and exactly these keyword arguments, like mock's
        ``assert_called_once_with``."""
        records = self.records
        of_signal = [r for r in records if r.signal is signal]
        wanted = _wanted(signal, sender, kwargs)
        if len(of_signal) != 1:
            raise AssertionError(
                f"expected {signal!r} to be sent once, but it was sent "
                f"{len(of_signal)} times; {_describe(records)}"
            )
        [record] = of_signal
        if (sender is not _ANY and record.sender is not sender) or (
            record.kwargs != kwargs
        ):
            raise AssertionError(f"expected {wanted}; {_describe(records)}")
        return record

    def assert_not_sent(self, signal: Signal) -> None:
        """Assert that *signal* was never sent."""
        records = self.records
        if any(r.signal is signal for r in records):
            raise AssertionError(
                f"expected {signal!r} not to be sent; {_describe(records)}"
            )

    async def wait_for(
        self,
        signal: Signal,
        *,
        timeout: float = 5.0,
        sender: object = _ANY,
        **match: Any,
    ) -> SentSignal:
        """Wait until a send of *signal* matching *sender* and *match* (as in
        :meth:`assert_sent`) is recorded, and return it; for code that sends in the
        background. Records made before the call count.

        :raises TimeoutError: none arrived within *timeout* seconds; the message
            lists what was sent instead.
        """
        with anyio.move_on_after(timeout):
            while True:
                for record in self.records:
                    if self._matches(record, signal, sender, match):
                        return record
                # Sends may come from other threads or loops, which cannot wake
                # an event of ours safely; a short poll works everywhere.
                await anyio.sleep(0.005)
        raise TimeoutError(
            f"waited {timeout} s for {_wanted(signal, sender, match)}; "
            f"{_describe(self.records)}"
        )


def _wanted(signal: Signal, sender: object, kwargs: dict[str, Any]) -> str:
    parts = [] if sender is _ANY else [f"sender={sender!r}"]
    parts += [f"{k}={v!r}" for k, v in kwargs.items()]
    return f"{signal!r} sent with ({', '.join(parts)})"


class _SyncAsyncContext(Generic[T]):
    """Base for context managers usable with both ``with`` and ``async with``."""

    def __enter__(self) -> T:
        raise NotImplementedError

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> T:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)


class capture_signals(_SyncAsyncContext[SignalRecorder]):
    """Record every send of *signals* (of every signal if none are given) while the
    block runs: sends from any task or thread, whether or not anything is connected,
    and even while the signal is muted. Yields a :class:`SignalRecorder`::

        with capture_signals(post_save) as sent:
            save(obj)
        sent.assert_sent(post_save, sender=Model, created=True)
    """

    def __init__(self, *signals: Signal) -> None:
        for signal in signals:
            if not isinstance(signal, Signal):  # pyright: ignore[reportUnnecessaryIsInstance]
                raise TypeError(f"capture_signals() takes signals, got {signal!r}.")
        self.recorder = SignalRecorder(signals)

    def __enter__(self) -> SignalRecorder:
        _hooks.add_observer(self.recorder.observe)
        return self.recorder

    def __exit__(self, *exc_info: object) -> None:
        _hooks.remove_observer(self.recorder.observe)


class mute:
    """Do not call the receivers of *signals* (of every signal if none are given)
    inside the block, or while the decorated function (sync or async) runs.

    The mute is task-local: it lives in a context variable, so it covers the
    current task or thread and the tasks it starts, but not other tests or tasks
    running at the same time. Sends are still seen by :func:`capture_signals`. It
    is always undone on exit, even where a test runner shares one context between
    tests. Nested mutes add up.
    """

    def __init__(self, *signals: Signal) -> None:
        for signal in signals:
            if not isinstance(signal, Signal):  # pyright: ignore[reportUnnecessaryIsInstance]
                raise TypeError(f"mute() takes signals, got {signal!r}.")
        self._signals = frozenset(signals)
        self._stack: list[tuple[Token[tuple[bool, frozenset[Signal]] | None], Any]] = []

    def __enter__(self) -> None:
        previous = _hooks.muted.get()
        every = not self._signals or (previous is not None and previous[0])
        inherited: frozenset[Signal] = (
            previous[1] if previous is not None else frozenset()
        )
        signals = self._signals | inherited
        token = _hooks.muted.set((every, signals))
        self._stack.append((token, previous))
        _hooks.mute_enter()

    def __exit__(self, *exc_info: object) -> None:
        token, previous = self._stack.pop()
        try:
            _hooks.muted.reset(token)
        except ValueError:
            # The token belongs to another Context (a runner that entered and left
            # the block in different contexts): restore the value instead.
            _hooks.muted.set(previous)
        finally:
            _hooks.mute_exit()

    async def __aenter__(self) -> None:
        self.__enter__()

    async def __aexit__(self, *exc_info: object) -> None:
        self.__exit__()

    def __call__(self, func: F) -> F:
        """Use as a decorator: the function runs with the signals muted."""
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                with mute(*self._signals):
                    return await func(*args, **kwargs)

            return cast("F", async_wrapper)

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with mute(*self._signals):
                return func(*args, **kwargs)

        return cast("F", wrapper)


class connected_to(_SyncAsyncContext[F]):
    """Connect *receiver* to *signal* (strongly) for the length of the block, and
    leave the signal as it was found on exit, even when the block raises. Yields
    the receiver.

    If *receiver* was already connected for *sender* (the app's own connection),
    connecting changes nothing and leaving the block keeps that connection; only
    a connection this block made is removed.
    """

    def __init__(self, receiver: F, signal: Signal, sender: object = None) -> None:
        self._receiver = receiver
        self._signal = signal
        self._sender = sender
        self._made: list[bool] = []  # per nested entry: whether it connected

    def __enter__(self) -> F:
        # connect() keys a connection without dispatch_uid by receiver and sender:
        # one with both already there makes it change nothing.
        found = any(
            info.dispatch_uid is None
            and info.sender is self._sender
            and info.receiver == self._receiver
            for info in self._signal.describe()
        )
        self._signal.connect(self._receiver, sender=self._sender, weak=False)
        self._made.append(not found)
        return self._receiver

    def __exit__(self, *exc_info: object) -> None:
        if self._made.pop():
            self._signal.disconnect(self._receiver, sender=self._sender)


class isolated(_SyncAsyncContext[None]):
    """Snapshot the receivers of *signals* (of every existing signal if none are
    given) and restore them on exit, so a block cannot leak connections. Signals
    created inside the block are not touched."""

    def __init__(self, *signals: Signal) -> None:
        self._signals = signals
        self._saved: list[list[tuple[Signal, list[Any]]]] = []

    def __enter__(self) -> None:
        signals = self._signals or tuple(all_signals())
        self._saved.append([(signal, signal.receivers) for signal in signals])

    def __exit__(self, *exc_info: object) -> None:
        for signal, receivers in self._saved.pop():
            signal.receivers = receivers

"""One connection of a receiver to a signal: validation, identity and references.

Everything here is decided once, at ``connect()`` time, so that a send only has to
dereference and call: whether the receiver is a coroutine function, how it is held
(strongly, by ``weakref.ref`` or by ``WeakMethod``), and the key that identifies it.
"""

from __future__ import annotations

import functools
import inspect
import itertools
import types
import weakref
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, cast

__all__ = ["Connection", "ReceiverInfo", "describe_callable", "lookup_key"]

#: The sender key of a receiver connected with ``sender=None`` (any sender). ``id()``
#: is never negative on CPython, so this cannot collide with a real sender's key.
ANY_SENDER = -1


def lookup_key(obj: object) -> Hashable:
    """Return the identity of *obj* as Django computes it.

    A bound method is identified by its instance and function, so that ``obj.method``
    fetched twice gives the same key; everything else by ``id()``.
    """
    method: Any = obj
    if hasattr(method, "__func__") and hasattr(method, "__self__"):
        return (id(method.__self__), id(method.__func__))
    return id(method)


def sender_key(sender: object) -> int:
    return ANY_SENDER if sender is None else id(sender)


def entry_key(receiver_key: Hashable, sender_key: int) -> Hashable:
    """The key of a connection in ``Signal._entries``.

    ``(receiver_key, sender_key)``, except for the commonest connection (any sender,
    a receiver identified by an int or a ``dispatch_uid`` that is not a tuple): then
    the bare receiver key, which saves a tuple per connection (benchmarks/, M1).
    Unambiguous: a bare key is never a tuple, and a tuple key's second item is the
    sender key.
    """
    if sender_key == ANY_SENDER and not _is_tuple(receiver_key):
        return receiver_key
    return (receiver_key, sender_key)


def sender_key_of(key: Hashable) -> int:
    """The sender key inside an :func:`entry_key`."""
    if _is_tuple(key):
        return cast("tuple[Hashable, int]", key)[1]
    return ANY_SENDER


def _is_tuple(value: object) -> bool:
    # A function, not an inline isinstance(): type checkers would narrow the key
    # to a tuple of unknown items.
    return isinstance(value, tuple)


#: (dispatch_uid, priority, inline, weak) of a connection made with the defaults,
#: shared by all of them so that each holds one reference instead of four values.
_DEFAULT_OPTIONS: tuple[Hashable | None, int, bool, bool] = (None, 0, False, True)


def describe_callable(fn: object) -> str:
    """A human-readable name for *fn* that never raises (partials, instances, mocks)."""
    if isinstance(fn, functools.partial):
        return f"functools.partial({describe_callable(fn.func)})"
    qualname = getattr(fn, "__qualname__", None)
    if isinstance(qualname, str):
        module = getattr(fn, "__module__", None)
        return f"{module}.{qualname}" if isinstance(module, str) else qualname
    try:
        return repr(fn)
    except Exception:  # a broken __repr__ must not break error reporting
        return f"<{type(fn).__qualname__} object at {id(fn):#x}>"


def is_async_callable(fn: object) -> bool:
    """True for coroutine functions, partials of them, and instances whose
    ``__call__`` is one (``inspect.iscoroutinefunction`` misses the last)."""
    if type(fn) is types.FunctionType:
        # The common case, read off the code flags (connect's cost: benchmarks/,
        # S5). Only a function carrying inspect.markcoroutinefunction's mark (3.12+)
        # needs inspect. Not `fn.__dict__`: reading it gives every function a dict.
        if fn.__code__.co_flags & inspect.CO_COROUTINE:
            return True
        if getattr(fn, "_is_coroutine_marker", None) is None:
            return False
    while isinstance(fn, functools.partial):
        fn = fn.func
    if inspect.iscoroutinefunction(fn):
        return True
    if inspect.isfunction(fn) or inspect.ismethod(fn) or not callable(fn):
        return False
    if isinstance(fn, type):
        return False  # calling a class makes an instance, even if instances are async
    # A callable instance: its class's `async def __call__` (or one marked with
    # inspect.markcoroutinefunction on the instance's bound __call__).
    instance: Any = fn
    return inspect.iscoroutinefunction(
        type(instance).__call__
    ) or inspect.iscoroutinefunction(instance.__call__)


_GENERATOR_FLAGS = inspect.CO_GENERATOR | inspect.CO_ASYNC_GENERATOR


def returned_coroutine(receiver: object, coroutine: Any) -> TypeError:
    """The error for a receiver connected as sync that returned a coroutine, which
    nothing would ever await; closes the coroutine (no second warning)."""
    coroutine.close()
    return TypeError(
        f"{describe_callable(receiver)} returned a coroutine, but it was connected as "
        "a sync receiver (it is not an `async def` function), so nothing would await "
        "it and its body would never run. Connect the `async def` function itself, "
        "or make the wrapper `async def` and await it inside."
    )


def validate_receiver(receiver: object) -> None:
    """Raise a ``TypeError``/``ValueError`` that says how to fix a bad receiver."""
    if type(receiver) is types.FunctionType:
        # The common case: a plain function with **kwargs that is no generator,
        # read off its code flags without inspect's slower helpers.
        flags = receiver.__code__.co_flags
        if flags & inspect.CO_VARKEYWORDS and not flags & _GENERATOR_FLAGS:
            return
    if inspect.iscoroutine(receiver):
        name = getattr(receiver, "__name__", "handler")
        receiver.close()  # we will never await it: avoid a second, misleading warning
        raise TypeError(
            f"connect() got a coroutine object ({name}(...)), not a receiver. "
            f"Probably you wrote `signal.connect({name}())`; pass the function "
            f"itself instead: `signal.connect({name})` (notice: no parentheses)."
        )
    if not callable(receiver):
        raise TypeError(
            f"Signal receivers must be callable, got {receiver!r} "
            f"of type {type(receiver).__qualname__}."
        )
    target: Any = receiver
    while isinstance(target, functools.partial):
        target = target.func
    if inspect.isasyncgenfunction(target) or inspect.isgeneratorfunction(target):
        raise TypeError(
            f"{describe_callable(receiver)} is a generator function; a receiver must "
            "be a plain function or an `async def` coroutine function."
        )
    code = getattr(getattr(receiver, "__func__", receiver), "__code__", None)
    if isinstance(code, types.CodeType) and code.co_flags & inspect.CO_VARKEYWORDS:
        return  # a plain function or method with **kwargs: no signature needed
    try:
        signature = inspect.signature(receiver)
    except (TypeError, ValueError):
        return  # some builtins have no signature; they are accepted unverified
    if not any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values()
    ):
        raise ValueError(
            f"Signal receivers must accept keyword arguments (**kwargs): "
            f"{describe_callable(receiver)}{signature} does not. Receivers are called "
            "as receiver(signal=..., sender=..., **payload); add **kwargs to its "
            "parameters, e.g. `def handler(sender, **kwargs): ...`."
        )


@dataclass(frozen=True)
class ReceiverInfo:
    """A description of one live connection, for tooling (``Signal.describe()``).

    :ivar receiver: the receiver itself (the bound method for a method)
    :ivar name: its qualified name, ``module.qualname``
    :ivar file: the source file it was defined in, if known
    :ivar line: the first line of its definition, if known
    :ivar is_async: whether it is awaited (coroutine function) or called
    :ivar sender: the sender it is restricted to, or ``None`` for any sender
    :ivar weak: whether the signal holds it by a weak reference
    :ivar priority: higher runs first; ties run in connection order
    :ivar dispatch_uid: the uid it was connected with, if any
    :ivar inline: for a sync receiver, whether ``asend`` runs it on the event loop
        rather than in a worker thread
    """

    receiver: Callable[..., Any]
    name: str
    file: str | None
    line: int | None
    is_async: bool
    sender: object
    weak: bool
    priority: int
    dispatch_uid: Hashable | None
    inline: bool


class Connection:
    """A receiver connected to a signal (one entry of ``Signal.receivers``).

    Treat it as opaque; ``Signal.describe()`` gives a stable, documented view.
    """

    __slots__ = ("_options", "deref", "is_async", "key", "sender_ref")

    def __init__(
        self,
        receiver: Callable[..., Any],
        *,
        key: Hashable,
        sender: object,
        weak: bool,
        dispatch_uid: Hashable | None,
        priority: int,
        inline: bool,
        on_death: Callable[[Any], None],
    ) -> None:
        self.key = key
        options = (dispatch_uid, priority, inline, weak)
        self._options = _DEFAULT_OPTIONS if options == _DEFAULT_OPTIONS else options
        self.is_async = is_async_callable(receiver)
        #: ``deref()`` returns the receiver, or None once it has been collected.
        #: A strong receiver gets ``repeat(fn).__next__``: a C-level callable that
        #: returns it, so a send dereferences every receiver the same cheap way.
        self.deref: Callable[[], Any]
        if weak:
            try:
                if hasattr(receiver, "__self__") and hasattr(receiver, "__func__"):
                    self.deref = weakref.WeakMethod(receiver, on_death)
                else:
                    self.deref = weakref.ref(receiver, on_death)
            except TypeError:
                raise TypeError(
                    f"Cannot hold {describe_callable(receiver)} by a weak reference "
                    f"(type {type(receiver).__qualname__} does not support them). "
                    "Connect it with weak=False, and disconnect it when done."
                ) from None
        else:
            self.deref = itertools.repeat(receiver).__next__
        # A sender that can be weakly referenced is held weakly: its death flags the
        # connection dead, so a new object reusing its id() never inherits it. One
        # that cannot (ints, strings, bare object()) is held strongly instead, which
        # keeps its id() from being reused for as long as the connection exists.
        self.sender_ref: Callable[[], Any] | None
        if sender is None:
            self.sender_ref = None
        else:
            try:
                self.sender_ref = weakref.ref(sender, on_death)
            except TypeError:
                self.sender_ref = itertools.repeat(sender).__next__

    @property
    def dispatch_uid(self) -> Hashable | None:
        return self._options[0]

    @property
    def priority(self) -> int:
        return self._options[1]

    @property
    def inline(self) -> bool:
        return self._options[2]

    @property
    def weak(self) -> bool:
        return self._options[3]

    @property
    def receiver(self) -> Callable[..., Any] | None:
        """The receiver, or ``None`` if it was garbage collected."""
        fn: Callable[..., Any] | None = self.deref()
        return fn

    @property
    def sender(self) -> object:
        """The sender this connection is restricted to (``None``: any sender)."""
        return None if self.sender_ref is None else self.sender_ref()

    def is_alive(self) -> bool:
        if self.deref() is None:
            return False
        return self.sender_ref is None or self.sender_ref() is not None

    def info(self) -> ReceiverInfo | None:
        fn = self.deref()
        sender = self.sender
        if fn is None or (self.sender_ref is not None and sender is None):
            return None
        target = inspect.unwrap(getattr(fn, "__func__", fn))
        while isinstance(target, functools.partial):
            target = target.func
        code = getattr(target, "__code__", None)
        if code is None:
            code = getattr(type(target).__call__, "__code__", None)
        return ReceiverInfo(
            receiver=fn,
            name=describe_callable(fn),
            file=code.co_filename if code is not None else None,
            line=code.co_firstlineno if code is not None else None,
            is_async=self.is_async,
            sender=sender,
            weak=self.weak,
            priority=self.priority,
            dispatch_uid=self.dispatch_uid,
            inline=self.inline,
        )

    def __repr__(self) -> str:
        fn = self.deref()
        what = "dead receiver" if fn is None else describe_callable(fn)
        return f"<Connection {what} priority={self.priority}>"

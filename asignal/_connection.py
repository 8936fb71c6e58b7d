"""One connection of a receiver to a signal: validation, identity and references.

Everything here is decided once, at ``connect()`` time, so that a send only has to
dereference and call: whether the receiver is a coroutine function, how it is held
(strongly, by ``weakref.ref`` or by ``WeakMethod``), and the key that identifies it.
"""

from __future__ import annotations

import inspect
import itertools
import types
import weakref
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, cast

from ._receivers import describe_callable, unwrap_callable

__all__ = [
    "ANY_SENDER",
    "Connection",
    "ReceiverInfo",
    "entry_key",
    "lookup_key",
    "make_connection",
    "sender_key_of",
]

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


def entry_key(
    receiver: object, sender: object, dispatch_uid: Hashable | None
) -> Hashable:
    """The key of the connection of *receiver* (or *dispatch_uid*) for *sender* in
    ``Connections.entries``: connect and disconnect find a connection by it.

    ``(receiver key, sender key)`` as in Django, with two shortcuts for connections to
    any sender, the commonest kind, that save memory:

    - a function connected without ``dispatch_uid`` is keyed by a weak reference to
      it. Weak references hash and compare as their live referents, and a function
      compares by identity, so this is Django's ``id()`` key; a weakly held
      function's connection, being that weak reference itself (``_WeakConnection``),
      needs no key object at all.
    - otherwise the bare receiver key, without a tuple.

    Unambiguous: a bare key is never a tuple, a tuple key's second item is the
    sender key, and a weak reference equals nothing but another to the same object.
    """
    if _keyed_by_itself(receiver, sender, dispatch_uid):
        return weakref.ref(receiver)
    skey = ANY_SENDER if sender is None else id(sender)
    rkey = dispatch_uid if dispatch_uid is not None else lookup_key(receiver)
    if skey == ANY_SENDER and not _is_tuple(rkey):
        return rkey
    return (rkey, skey)


def _keyed_by_itself(
    receiver: object, sender: object, dispatch_uid: Hashable | None
) -> bool:
    """Whether :func:`entry_key` is a weak reference to *receiver*: a function
    connected to any sender without ``dispatch_uid``."""
    return (
        dispatch_uid is None and sender is None and type(receiver) is types.FunctionType
    )


def sender_key_of(key: Hashable) -> int:
    """The sender key inside an :func:`entry_key`."""
    if _is_tuple(key):
        return cast("tuple[Hashable, int]", key)[1]
    return ANY_SENDER


def _is_tuple(value: object) -> bool:
    # A function, not an inline isinstance(): type checkers would narrow the key
    # to a tuple of unknown items.
    return isinstance(value, tuple)


#: (dispatch_uid, priority, inline, weak, is_async) of a connection made with the
#: defaults, sync and async, shared by all of them so that each holds one reference
#: instead of five values.
_DEFAULT_OPTIONS: tuple[
    tuple[Hashable | None, int, bool, bool, bool],
    tuple[Hashable | None, int, bool, bool, bool],
] = ((None, 0, False, True, False), (None, 0, False, True, True))


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
    """A receiver connected to a signal: one entry of ``Signal.receivers``, read-only.

    What the application reads: :attr:`receiver`, :attr:`sender`, :attr:`priority`,
    :attr:`dispatch_uid`, :attr:`weak`, :attr:`inline`, :attr:`is_async`,
    :meth:`is_alive` and :meth:`info` (``Signal.describe()`` gives the same view
    for every connection). What the signal itself uses: :attr:`deref`, :attr:`key`,
    :attr:`sender_ref` and :meth:`rebuilt`. Connections are made by
    ``Signal.connect()`` only. Compare them with ``is``: ``==`` between two of them
    is not defined (weakly held ones compare as weak references do, by receiver).
    """

    # Two layouts share this interface (see make_connection): the common one *is*
    # the weak reference to its receiver, the other holds a separate reference.
    __slots__ = ()

    _options: tuple[Hashable | None, int, bool, bool, bool]
    #: A callable returning the sender this connection is restricted to (None once
    #: a weakly held sender died), or None for a connection to any sender.
    sender_ref: Callable[[], Any] | None

    @property
    def deref(self) -> Callable[[], Any]:
        """A callable returning the receiver, or None once it has been collected."""
        raise NotImplementedError

    @property
    def key(self) -> Hashable:
        """What identifies this connection in its signal: the receiver (or
        ``dispatch_uid``) and the sender (see :func:`entry_key`)."""
        raise NotImplementedError

    @property
    def dispatch_uid(self) -> Hashable | None:
        """The ``dispatch_uid`` given to ``connect()``, or None."""
        return self._options[0]

    @property
    def priority(self) -> int:
        """Higher is called first; ties in connection order."""
        return self._options[1]

    @property
    def inline(self) -> bool:
        """For a sync receiver: ``asend`` calls it on the event loop, not in a
        worker thread."""
        return self._options[2]

    @property
    def weak(self) -> bool:
        """Whether the receiver is held by a weak reference."""
        return self._options[3]

    @property
    def is_async(self) -> bool:
        """Whether the receiver is awaited (decided at ``connect()``)."""
        return self._options[4]

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
        """Whether the receiver, and the sender if there is one, are still alive."""
        return self._live() is not None

    def _live(self) -> tuple[Callable[..., Any], object] | None:
        """``(receiver, sender)``, both held for the caller, or None if either died."""
        fn = self.deref()
        sender = self.sender
        if fn is None or (self.sender_ref is not None and sender is None):
            return None
        return fn, sender

    def rebuilt(self, on_death: Callable[[Any], None]) -> Connection | None:
        """An equivalent connection whose weak references report deaths to
        *on_death* (another signal's), or None if the receiver or sender is dead."""
        live = self._live()
        if live is None:
            return None
        fn, sender = live
        return make_connection(
            fn,
            is_async=self.is_async,
            sender=sender,
            weak=self.weak,
            dispatch_uid=self.dispatch_uid,
            priority=self.priority,
            inline=self.inline,
            on_death=on_death,
        )

    def info(self) -> ReceiverInfo | None:
        """A description of this connection, or None if it is no longer alive."""
        live = self._live()
        if live is None:
            return None
        fn, sender = live
        target = inspect.unwrap(unwrap_callable(fn))  # type: ignore[arg-type]
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


class _WeakConnection(Connection, weakref.ref[Any]):
    """A connection that is itself the weak reference to its receiver.

    The commonest connection (a weakly held function or callable object) costs one
    object instead of a record plus a ``weakref.ref``. Calling it is
    ``weakref.ref``'s C call. Hash and equality are ``weakref.ref``'s
    (those of the live receiver), which is what lets a weakly held function be its
    own key in ``Connections.entries`` (``_key`` is then None; see :func:`entry_key`).
    """

    __slots__ = ("_key", "_options", "sender_ref")

    _key: Hashable | None

    @classmethod
    def make(
        cls,
        receiver: Callable[..., Any],
        on_death: Callable[[Any], None],
        key: Hashable | None,
        options: tuple[Hashable | None, int, bool, bool, bool],
        sender_ref: Callable[[], Any] | None,
    ) -> _WeakConnection:
        """*key* None: the connection is its own key (see :func:`entry_key`).

        :raises TypeError: *receiver* cannot be weakly referenced.
        """
        # weakref.ref's own constructor and slot stores: no Python-level __new__
        # or __init__ on the way: connect's cost is mostly object creation.
        self = cls(receiver, on_death)
        self._key = key
        self._options = options
        self.sender_ref = sender_ref
        if key is None:
            # Hashed now, while the receiver lives: weakref.ref caches the hash,
            # and a dead connection must still hash to be pruned from the dict.
            hash(self)
        return self

    @property
    def deref(self) -> Callable[[], Any]:
        return self

    @property
    def key(self) -> Hashable:
        return self if self._key is None else self._key


class _HeldConnection(Connection):
    """A connection holding its receiver through a separate reference: strongly
    (``weak=False``), or by ``WeakMethod`` for a bound method, whose ``weakref.ref``
    would die at once (the bound method object is made anew on every access)."""

    __slots__ = ("_deref", "_key", "_options", "sender_ref")

    def __init__(
        self,
        deref: Callable[[], Any],
        key: Hashable,
        options: tuple[Hashable | None, int, bool, bool, bool],
        sender_ref: Callable[[], Any] | None,
    ) -> None:
        self._deref = deref
        self._key = key
        self._options = options
        self.sender_ref = sender_ref

    @property
    def deref(self) -> Callable[[], Any]:
        return self._deref

    @property
    def key(self) -> Hashable:
        return self._key


def make_connection(
    receiver: Callable[..., Any],
    *,
    is_async: bool,
    sender: object,
    weak: bool,
    dispatch_uid: Hashable | None,
    priority: int,
    inline: bool,
    on_death: Callable[[Any], None],
) -> Connection:
    """Connect-time work for one connection: how the receiver and the sender are
    held, whether the receiver is awaited, and the connection's entry key.

    :raises TypeError: ``weak=True`` and *receiver* cannot be weakly referenced.
    """
    if dispatch_uid is None and priority == 0 and not inline and weak:
        options = _DEFAULT_OPTIONS[is_async]  # shared: one reference, not five values
    else:
        options = (dispatch_uid, priority, inline, weak, is_async)
    # A sender that can be weakly referenced is held weakly: its death flags the
    # connection dead, so a new object reusing its id() never inherits it. One that
    # cannot (ints, strings, bare object()) is held strongly instead, which keeps its
    # id() from being reused for as long as the connection exists.
    sender_ref: Callable[[], Any] | None = None
    if sender is not None:
        try:
            sender_ref = weakref.ref(sender, on_death)
        except TypeError:
            sender_ref = itertools.repeat(sender).__next__
    is_method = type(receiver) is not types.FunctionType and (
        hasattr(receiver, "__self__") and hasattr(receiver, "__func__")
    )
    if weak and not is_method:
        key = (
            None
            if _keyed_by_itself(receiver, sender, dispatch_uid)
            else entry_key(receiver, sender, dispatch_uid)
        )
        try:
            return _WeakConnection.make(receiver, on_death, key, options, sender_ref)
        except TypeError:
            raise _not_weakrefable(receiver) from None
    if weak:
        try:
            deref: Callable[[], Any] = weakref.WeakMethod(receiver, on_death)
        except TypeError:
            raise _not_weakrefable(receiver) from None
    else:
        # A C-level callable returning the receiver: a send dereferences every
        # receiver the same cheap way.
        deref = itertools.repeat(receiver).__next__
    return _HeldConnection(
        deref, entry_key(receiver, sender, dispatch_uid), options, sender_ref
    )


def _not_weakrefable(receiver: object) -> TypeError:
    return TypeError(
        f"Cannot hold {describe_callable(receiver)} by a weak reference "
        f"(type {type(receiver).__qualname__} does not support them). "
        "Connect it with weak=False, and disconnect it when done."
    )

"""What a receiver is: validation, classification (awaited or called) and naming.

Decided once, at ``connect()`` time, so that a send only dereferences and calls.
"""

from __future__ import annotations

import functools
import inspect
import types
from typing import Any, cast

__all__ = [
    "check_receiver",
    "describe_callable",
    "describe_sender",
    "is_async_callable",
    "log_fields",
    "returned_coroutine",
    "unwrap_callable",
]

_GENERATOR_FLAGS = inspect.CO_GENERATOR | inspect.CO_ASYNC_GENERATOR


def describe_callable(fn: object) -> str:
    """A human-readable name for *fn* that never raises (partials, instances, mocks),
    through wrappers that name what they wrap in ``__wrapped__`` (``functools.wraps``,
    asignal's own while a send is watched)."""
    wrapped = getattr(fn, "__wrapped__", None)
    if wrapped is not None and wrapped is not fn:
        return describe_callable(wrapped)
    if isinstance(fn, functools.partial):
        return f"functools.partial({describe_callable(fn.func)})"
    if isinstance(fn, (staticmethod, classmethod)):
        return describe_callable(cast("Any", fn).__func__)
    qualname = getattr(fn, "__qualname__", None)
    if isinstance(qualname, str):
        module = getattr(fn, "__module__", None)
        return f"{module}.{qualname}" if isinstance(module, str) else qualname
    try:
        return repr(fn)
    except Exception:  # a broken __repr__ must not break error reporting
        return f"<{type(fn).__qualname__} object at {id(fn):#x}>"


def describe_sender(sender: object) -> str | None:
    """The sender as log records and spans show it: None as None, a class or
    function by its qualified name, a ``str``, ``int``, ``float`` or ``bool`` by
    ``repr``, any other object by its type (``<module.Type object>``): its own
    ``repr`` could be slow, fail, or show data that logs must not hold."""
    if sender is None:
        return None
    if type(sender) in (str, int, float, bool):
        return repr(sender)
    if isinstance(sender, type) or callable(sender):
        return describe_callable(sender)
    kind = type(sender)
    return f"<{kind.__module__}.{kind.__qualname__} object>"


def log_fields(
    signal: object,
    *,
    receiver: object = None,
    sender: object = None,
    method: str | None = None,
) -> dict[str, object]:
    """The structured fields of a log record about *signal* (``extra=``): the
    signal's name (a ``Signal``'s ``name``, or *signal* itself if a string), the
    receiver's qualified name and the sender (:func:`describe_sender`) when given,
    and the send method."""
    name = (
        signal
        if isinstance(signal, str) or signal is None
        else getattr(signal, "name", None)
    )
    fields: dict[str, object] = {"signal": name, "sender": describe_sender(sender)}
    if receiver is not None:
        fields["receiver"] = describe_callable(receiver)
    if method is not None:
        fields["method"] = method
    return fields


def unwrap_callable(fn: object) -> object:
    """The function that runs when *fn* is called, through ``functools.partial``,
    ``staticmethod`` and ``classmethod`` objects and bound methods (not through
    decorators: a decorator's wrapper is what runs)."""
    target: Any = fn
    while True:
        if isinstance(target, functools.partial):
            target = target.func
        elif isinstance(target, (staticmethod, classmethod, types.MethodType)):
            target = cast("Any", target).__func__
        else:
            return cast("object", target)


def is_async_callable(fn: object) -> bool:
    """True if calling *fn* makes a coroutine to await: a coroutine function (also
    one marked with ``inspect.markcoroutinefunction``), or a ``functools.partial``,
    ``staticmethod``, ``classmethod`` or bound method of one, or an instance whose
    class's ``__call__`` is one."""
    target: Any = unwrap_callable(fn)
    if inspect.iscoroutinefunction(target):
        return True
    if isinstance(target, (types.FunctionType, type)) or not callable(target):
        # A class is called to make an instance, even if its instances are async.
        return False
    call = cast("Any", type(target)).__call__
    # An instance's own __call__ may carry inspect.markcoroutinefunction's mark.
    return inspect.iscoroutinefunction(
        unwrap_callable(call)
    ) or inspect.iscoroutinefunction(target.__call__)


def check_receiver(receiver: object) -> bool:
    """Raise a ``TypeError``/``ValueError`` that says how to fix a bad receiver;
    return whether it is awaited (:func:`is_async_callable`).

    A plain function with ``**kwargs`` is decided from its code flags alone: it is
    what nearly every receiver is, and ``inspect`` costs most of a connect.
    """
    if type(receiver) is types.FunctionType:
        flags = receiver.__code__.co_flags
        if flags & inspect.CO_VARKEYWORDS and not flags & _GENERATOR_FLAGS:
            if flags & inspect.CO_COROUTINE:
                return True
            # Not receiver.__dict__: reading it would give every function a dict.
            if getattr(receiver, "_is_coroutine_marker", None) is None:
                return False
    if inspect.iscoroutine(receiver):
        name = getattr(receiver, "__name__", "handler")
        receiver.close()  # never awaited by us: spare the user a misleading warning
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
    target = unwrap_callable(receiver)
    if inspect.isasyncgenfunction(target) or inspect.isgeneratorfunction(target):
        raise TypeError(
            f"{describe_callable(receiver)} is a generator function; a receiver must "
            "be a plain function or an `async def` coroutine function."
        )
    _check_accepts_kwargs(receiver)
    return is_async_callable(receiver)


def _check_accepts_kwargs(receiver: object) -> None:
    code = getattr(unwrap_callable(receiver), "__code__", None)
    if isinstance(code, types.CodeType) and code.co_flags & inspect.CO_VARKEYWORDS:
        return
    try:
        signature = inspect.signature(receiver)  # type: ignore[arg-type]
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


def returned_coroutine(receiver: object, coroutine: Any) -> TypeError:
    """The error for a receiver connected as sync that returned a coroutine, which
    nothing would ever await; closes the coroutine (no second warning)."""
    coroutine.close()
    return TypeError(
        f"{describe_callable(receiver)} returned a coroutine, but it was connected as "
        "a sync receiver: neither it nor what it wraps (through functools.partial, "
        "staticmethod, classmethod, a bound method, or its class's __call__) is an "
        "`async def` function, so nothing would await the coroutine and its body "
        "would never run. Connect the `async def` function itself, make the wrapper "
        "`async def` and await inside it, or mark the wrapper with "
        "inspect.markcoroutinefunction (Python 3.12+)."
    )

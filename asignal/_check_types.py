"""Run-time checks of a value against a type annotation, for ``strict=True`` typed
signals.

Shallow by design: the outer type is checked (``list[int]`` checks for a list, not
its items), as a send must not pay for walking a payload. Forms that cannot be
checked at run time (a ``Protocol`` that is not ``runtime_checkable``, a bare
``TypeVar``, an unresolved name) are accepted.
"""

from __future__ import annotations

import collections.abc
import types
import typing
from typing import Any

__all__ = ["annotation_error"]

_UNION_TYPES: tuple[Any, ...] = (typing.Union, types.UnionType)
_CALLABLE: object = collections.abc.Callable
#: The numeric promotions the type checkers apply: an int is a float, and both
#: are a complex.
_PROMOTED: dict[type, tuple[type, ...]] = {
    float: (float, int),
    complex: (complex, float, int),
}


def annotation_error(value: object, annotation: object) -> str | None:
    """Why *value* does not match *annotation*, or None if it does (or if the
    annotation cannot be checked at run time)."""
    if _matches(value, annotation):
        return None
    return f"expected {_describe(annotation)}, got {type(value).__qualname__}"


def _matches(value: object, annotation: Any) -> bool:
    if annotation is Any or annotation is object:
        return True
    if annotation is None or annotation is type(None):
        return value is None
    if annotation is typing.NoReturn or getattr(annotation, "_name", None) == "Never":
        return False
    if isinstance(annotation, typing.TypeVar):
        bound = annotation.__bound__
        return bound is None or _matches(value, bound)
    supertype = getattr(annotation, "__supertype__", None)
    if supertype is not None:  # a NewType
        return _matches(value, supertype)
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in _UNION_TYPES:
        return any(_matches(value, arg) for arg in args)
    if origin is typing.Literal:
        return any(value == arg and type(value) is type(arg) for arg in args)
    if origin is type:
        if not isinstance(value, type):
            return False
        target: object = args[0] if args else object
        return not isinstance(target, type) or issubclass(value, target)
    if origin is _CALLABLE:
        return callable(value)
    if isinstance(origin, type):
        return isinstance(value, origin)
    if isinstance(annotation, type):
        try:
            return isinstance(value, _PROMOTED.get(annotation, annotation))
        except TypeError:  # a Protocol that is not runtime_checkable
            return True
    return True


def _describe(annotation: object) -> str:
    if annotation is type(None):
        return "None"
    # Python 3.10 counts a generic alias such as list[int] as a type too.
    if isinstance(annotation, type) and not isinstance(annotation, types.GenericAlias):
        return annotation.__qualname__
    text = repr(annotation)
    for prefix in ("typing.", "collections.abc."):
        text = text.replace(prefix, "")
    return text

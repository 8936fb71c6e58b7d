"""Which mapped classes send signals, and with which options: lookups over the
targets ``install()`` recorded in :mod:`._state`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy.orm import Mapper, registry

from . import _state
from ._options import Options, Target, registry_of

__all__ = [
    "add_target",
    "installed_mappers",
    "options_for",
    "options_for_class",
    "remove_target",
]


def add_target(target: Target, options: Options) -> None:
    """Record (or replace) *target*'s options. The caller holds ``_state.lock``."""
    _state.targets[target] = options
    _forget_lookups()


def remove_target(target: Target) -> Options | None:
    """Forget *target*; its options, or None if it was not installed. The caller
    holds ``_state.lock``."""
    options = _state.targets.pop(target, None)
    _forget_lookups()
    return options


def _forget_lookups() -> None:
    _state.options_by_mapper.clear()
    _state.options_by_class.clear()


def _covers(target: Target, mapper: Mapper[Any]) -> bool:
    if isinstance(target, registry):
        return mapper.registry is target
    return issubclass(mapper.class_, target)


def options_for(mapper: Mapper[Any]) -> Options | None:
    """The options of the first installed target covering *mapper*, or None."""
    try:
        return _state.options_by_mapper[mapper]
    except KeyError:
        pass
    found = None
    for target, options in list(_state.targets.items()):
        if _covers(target, mapper):
            found = options
            break
    _state.options_by_mapper[mapper] = found
    return found


def options_for_class(cls: type) -> Options | None:
    """Like :func:`options_for`, by mapped class (for the instance events)."""
    try:
        return _state.options_by_class[cls]
    except KeyError:
        pass
    mapper: Mapper[Any] | None = getattr(cls, "__mapper__", None)
    found = options_for(mapper) if mapper is not None else None
    _state.options_by_class[cls] = found
    return found


def installed_mappers() -> Iterator[tuple[Mapper[Any], Options]]:
    """Every mapper, already in a registry, that an installed target covers."""
    seen: set[Mapper[Any]] = set()
    for target in list(_state.targets):
        for mapper in list(registry_of(target).mappers):
            if mapper in seen:
                continue
            seen.add(mapper)
            options = options_for(mapper)
            if options is not None:
                yield mapper, options

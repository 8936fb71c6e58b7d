"""Which mapped classes send signals, and how: the targets given to ``install()``."""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Mapper, Session, registry

__all__ = [
    "POST_DELIVERY_KEY",
    "Options",
    "PostDelivery",
    "Target",
    "add_target",
    "installed_mappers",
    "options_for",
    "post_delivery_for",
    "remove_target",
    "targets",
]

PostDelivery = Literal["after_flush", "flush", "on_commit"]
POST_DELIVERY_MODES: tuple[PostDelivery, ...] = ("after_flush", "flush", "on_commit")

#: ``session.info[POST_DELIVERY_KEY] = "on_commit"`` overrides the mode per session.
POST_DELIVERY_KEY = "asignal.post_delivery"

#: What ``install()`` accepts: a declarative base class (or any mapped superclass,
#: SQLModel included) or a ``registry``.
Target = Any


@dataclass(frozen=True, eq=False)
class Options:
    """The options one ``install()`` call gave, shared by the classes it covers."""

    binds: dict[Engine, str] = field(default_factory=dict[Engine, str])
    post_delivery: PostDelivery = "after_flush"
    robust: bool = False
    init_signals: bool = True


_targets: dict[Target, Options] = {}
# Mapper -> Options, or None for a mapper no target covers. Weak, so classes made in
# a loop (tests, factories) are not kept alive by being looked at once.
_by_mapper: weakref.WeakKeyDictionary[Mapper[Any], Options | None] = (
    weakref.WeakKeyDictionary()
)
_by_class: weakref.WeakKeyDictionary[type, Options | None] = weakref.WeakKeyDictionary()


def targets() -> dict[Target, Options]:
    return _targets


def add_target(target: Target, options: Options) -> None:
    _targets[target] = options
    _by_mapper.clear()
    _by_class.clear()


def remove_target(target: Target) -> Options | None:
    options = _targets.pop(target, None)
    _by_mapper.clear()
    _by_class.clear()
    return options


def _covers(target: Target, mapper: Mapper[Any]) -> bool:
    if isinstance(target, registry):
        return mapper.registry is target
    return issubclass(mapper.class_, target)


def options_for(mapper: Mapper[Any]) -> Options | None:
    """The options of the first installed target covering *mapper*, or None."""
    try:
        return _by_mapper[mapper]
    except KeyError:
        pass
    found = None
    for target, options in _targets.items():
        if _covers(target, mapper):
            found = options
            break
    _by_mapper[mapper] = found
    return found


def options_for_class(cls: type) -> Options | None:
    """Like :func:`options_for`, by mapped class (for the instance events)."""
    try:
        return _by_class[cls]
    except KeyError:
        pass
    mapper: Mapper[Any] | None = getattr(cls, "__mapper__", None)
    found = options_for(mapper) if mapper is not None else None
    _by_class[cls] = found
    return found


def registry_of(target: Target) -> registry:
    if isinstance(target, registry):
        return target
    found = getattr(target, "registry", None)
    if not isinstance(found, registry):
        found = getattr(target, "_sa_registry", None)  # SQLModel keeps it here
    if not isinstance(found, registry):
        raise TypeError(
            f"install() takes a declarative base class (DeclarativeBase subclass, "
            f"declarative_base(), SQLModel) or a sqlalchemy.orm.registry; {target!r} "
            "has no registry. Pass the base your models inherit from."
        )
    return found


def installed_mappers() -> Iterator[tuple[Mapper[Any], Options]]:
    """Every mapper, already in a registry, that an installed target covers."""
    seen: set[Mapper[Any]] = set()
    for target in list(_targets):
        for mapper in list(registry_of(target).mappers):
            if mapper in seen:
                continue
            seen.add(mapper)
            options = options_for(mapper)
            if options is not None:
                yield mapper, options


def post_delivery_for(session: Session, options: Options) -> PostDelivery:
    mode = session.info.get(POST_DELIVERY_KEY)
    if mode is None:
        return options.post_delivery
    if mode not in POST_DELIVERY_MODES:
        raise ValueError(
            f"session.info[{POST_DELIVERY_KEY!r}] is {mode!r}; use one of "
            f"{', '.join(map(repr, POST_DELIVERY_MODES))}."
        )
    return mode  # type: ignore[no-any-return]

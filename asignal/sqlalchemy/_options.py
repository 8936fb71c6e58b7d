"""What ``install()`` accepts and the options it records: plain values, no state."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, registry

__all__ = [
    "M2M_SIDE_INFO_KEY",
    "POST_DELIVERY_KEY",
    "POST_DELIVERY_MODES",
    "Options",
    "PostDelivery",
    "Target",
    "post_delivery_for",
    "registry_of",
]

PostDelivery = Literal["after_flush", "flush", "on_commit"]
POST_DELIVERY_MODES: tuple[PostDelivery, ...] = ("after_flush", "flush", "on_commit")

#: ``session.info[POST_DELIVERY_KEY] = "on_commit"`` overrides the mode per session.
POST_DELIVERY_KEY = "asignal.post_delivery"

#: ``relationship(..., info={M2M_SIDE_INFO_KEY: "forward"})``: which side of a
#: many-to-many relationship is the forward one (``reverse=False``).
M2M_SIDE_INFO_KEY = "asignal_m2m"

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


def registry_of(target: Target) -> registry:
    """The ``registry`` behind an ``install()`` target.

    :raises TypeError: *target* is neither a registry nor a mapped base class.
    """
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


def post_delivery_for(session: Session, options: Options) -> PostDelivery:
    """The session's own mode (``session.info[POST_DELIVERY_KEY]``), else the
    installed one.

    :raises ValueError: the session's mode is not one of :data:`POST_DELIVERY_MODES`.
    """
    mode = session.info.get(POST_DELIVERY_KEY)
    if mode is None:
        return options.post_delivery
    if mode not in POST_DELIVERY_MODES:
        raise ValueError(
            f"session.info[{POST_DELIVERY_KEY!r}] is {mode!r}; use one of "
            f"{', '.join(map(repr, POST_DELIVERY_MODES))}."
        )
    return mode  # type: ignore[no-any-return]

"""``install()``/``uninstall()``: which SQLAlchemy events the bridge listens to."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Mapper, Session

from . import _flush, _instances, _m2m, _state
from ._bulk import do_orm_execute
from ._options import POST_DELIVERY_MODES, Options, PostDelivery, Target, registry_of
from ._targets import add_target, remove_target

__all__ = ["install", "is_installed", "uninstall"]


def _after_configured() -> None:
    _m2m.refresh_links()


_MAPPER_EVENTS: tuple[tuple[str, Any], ...] = (
    ("before_insert", _flush.before_insert),
    ("before_update", _flush.before_update),
    ("before_delete", _flush.before_delete),
    ("after_insert", _flush.after_insert),
    ("after_update", _flush.after_update),
    ("after_delete", _flush.after_delete),
    ("init", _instances.on_init),
    ("load", _instances.on_load),
    ("after_configured", _after_configured),
)
_SESSION_EVENTS: tuple[tuple[str, Any], ...] = (
    ("before_flush", _flush.before_flush),
    ("after_flush_postexec", _flush.after_flush_postexec),
    ("after_begin", _flush.after_begin),
    ("after_commit", _flush.after_commit),
    ("after_soft_rollback", _flush.after_soft_rollback),
    ("after_transaction_end", _flush.after_transaction_end),
    ("do_orm_execute", do_orm_execute),
)


def _listen_globally() -> None:
    for identifier, fn in _MAPPER_EVENTS:
        if not event.contains(Mapper, identifier, fn):
            event.listen(Mapper, identifier, fn)
    for identifier, fn in _SESSION_EVENTS:
        if not event.contains(Session, identifier, fn):
            event.listen(Session, identifier, fn)


def _stop_listening() -> None:
    for identifier, fn in _MAPPER_EVENTS:
        if event.contains(Mapper, identifier, fn):
            event.remove(Mapper, identifier, fn)
    for identifier, fn in _SESSION_EVENTS:
        if event.contains(Session, identifier, fn):
            event.remove(Session, identifier, fn)


def _sync_engine(engine: object, name: str) -> Engine:
    sync_engine = getattr(engine, "sync_engine", engine)  # an AsyncEngine's own
    if not isinstance(sync_engine, Engine):
        raise TypeError(
            f"install(binds={{{name!r}: ...}}) got {engine!r}; give each name an "
            "Engine or AsyncEngine, e.g. binds={'default': engine}."
        )
    return sync_engine


def install(
    base: Target,
    *,
    binds: Mapping[str, Any] | None = None,
    post_delivery: PostDelivery = "after_flush",
    robust: bool = False,
    init_signals: bool = True,
) -> None:
    """Make every class mapped under *base* send the model signals.

    :param base: a declarative base class (``DeclarativeBase`` subclass,
        ``declarative_base()``, ``SQLModel``, or any mapped superclass) or a
        ``sqlalchemy.orm.registry``. Classes mapped later are covered too.
    :param binds: names for engines (``Engine`` or ``AsyncEngine``), given to
        receivers as ``using=``; an engine without a name is described by its URL,
        password hidden.
    :param post_delivery: when ``post_save``, ``post_delete`` and the ``post_*``
        actions of ``m2m_changed`` are sent: ``"after_flush"`` (inside ``flush()``,
        once the rows of this flush are written), ``"flush"`` (right after each
        row's statement) or ``"on_commit"`` (after the outermost commit, dropped on
        rollback). ``session.info[POST_DELIVERY_KEY]`` overrides it per session.
    :param robust: send as ``send_robust()``: a receiver's exception is logged on
        the ``asignal`` logger instead of aborting the flush.
    :param init_signals: send ``pre_init`` (start of ``__init__``) and
        ``post_init`` (an instance loaded from the database).

    Installing the same base again replaces its options; installing is process-wide
    and thread-safe. For classes covered by more than one installed base, the
    first installed wins.
    """
    registry_of(base)  # validates the target
    if post_delivery not in POST_DELIVERY_MODES:
        raise ValueError(
            f"install(post_delivery={post_delivery!r}): use one of "
            f"{', '.join(map(repr, POST_DELIVERY_MODES))}."
        )
    names = {_sync_engine(engine, name): name for name, engine in (binds or {}).items()}
    options = Options(
        binds=names,
        post_delivery=post_delivery,
        robust=robust,
        init_signals=init_signals,
    )
    with _state.lock:
        previous = _state.targets.get(base)
        add_target(base, options)
        _listen_globally()
        _m2m.forget_links()
        try:
            _m2m.refresh_links()
        except BaseException:
            # All or nothing: a bad relationship leaves things as they were.
            if previous is None:
                remove_target(base)
            else:
                add_target(base, previous)
            _m2m.forget_links()
            _m2m.refresh_links()
            if not _state.targets:
                _stop_listening()
            raise


def uninstall(base: Target) -> None:
    """Stop the classes under *base* sending signals; a no-op if not installed."""
    with _state.lock:
        if remove_target(base) is None:
            return
        _m2m.forget_links()
        if _state.targets:
            _m2m.refresh_links()
        else:
            _stop_listening()


def is_installed(base: Target) -> bool:
    """Whether ``install(base)`` is in effect."""
    return base in _state.targets

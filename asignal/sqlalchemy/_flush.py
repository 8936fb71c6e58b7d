"""Model signals around a flush: save and delete per row, and when post_* arrive.

``pre_save``/``pre_delete`` are sent from SQLAlchemy's mapper-level events, right
before each row's INSERT, UPDATE or DELETE, so a receiver that raises aborts the flush
(and SQLAlchemy rolls the transaction back). ``post_save``/``post_delete`` are sent
according to the post-delivery mode:

- ``"after_flush"`` (default): collected during the flush and sent from
  ``after_flush_postexec``, still inside ``flush()``, where receivers may add, change
  and delete objects (a commit flushes them next);
- ``"flush"``: right after each row's statement, inside the flush's execution, where
  SQLAlchemy allows SQL on the connection but no changes to the session;
- ``"on_commit"``: after the outermost commit; dropped when the transaction (or the
  savepoint they were flushed in) rolls back.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Connection
from sqlalchemy.orm import InstanceState, Mapper, Session, SessionTransaction
from sqlalchemy.orm import object_session as _object_session
from sqlalchemy.orm.attributes import instance_state

from .._integration import is_observed
from ..signals import post_delete, post_save, pre_delete, pre_save
from . import _m2m, _state
from ._options import Options
from ._send import deliver, deliver_after_commit, deliver_all, row_kwargs, send_post
from ._state import FlushState, session_state
from ._targets import options_for

__all__ = [
    "after_begin",
    "after_commit",
    "after_delete",
    "after_flush_postexec",
    "after_insert",
    "after_soft_rollback",
    "after_transaction_end",
    "after_update",
    "before_delete",
    "before_flush",
    "before_insert",
    "before_update",
]


def _session_of(target: object) -> Session:
    session = _object_session(target)
    assert session is not None, "a flushed instance always has its session"
    return session


# -- save ------------------------------------------------------------------------------


def changed_columns(mapper: Mapper[Any], state: InstanceState[Any]) -> frozenset[str]:
    """The column attributes whose value this UPDATE writes."""
    columns = mapper.column_attrs
    attrs = state.attrs
    return frozenset(
        key
        for key in state.committed_state
        if key in columns and attrs[key].history.has_changes()
    )


def before_insert(mapper: Mapper[Any], connection: Connection, target: object) -> None:
    options = options_for(mapper)
    if options is None or not is_observed(pre_save):
        return
    kwargs = row_kwargs(_session_of(target), connection, options)
    kwargs.update(instance=target, raw=False, update_fields=None)
    deliver(pre_save, mapper.class_, kwargs, options.robust)


def before_update(mapper: Mapper[Any], connection: Connection, target: object) -> None:
    options = options_for(mapper)
    if options is None or not is_observed(pre_save):
        return
    fields = changed_columns(mapper, instance_state(target))
    if not fields:  # dirty through a relationship only: no UPDATE of this row
        return
    kwargs = row_kwargs(_session_of(target), connection, options)
    kwargs.update(instance=target, raw=False, update_fields=fields)
    deliver(pre_save, mapper.class_, kwargs, options.robust)


def after_insert(mapper: Mapper[Any], connection: Connection, target: object) -> None:
    options = options_for(mapper)
    if options is None or not is_observed(post_save):
        return
    session = _session_of(target)
    kwargs = row_kwargs(session, connection, options)
    kwargs.update(instance=target, created=True, raw=False, update_fields=None)
    send_post(session, options, (post_save, mapper.class_, kwargs, options.robust))


def after_update(mapper: Mapper[Any], connection: Connection, target: object) -> None:
    options = options_for(mapper)
    if options is None or not is_observed(post_save):
        return
    fields = changed_columns(mapper, instance_state(target))
    if not fields:
        return
    session = _session_of(target)
    kwargs = row_kwargs(session, connection, options)
    kwargs.update(instance=target, created=False, raw=False, update_fields=fields)
    send_post(session, options, (post_save, mapper.class_, kwargs, options.robust))


# -- delete ----------------------------------------------------------------------------


def deletion_origins(session: Session) -> dict[InstanceState[Any], object]:
    """For each object to delete, the object whose deletion cascaded to it.

    An object reached by no other's delete cascade is its own origin. Only loaded
    objects are known here: rows the database deletes by ``ON DELETE CASCADE``
    (``passive_deletes=True``) are never seen by the ORM and send nothing.
    """
    deleted: list[InstanceState[Any]] = [instance_state(obj) for obj in session.deleted]
    members = set(deleted)
    reached: set[InstanceState[Any]] = set()
    below: dict[InstanceState[Any], list[InstanceState[Any]]] = {}
    for state in deleted:
        found = [
            child_state
            for _, _, child_state, _ in state.mapper.cascade_iterator("delete", state)
            if child_state in members and child_state is not state
        ]
        below[state] = found
        reached.update(found)
    origins: dict[InstanceState[Any], object] = {}
    for state in deleted:
        if state in reached:
            continue
        root = state.obj()
        origins[state] = root
        for child_state in below[state]:
            origins.setdefault(child_state, root)
    return origins


def _delete_kwargs(
    mapper: Mapper[Any], connection: Connection, target: object, options: Options
) -> tuple[Session, dict[str, Any]]:
    session = _session_of(target)
    kwargs = row_kwargs(session, connection, options)
    state = session_state(session).flush
    origin = state.origins.get(instance_state(target), target) if state else target
    kwargs.update(instance=target, origin=origin)
    return session, kwargs


def before_delete(mapper: Mapper[Any], connection: Connection, target: object) -> None:
    options = options_for(mapper)
    if options is None or not is_observed(pre_delete):
        return
    _, kwargs = _delete_kwargs(mapper, connection, target, options)
    deliver(pre_delete, mapper.class_, kwargs, options.robust)


def after_delete(mapper: Mapper[Any], connection: Connection, target: object) -> None:
    options = options_for(mapper)
    if options is None or not is_observed(post_delete):
        return
    session, kwargs = _delete_kwargs(mapper, connection, target, options)
    send_post(session, options, (post_delete, mapper.class_, kwargs, options.robust))


# -- session and transaction -----------------------------------------------------------


def before_flush(session: Session, flush_context: object, objects: object) -> None:
    state = session_state(session)
    flush = state.flush = FlushState()
    if session.deleted and (is_observed(pre_delete) or is_observed(post_delete)):
        flush.origins = deletion_origins(session)
    flush.m2m = _m2m.collect(session)


def after_flush_postexec(session: Session, flush_context: object) -> None:
    state = _state.sessions.get(session)
    if state is None or state.flush is None:
        return
    flush, state.flush = state.flush, None
    if flush.on_commit:
        owner = session.get_nested_transaction() or session.get_transaction()
        assert owner is not None, "a flush runs in a transaction"
        state.on_commit.setdefault(owner, []).extend(flush.on_commit)
    deliver_all(flush.after_flush)


def _owner(transaction: SessionTransaction) -> SessionTransaction:
    """The savepoint or root transaction that *transaction* commits with."""
    while transaction.parent is not None and not transaction.nested:
        transaction = transaction.parent
    return transaction


def after_commit(session: Session) -> None:
    """Deliver the ``on_commit`` sends of the root transaction that committed, or
    hand a released savepoint's on to the transaction around it. A failure is kept
    for :func:`after_transaction_end` to raise."""
    state = _state.sessions.get(session)
    if state is None or not state.on_commit:
        return
    nested = session.get_nested_transaction()
    if nested is not None:
        # A savepoint was released: its deliveries now wait on the enclosing
        # transaction, and are dropped if that one rolls back.
        kept = state.on_commit.pop(nested, None)
        if kept and nested.parent is not None:
            state.on_commit.setdefault(_owner(nested.parent), []).extend(kept)
        return
    root = session.get_transaction()
    if root is None:  # pragma: no cover - after_commit always has one
        return
    failure = deliver_after_commit(state.on_commit.pop(root, []))
    if failure is not None:
        state.failed = (root, failure)


def after_soft_rollback(session: Session, previous: SessionTransaction) -> None:
    state = _state.sessions.get(session)
    if state is not None:
        # A flush that failed never reached after_flush_postexec: drop what it
        # collected (and the objects it holds) now rather than at the next flush.
        state.flush = None


def after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    """Drop the ``on_commit`` sends of a transaction that ends without a commit, and
    raise the exception that stopped the sends of one that committed.

    This is the last thing ``commit()`` does, after the transaction is closed, so
    the session is left as after any commit. SQLAlchemy calls the event's
    listeners in order: those added after ``install()`` are not called for a
    transaction whose sends failed.
    """
    state = _state.sessions.get(session)
    if state is None:
        return
    if state.on_commit:
        # Delivered or moved already if committed; a rollback drops them here.
        state.on_commit.pop(transaction, None)
    if state.failed is not None and state.failed[0] is transaction:
        failure = state.failed[1]
        state.failed = None
        raise failure


def after_begin(
    session: Session, transaction: SessionTransaction, connection: Connection
) -> None:
    _m2m.watch_connection(connection, session_state(session))

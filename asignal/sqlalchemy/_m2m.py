"""``m2m_changed`` for relationships with a ``secondary`` association table.

Three pieces of SQLAlchemy are combined, because none tells the whole story alone:

- attribute history (read at ``before_flush``) gives the net change of each
  collection since the last flush: what is added and removed, whichever side it was
  changed from, with appends undone by removes cancelled out;
- attribute events (``append``/``remove``, recorded as they happen) tell which side
  a change was made from: SQLAlchemy mirrors a change into the other side's
  collection, and only the initiating side's event carries its own token;
- the association table's INSERT and DELETE statements (seen through the flush
  connection's ``before_execute``/``after_execute``) say when the rows are written,
  and their parameters which pairs each statement writes, so that ``pre_add`` comes
  right before the rows exist and ``post_add`` right after, with the primary keys of
  objects inserted earlier in the same flush already known.

Which side is forward (``reverse=False``): the side created with ``backref=`` is the
reverse one; between two ``back_populates`` sides, the forward one is the side whose
foreign key comes first in the association table; ``relationship(...,
info={"asignal_m2m": "forward" | "reverse"})`` overrides both.
"""

from __future__ import annotations

import itertools
import weakref
from typing import Any

from sqlalchemy import Delete, Insert, Table, event
from sqlalchemy.engine import Connection
from sqlalchemy.orm import InstanceState, Mapper, RelationshipProperty, Session
from sqlalchemy.orm.attributes import AttributeEventToken, instance_state

from .._integration import is_observed
from ..signals import m2m_changed
from . import _state
from ._options import M2M_SIDE_INFO_KEY, Options
from ._send import deliver, row_kwargs, send_post
from ._state import Delivery, FlushState, SessionState
from ._targets import installed_mappers

__all__ = [
    "Change",
    "Link",
    "collect",
    "forget_links",
    "refresh_links",
    "watch_connection",
]

# Kept on the forward object's InstanceState.info between flushes:
# {(link, reverse_state): made_from_reverse_side}.
_ORIGIN_KEY = "asignal.m2m_origin"

_Prop = RelationshipProperty[Any]


class Link:
    """A many-to-many relation: its forward side, its reverse side if mapped, and
    how a pair of objects becomes a row of the association table."""

    __slots__ = ("columns", "forward", "options", "reverse", "sender", "table")

    def __init__(
        self, forward: _Prop, reverse: _Prop | None, sender: object, options: Options
    ) -> None:
        table: Any = forward.secondary  # a Table: refresh_links() checked
        self.table: Any = table
        self.forward = forward
        self.reverse = reverse
        self.sender = sender
        self.options = options
        # (association column key, True for the reverse object's side, attribute key
        # on that object holding the value)
        self.columns: list[tuple[str, bool, str]] = [
            (
                str(secondary.key),
                False,
                forward.parent.get_property_by_column(local).key,
            )
            for local, secondary in forward.synchronize_pairs
        ] + [
            (
                str(secondary.key),
                True,
                forward.mapper.get_property_by_column(remote).key,
            )
            for remote, secondary in forward.secondary_synchronize_pairs or ()
        ]

    def model(self, reverse: bool) -> type:
        """The class of the objects added or removed, seen from one side."""
        return self.forward.parent.class_ if reverse else self.forward.mapper.class_

    def row(
        self, forward: InstanceState[Any], reverse: InstanceState[Any]
    ) -> tuple[Any, ...]:
        return tuple(
            _value(reverse if on_reverse else forward, key)
            for _, on_reverse, key in self.columns
        )


def _value(state: InstanceState[Any], key: str) -> Any:
    if key in state.dict:
        return state.dict[key]
    return getattr(state.obj(), key)


class Change:
    """One pair added or removed, net since the last flush."""

    __slots__ = ("action", "forward", "link", "made_from_reverse", "reverse")

    def __init__(
        self,
        link: Link,
        action: str,
        forward: InstanceState[Any],
        reverse: InstanceState[Any],
        made_from_reverse: bool,
    ) -> None:
        self.link = link
        self.action = action
        self.forward = forward
        self.reverse = reverse
        self.made_from_reverse = made_from_reverse


# -- which relations, and which side ---------------------------------------------------


def _reverse_of(prop: _Prop) -> _Prop | None:
    name = prop.back_populates
    if not name and prop.backref:
        name = prop.backref if isinstance(prop.backref, str) else prop.backref[0]
    if not name:
        return None
    found = prop.mapper.relationships.get(name)
    return found if isinstance(found, RelationshipProperty) else None


def _declared_side(prop: _Prop) -> str | None:
    side = prop.info.get(M2M_SIDE_INFO_KEY)
    if side not in (None, "forward", "reverse"):
        raise ValueError(
            f"relationship {prop} has info[{M2M_SIDE_INFO_KEY!r}] = {side!r}; use "
            "'forward' or 'reverse' (or leave it out to let asignal decide)."
        )
    return side


def _first_column(prop: _Prop) -> int:
    table: Any = prop.secondary
    columns: list[Any] = list(table.c)
    return min(columns.index(secondary) for _, secondary in prop.synchronize_pairs)


def _sides(prop: _Prop, other: _Prop | None) -> tuple[_Prop, _Prop | None]:
    """``(forward, reverse)`` for a relationship and its mirror."""
    _declared_side(prop)  # validated even where there is no choice to make
    if other is None:
        return prop, None
    for one, two in ((prop, other), (other, prop)):
        side = _declared_side(one)
        if side == "forward":
            return one, two
        if side == "reverse":
            return two, one
    if prop.backref:
        return prop, other
    if other.backref:
        return other, prop
    return (
        (prop, other) if _first_column(prop) <= _first_column(other) else (other, prop)
    )


def _sender_for(table: Any) -> object:
    """The association table, or the class mapped to it if there is one."""
    for mapper, _ in installed_mappers():
        if mapper.local_table is table:
            return mapper.class_
    return table


def refresh_links() -> None:
    """Find many-to-many relationships of installed, configured mappers not yet
    known; start recording which side their changes are made from."""
    for mapper, options in list(installed_mappers()):
        if not mapper.configured:
            continue
        for prop in mapper.relationships:
            if prop in _state.links or prop.secondary is None or prop.viewonly:
                continue
            table: Any = prop.secondary
            if not isinstance(table, Table):
                continue
            other = _reverse_of(prop)
            forward, reverse = _sides(prop, other)
            link = Link(forward, reverse, _sender_for(table), options)
            for side in (forward, reverse):
                if side is not None:
                    _state.links[side] = link
                    _listen(side, link, made_from_reverse=side is reverse)
    _state.props_by_mapper.clear()


def _listen(prop: _Prop, link: Link, *, made_from_reverse: bool) -> None:
    def record(target: object, value: object, initiator: AttributeEventToken) -> None:
        # A change mirrored from the other side carries that side's token.
        if value is None or getattr(initiator.impl, "parent_token", None) is not prop:
            return
        if not is_observed(m2m_changed):  # nobody listens: keep nothing on the objects
            return
        mine, theirs = instance_state(target), instance_state(value)
        forward, reverse = (theirs, mine) if made_from_reverse else (mine, theirs)
        origins = forward.info.setdefault(_ORIGIN_KEY, {})
        origins[(link, reverse)] = made_from_reverse

    attribute = getattr(prop.parent.class_, prop.key)
    for identifier in ("append", "remove"):
        event.listen(attribute, identifier, record, propagate=True)
        _state.listening.append((attribute, identifier, record))


def forget_links() -> None:
    for attribute, identifier, fn in _state.listening:
        if event.contains(attribute, identifier, fn):
            event.remove(attribute, identifier, fn)
    _state.listening.clear()
    _state.links.clear()
    _state.props_by_mapper.clear()


def _props_of(mapper: Mapper[Any]) -> list[_Prop]:
    props = _state.props_by_mapper.get(mapper)
    if props is None:
        props = _state.props_by_mapper[mapper] = [
            prop for prop in mapper.relationships if prop in _state.links
        ]
    return props


# -- at flush --------------------------------------------------------------------------


def collect(session: Session) -> dict[Any, list[Change]]:
    """The net many-to-many changes this flush will write, by association table.

    Forgets, on every object of the flush, which side its changes were made from:
    after this flush that is history.
    """
    if not _state.links:
        return {}
    flushed: list[InstanceState[Any]] = [
        instance_state(obj) for obj in itertools.chain(session.new, session.dirty)
    ]
    if not is_observed(m2m_changed):
        for state in flushed:
            state.info.pop(_ORIGIN_KEY, None)
        return {}
    deleted = {instance_state(obj) for obj in session.deleted}
    changes: dict[tuple[Link, InstanceState[Any], InstanceState[Any]], Change] = {}
    for state in flushed:
        if state in deleted:
            continue
        for prop in _props_of(state.mapper):
            history = state.attrs[prop.key].history
            if not (history.added or history.deleted):
                continue
            link = _state.links[prop]
            seen_from_reverse = prop is link.reverse
            pairs = itertools.chain(
                (("add", o) for o in history.added or ()),
                (("remove", o) for o in history.deleted or ()),
            )
            for action, other in pairs:
                if other is None:
                    continue
                other_state: InstanceState[Any] = instance_state(other)
                if other_state in deleted:
                    continue
                forward, reverse = (
                    (other_state, state) if seen_from_reverse else (state, other_state)
                )
                key = (link, forward, reverse)
                if key not in changes:
                    changes[key] = Change(
                        link, action, forward, reverse, seen_from_reverse
                    )
    by_table: dict[Any, list[Change]] = {}
    for (link, forward, reverse), change in changes.items():
        origins = forward.info.get(_ORIGIN_KEY)
        if origins:
            made_from_reverse = origins.pop((link, reverse), None)
            if made_from_reverse is not None:
                change.made_from_reverse = made_from_reverse
        by_table.setdefault(link.table, []).append(change)
    for state in flushed:
        state.info.pop(_ORIGIN_KEY, None)
    return by_table


def _pk(state: InstanceState[Any]) -> Any:
    key = state.mapper.primary_key_from_instance(state.obj())
    return key[0] if len(key) == 1 else tuple(key)


# -- when the association rows are written ---------------------------------------------


def watch_connection(connection: Connection, state: SessionState) -> None:
    _state.watched[connection] = weakref.ref(state)
    if not event.contains(connection, "before_execute", _before_execute):
        event.listen(connection, "before_execute", _before_execute)
        event.listen(connection, "after_execute", _after_execute)


def _flush_of(connection: Connection) -> FlushState | None:
    ref = _state.watched.get(connection)
    state = ref() if ref is not None else None
    return state.flush if state is not None else None


def _before_execute(
    connection: Connection,
    statement: object,
    multiparams: list[dict[str, Any]],
    params: dict[str, Any],
    execution_options: object,
) -> None:
    flush = _flush_of(connection)
    if flush is None or not flush.m2m:
        return
    if isinstance(statement, Insert):
        action = "add"
    elif isinstance(statement, Delete):
        action = "remove"
    else:
        return
    pending = flush.m2m.get(statement.table)
    if not pending:
        return
    rows = multiparams or [params]
    written: list[Change] = []
    keys_by_link: dict[Link, set[tuple[Any, ...]]] = {}
    for change in list(pending):
        if change.action != action:
            continue
        link = change.link
        keys = keys_by_link.get(link)
        if keys is None:
            names = [name for name, _, _ in link.columns]
            keys = keys_by_link[link] = {
                tuple(row.get(name) for name in names) for row in rows
            }
        if link.row(change.forward, change.reverse) in keys:
            written.append(change)
            pending.remove(change)
    if not written:
        return
    session = written[0].forward.session
    assert session is not None
    pre, post = _deliveries(session, connection, written, action)
    for delivery in pre:
        deliver(*delivery)
    flush.after_statement[id(statement)] = (session, post)


def _after_execute(
    connection: Connection,
    statement: object,
    multiparams: object,
    params: object,
    execution_options: object,
    result: object,
) -> None:
    flush = _flush_of(connection)
    if flush is None or not flush.after_statement:
        return
    waiting = flush.after_statement.pop(id(statement), None)
    if waiting is None:
        return
    session, post = waiting
    for delivery, options in post:
        send_post(session, options, delivery)


def _deliveries(
    session: Session, connection: Connection, written: list[Change], action: str
) -> tuple[list[Delivery], list[tuple[Delivery, Options]]]:
    """``pre_*`` and ``post_*`` sends for the pairs one statement writes: one per
    instance and action, the instance being the object on the side the change was
    made from."""
    groups: dict[tuple[Link, InstanceState[Any], bool], list[InstanceState[Any]]] = {}
    for change in written:
        if change.made_from_reverse:
            mine, theirs = change.reverse, change.forward
        else:
            mine, theirs = change.forward, change.reverse
        groups.setdefault((change.link, mine, change.made_from_reverse), []).append(
            theirs
        )
    pre: list[Delivery] = []
    post: list[tuple[Delivery, Options]] = []
    for (link, instance, reverse), others in groups.items():
        options = link.options
        base = row_kwargs(session, connection, options)
        base.update(
            instance=instance.obj(),
            reverse=reverse,
            model=link.model(reverse),
            pk_set={_pk(state) for state in others},
        )
        pre.append(
            (
                m2m_changed,
                link.sender,
                {**base, "action": f"pre_{action}"},
                options.robust,
            )
        )
        post.append(
            (
                (
                    m2m_changed,
                    link.sender,
                    {**base, "action": f"post_{action}"},
                    options.robust,
                ),
                options,
            )
        )
    return pre, post

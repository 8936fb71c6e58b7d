"""Signals for ORM bulk statements, which send no per-instance signals.

``session.execute(insert(Model), rows)``, ``update(Model)...`` and
``delete(Model)...`` write many rows without loading them, so, as with Django's
``bulk_create()`` and ``QuerySet.update()``, no ``pre_save``/``post_save`` is sent
for them. These two signals say that such a statement ran, once per statement, from
SQLAlchemy's ``do_orm_execute`` session event.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import ORMExecuteState

from .. import Signal
from .._integration import is_observed
from ._send import deliver, describe_engine, facing_session
from ._targets import options_for

__all__ = ["do_orm_execute", "post_bulk", "pre_bulk"]

pre_bulk = Signal(
    name="asignal.sqlalchemy.pre_bulk",
    providing_args=["action", "statement", "params", "session", "using"],
)
"""Sent before an ORM bulk INSERT, UPDATE or DELETE statement runs.

sender: the model class the statement targets. kwargs: ``action`` (``"insert"``,
``"update"`` or ``"delete"``); ``statement``; ``params`` (the parameters given to
``execute()``: a dict, a list of dicts for a bulk INSERT, or None); ``session``;
``using``. A receiver that raises stops the statement.
"""

post_bulk = Signal(
    name="asignal.sqlalchemy.post_bulk",
    providing_args=["action", "statement", "params", "rowcount", "session", "using"],
)
"""Sent after an ORM bulk INSERT, UPDATE or DELETE statement ran, in its transaction.

As :data:`pre_bulk`, plus ``rowcount``: the rows matched, as the driver reports it
(None where it cannot tell, as for some bulk INSERTs).
"""

_ACTIONS = (("insert", "is_insert"), ("update", "is_update"), ("delete", "is_delete"))


def do_orm_execute(state: ORMExecuteState) -> Any:
    if not state.is_orm_statement:
        return None
    action = next((name for name, flag in _ACTIONS if getattr(state, flag)), None)
    mapper = state.bind_mapper
    if action is None or mapper is None:
        return None
    options = options_for(mapper)
    if options is None or not (is_observed(pre_bulk) or is_observed(post_bulk)):
        return None
    session = state.session
    kwargs: dict[str, Any] = {
        "action": action,
        "statement": state.statement,
        "params": state.parameters,
        "session": facing_session(session),
        "using": describe_engine(session.get_bind(mapper=mapper).engine, options.binds),
    }
    deliver(pre_bulk, mapper.class_, kwargs, options.robust)
    if not is_observed(post_bulk):
        return None
    # Run the statement here (and the do_orm_execute handlers after this one), so
    # that post_bulk follows it; the caller gets this very result.
    result = state.invoke_statement()
    kwargs["rowcount"] = getattr(result, "rowcount", None)
    deliver(post_bulk, mapper.class_, kwargs, options.robust)
    return result

"""Django's model signals, sent by SQLAlchemy's ORM: ``install(Base)`` and go.

``install(Base)`` makes every mapped class of a declarative base (or registry, or
SQLModel) send asignal's ``pre_save``, ``post_save``, ``pre_delete``, ``post_delete``,
``m2m_changed``, ``pre_init`` and ``post_init``, with Django's keyword arguments plus
``session=`` and ``connection=``, from every ``Session`` and ``AsyncSession``::

    from asignal import receiver
    from asignal.signals import post_save
    import asignal.sqlalchemy

    asignal.sqlalchemy.install(Base)

    @receiver(post_save, sender=Article)
    async def on_saved(sender, instance, created, session, **kwargs): ...

The contract, in short (the README's SQLAlchemy section has the whole of it):

- ``pre_save``/``pre_delete`` are sent inside the flush right before each row's
  statement; a receiver that raises aborts the flush and SQLAlchemy rolls back.
- ``post_save``/``post_delete``/``m2m_changed`` post actions arrive by the
  post-delivery mode: ``"after_flush"`` (default), ``"flush"`` or ``"on_commit"``.
  An ``on_commit`` receiver that raises propagates from ``commit()`` once the
  transaction is closed; the sends after it are logged at ERROR, not made.
- Under ``AsyncSession`` async receivers are awaited, in call order, in the task that
  awaited ``flush()``/``commit()``; sync receivers run inline, blocking the loop.
  Under a plain ``Session``, sends follow ``Signal.send()``'s rules.
- ``pre_init`` is sent from the model's constructor, outside any session: from
  ``async def`` code its async receivers cannot be awaited and raise
  ``RuntimeError``; ``post_init`` is sent while a session loads.
- Bulk statements (``session.execute(insert(...))``, ``update()``, ``delete()``) send
  no per-instance signals, as in Django; :data:`pre_bulk` and :data:`post_bulk`
  are sent once per such statement instead.
"""

from __future__ import annotations

try:
    import sqlalchemy as _sa
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise ImportError(
        "asignal.sqlalchemy needs SQLAlchemy 2.0 or later with its asyncio support: "
        "install the extra, pip install 'asignal[sqlalchemy]'."
    ) from exc

from ._bulk import post_bulk, pre_bulk
from ._install import install, is_installed, uninstall
from ._options import M2M_SIDE_INFO_KEY, POST_DELIVERY_KEY, PostDelivery

__all__ = [
    "M2M_SIDE_INFO_KEY",
    "POST_DELIVERY_KEY",
    "PostDelivery",
    "install",
    "is_installed",
    "post_bulk",
    "pre_bulk",
    "uninstall",
]

_major, _minor = (int(part) for part in _sa.__version__.split(".")[:2])
if (_major, _minor) < (2, 0):  # pragma: no cover - pinned by the extra
    raise ImportError(
        f"asignal.sqlalchemy needs SQLAlchemy 2.0 or later, found {_sa.__version__}: "
        "pip install 'asignal[sqlalchemy]'."
    )

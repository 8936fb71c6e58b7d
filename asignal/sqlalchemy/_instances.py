"""``pre_init`` and ``post_init``: a model constructed, a model loaded."""

from __future__ import annotations

from typing import Any

from .._integration import is_observed
from ..signals import post_init, pre_init
from ._send import deliver
from ._targets import options_for_class

__all__ = ["on_init", "on_load"]


def on_init(target: object, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """SQLAlchemy's ``init`` event: the start of a mapped class's ``__init__``."""
    options = options_for_class(type(target))
    if options is None or not options.init_signals or not is_observed(pre_init):
        return
    deliver(pre_init, type(target), {"args": args, "kwargs": kwargs}, options.robust)


def on_load(target: object, context: object) -> None:
    """SQLAlchemy's ``load`` event: an instance made from a row."""
    options = options_for_class(type(target))
    if options is None or not options.init_signals or not is_observed(post_init):
        return
    deliver(post_init, type(target), {"instance": target}, options.robust)

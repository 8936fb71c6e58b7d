"""Running a signal's local receivers for an event that arrived from another node."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Any

from asignal import Signal
from asignal._integration import asend_robust_only

__all__ = ["PUBLISHER_MARK", "receiver_keys", "run_receivers"]

#: The attribute that marks a bridge's own receiver: never one of the receivers an
#: event runs or a receipt records, whichever bridge it belongs to.
PUBLISHER_MARK = "_asignal_bridge_publisher"


def _local(receiver: Callable[..., Any]) -> bool:
    return not getattr(receiver, PUBLISHER_MARK, False)


#: One receiver's key (stable across processes) and its error, or None on success.
Outcome = tuple[str, "Exception | None"]


def _name(receiver: Callable[..., Any]) -> str:
    func = getattr(receiver, "__func__", receiver)
    module = getattr(func, "__module__", None) or "?"
    qualname = getattr(func, "__qualname__", None) or type(func).__qualname__
    return f"{module}.{qualname}"


def receiver_keys(receivers: Sequence[Callable[..., Any]]) -> list[str]:
    """A key per receiver that another run of the same code gives the same receiver:
    its qualified name, with ``#2``, ``#3``... for later receivers of the same name
    (in call order)."""
    seen: dict[str, int] = {}
    keys: list[str] = []
    for receiver in receivers:
        name = _name(receiver)
        count = seen[name] = seen.get(name, 0) + 1
        keys.append(name if count == 1 else f"{name}#{count}")
    return keys


async def run_receivers(
    signal: Signal,
    sender: object,
    kwargs: dict[str, Any],
    *,
    skip: Collection[str],
) -> list[Outcome]:
    """Run *signal*'s receivers for *sender*, except bridges' own and those whose key
    is in *skip*; return each one's outcome, in call order.

    With nothing to skip this is ``signal.asend_robust``: receivers run concurrently,
    failures are logged and returned. On a redelivery some receivers already
    succeeded: the others run the same way, through the core's delivery path.
    Cancellation propagates.
    """
    if not skip:
        results = await signal.asend_robust(sender, **kwargs)
        pairs = [(r, result) for r, result in results if _local(r)]
        keys = receiver_keys([r for r, _ in pairs])
        return [
            (key, result if isinstance(result, Exception) else None)
            for key, (_, result) in zip(keys, pairs, strict=True)
        ]
    live = [r for r in signal.live_receivers(sender) if _local(r)]
    key_of = {id(r): key for r, key in zip(live, receiver_keys(live), strict=True)}
    results = await asend_robust_only(
        signal,
        sender,
        kwargs,
        lambda r: _local(r) and id(r) in key_of and key_of[id(r)] not in skip,
    )
    return [
        (key_of[id(r)], result if isinstance(result, Exception) else None)
        for r, result in results
    ]

"""Static checks (mypy --strict and pyright, never collected by pytest): the core
API keeps the types of the functions it is given and of what it returns."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from typing_extensions import assert_type

from asignal import Connection, ReceiverInfo, Signal, receiver

first = Signal(name="first")
second = Signal(name="second")


@receiver([first, second], sender=int, priority=2)
def on_both(sender: type[int], *, instance: int, **kwargs: Any) -> str:
    return str(instance)


# a list of signals keeps the exact signature, keyword-only parameters included
assert_type(on_both(int, instance=1), str)


@receiver(first, inline=True)
async def on_first(sender: object, **kwargs: Any) -> bytes:
    return b""


async def awaits_it() -> None:
    assert_type(await on_first(None), bytes)


class Handler:
    def method(self, sender: object, **kwargs: Any) -> float:
        return 0.0


bound = first.connect(Handler().method, weak=False, dispatch_uid="m")
assert_type(bound(None), float)
assert_type(first.disconnect(dispatch_uid="m"), bool)
assert_type(first.has_listeners(int), bool)
assert_type(first.receivers, list[Connection])
assert_type(first.live_receivers(int), list[Callable[..., Any]])
assert_type(first.describe(), list[ReceiverInfo])
assert_type(first.send_robust(int, instance=1), list[tuple[Callable[..., Any], Any]])


async def sends() -> None:
    assert_type(
        await first.asend_robust(int, timeout=1.0, instance=1),
        list[tuple[Callable[..., Any], Any]],
    )
    assert_type(
        await first.asend(sender=int, instance=1), list[tuple[Callable[..., Any], Any]]
    )

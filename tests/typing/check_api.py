"""Static checks (mypy and pyright, not pytest): the public API keeps types."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from typing_extensions import assert_type

from asignal import Signal, receiver

signal = Signal(name="typing")


@receiver(signal)
def handler(sender: object, **kwargs: Any) -> int:
    return 1


assert_type(handler(None), int)  # the decorator keeps the function's type


async def async_handler(sender: object, **kwargs: Any) -> str:
    return "x"


connected = signal.connect(async_handler)


async def await_connected() -> None:
    assert_type(await connected(None), str)  # connect() returns it as is


assert_type(signal.send(None), list[tuple[Callable[..., Any], Any]])


async def use() -> None:
    assert_type(await signal.asend(None), list[tuple[Callable[..., Any], Any]])

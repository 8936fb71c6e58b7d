"""Static checks (mypy --strict and pyright strict, never collected by pytest) of
typed signals: what must pass is asserted with assert_type; each line that must fail
carries a `# type: ignore[code]`, and both checkers report an ignore that is no
longer needed (mypy's warn_unused_ignores, pyright's rule below), so an error that
disappears fails the check."""

# pyright: strict
# pyright: reportUnnecessaryTypeIgnoreComment=true

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

from typing_extensions import assert_type

import asignal
from asignal import Signal, TypedSignal, Undeclared, receiver
from asignal.signals import post_save, request_finished


class Shop:
    pass


@asignal.signal
def order_paid(*, order_id: int, total: Decimal) -> None:
    """Sent when an order is paid."""


@asignal.signal(strict=True, name="shop.refunded")
def refunded(*, order_id: int, reason: str | None, **_: Undeclared) -> int:
    """Sent when an order is refunded; each receiver returns a refund id."""
    raise NotImplementedError  # never called; mypy wants an int-typed body to return


Results = list[tuple[Callable[..., Any], None]]


# -- sends: the payload is checked -----------------------------------------------


def sends() -> None:
    assert_type(order_paid.send(Shop, order_id=1, total=Decimal("9.50")), Results)
    assert_type(
        order_paid.send_robust(Shop, order_id=1, total=Decimal("1")),
        list[tuple[Callable[..., Any], Exception | None]],
    )
    assert_type(
        refunded.send(Shop, order_id=1, reason=None),
        list[tuple[Callable[..., Any], int]],
    )
    order_paid.send(sender=Shop, order_id=2, total=Decimal("1"))  # Django's spelling
    order_paid.send(Shop, order_id="1", total=Decimal("1"))  # type: ignore[arg-type]
    order_paid.send(Shop, order_id=1)  # type: ignore[call-arg]
    order_paid.send(Shop, order_id=1, total=Decimal(1), note="")  # type: ignore[call-arg]
    order_paid.send(Shop, 1, Decimal("1"))  # type: ignore[call-arg]
    # With **_: Undeclared an unknown name is a type error rather than a call error.
    refunded.send(Shop, order_id=1, reason=None, note="")  # type: ignore[arg-type]
    refunded.send_robust(Shop, order_id=1)  # type: ignore[call-arg]


async def asends() -> None:
    assert_type(
        await order_paid.asend(Shop, order_id=1, total=Decimal("1"), timeout=2.0),
        Results,
    )
    assert_type(
        await refunded.asend_robust(Shop, order_id=1, reason="late"),
        list[tuple[Callable[..., Any], int | Exception]],
    )
    await order_paid.asend(sender=Shop, order_id=1, total=Decimal(1), timeout=None)
    await order_paid.asend(Shop, order_id=1, total=1.5)  # type: ignore[arg-type]
    await order_paid.asend(Shop, total=Decimal("1"))  # type: ignore[call-arg]
    # the checkers take 1 as the timeout; the Decimal and the missing names are errors
    await order_paid.asend(Shop, 1, Decimal("1"))  # type: ignore[arg-type, call-arg]
    await order_paid.asend_robust(Shop, order_id=1, total=Decimal(1), x=1)  # type: ignore[call-arg]
    await refunded.asend(Shop, order_id=1, reason=None, timeout="1")  # type: ignore[arg-type]


# -- receivers: checked against the payload --------------------------------------


@receiver(order_paid)
def on_paid(sender: Any, *, order_id: int, total: Decimal, **kwargs: Any) -> None:
    pass


@receiver(order_paid, sender=Shop)
async def on_paid_async(sender: type[Shop], **kwargs: Any) -> None:
    pass


@receiver(refunded)
def refund(sender: object, *, order_id: int, **kwargs: object) -> int:
    return order_id


@receiver(refunded)
async def refund_async(sender: object, **kwargs: object) -> int:
    return 0


# Still callable; typed as the shape it was checked against (sync or async).
assert_type(on_paid(Shop, order_id=1, total=Decimal("1")), Awaitable[None] | None)
assert_type(refund(sender=Shop, order_id=1, reason=None), Awaitable[int] | int)
order_paid.connect(on_paid, weak=False, dispatch_uid="paid", priority=1)


def wrong_type(sender: Any, *, order_id: str, **kwargs: Any) -> None:
    pass


def no_kwargs(sender: Any, *, order_id: int, reason: str | None) -> int:
    return 0


def sender_renamed(source: Any, **kwargs: Any) -> int:
    return 0


def wrong_result(sender: Any, **kwargs: Any) -> str:
    return ""


def not_in_payload(sender: Any, *, order: int, **kwargs: Any) -> None:
    pass


@receiver(refunded)  # type: ignore[arg-type]
def decorated_without_kwargs(sender: Any, *, order_id: int, reason: str | None) -> int:
    return 0


order_paid.connect(wrong_type)  # type: ignore[arg-type]
order_paid.connect(not_in_payload)  # type: ignore[arg-type]
receiver(order_paid)(wrong_type)  # type: ignore[arg-type]
refunded.connect(no_kwargs)  # type: ignore[arg-type]
refunded.connect(sender_renamed)  # type: ignore[arg-type]
refunded.connect(wrong_result)  # type: ignore[arg-type]


# -- untyped signals work as before ------------------------------------------------

plain = Signal()
legacy = Signal(providing_args=["instance"], name="legacy")


@receiver(plain)
def untyped(sender: object, **kwargs: Any) -> bytes:
    return b""


assert_type(untyped(None), bytes)  # unchanged: the function keeps its own type
assert_type(legacy.send(None, anything=1), list[tuple[Callable[..., Any], Any]])
assert_type(receiver([plain, order_paid])(untyped)(None), bytes)


# -- the built-in catalogue: typed, and Django-style receivers still fit -----------


@receiver(post_save)
def django_style(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
    pass


@receiver(request_finished)
async def finished(sender: Any, *, status: int | None, **kwargs: Any) -> None:
    pass


def typed_signal_is_a_signal(signal: TypedSignal[..., Any]) -> Signal:
    return signal


# Unannotated, as most Django receivers are: checked by name and arity (the
# ignores are for the missing annotations, which strict mode reports on the def).
@receiver(post_save)
def unannotated(sender, instance, created, **kwargs):  # type: ignore[no-untyped-def]
    pass


def misspelt(sender, instance, create, **kwargs):  # type: ignore[no-untyped-def]
    pass  # `create` is no payload name: a send would not fill it


post_save.connect(misspelt)  # type: ignore[arg-type]

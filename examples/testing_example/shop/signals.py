"""The shop's signal and receivers (imported by asignal.autodiscover("shop"))."""

from __future__ import annotations

from typing import Any

from asignal import Signal, receiver

order_placed = Signal(name="shop.order_placed", providing_args=["order_id", "total"])

#: What the receivers did, so the example's tests can look.
emails: list[str] = []
ledger: list[tuple[int, float]] = []


@receiver(order_placed)
def send_confirmation(sender: Any, order_id: int, **kwargs: Any) -> None:
    emails.append(f"order {order_id} confirmed")


@receiver(order_placed, priority=10)
async def record_in_ledger(
    sender: Any, order_id: int, total: float, **kwargs: Any
) -> None:
    ledger.append((order_id, total))

"""Placing orders, sync and async; both send shop.signals.order_placed."""

from __future__ import annotations

from .signals import order_placed


class Shop:
    pass


def place_order(order_id: int, total: float) -> None:
    order_placed.send(sender=Shop, order_id=order_id, total=total)


async def place_order_async(order_id: int, total: float) -> None:
    await order_placed.asend(sender=Shop, order_id=order_id, total=total)

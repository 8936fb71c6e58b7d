"""The shop's tests, using asignal's pytest fixtures and marker."""

from __future__ import annotations

from typing import Any

import pytest
from shop import signals
from shop.orders import Shop, place_order, place_order_async


def test_placing_an_order_sends_the_signal(asignal_capture: Any) -> None:
    """The signal is sent once, with the order's id and total."""
    sent = asignal_capture(signals.order_placed)
    place_order(1, 9.5)
    sent.assert_sent_once_with(signals.order_placed, sender=Shop, order_id=1, total=9.5)


def test_receivers_run(asignal_capture: Any) -> None:
    """Both receivers ran: a confirmation e-mail and a ledger line."""
    place_order(2, 3.0)
    assert "order 2 confirmed" in signals.emails
    assert (2, 3.0) in signals.ledger


@pytest.mark.asignal_mute(signals.order_placed)
def test_muted_order_sends_no_email() -> None:
    """With the signal muted, no receiver runs."""
    before = list(signals.emails)
    place_order(3, 1.0)
    assert signals.emails == before


@pytest.mark.anyio
async def test_async_order(asignal_capture: Any, asignal_mute: Any) -> None:
    """The async path sends the same signal; muting still records the send."""
    sent = asignal_capture(signals.order_placed)
    asignal_mute(signals.order_placed)
    await place_order_async(4, 2.0)
    sent.assert_sent(signals.order_placed, order_id=4)
    assert (4, 2.0) not in signals.ledger

"""Sync scenarios: S1-S3 (``send`` to n no-op receivers) and S4 (sender lookup).

Floors: ``floor`` is a loop calling the same receiver functions as ``r(sender)``;
``contract floor`` calls them as the contract does, ``r(signal=..., sender=...)``,
collecting ``(receiver, result)`` pairs. Every library's send is a
``functools.partial`` of its bound send method, so no library pays an extra Python
frame that the floor does not.
"""

from __future__ import annotations

import functools
from typing import Any

from _common import Case, Counter, interleave, peer, sync_receivers

from asignal import Signal


class Sender:
    """A weak-referenceable, hashable sender."""


def _floors(n: int) -> dict[str, Case | None]:
    c1, c2 = Counter(), Counter()
    recs, crecs = sync_receivers(n, c1), sync_receivers(n, c2)
    sender, sig = Sender(), Signal()

    def floor() -> None:
        for r in recs:
            r(sender)

    def contract_floor() -> list[tuple[object, object]]:
        return [(r, r(signal=sig, sender=sender)) for r in crecs]

    return {
        "floor": Case(floor, c1, n),
        "contract floor": Case(contract_floor, c2, n),
    }


def send_cases(n: int) -> dict[str, Case | None]:
    """S1-S3: one signal, ``n`` receivers connected to any sender, one send."""
    cases = _floors(n)
    sender = Sender()

    def build(connect: Any, make_send: Any) -> Case:
        c = Counter()
        recs = sync_receivers(n, c)
        target = connect(recs)
        return Case(make_send(target), c, n, keep=recs)

    def asignal_connect(recs: list[Any]) -> Signal:
        sig = Signal()
        for r in recs:
            sig.connect(r)
        return sig

    cases["asignal"] = build(
        asignal_connect, lambda s: functools.partial(s.send, sender)
    )
    django, blinker, psygnal, pyee = (
        peer("django.dispatch"),
        peer("blinker"),
        peer("psygnal"),
        peer("pyee"),
    )
    cases["django"] = None
    if django is not None:

        def django_connect(recs: list[Any]) -> Any:
            sig = django.Signal()
            for r in recs:
                sig.connect(r)
            return sig

        cases["django"] = build(
            django_connect, lambda s: functools.partial(s.send, sender)
        )
    cases["blinker"] = None
    if blinker is not None:

        def blinker_connect(recs: list[Any]) -> Any:
            sig = blinker.Signal()
            for r in recs:
                sig.connect(r)
            return sig

        cases["blinker"] = build(
            blinker_connect, lambda s: functools.partial(s.send, sender)
        )
    cases["psygnal"] = None
    if psygnal is not None:

        def psygnal_connect(recs: list[Any]) -> Any:
            sig = psygnal.SignalInstance((object,))
            for r in recs:
                sig.connect(r)
            return sig

        cases["psygnal"] = build(
            psygnal_connect, lambda s: functools.partial(s.emit, sender)
        )
    cases["pyee"] = None
    if pyee is not None:

        def pyee_connect(recs: list[Any]) -> Any:
            ee = pyee.EventEmitter()
            for r in recs:
                ee.on("event", r)
            return ee

        cases["pyee"] = build(
            pyee_connect, lambda e: functools.partial(e.emit, "event", sender)
        )
    cases["aiosignal"] = None  # async-only send
    return cases


def lookup_cases(n: int = 100) -> dict[str, Case | None]:
    """S4: ``n`` receivers, each connected to a different sender; send from one."""
    cases = _floors(1)
    senders = [Sender() for _ in range(n)]
    first = senders[0]

    def build(connect: Any, make_send: Any) -> Case:
        c = Counter()
        recs = sync_receivers(n, c)
        target = connect(list(zip(recs, senders, strict=True)))
        return Case(make_send(target), c, 1, keep=recs)

    def send_from_first(s: Any) -> Any:
        return functools.partial(s.send, first)

    def asignal_connect(pairs: list[Any]) -> Signal:
        sig = Signal()
        for r, s in pairs:
            sig.connect(r, sender=s)
        return sig

    cases["asignal"] = build(asignal_connect, send_from_first)
    django, blinker, pyee = peer("django.dispatch"), peer("blinker"), peer("pyee")
    cases["django"] = cases["django (cached)"] = None
    if django is not None:
        for label, caching in (("django", False), ("django (cached)", True)):

            def django_connect(pairs: list[Any], caching: bool = caching) -> Any:
                sig = django.Signal(use_caching=caching)
                for r, s in pairs:
                    sig.connect(r, sender=s)
                return sig

            cases[label] = build(django_connect, send_from_first)
    cases["blinker"] = None
    if blinker is not None:

        def blinker_connect(pairs: list[Any]) -> Any:
            sig = blinker.Signal()
            for r, s in pairs:
                sig.connect(r, sender=s)
            return sig

        cases["blinker"] = build(blinker_connect, send_from_first)
    cases["psygnal"] = None  # no sender filtering
    cases["pyee"] = None
    if pyee is not None:

        def pyee_connect(pairs: list[Any]) -> Any:
            ee = pyee.EventEmitter()
            for r, s in pairs:
                ee.on(s, r)  # the event name plays the sender
            return ee

        cases["pyee"] = build(
            pyee_connect, lambda e: functools.partial(e.emit, first, first)
        )
    cases["aiosignal"] = None  # async-only, no sender filtering
    return cases


def run_sync(
    quick: bool, rounds: int, budget: float
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return the S1-S4 rows and the send-cost curve (µs per send by receivers)."""
    rows: dict[str, Any] = {}
    curve: dict[str, dict[int, float]] = {}
    sizes = (1, 10, 100) if quick else (1, 10, 100, 1000)
    for n in sizes:
        label = {1: "S1", 10: "S2", 100: "S3"}.get(n, f"S({n})")
        res = interleave(send_cases(n), "floor", rounds, budget)
        rows[label] = {"receivers": n, **res}
        for name, cell in res.items():
            if cell is not None:
                curve.setdefault(name, {})[n] = cell["us"]
    rows["S4"] = {
        "receivers": 100,
        **interleave(lookup_cases(), "floor", rounds, budget),
    }
    return rows, curve

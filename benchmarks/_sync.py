"""Sync scenarios: S1-S3 (``send`` to n receivers), S4 (sender lookup), and S1p-S3p
(S1-S3 with a post_save-shaped payload).

Floors without a payload: ``floor`` is a loop calling the same receivers as
``r(sender)``; ``contract floor`` calls them as the contract does,
``r(signal=..., sender=...)``, collecting ``(receiver, result)`` pairs.

Floors with a payload (the five keyword arguments of Django's ``post_save``):
``floor`` is a loop calling ``r(sender, **payload)``; ``contract floor`` is the least a
send honouring the contract does: a function called like a send (``f(sender,
**payload)``, so it receives the payload as a fresh dict), that builds the receivers'
keyword dict once, ``{"signal": ..., "sender": ..., **named}``, and calls ``r(**kw)``
per receiver, collecting ``(receiver, result)`` pairs.

Every library's send is a ``functools.partial`` of its bound send method (with the
payload as keywords, or positional for psygnal, which has no keyword arguments), so no
library pays an extra Python frame that the floor does not.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from _common import Case, Cases, Settings, interleave, sync_receivers, tally

Payload = dict[str, Any] | None


class Sender:
    """A weak-referenceable, hashable sender."""


def _floors(n: int, counting: bool, payload: Payload) -> Cases:
    t1, t2 = tally(n, counting), tally(n, counting)
    recs, crecs = sync_receivers(n, t1), sync_receivers(n, t2)
    sender, sig = Sender(), object()
    floor: Callable[[], Any]
    contract: Callable[[], Any]
    if payload is None:

        def floor() -> None:
            for r in recs:
                r(sender)

        def contract() -> list[tuple[object, object]]:
            return [(r, r(signal=sig, sender=sender)) for r in crecs]

    else:
        kwargs = payload

        def floor() -> None:
            for r in recs:
                r(sender, **kwargs)

        def contract_send(
            sender: object, /, **named: object
        ) -> list[tuple[object, object]]:
            kw = {"signal": sig, "sender": sender, **named}
            return [(r, r(**kw)) for r in crecs]

        contract = functools.partial(contract_send, sender, **payload)

    return {
        "floor": Case(floor, t1, n, recs),
        "contract floor": Case(contract, t2, n, crecs),
    }


def send_cases(n: int, s: Settings, counting: bool, payload: Payload) -> Cases:
    """S1-S3 (S1p-S3p with ``payload``): one signal, ``n`` receivers connected to
    any sender, one send."""
    cases = _floors(n, counting, payload)
    sender = Sender()
    kw = payload or {}

    def build(connect: Callable[[Any], Any], send: Callable[[Any], Any]) -> Case:
        t = tally(n, counting)
        recs = sync_receivers(n, t)
        target = connect(recs)
        return Case(send(target), t, n, keep=recs)

    def connect_all(new: Callable[[], Any]) -> Callable[[list[Any]], Any]:
        def connect(recs: list[Any]) -> Any:
            sig = new()
            for r in recs:
                sig.connect(r)
            return sig

        return connect

    def send(sig: Any) -> Any:
        return functools.partial(sig.send, sender, **kw)

    for label, signal_class in s.signals.items():
        cases[label] = build(connect_all(signal_class), send)
    django, blinker, psygnal, pyee = (
        s.peer("django.dispatch"),
        s.peer("blinker"),
        s.peer("psygnal"),
        s.peer("pyee"),
    )
    cases["django"] = django and build(connect_all(django.Signal), send)
    cases["blinker"] = blinker and build(connect_all(blinker.Signal), send)
    cases["psygnal"] = None
    if psygnal is not None:
        arity = 1 + len(kw)
        cases["psygnal"] = build(
            connect_all(lambda: psygnal.SignalInstance((object,) * arity)),
            lambda p: functools.partial(p.emit, sender, *kw.values()),
        )
    cases["pyee"] = None
    if pyee is not None:

        def pyee_connect(recs: list[Any]) -> Any:
            ee = pyee.EventEmitter()
            for r in recs:
                ee.on("event", r)
            return ee

        cases["pyee"] = build(
            pyee_connect, lambda e: functools.partial(e.emit, "event", sender, **kw)
        )
    cases["aiosignal"] = None  # async-only send
    return cases


def lookup_cases(s: Settings, counting: bool, n: int = 100) -> Cases:
    """S4: ``n`` receivers, each connected to a different sender; send from one."""
    cases = _floors(1, counting, None)
    senders = [Sender() for _ in range(n)]
    first = senders[0]
    reach = (1,) + (0,) * (n - 1)

    def build(connect: Callable[[Any], Any], send: Callable[[Any], Any]) -> Case:
        t = tally(n, counting)
        recs = sync_receivers(n, t)
        target = connect(list(zip(recs, senders, strict=True)))
        return Case(send(target), t, n, keep=recs, expected=reach)

    def connect_each(new: Callable[[], Any]) -> Callable[[list[Any]], Any]:
        def connect(pairs: list[Any]) -> Any:
            sig = new()
            for r, sender in pairs:
                sig.connect(r, sender=sender)
            return sig

        return connect

    def send_from_first(sig: Any) -> Any:
        return functools.partial(sig.send, first)

    for label, signal_class in s.signals.items():
        cases[label] = build(connect_each(signal_class), send_from_first)
    django, blinker, pyee = (
        s.peer("django.dispatch"),
        s.peer("blinker"),
        s.peer("pyee"),
    )
    cases["django"] = cases["django (cached)"] = None
    if django is not None:
        cases["django"] = build(connect_each(django.Signal), send_from_first)
        cases["django (cached)"] = build(
            connect_each(lambda: django.Signal(use_caching=True)), send_from_first
        )
    cases["blinker"] = blinker and build(connect_each(blinker.Signal), send_from_first)
    cases["psygnal"] = None  # no sender filtering
    cases["pyee"] = None
    if pyee is not None:

        def pyee_connect(pairs: list[Any]) -> Any:
            ee = pyee.EventEmitter()
            for r, sender in pairs:
                ee.on(sender, r)  # the event name plays the sender
            return ee

        cases["pyee"] = build(
            pyee_connect, lambda e: functools.partial(e.emit, first, first)
        )
    cases["aiosignal"] = None  # async-only, no sender filtering
    return cases


def _plain(n: int, s: Settings, counting: bool) -> Cases:
    return send_cases(n, s, counting, None)


def _loaded(n: int, s: Settings, payload: Payload, counting: bool) -> Cases:
    return send_cases(n, s, counting, payload)


def run_sync(
    s: Settings, payload: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return the S1-S4 and S1p-S3p rows, and the send-cost curve (µs per send by
    receivers, without a payload)."""
    rows: dict[str, Any] = {}
    curve: dict[str, dict[int, float]] = {}
    sizes = (1, 10, 100) if s.quick else (1, 10, 100, 1000)
    for n in sizes:
        label = {1: "S1", 10: "S2", 100: "S3"}.get(n, f"S({n})")
        res = interleave(functools.partial(_plain, n, s), "floor", s)
        rows[label] = {"receivers": n, **res}
        for name, cell in res.items():
            if name != "pairs" and cell is not None:
                curve.setdefault(name, {})[n] = cell["us"]
    rows["S4"] = {
        "receivers": 100,
        **interleave(lambda c: lookup_cases(s, c), "floor", s),
    }
    for n, label in ((1, "S1p"), (10, "S2p"), (100, "S3p")):
        res = interleave(functools.partial(_loaded, n, s, payload), "floor", s)
        rows[label] = {"receivers": n, "payload": "post_save", **res}
    return rows, curve

"""send()'s loop over several sync receivers: a receiver collected after the send
began is skipped, and a receiver's own TypeError is not mistaken for one."""

from __future__ import annotations

import gc
import traceback
from typing import Any

import pytest

from asignal import Signal


class Holder:
    """Keeps the only strong reference to a receiver, until told to drop it."""

    def __init__(self) -> None:
        self.fn: Any = None


def test_a_receiver_collected_during_the_send_is_skipped() -> None:
    signal = Signal()
    holder = Holder()
    calls: list[str] = []

    def first(**kwargs: Any) -> str:
        calls.append("first")
        holder.fn = None  # the second receiver's last reference goes
        gc.collect()
        return "first"

    def make_second() -> Any:
        def second(**kwargs: Any) -> str:
            calls.append("second")
            return "second"

        return second

    def third(**kwargs: Any) -> str:
        calls.append("third")
        return "third"

    holder.fn = make_second()
    signal.connect(first)
    signal.connect(holder.fn)
    signal.connect(third)
    results = signal.send(None, payload=1)
    assert calls == ["first", "third"]
    assert [result for _, result in results] == ["first", "third"]
    assert len(signal.receivers) == 2  # and the dead one is pruned


@pytest.mark.parametrize("named", [{}, {"payload": 1}])
def test_a_receivers_type_error_propagates_with_its_traceback(
    named: dict[str, Any],
) -> None:
    signal = Signal()
    calls: list[str] = []

    def ok(**kwargs: Any) -> None:
        calls.append("ok")

    def broken(**kwargs: Any) -> None:
        calls.append("broken")
        raise TypeError("bad operand in broken")

    def after(**kwargs: Any) -> None:
        calls.append("after")

    for fn in (ok, broken, after):
        signal.connect(fn)
    with pytest.raises(TypeError, match="bad operand in broken") as raised:
        signal.send(None, **named)
    assert calls == ["ok", "broken"]
    frames = [frame.name for frame in traceback.extract_tb(raised.value.__traceback__)]
    assert frames[-1] == "broken"


def test_a_receiver_missing_an_argument_fails_clearly() -> None:
    """A receiver the payload does not fit raises Python's own TypeError at the
    call, which is not swallowed as if the receiver had been collected."""
    signal = Signal()
    calls: list[str] = []

    def first(**kwargs: Any) -> None:
        calls.append("first")

    def needs_instance(*, instance: object, **kwargs: Any) -> None:
        calls.append("needs_instance")

    def last(**kwargs: Any) -> None:
        calls.append("last")

    for fn in (first, needs_instance, last):
        signal.connect(fn)
    with pytest.raises(TypeError, match="instance"):
        signal.send(None, created=True)
    assert calls == ["first"]

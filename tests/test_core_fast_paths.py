"""asend's inline first steps: receivers that never suspend are not tasks, the
first one that suspends finishes in the sending task, and failure, cancellation,
cancel scopes and context variables behave as on the task path."""

from __future__ import annotations

import contextvars
import logging
from typing import Any

import anyio
import pytest

from asignal import Signal

pytestmark = pytest.mark.anyio

var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")


async def test_non_suspending_receivers_run_in_the_sending_task(
    signal: Signal,
) -> None:
    """Receivers that return without suspending run in the caller's task."""
    caller = anyio.get_current_task().id
    tasks: list[int] = []

    def make() -> Any:
        async def r(sender: object, **kwargs: Any) -> int:
            tasks.append(anyio.get_current_task().id)
            return len(tasks)

        return r

    for _ in range(5):
        signal.connect(make(), weak=False)
    assert [r for _, r in await signal.asend(None)] == [1, 2, 3, 4, 5]
    assert tasks == [caller] * 5


async def test_first_suspender_stays_others_become_tasks(signal: Signal) -> None:
    """The first receiver to suspend finishes in the sending task; those after it
    run as tasks, concurrently with it."""
    caller = anyio.get_current_task().id
    later_started = anyio.Event()
    seen: dict[str, int] = {}

    async def first(sender: object, **kwargs: Any) -> str:
        await later_started.wait()  # needs `later` to run concurrently
        seen["first"] = anyio.get_current_task().id
        return "first"

    async def later(sender: object, **kwargs: Any) -> str:
        later_started.set()
        seen["later"] = anyio.get_current_task().id
        return "later"

    signal.connect(first)
    signal.connect(later)
    with anyio.fail_after(5):
        results = await signal.asend(None)
    assert results == [(first, "first"), (later, "later")]
    assert seen["first"] == caller
    assert seen["later"] != caller


async def test_cancel_scope_entered_before_suspending(signal: Signal) -> None:
    """A receiver that enters a cancel scope in its first step and exits it after
    suspending works (its scope and the task group nest correctly)."""

    async def scoped(sender: object, **kwargs: Any) -> str:
        with anyio.move_on_after(0.01) as scope:
            await anyio.sleep(5)
        return f"timed out: {scope.cancelled_caught}"

    async def other(sender: object, **kwargs: Any) -> str:
        await anyio.sleep(0)
        return "other"

    signal.connect(scoped)
    signal.connect(other)
    with anyio.fail_after(5):
        results = await signal.asend(None)
    assert [r for _, r in results] == ["timed out: True", "other"]


async def test_failure_after_a_suspended_receiver_cancels_it(signal: Signal) -> None:
    """An inline receiver failing while the first one is suspended: the suspended
    one is cancelled properly (its finally runs) and the failure propagates."""
    cleaned = anyio.Event()

    async def sleeper(sender: object, **kwargs: Any) -> None:
        try:
            await anyio.sleep_forever()
        finally:
            cleaned.set()

    def failing(sender: object, **kwargs: Any) -> None:
        raise ValueError("inline failure")

    signal.connect(sleeper)
    signal.connect(failing, inline=True)
    with anyio.fail_after(5), pytest.raises(ValueError, match="inline failure"):
        await signal.asend(None)
    assert cleaned.is_set()


async def test_inline_failure_stops_later_receivers(signal: Signal) -> None:
    """A receiver failing in its first step stops the receivers after it, which
    are never called (as if cancelled before they started)."""
    calls: list[str] = []

    async def failing(sender: object, **kwargs: Any) -> None:
        calls.append("failing")
        raise KeyError("first step")

    async def after(sender: object, **kwargs: Any) -> None:
        calls.append("after")

    signal.connect(failing)
    signal.connect(after)
    with pytest.raises(KeyError):
        await signal.asend(None)
    assert calls == ["failing"]


async def test_suspended_receiver_failure_cancels_tasks(signal: Signal) -> None:
    """When the receiver finishing in the sending task fails, the task receivers
    are cancelled and the failure is raised as itself."""
    cancelled = anyio.Event()

    async def failing(sender: object, **kwargs: Any) -> None:
        await anyio.sleep(0)
        raise LookupError("after suspending")

    async def sleeper(sender: object, **kwargs: Any) -> None:
        try:
            await anyio.sleep_forever()
        finally:
            cancelled.set()

    signal.connect(failing)
    signal.connect(sleeper)
    with anyio.fail_after(5), pytest.raises(LookupError):
        await signal.asend(None)
    assert cancelled.is_set()


async def test_robust_inline_and_suspended_failures(
    signal: Signal, caplog: pytest.LogCaptureFixture
) -> None:
    """asend_robust: failures in a first step and after suspending are both
    results and both logged."""

    async def fails_at_once(sender: object, **kwargs: Any) -> None:
        raise ValueError("at once")

    async def fails_later(sender: object, **kwargs: Any) -> None:
        await anyio.sleep(0)
        raise TypeError("later")

    async def fine(sender: object, **kwargs: Any) -> str:
        await anyio.sleep(0)
        return "fine"

    signal.connect(fails_at_once)
    signal.connect(fails_later)
    signal.connect(fine)
    with caplog.at_level(logging.ERROR, logger="asignal"):
        results = await signal.asend_robust(None)
    assert [type(r) for _, r in results] == [ValueError, TypeError, str]
    assert len(caplog.records) == 2


async def test_context_is_the_same_on_both_paths(signal: Signal) -> None:
    """Inline and task receivers each start from the caller's context and their
    changes flow back in call order."""
    gate = anyio.Event()

    async def inline_setter(sender: object, **kwargs: Any) -> str:
        seen = var.get()
        var.set("inline")
        return seen

    async def parked(sender: object, **kwargs: Any) -> str:
        seen = var.get()
        await gate.wait()
        var.set("parked")
        return seen

    async def task(sender: object, **kwargs: Any) -> str:
        seen = var.get()
        gate.set()
        return seen

    signal.connect(inline_setter)
    signal.connect(parked)
    signal.connect(task)
    var.set("caller")
    with anyio.fail_after(5):
        results = await signal.asend(None)
    assert [r for _, r in results] == ["caller", "caller", "caller"]
    assert var.get() == "parked"

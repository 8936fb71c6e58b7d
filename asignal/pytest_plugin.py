"""The asignal pytest plugin: fixtures and a marker built on ``asignal.testing``.

It is registered through the ``pytest11`` entry point, so it loads in every pytest
run wherever asignal is installed. It therefore imports nothing heavy at import time
(``asignal.testing`` is imported when a fixture or the marker is first used) and has
no autouse fixtures.

Fixtures (all sync, so they work in sync tests, under pytest-asyncio in strict and
auto mode, and under anyio's plugin on asyncio and trio):

* ``asignal_capture(*signals)`` returns a recorder capturing until the test ends.
* ``asignal_mute(*signals)`` mutes those signals (all if none) until the test ends.
* ``asignal_isolate`` restores every signal's receivers after the test.

Marker: ``@pytest.mark.asignal_mute(signal, ...)`` (no argument: every signal).

Reach: the fixtures' and the marker's mutes are **process-wide for the duration of
the test** (setup, call and teardown for the marker): they cover the test's task,
every task and thread it starts, and the event loop the async plugin runs it on,
which a task-local mute set in a sync fixture could not reach. Use
``asignal.testing.mute`` inside a test for a task-local mute.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from asignal import Signal
    from asignal.testing import SignalRecorder

__all__ = ["asignal_capture", "asignal_isolate", "asignal_mute"]

_MARKER = "asignal_mute"
_marker_mute = pytest.StashKey[Any]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{_MARKER}(*signals): mute these asignal signals (every signal if none are "
        "given) for the whole process while the test runs.",
    )


def _global_mute(signals: tuple[Signal, ...]) -> Callable[[], None]:
    from asignal import Signal, _hooks

    for signal in signals:
        if not isinstance(signal, Signal):  # pyright: ignore[reportUnnecessaryIsInstance]
            raise TypeError(f"asignal_mute takes signals, got {signal!r}.")
    state = (not signals, frozenset(signals))
    _hooks.add_global_mute(state)
    return lambda: _hooks.remove_global_mute(state)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    marker = item.get_closest_marker(_MARKER)
    if marker is not None:
        item.stash[_marker_mute] = _global_mute(tuple(marker.args))


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item) -> None:
    undo = item.stash.get(_marker_mute, None)
    if undo is not None:
        del item.stash[_marker_mute]
        undo()


@pytest.fixture
def asignal_capture() -> Iterator[Callable[..., SignalRecorder]]:
    """``asignal_capture(*signals)``: a recorder of every send of *signals* (every
    signal if none) until the test ends."""
    from asignal.testing import capture_signals

    with ExitStack() as opened:  # each capture ends, last first, after the test

        def capture(*signals: Signal) -> SignalRecorder:
            return opened.enter_context(capture_signals(*signals))

        yield capture


@pytest.fixture
def asignal_mute() -> Iterator[Callable[..., None]]:
    """``asignal_mute(*signals)``: mute *signals* (every signal if none), process-wide,
    until the test ends."""
    undo: list[Callable[[], None]] = []

    def mute(*signals: Signal) -> None:
        undo.append(_global_mute(signals))

    try:
        yield mute
    finally:
        for each in reversed(undo):
            each()


@pytest.fixture
def asignal_isolate() -> Iterator[None]:
    """Restore the receivers of every signal after the test."""
    from asignal.testing import isolated

    with isolated():
        yield

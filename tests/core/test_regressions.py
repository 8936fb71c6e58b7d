"""Regression tests for defects found by trying the core adversarially (issue 11):
each failed before the one-delivery-path rebuild."""

from __future__ import annotations

import functools
import gc
import os
import signal as os_signal
import sys
import threading
import time
from typing import Any

import anyio
import pytest

from asignal import Signal


class Model:
    """A sender."""


# -- 1. the kept loop survives SystemExit and KeyboardInterrupt ---------------------


@pytest.mark.parametrize("exc_type", [SystemExit, KeyboardInterrupt])
def test_kept_loop_survives_a_receiver_raising_base_exception(
    exc_type: type[BaseException],
) -> None:
    """An async receiver's SystemExit/KeyboardInterrupt under send() from a plain
    thread reaches that send, and later sends from plain threads still work."""
    sig = Signal()

    async def fatal(sender: object, **kwargs: Any) -> None:
        await anyio.sleep(0)
        raise exc_type("stop")

    sig.connect(fatal)
    with pytest.raises(exc_type, match="stop"):
        sig.send(Model)
    sig.disconnect(fatal)

    async def fine(sender: object, **kwargs: Any) -> str:
        await anyio.sleep(0)
        return "ok"

    sig.connect(fine)
    results: list[Any] = []
    thread = threading.Thread(target=lambda: results.append(sig.send(Model)))
    thread.start()
    thread.join(5)
    assert not thread.is_alive(), "send() from a plain thread hangs: the loop died"
    assert results == [[(fine, "ok")]]


@pytest.mark.parametrize("exc_type", [SystemExit, KeyboardInterrupt])
def test_kept_loop_survives_base_exception_among_concurrent_receivers(
    exc_type: type[BaseException],
) -> None:
    """The same from a receiver that runs as a task beside another one."""
    sig = Signal()

    async def slow(sender: object, **kwargs: Any) -> None:
        await anyio.sleep(1)

    async def fatal(sender: object, **kwargs: Any) -> None:
        await anyio.sleep(0)
        raise exc_type("stop")

    sig.connect(slow)
    sig.connect(fatal)
    with pytest.raises(exc_type):
        sig.send(Model)
    sig.disconnect(fatal)
    sig.disconnect(slow)

    async def fine(sender: object, **kwargs: Any) -> str:
        return "ok"

    sig.connect(fine)
    assert sig.send(Model) == [(fine, "ok")]


# -- 2. a receiver's exception reaches the caller exactly as raised ---------------


def _chained_pair(sig: Signal) -> None:
    async def slow(sender: object, **kwargs: Any) -> None:
        await anyio.sleep(1)

    async def wrapping(sender: object, **kwargs: Any) -> None:
        await anyio.sleep(0)
        try:
            raise KeyError("inner")
        except KeyError as exc:
            raise ValueError("wrapped") from exc

    sig.connect(slow, weak=False)
    sig.connect(wrapping, weak=False)


@pytest.mark.anyio
async def test_asend_keeps_the_exception_chain_with_several_receivers() -> None:
    """``raise X from Y`` in one of two receivers: asend raises X with Y as cause."""
    sig = Signal()
    _chained_pair(sig)
    with pytest.raises(ValueError, match="wrapped") as info:
        await sig.asend(Model)
    assert isinstance(info.value.__cause__, KeyError)
    assert info.value.__suppress_context__


def test_send_keeps_the_exception_chain_with_several_receivers() -> None:
    """The same through send() and the kept loop."""
    sig = Signal()
    _chained_pair(sig)
    with pytest.raises(ValueError, match="wrapped") as info:
        sig.send(Model)
    assert isinstance(info.value.__cause__, KeyError)


@pytest.mark.anyio
async def test_implicit_context_survives_too() -> None:
    """An exception raised while handling another keeps that one as __context__."""
    sig = Signal()

    async def slow(sender: object, **kwargs: Any) -> None:
        await anyio.sleep(1)

    async def failing(sender: object, **kwargs: Any) -> None:
        await anyio.sleep(0)
        try:
            raise KeyError("first")
        except KeyError:
            raise ValueError("second")  # noqa: B904 - the implicit chain is the point

    sig.connect(slow, weak=False)
    sig.connect(failing, weak=False)
    with pytest.raises(ValueError, match="second") as info:
        await sig.asend(Model)
    assert info.value.__cause__ is None
    assert isinstance(info.value.__context__, KeyError)


# -- 3. Ctrl-C in send() waits for the receivers --------------------------------


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_in_send_returns_only_after_the_receiver_finished() -> None:
    """SIGINT while send() waits for an async receiver: KeyboardInterrupt propagates
    only once the receiver's cancellation cleanup has finished."""
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals are delivered to the main thread")
    sig = Signal()
    started = threading.Event()
    cleanup_done = threading.Event()

    async def receiver(sender: object, **kwargs: Any) -> None:
        started.set()
        try:
            await anyio.sleep(10)
        except anyio.get_cancelled_exc_class():
            with anyio.CancelScope(shield=True):
                await anyio.sleep(0.3)
            cleanup_done.set()
            raise

    def interrupt() -> None:
        started.wait(5)
        os.kill(os.getpid(), os_signal.SIGINT)

    sig.connect(receiver)
    killer = threading.Thread(target=interrupt)
    killer.start()
    with pytest.raises(KeyboardInterrupt):
        sig.send(Model)
    finished_when_send_left = cleanup_done.is_set()
    killer.join(5)
    assert finished_when_send_left, "send() left while the receiver still ran"


# -- 4. cancellation is never swallowed by a robust send ------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("others", [0, 1])
async def test_asend_robust_does_not_swallow_cancellation(others: int) -> None:
    """A receiver that turns its cancellation into RuntimeError: asend_robust still
    raises the cancellation, and the enclosing scope catches it."""
    sig = Signal()
    after: list[str] = []

    async def converting(sender: object, **kwargs: Any) -> None:
        try:
            await anyio.sleep(10)
        except anyio.get_cancelled_exc_class():
            raise RuntimeError("cleanup failed") from None

    async def quick(sender: object, **kwargs: Any) -> str:
        return "done"

    sig.connect(converting, weak=False)
    for _ in range(others):
        sig.connect(quick, weak=False)
    with anyio.move_on_after(0.1) as scope:
        await sig.asend_robust(Model)
        after.append("ran")
    assert scope.cancelled_caught
    assert after == []


# -- 5. wrappers of async receivers are awaited ----------------------------------


class Handlers:
    @staticmethod
    async def static(sender: object, **kwargs: Any) -> str:
        return "static"

    @classmethod
    async def klass(cls, sender: object, **kwargs: Any) -> str:
        return "class"


class AsyncCallable:
    async def __call__(self, sender: object, **kwargs: Any) -> str:
        return "callable"


async def _tagged(tag: str, sender: object, **kwargs: Any) -> str:
    return tag


def _wrapped_receivers() -> list[Any]:
    return [
        Handlers.__dict__["static"],  # the staticmethod object itself
        Handlers.__dict__["klass"].__get__(None, Handlers),
        functools.partial(_tagged, "partial"),
        AsyncCallable(),
    ]


@pytest.mark.anyio
async def test_async_wrappers_are_awaited_by_asend() -> None:
    """staticmethod, classmethod, partial and async __call__ receivers are async."""
    sig = Signal()
    receivers = _wrapped_receivers()
    for r in receivers:
        sig.connect(r, weak=False)
    results = [result for _, result in await sig.asend(Model)]
    assert results == ["static", "class", "partial", "callable"]
    assert all(info.is_async for info in sig.describe())


def test_async_wrappers_are_awaited_by_send() -> None:
    """The same through send(): none is refused as a sync receiver."""
    sig = Signal()
    for r in _wrapped_receivers():
        sig.connect(r, weak=False)
    assert [result for _, result in sig.send(Model)] == [
        "static",
        "class",
        "partial",
        "callable",
    ]


def test_staticmethod_receiver_in_a_class_body() -> None:
    """``@receiver`` above ``@staticmethod async def``: awaited, not refused."""
    from asignal import receiver

    sig = Signal()

    class Service:
        @receiver(sig, weak=False)
        @staticmethod
        async def on_event(sender: object, **kwargs: Any) -> str:
            return "ran"

    assert [result for _, result in sig.send(Model)] == ["ran"]
    del Service


def test_refusal_names_what_was_checked() -> None:
    """A sync wrapper that returns a coroutine: the error is true for it."""
    sig = Signal()

    async def body(sender: object, **kwargs: Any) -> None: ...

    def wrapper(sender: object, **kwargs: Any) -> Any:
        return body(sender, **kwargs)

    sig.connect(wrapper)
    with pytest.raises(TypeError, match="connected as a sync receiver") as info:
        sig.send(Model)
    assert "wrapper" in str(info.value)
    assert "staticmethod" in str(info.value)


# -- 6. one payload namespace for every send method ------------------------------


@pytest.mark.parametrize("method", ["send", "send_robust"])
def test_timeout_payload_is_refused_by_sync_sends(method: str) -> None:
    """timeout= is reserved everywhere, with an error that says how to fix it."""
    sig = Signal()
    sig.connect(lambda sender, **kw: None, weak=False)
    with pytest.raises(TypeError, match=r"'timeout' payload argument.*Rename"):
        getattr(sig, method)(Model, timeout=3)


@pytest.mark.anyio
async def test_asend_timeout_is_the_option_not_a_payload() -> None:
    """asend(timeout=...) is the deadline; receivers never get it."""
    sig = Signal()
    seen: list[dict[str, Any]] = []

    async def receiver(sender: object, **kwargs: Any) -> None:
        seen.append(kwargs)

    sig.connect(receiver)
    await sig.asend(Model, timeout=5, order_id=1)
    await sig.asend_robust(Model, timeout=5, order_id=2)
    assert [sorted(k for k in kw if k != "signal") for kw in seen] == [
        ["order_id"],
        ["order_id"],
    ]


def test_reserved_names_are_refused_in_providing_args() -> None:
    """A strict signal can never declare a name some send method cannot deliver."""
    for name in ("timeout", "signal", "sender"):
        with pytest.raises(ValueError, match=f"may not include '{name}'"):
            Signal(providing_args=["order_id", name], strict=True)


# -- 7. no self-deadlock when a dropped receiver sends from __del__ ---------------


def _run_bounded(func: Any) -> None:
    done = threading.Event()
    errors: list[BaseException] = []

    def target() -> None:
        try:
            func()
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            done.set()

    threading.Thread(target=target, daemon=True).start()
    assert done.wait(5), "deadlock: the signal's lock was held while __del__ ran"
    if errors:
        raise errors[0]


def _other(sender: object, **kwargs: Any) -> None: ...


def _sending_on_delete(sig: Signal, sent: list[str]) -> Any:
    """A receiver whose __del__ sends *sig*; another receiver stays connected, so
    that send must build the routing, which takes the signal's lock."""
    sig.connect(_other)

    class Handler:
        def __call__(self, sender: object, **kwargs: Any) -> None: ...

        def __del__(self) -> None:
            sig.send(Model)
            sent.append("sent")

    return Handler()


def test_disconnect_releases_the_receiver_after_the_lock() -> None:
    sig = Signal()
    sent: list[str] = []
    sig.connect(_sending_on_delete(sig, sent), weak=False, dispatch_uid="h")
    _run_bounded(lambda: sig.disconnect(dispatch_uid="h"))
    assert sent == ["sent"]


def test_receivers_setter_releases_replaced_receivers_after_the_lock() -> None:
    sig = Signal()
    sent: list[str] = []
    sig.connect(_sending_on_delete(sig, sent), weak=False, dispatch_uid="h")

    keep = [c for c in sig.receivers if c.receiver is _other]

    def replace() -> None:
        sig.receivers = keep
        gc.collect()

    sig.connect(_other)
    _run_bounded(replace)
    assert sent == ["sent"]


def test_pruning_releases_receivers_after_the_lock() -> None:
    """A connection to a sender that died is pruned on the next send; the strongly
    held receiver it drops sends from __del__."""
    sig = Signal()
    sent: list[str] = []
    sender = Model()
    sig.connect(_sending_on_delete(sig, sent), sender=sender, weak=False)
    del sender
    gc.collect()
    _run_bounded(lambda: sig.send(Model))
    assert sent == ["sent"]


# -- 8. a CapacityLimiter used from two backends ----------------------------------


def test_shared_capacity_limiter_on_a_second_backend_is_refused_clearly() -> None:
    pytest.importorskip("trio")
    limiter = anyio.CapacityLimiter(2)
    sig = Signal(thread_limit=limiter)
    sig.connect(lambda sender, **kw: "ok", weak=False)

    async def send() -> Any:
        return await sig.asend(Model)

    assert anyio.run(send, backend="asyncio")[0][1] == "ok"
    with pytest.raises(RuntimeError, match="first used on another async backend"):
        anyio.run(send, backend="trio")


def test_int_thread_limit_works_on_both_backends() -> None:
    pytest.importorskip("trio")
    sig = Signal(thread_limit=2)
    sig.connect(lambda sender, **kw: "ok", weak=False)

    async def send() -> Any:
        return await sig.asend(Model)

    for backend in ("asyncio", "trio", "asyncio"):
        assert anyio.run(send, backend=backend)[0][1] == "ok"


def test_sync_send_from_a_thread_is_not_delayed_by_a_dead_loop() -> None:
    """After all of the above, a plain thread's send() with an async receiver still
    completes promptly."""
    sig = Signal()

    async def receiver(sender: object, **kwargs: Any) -> str:
        return "ok"

    sig.connect(receiver)
    start = time.monotonic()
    assert sig.send(Model) == [(receiver, "ok")]
    assert time.monotonic() - start < 5

"""How a resolved list of receivers runs concurrently inside a task group.

This is the engine behind ``asend``/``asend_robust`` and behind the async part of the
blocking ``send()``. It is given the receivers already dereferenced, in call order,
and returns their results in that same order whatever order they finish in.

Context variables: every receiver runs in its own copy of the caller's context, taken
when the send began, so receivers running at the same time never see each other's
changes. When the send ends (returning or raising), the variables each receiver set
are copied back into the caller's context in call order, so a later receiver's value
wins. The single-receiver fast path awaits the receiver directly in the caller's
context, which has the same observable effect.
"""

from __future__ import annotations

import contextlib
import logging
import math
import sys
from collections.abc import Callable, Coroutine, Sequence
from contextvars import Context, copy_context
from types import CoroutineType
from typing import TYPE_CHECKING, Any, cast

import anyio
import anyio.lowlevel
import anyio.to_thread

from ._connection import describe_callable, returned_coroutine
from ._stepping import resume

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup

if TYPE_CHECKING:
    from ._signal import Signal

__all__ = ["log_failure", "merge_contexts", "run_concurrently", "unwrap_group"]

logger = logging.getLogger("asignal")

_MISSING: Any = object()

#: One receiver to call: ``(receiver, is_async, inline)``.
Call = tuple[Callable[..., Any], bool, bool]


def log_failure(
    signal: Signal, receiver: object, exc: BaseException, method: str
) -> None:
    """Log a receiver failure at ERROR with its traceback; never raises."""
    # A broken handler or formatter must not break a robust send.
    with contextlib.suppress(Exception):
        logger.error(
            "Error calling %s in %r.%s(): %s",
            describe_callable(receiver),
            signal,
            method,
            _describe_exception(exc),
            exc_info=exc,
        )


def _describe_exception(exc: BaseException) -> str:
    try:
        return f"{type(exc).__qualname__}: {exc}"
    except Exception:
        return type(exc).__qualname__


def sync_result(receiver: object, result: Any) -> Any:
    """*result* of a sync receiver, refused if it is a coroutine nothing would await."""
    if type(result) is CoroutineType:
        raise returned_coroutine(receiver, result)
    return result


def merge_contexts(base: Context, contexts: Sequence[Context | None]) -> None:
    """Copy into the current context every variable a receiver's context changed."""
    for ctx in contexts:
        if ctx is None:
            continue
        for var, value in ctx.items():
            if base.get(var, _MISSING) is not value:
                var.set(value)


def unwrap_group(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The exception to raise for a task group's failure: a lone receiver error is
    re-raised as itself (so ``except ValueError`` works); several stay a group."""
    exc: BaseException = group
    while isinstance(exc, BaseExceptionGroup):
        members = cast("tuple[BaseException, ...]", exc.exceptions)
        if len(members) != 1:
            break
        exc = members[0]
    return exc  # pyright: ignore[reportUnknownVariableType]


async def run_concurrently(
    signal: Signal,
    calls: Sequence[Call],
    sender: object,
    named: dict[str, Any],
    *,
    robust: bool,
    timeout: float | None,
    method: str,
    base: Context,
    contexts: list[Context | None],
) -> list[tuple[Callable[..., Any], Any]]:
    """Run *calls* at once in a task group and return ``[(receiver, result), ...]``.

    Async receivers become tasks; sync receivers run in worker threads limited by
    ``signal.thread_limiter``, except ``inline`` ones, which are called on the event
    loop while the tasks are being started. Non-robust: the first failure cancels the
    rest and propagates (one error as itself, several as an ``ExceptionGroup``).
    Robust: each ``Exception`` becomes that receiver's result and is logged;
    cancellation always propagates. A *timeout* bounds the whole send; in robust mode
    each receiver still running at the deadline gets a ``TimeoutError`` result.

    Every receiver runs in a copy of *base*; the contexts they end with are put in
    *contexts* (in call order) for the caller to merge, even when this raises.
    """
    count = len(calls)
    results: list[Any] = [None] * count
    contexts.extend([None] * count)
    deadline = math.inf if timeout is None else anyio.current_time() + timeout
    # A robust send with a timeout gives each receiver its own deadline scope; a
    # scope cannot be put around a coroutine after its first step, so there every
    # async receiver becomes a task.
    step_inline = not (robust and timeout is not None)
    # The receiver that suspended on its first step and finishes in this task:
    # (index, receiver, coroutine, its context, what it suspended on).
    parked: (
        tuple[int, Callable[..., Any], Coroutine[Any, Any, Any], Context, Any] | None
    ) = None
    in_threads = False  # whether a sync receiver was started in a worker thread

    async def run_async(index: int, receiver: Callable[..., Any]) -> None:
        try:
            if robust:
                with anyio.CancelScope(deadline=deadline) as scope:
                    try:
                        results[index] = await receiver(
                            signal=signal, sender=sender, **named
                        )
                    except Exception as exc:
                        results[index] = exc
                        log_failure(signal, receiver, exc, method)
                if scope.cancelled_caught:
                    results[index] = _timed_out(signal, receiver, timeout, method)
            else:
                results[index] = await receiver(signal=signal, sender=sender, **named)
        finally:
            contexts[index] = copy_context()

    async def run_in_thread(
        index: int, receiver: Callable[..., Any], ctx: Context
    ) -> None:
        def call() -> Any:
            return ctx.run(_call_sync, receiver, signal, sender, named)

        limiter = signal.thread_limiter
        if robust:
            with anyio.CancelScope(deadline=deadline) as scope:
                try:
                    results[index] = await anyio.to_thread.run_sync(
                        call, limiter=limiter
                    )
                    if timeout is not None:
                        # A thread cannot be interrupted: if the deadline passed
                        # while it ran, its late result is a timeout all the same.
                        await anyio.lowlevel.checkpoint_if_cancelled()
                except Exception as exc:
                    results[index] = exc
                    log_failure(signal, receiver, exc, method)
            if scope.cancelled_caught:
                results[index] = _timed_out(signal, receiver, timeout, method)
        else:
            results[index] = await anyio.to_thread.run_sync(call, limiter=limiter)

    def call_inline(index: int, receiver: Callable[..., Any], ctx: Context) -> None:
        contexts[index] = ctx
        if not robust:
            results[index] = ctx.run(_call_sync, receiver, signal, sender, named)
            return
        try:
            results[index] = ctx.run(_call_sync, receiver, signal, sender, named)
        except Exception as exc:
            results[index] = exc
            log_failure(signal, receiver, exc, method)

    # Only a non-robust send with a timeout needs a scope around everything (robust
    # timeouts are per receiver); an idle fail_after(None) still costs about a
    # fifth of a ten-receiver send (benchmarks/, A2).
    deadline_scope = (
        anyio.fail_after(timeout)
        if timeout is not None and not robust
        else contextlib.nullcontext()
    )
    try:
        with deadline_scope:
            async with anyio.create_task_group() as tg:
                try:
                    for index, (receiver, is_async, inline) in enumerate(calls):
                        ctx = base.copy()
                        if not is_async:
                            if inline:
                                call_inline(index, receiver, ctx)
                            else:
                                contexts[index] = ctx
                                in_threads = True
                                tg.create_task(run_in_thread(index, receiver, ctx))
                        elif parked is not None or not step_inline:
                            tg.create_task(run_async(index, receiver), context=ctx)
                        else:
                            # The receiver's first step, inline (step_async's body:
                            # a call per receiver is a measurable share of A2).
                            contexts[index] = ctx
                            try:
                                coro, yielded = ctx.run(
                                    _first_step, receiver, signal, sender, named
                                )
                            except StopIteration as stop:
                                results[index] = stop.value
                                continue
                            except Exception as exc:
                                if not robust:
                                    raise
                                results[index] = exc
                                log_failure(signal, receiver, exc, method)
                                continue
                            parked = (index, receiver, coro, ctx, yielded)
                except BaseException:
                    if parked is not None:
                        # The parked receiver must unwind through the event loop
                        # (trio has it registered as this task's sleeper); cancel
                        # it, let it finish, then raise what stopped the loop.
                        tg.cancel_scope.cancel()
                        with contextlib.suppress(
                            Exception, anyio.get_cancelled_exc_class()
                        ):
                            await resume(parked[3], parked[2], parked[4])
                    raise
                if parked is not None:
                    index, receiver, coro, ctx, suspended_on = parked
                    if robust:
                        try:
                            results[index] = await resume(ctx, coro, suspended_on)
                        except Exception as exc:
                            results[index] = exc
                            log_failure(signal, receiver, exc, method)
                    else:
                        results[index] = await resume(ctx, coro, suspended_on)
            # A receiver in a worker thread cannot be interrupted, and trio does not
            # deliver a cancellation (the caller's, or the deadline) that came while
            # it ran once every task has returned: deliver it here, so a cancelled
            # send raises and a late finish is a TimeoutError on every backend.
            if in_threads:
                await anyio.lowlevel.checkpoint_if_cancelled()
    except BaseExceptionGroup as group:
        raise unwrap_group(group) from None
    return [(call[0], result) for call, result in zip(calls, results, strict=True)]


def _call_sync(
    receiver: Callable[..., Any], signal: Signal, sender: object, named: dict[str, Any]
) -> Any:
    return sync_result(receiver, receiver(signal=signal, sender=sender, **named))


def _first_step(
    receiver: Callable[..., Any], signal: Signal, sender: object, named: dict[str, Any]
) -> tuple[Coroutine[Any, Any, Any], Any]:
    """Make the receiver's coroutine and run it to its first suspension; raises
    ``StopIteration`` if it finishes. One ``Context.run`` for both: it is per
    receiver on the hot path of ``asend`` (benchmarks/, A2)."""
    coro = receiver(signal=signal, sender=sender, **named)
    return coro, coro.send(None)


def _timed_out(
    signal: Signal, receiver: object, timeout: float | None, method: str
) -> TimeoutError:
    exc = TimeoutError(
        f"{describe_callable(receiver)} did not finish within the {timeout} s "
        f"timeout of {signal!r}.{method}()"
    )
    log_failure(signal, receiver, exc, method)
    return exc

"""The one delivery path: how a receiver is called, how its failure is handled, and
how receivers run concurrently.

:func:`call_each` is the only place a receiver is called from synchronous code
(``send``, ``send_robust``, inline and worker-thread receivers of ``asend``,
SQLAlchemy's greenlet), :func:`acall` the only place one is awaited, and
:func:`failed` the only rule for a failure: raised as it was raised, or, in a robust
send, logged and returned. A :class:`Delivery` carries a send that may run
receivers concurrently (``asend``, and ``send`` with async receivers).

Context variables: under ``asend`` every receiver runs in its own copy of the
caller's context, taken when the send began, so receivers running at the same time
never see each other's changes. When the send ends (returning or raising), what each
receiver set is copied back into the caller's context in call order, so a later
receiver's value wins.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import logging
import math
import sys
from collections.abc import Callable, Coroutine, Iterable, Sequence
from contextvars import Context, copy_context
from types import CoroutineType
from typing import TYPE_CHECKING, Any, NoReturn, cast

import anyio
import anyio.lowlevel
import anyio.to_thread

from ._blocking import check_can_block, run_blocking
from ._receivers import (
    describe_callable,
    is_async_callable,
    log_fields,
    returned_coroutine,
)
from ._routing import ASYNC, INLINE, Plan
from ._stepping import resume

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup

if TYPE_CHECKING:
    from ._signal import Signal

__all__ = [
    "Delivery",
    "acall",
    "arun",
    "call_each",
    "failed",
    "log_failure",
    "merge_contexts",
]

logger = logging.getLogger("asignal")

_MISSING: Any = object()

Results = list[tuple[Callable[..., Any], Any]]


def log_failure(
    signal: Signal, receiver: object, exc: BaseException, method: str, sender: object
) -> None:
    """Log a receiver's failure at ERROR with its traceback, and the signal's name,
    the receiver, the sender and the method as the record's ``extra`` fields;
    never raises."""
    # A broken handler or formatter must not break a robust send.
    with contextlib.suppress(Exception):
        logger.error(
            "Error calling %s in %r.%s(): %s",
            describe_callable(receiver),
            signal,
            method,
            _describe_exception(exc),
            exc_info=exc,
            extra=log_fields(signal, receiver=receiver, sender=sender, method=method),
        )


def _describe_exception(exc: BaseException) -> str:
    try:
        return f"{type(exc).__qualname__}: {exc}"
    except Exception:
        return type(exc).__qualname__


def merge_contexts(base: Context, contexts: Iterable[Context | None]) -> None:
    """Copy into the current context every variable a receiver's context changed."""
    for ctx in contexts:
        if ctx is None:
            continue
        for var, value in ctx.items():
            if base.get(var, _MISSING) is not value:
                var.set(value)


def reraise(exc: BaseException) -> NoReturn:
    """Raise *exc* exactly as its receiver raised it: its ``__cause__``,
    ``__context__`` and ``__suppress_context__`` kept (raising it again while a group
    is being handled would chain the group instead)."""
    cause, context, suppress = exc.__cause__, exc.__context__, exc.__suppress_context__
    try:
        raise exc
    finally:
        exc.__cause__, exc.__context__ = cause, context
        exc.__suppress_context__ = suppress
        del exc, cause, context


def unwrap_group(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """A task group's failure as a send raises it: a lone receiver error as itself
    (so ``except ValueError`` works); several stay a group."""
    exc: BaseException = group
    while isinstance(exc, BaseExceptionGroup):
        members: tuple[BaseException, ...] = cast("Any", exc).exceptions
        if len(members) != 1:
            break
        exc = members[0]
    return exc  # pyright: ignore[reportUnknownVariableType]


def failed(
    signal: Signal, receiver: object, exc: Exception, method: str, sender: object
) -> Exception:
    """The result of a receiver that raised *exc* in a robust send, logged. Only
    for robust sends: elsewhere the exception propagates untouched."""
    log_failure(signal, receiver, exc, method, sender)
    return exc


def call_each(
    signal: Signal,
    derefs: Iterable[Callable[[], Any]],
    kwargs: dict[str, Any],
    robust: bool,
    method: str,
    await_: Callable[[Coroutine[Any, Any, Any]], Any] | None = None,
) -> Results:
    """Call each receiver in this thread, one after another, with *kwargs* (the
    payload plus ``signal`` and ``sender``); skip those that died (``deref()`` gives
    None). An async receiver's coroutine goes to *await_*; a sync receiver that
    returns a coroutine is refused with ``TypeError``: nothing would await it.
    Non-robust, the first failure propagates and no later receiver is called;
    robust, it becomes that receiver's result (:func:`failed`)."""
    # Without a payload, receivers are called with two literal keywords, which
    # allocates nothing; unpacking **kwargs builds the call's arguments anew for
    # every receiver and would double the cost of a payload-less send.
    payload = len(kwargs) > 2
    sender = kwargs["sender"]
    results: Results = []
    for deref in derefs:
        receiver = deref()
        try:
            if payload:
                result = receiver(**kwargs)
            else:
                result = receiver(signal=signal, sender=sender)
            if result is not None and type(result) is CoroutineType:
                if await_ is None or not is_async_callable(receiver):
                    raise returned_coroutine(receiver, result)
                result = await_(cast("Coroutine[Any, Any, Any]", result))
        except Exception as exc:
            # A receiver that died since the plan was built dereferences to None,
            # and calling None raises: checked only then, it costs nothing per call.
            if receiver is None:
                continue
            if not robust:
                raise
            result = failed(signal, receiver, exc, method, sender)
        results.append((receiver, result))
    return results


async def acall(
    signal: Signal,
    receiver: Callable[..., Any],
    kwargs: dict[str, Any],
    robust: bool,
    method: str,
) -> Any:
    """Await one async receiver with *kwargs* (called as :func:`call_each` calls):
    its result, or, robust, its failure (:func:`failed`)."""
    try:
        if len(kwargs) > 2:
            return await receiver(**kwargs)
        return await receiver(signal=signal, sender=kwargs["sender"])
    except Exception as exc:
        if not robust:
            raise
        return failed(signal, receiver, exc, method, kwargs["sender"])


async def arun(
    signal: Signal,
    plan: Plan,
    kwargs: dict[str, Any],
    method: str,
    robust: bool,
    timeout: float | None,
) -> Results:
    """``asend``/``asend_robust``: every live receiver of *plan*, at once (see
    :meth:`Delivery.run`)."""
    if plan.single_async and not (robust and timeout is not None):
        # One coroutine, awaited in this task: a task group would cost more than
        # the whole send and change nothing observable (the receiver's context
        # changes land in the caller's context directly, as merging would).
        receiver = plan.derefs[0]()
        if receiver is None:
            return []
        if timeout is None:
            result = await acall(signal, receiver, kwargs, robust, method)
        else:
            with anyio.fail_after(timeout):
                result = await acall(signal, receiver, kwargs, robust, method)
        if robust:  # the caller's cancellation is never swallowed (see run)
            await anyio.lowlevel.checkpoint_if_cancelled()
        return [(receiver, result)]
    watcher = plan.watcher
    if watcher is not None:
        # The same send of the wrapped receivers (taking the paths above too),
        # inside the instruments' send context.
        return await watcher.arun(
            functools.partial(
                arun, signal, watcher.inner, kwargs, method, robust, timeout
            )
        )
    calls = plan.live()
    if not calls:
        return []
    base = copy_context()
    contexts: list[Context | None] = []
    try:
        delivery = Delivery(signal, plan, kwargs, method, robust, timeout)
        return await delivery.run(calls, base, contexts)
    finally:
        merge_contexts(base, contexts)


class Delivery:
    """One send in progress: the receivers' keyword arguments, built once, and the
    rules that apply to every receiver of the send.

    :ivar robust: an ``Exception`` from a receiver becomes its result (logged at
        ERROR) instead of propagating. ``BaseException`` (cancellation,
        ``KeyboardInterrupt``, ``SystemExit``) always propagates.
    :ivar timeout: seconds for the whole send (``asend`` only).
    """

    __slots__ = ("kwargs", "method", "plan", "robust", "signal", "timeout")

    def __init__(
        self,
        signal: Signal,
        plan: Plan,
        kwargs: dict[str, Any],
        method: str,
        robust: bool,
        timeout: float | None = None,
    ) -> None:
        self.signal = signal
        self.plan = plan
        self.kwargs = kwargs
        self.method = method
        self.robust = robust
        self.timeout = timeout

    # -- calls ---------------------------------------------------------------------

    def call(self, receiver: Callable[..., Any]) -> Any:
        """:func:`call_each` for one sync receiver: its result."""
        derefs = (_held(receiver),)
        results = call_each(self.signal, derefs, self.kwargs, self.robust, self.method)
        return results[0][1]

    # -- the sends ---------------------------------------------------------------

    def run_blocking(self) -> Results:
        """``send``/``send_robust`` with async receivers or watched: sync receivers
        in this thread, each run of neighbouring async receivers concurrently on an
        event loop (see ``_blocking``), all in call order."""
        if self.plan.watcher is not None:
            return self.plan.watcher.run(self._run_blocking)
        return self._run_blocking()

    def _run_blocking(self) -> Results:
        if not self.plan.has_async:
            return call_each(
                self.signal, self.plan.derefs, self.kwargs, self.robust, self.method
            )
        check_can_block(f"{self.signal!r}.{self.method}(...)")
        results: Results = []
        for is_async, group in itertools.groupby(
            self.plan.steps, key=lambda step: step[1] == ASYNC
        ):
            if not is_async:
                results += call_each(
                    self.signal,
                    (deref for deref, _ in group),
                    self.kwargs,
                    self.robust,
                    self.method,
                )
                continue
            calls = [(fn, ASYNC) for deref, _ in group if (fn := deref()) is not None]
            if not calls:
                continue
            base = copy_context()
            contexts: list[Context | None] = []
            try:
                results += run_blocking(
                    functools.partial(self.run, calls, base, contexts)
                )
            finally:
                merge_contexts(base, contexts)
        return results

    # -- concurrency ---------------------------------------------------------------

    async def run(
        self,
        calls: Sequence[tuple[Callable[..., Any], int]],
        base: Context,
        contexts: list[Context | None],
    ) -> Results:
        """Run ``(receiver, mode)`` *calls* at once in a task group; return
        ``[(receiver, result), ...]`` in call order, whatever order they finish in.

        Each async receiver's first step runs in this task; the first one that
        suspends is finished in this task too (see ``_stepping``), and those after
        it become tasks. Sync receivers run in worker threads (under
        ``signal.thread_limiter``), or on the loop if inline. Non-robust: the
        first failure cancels the rest and propagates as it was raised (several at
        once: an ``ExceptionGroup``).
        Robust: a ``timeout`` gives every receiver its own deadline, past which it
        is cancelled and gets a ``TimeoutError`` result. Cancellation of the caller
        always propagates, even when a receiver turns it into an exception.

        Every receiver runs in a copy of *base*; the contexts they end with are put
        in *contexts* (in call order) for the caller to merge, even when this raises.
        """
        signal, kwargs, robust, method = (
            self.signal,
            self.kwargs,
            self.robust,
            self.method,
        )
        count = len(calls)
        results: list[Any] = [None] * count
        contexts.extend([None] * count)
        deadline = (
            math.inf if self.timeout is None else anyio.current_time() + (self.timeout)
        )
        # A scope cannot be put around a coroutine after its first step: with
        # per-receiver deadlines, every async receiver is a task.
        per_receiver = self.robust and self.timeout is not None
        parked: tuple[int, Coroutine[Any, Any, Any], Context, Any] | None = None
        in_threads = False

        async def run_one(index: int, receiver: Callable[..., Any], mode: int) -> None:
            if mode != ASYNC:
                ctx = contexts[index]
                assert ctx is not None

                def in_thread() -> Any:
                    return ctx.run(self.call, receiver)

                results[index] = await anyio.to_thread.run_sync(
                    in_thread, limiter=self.signal.thread_limiter
                )
                return
            try:
                results[index] = await acall(signal, receiver, kwargs, robust, method)
            finally:
                # A task may run in a copy of the context it was given (trio).
                contexts[index] = copy_context()

        async def run_task(index: int, receiver: Callable[..., Any], mode: int) -> None:
            if not per_receiver:
                return await run_one(index, receiver, mode)
            with anyio.CancelScope(deadline=deadline) as scope:
                await run_one(index, receiver, mode)
                if mode != ASYNC:
                    # A thread cannot be interrupted: a late finish is a timeout.
                    await anyio.lowlevel.checkpoint_if_cancelled()
            if scope.cancelled_caught:
                results[index] = self._timed_out(receiver)
            return None

        # Only a non-robust send with a timeout needs a scope around everything;
        # an idle fail_after(None) is a noticeable share of a short send.
        whole = (
            anyio.fail_after(self.timeout)
            if self.timeout is not None and not self.robust
            else contextlib.nullcontext()
        )
        try:
            with whole:
                async with anyio.create_task_group() as tg:
                    try:
                        for index, (receiver, mode) in enumerate(calls):
                            ctx = contexts[index] = base.copy()
                            if mode == INLINE:
                                results[index] = ctx.run(self.call, receiver)
                            elif mode != ASYNC or parked is not None or per_receiver:
                                in_threads = in_threads or mode != ASYNC
                                tg.create_task(
                                    run_task(index, receiver, mode), context=ctx
                                )
                            else:
                                coro = acall(signal, receiver, kwargs, robust, method)
                                try:
                                    yielded = ctx.run(coro.send, None)
                                except StopIteration as stop:
                                    results[index] = stop.value
                                else:
                                    parked = (index, coro, ctx, yielded)
                    except BaseException:
                        if parked is not None:
                            # The parked receiver must unwind through the event loop
                            # (trio has it registered as this task's sleeper):
                            # cancel it, let it finish, then raise what stopped us.
                            tg.cancel_scope.cancel()
                            with contextlib.suppress(
                                Exception, anyio.get_cancelled_exc_class()
                            ):
                                await resume(parked[2], parked[1], parked[3])
                        raise
                    if parked is not None:
                        index, coro, ctx, yielded = parked
                        results[index] = await resume(ctx, coro, yielded)
                # Delivered here, inside the deadline, not lost: trio does not
                # deliver a cancellation that came while a worker thread ran once
                # every task has returned, and a robust receiver may have turned
                # the caller's cancellation into an exception that became its result.
                if in_threads or self.robust:
                    await anyio.lowlevel.checkpoint_if_cancelled()
        except BaseExceptionGroup as group:
            exc = unwrap_group(group)
            if exc is group:
                raise
            reraise(exc)
        return [(call[0], result) for call, result in zip(calls, results, strict=True)]

    def _timed_out(self, receiver: object) -> TimeoutError:
        exc = TimeoutError(
            f"{describe_callable(receiver)} did not finish within the {self.timeout} s "
            f"timeout of {self.signal!r}.{self.method}()"
        )
        failed(self.signal, receiver, exc, self.method, self.kwargs["sender"])
        return exc


def _held(receiver: Callable[..., Any]) -> Callable[[], Any]:
    """A dereference for a receiver already held."""
    return lambda: receiver

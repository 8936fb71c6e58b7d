"""Background delivery: sends that request code hands to the application.

A :class:`BackgroundSends` owns every delivery it accepts: a task group it opens when
its ``async with`` block is entered runs them, a bounded memory-object stream
buffers them, and leaving the block drains them within a timeout. No task is ever
started anywhere else. The ASGI lifespan (``SignalMiddleware`` or
``asignal.asgi.lifespan()``) opens one and publishes it in the lifespan ``state``
under ``"asignal.background"``; request code reaches it as ``_handoff`` describes.
"""

from __future__ import annotations

import logging
import threading
import weakref
from contextlib import AsyncExitStack
from contextvars import Context, copy_context
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, cast

import anyio
import anyio.from_thread
import anyio.lowlevel

from .._integration import check_send, following, log_fields
from .._signal import Signal

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import TracebackType

    from anyio.abc import TaskGroup, TaskStatus
    from anyio.lowlevel import EventLoopToken
    from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

__all__ = [
    "BackgroundBufferFull",
    "BackgroundSends",
    "BackgroundStatistics",
    "HeldSends",
    "Job",
    "background_statistics",
]

logger = logging.getLogger("asignal")

T = TypeVar("T")

#: The owners open now (this module's only process-wide state), for
#: background_statistics(); guarded by _open_lock, since metrics readers list them
#: from threads of their own while event loops open and close owners.
_open: weakref.WeakSet[BackgroundSends] = weakref.WeakSet()
_open_lock = threading.Lock()


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def background_statistics() -> list[BackgroundStatistics]:
    """:meth:`BackgroundSends.statistics` of every owner open now (inside its
    ``async with``), in no particular order: what metrics exporters read
    (``asignal.otel``'s ``asignal.background.sends`` gauge)."""
    with _open_lock:
        owners = list(_open)
    return [owner.statistics() for owner in owners]


class BackgroundBufferFull(RuntimeError):
    """Raised to the caller when a :class:`BackgroundSends` buffer is full."""


@dataclass(frozen=True)
class BackgroundStatistics:
    """A snapshot of a :class:`BackgroundSends` owner's counters."""

    buffered: int
    """Sends waiting for a free delivery slot."""
    reserved: int
    """Sends held by requests still running, queued when their response ends."""
    running: int
    """Sends being delivered now."""
    delivered: int
    """Sends delivered (their receivers ran, whether or not some raised)."""
    receiver_errors: int
    """Receiver failures during delivery (each one logged with its traceback)."""
    failed: int
    """Sends that could not be delivered at all (the send itself raised; logged)."""
    rejected: int
    """Sends refused with :class:`BackgroundBufferFull`."""
    abandoned: int
    """Sends never delivered: the owner closed or its drain timeout expired (logged)."""


class Job:
    """One send handed over: the signal, its sender and kwargs, and the context
    it runs in."""

    __slots__ = ("context", "kwargs", "sender", "signal")

    def __init__(
        self, signal: Signal, sender: object, kwargs: dict[str, Any], context: Context
    ) -> None:
        self.signal = signal
        self.sender = sender
        self.kwargs = kwargs
        self.context = context


class BackgroundSends:
    """Delivers signals in the background, owned by an ``async with`` block.

    Use it as ``async with BackgroundSends() as background:``; the ASGI lifespan
    does this for you. Each accepted send runs as ``signal.asend_robust(sender,
    **kwargs)`` in a task of this owner's task group, in a copy of the context of the
    code that handed it over (so request-scoped context variables are seen).

    :param max_buffer: how many sends may wait (queued or held by running requests)
        before :meth:`send_soon` and ``send_after_response()`` raise
        :class:`BackgroundBufferFull`. A full buffer never makes the caller wait: the
        point of a background send is that the client does not.
    :param concurrency: how many sends are delivered at once. With 1 (the default)
        sends are delivered one after another in the order they were queued.
    :param drain_timeout: seconds that leaving the ``async with`` block waits for
        the queued and running sends (and for the sends that those deliveries make
        in turn, which are still accepted while draining); past it they are
        cancelled, and each one not delivered is counted as abandoned and logged at
        ERROR.
    :param timeout: seconds for each send (``asend_robust(timeout=...)``): receivers
        still running then are cancelled and get a logged ``TimeoutError`` result.

    Receiver failures are logged by ``asend_robust`` on the ``asignal`` logger and
    counted in :meth:`statistics`; nothing is dropped without a log record.
    """

    def __init__(
        self,
        *,
        max_buffer: int = 1000,
        concurrency: int = 1,
        drain_timeout: float = 10.0,
        timeout: float | None = None,
    ) -> None:
        if not _is_int(max_buffer) or max_buffer < 1:
            raise ValueError(
                f"max_buffer must be an int of at least 1, got {max_buffer!r}."
            )
        if not _is_int(concurrency) or concurrency < 1:
            raise ValueError(
                f"concurrency must be an int of at least 1, got {concurrency!r}."
            )
        if drain_timeout < 0:
            raise ValueError(
                f"drain_timeout must be >= 0 seconds, got {drain_timeout!r}."
            )
        self.max_buffer = max_buffer
        self.concurrency = concurrency
        self.drain_timeout = drain_timeout
        self.timeout = timeout
        self._tg: TaskGroup | None = None
        self._exit_stack = AsyncExitStack()
        self._send: MemoryObjectSendStream[Job] | None = None
        self._receive: MemoryObjectReceiveStream[Job] | None = None
        self._slots: anyio.Semaphore | None = None
        self._drained: anyio.Event | None = None
        self._idle: anyio.Event | None = None
        self._state = "new"
        self._token: EventLoopToken | None = None
        self._loop_thread = 0
        self._holding: Job | None = None
        self._queued = 0  # accepted, not yet started (buffered, handed over, held)
        self._reserved = 0
        self._requests = 0  # requests in flight (SignalMiddleware)
        self._requests_done: anyio.Event | None = None
        self._running = 0
        self._delivered = 0
        self._receiver_errors = 0
        self._failed = 0
        self._rejected = 0
        self._abandoned = 0

    def __repr__(self) -> str:
        return f"<BackgroundSends {self._state}, {self.statistics()}>"

    # -- lifecycle -------------------------------------------------------------------

    async def __aenter__(self) -> BackgroundSends:
        if self._state != "new":
            raise RuntimeError(
                "A BackgroundSends can be entered only once; create a new one."
            )
        self._send, self._receive = anyio.create_memory_object_stream[Job](
            self.max_buffer
        )
        self._slots = anyio.Semaphore(self.concurrency)
        self._drained = anyio.Event()
        self._token = anyio.lowlevel.current_token()
        self._loop_thread = threading.get_ident()
        self._tg = await self._exit_stack.enter_async_context(anyio.create_task_group())
        self._state = "open"
        # start(): the consumer task exists before anything can be queued.
        await self._tg.start(self._consume, name="asignal background sends")
        with _open_lock:
            _open.add(self)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        assert self._tg is not None
        assert self._send is not None
        assert self._drained is not None
        if exc_type is None:
            # Shielded but bounded: a shutdown that is being cancelled still gets
            # drain_timeout seconds to deliver what the requests handed over. While
            # draining, sends made by the deliveries themselves are still accepted.
            self._state = "draining"
            with anyio.move_on_after(self.drain_timeout, shield=True):
                while self._queued or self._running:
                    self._idle = anyio.Event()
                    await self._idle.wait()
                self._state = "closing"
                self._send.close()  # the consumer sees the end of the stream
                await self._drained.wait()
        self._state = "closing"
        self._send.close()
        if not self._drained.is_set():
            self._abandon_rest(
                f"the drain timeout of {self.drain_timeout} s expired"
                if exc_type is None
                else f"the owner exited with {exc_type.__name__}"
            )
            self._tg.cancel_scope.cancel()
        try:
            # The block's own exception propagates as itself (returning None below),
            # never wrapped in the task group's exception group.
            await self._exit_stack.aclose()
            return None
        finally:
            self._state = "closed"
            with _open_lock:
                _open.discard(self)
            if self._receive is not None:
                self._receive.close()

    def hold_for_request(self) -> HeldSends:
        """Count one request in flight and return the holder of the sends it hands
        over until its response has ended. Internal to ``asignal.asgi``
        (``SignalMiddleware`` calls it per request); not meant for applications.

        The caller must call :meth:`HeldSends.release` exactly once, when the
        request has ended: that queues the held sends and ends the count that
        :meth:`wait_for_requests` waits on.
        """
        self._requests += 1
        return HeldSends(self._reserve, self._submit_reserved, self._request_ended)

    def _request_ended(self) -> None:
        self._requests -= 1
        if self._requests == 0 and self._requests_done is not None:
            self._requests_done.set()

    async def wait_for_requests(self, timeout: float | None = None) -> bool:
        """Wait until no request handled by ``SignalMiddleware`` with this owner is
        still running (for example one whose task the server is cancelling and
        that is still sending ``request_finished``); return whether none is.

        The lifespan calls it before ``lifespan_shutdown``: a server that gave up
        on a request (uvicorn's ``timeout_graceful_shutdown``) runs the lifespan
        shutdown right after cancelling it, then closes the event loop, which
        would cut that request's ``request_finished`` short. Shielded, bounded
        by *timeout* (the owner's ``drain_timeout`` if None).
        """
        if self._requests == 0:
            return True
        self._requests_done = anyio.Event()
        bound = self.drain_timeout if timeout is None else timeout
        with anyio.move_on_after(bound, shield=True):
            await self._requests_done.wait()
        if self._requests:
            logger.warning(
                "%d request(s) still running after %s s at shutdown; their "
                "request_finished may be cut short.",
                self._requests,
                bound,
            )
        return self._requests == 0

    async def _consume(
        self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        assert self._receive is not None
        assert self._slots is not None
        assert self._tg is not None
        assert self._drained is not None
        task_status.started()
        async with self._receive:
            async for job in self._receive:
                self._holding = job
                await self._slots.acquire()
                self._holding = None
                self._queued -= 1
                self._running += 1
                # Each job runs in its own copy of the sender's context.
                self._tg.create_task(
                    self._deliver(job),
                    name=f"asignal background {job.signal!r}",
                    context=job.context,
                )
        for _ in range(self.concurrency):  # wait for the deliveries still running
            await self._slots.acquire()
        self._drained.set()

    async def _deliver(self, job: Job) -> None:
        assert self._slots is not None
        try:
            # The request that handed it over has been answered: the send is work
            # that follows from it, not a part of it (a trace of its own, linked).
            with following(job.signal, "background"):
                results = await job.signal.asend_robust(
                    job.sender, timeout=self.timeout, **job.kwargs
                )
        except Exception as exc:
            self._failed += 1
            logger.error(
                "Background send of %r from %r failed: %s: %s",
                job.signal,
                job.sender,
                type(exc).__qualname__,
                exc,
                exc_info=exc,
                extra=log_fields(job.signal, sender=job.sender, method="asend_robust"),
            )
        else:
            self._delivered += 1
            self._receiver_errors += sum(
                1 for _, result in results if isinstance(result, BaseException)
            )
        finally:
            self._running -= 1
            self._slots.release()
            if not (self._queued or self._running) and self._idle is not None:
                self._idle.set()

    def _abandon_rest(self, reason: str) -> None:
        """Count and log every send that will not be delivered."""
        names: list[str] = []
        if self._holding is not None:
            names.append(repr(self._holding.signal))
        if self._receive is not None:
            while True:
                try:
                    names.append(repr(self._receive.receive_nowait().signal))
                except (anyio.WouldBlock, anyio.EndOfStream, anyio.ClosedResourceError):
                    break
        # Sends still reserved by running requests are counted (and logged) when
        # their request ends and finds the owner closed: see _submit_reserved.
        count = self._queued + self._running
        if count:
            self._abandoned += count
            logger.error(
                "%d background send(s) were not delivered because %s "
                "(%d running; %d queued, of: %s).",
                count,
                reason,
                self._running,
                self._queued,
                ", ".join(sorted(set(names))) or "-",
            )
        self._queued = 0

    # -- accepting sends -------------------------------------------------------------

    def send_soon(self, signal: Signal, sender: object, /, **kwargs: Any) -> None:
        """Queue ``signal.asend_robust(sender, **kwargs)`` for delivery by this owner.

        Returns at once; the send runs in a copy of the caller's context.

        Thread-safe: from a worker thread (a sync endpoint or receiver), the send is
        queued on the owner's event loop, and this waits for that.

        :raises TypeError: ``signal.send(sender, **kwargs)`` would refuse these
            arguments (checked here, so the error reaches the caller).
        :raises BackgroundBufferFull: *max_buffer* sends are already waiting.
        :raises RuntimeError: the owner is not open (not entered yet, or closed;
            while it drains at exit it still accepts sends).
        """
        self._on_loop(self._queue, self._make_job(signal, sender, kwargs, "send_soon"))

    def _queue(self, job: Job) -> None:
        self._check_room()
        assert self._send is not None
        self._send.send_nowait(job)
        self._queued += 1

    def _on_loop(self, fn: Callable[[Job], T], job: Job) -> T:
        """Run *fn* on the owner's event loop thread (directly if already there):
        memory streams and these counters belong to that loop."""
        if self._token is None or threading.get_ident() == self._loop_thread:
            return fn(job)
        return anyio.from_thread.run_sync(fn, job, token=self._token)

    def statistics(self) -> BackgroundStatistics:
        """The current counters (see :class:`BackgroundStatistics`)."""
        return BackgroundStatistics(
            buffered=self._queued,
            reserved=self._reserved,
            running=self._running,
            delivered=self._delivered,
            receiver_errors=self._receiver_errors,
            failed=self._failed,
            rejected=self._rejected,
            abandoned=self._abandoned,
        )

    def _make_job(
        self, signal: Signal, sender: object, kwargs: dict[str, Any], method: str
    ) -> Job:
        """The send as a job, checked now as ``signal.send()`` checks it (argument
        names, a strict signal's ``providing_args``, the sender given twice), so
        that a bad send fails in the caller, not later in the background."""
        given = cast("object", signal)
        if not isinstance(given, Signal):
            raise TypeError(
                f"A background send takes the Signal first, then the sender; got "
                f"{signal!r}. Call it as {method}(my_signal, sender, **kwargs)."
            )
        check_send(signal, sender, kwargs, method)
        return Job(signal, sender, kwargs, copy_context())

    def _check_room(self) -> None:
        if self._state not in ("open", "draining"):
            raise RuntimeError(
                f"This BackgroundSends is {self._state}: it accepts sends only inside "
                "its 'async with' block (from the lifespan's startup to its shutdown)."
            )
        if self._queued + self._reserved >= self.max_buffer:
            self._rejected += 1
            raise BackgroundBufferFull(
                f"The background buffer is full ({self.max_buffer} sends waiting); "
                "this send was refused rather than make the request wait. Raise "
                "max_buffer or concurrency, make the receivers faster, or send it "
                "with 'await signal.asend(...)' in the request."
            )

    def _reserve(self, signal: Signal, sender: object, kwargs: dict[str, Any]) -> Job:
        """Hold room for a send that a running request queues when it ends
        (thread-safe, like :meth:`send_soon`)."""
        job = self._make_job(signal, sender, kwargs, "send_after_response")
        return self._on_loop(self._reserve_now, job)

    def _reserve_now(self, job: Job) -> Job:
        self._check_room()
        self._reserved += 1
        return job

    def _submit_reserved(self, jobs: list[Job]) -> None:
        """Queue sends reserved by a request that has ended; never raises."""
        self._reserved -= len(jobs)
        for index, job in enumerate(jobs):
            if self._state in ("open", "draining") and self._send is not None:
                try:
                    self._send.send_nowait(job)
                except anyio.WouldBlock:  # pragma: no cover - room was reserved
                    pass
                else:
                    self._queued += 1
                    continue
            lost = jobs[index:]
            self._abandoned += len(lost)
            logger.error(
                "%d background send(s) were not delivered because their request "
                "ended after the owner closed (%s).",
                len(lost),
                ", ".join(repr(j.signal) for j in lost),
            )
            return


class HeldSends:
    """The sends one running request has handed over, held until its response has
    ended (made by :meth:`BackgroundSends.hold_for_request`).

    Room for each one is reserved in the owner's buffer when it is added, so a full
    buffer is reported to the request at once; :meth:`release` queues them.
    """

    __slots__ = ("_done", "_jobs", "_reserve", "_submit")

    def __init__(
        self,
        reserve: Callable[[Signal, object, dict[str, Any]], Job],
        submit: Callable[[list[Job]], None],
        done: Callable[[], None],
    ) -> None:
        self._reserve = reserve
        self._submit = submit
        self._done = done
        self._jobs: list[Job] = []

    def add(self, signal: Signal, sender: object, kwargs: dict[str, Any]) -> None:
        """Check the send and hold it (thread-safe).

        :raises TypeError: the send is one that ``signal.send()`` would refuse.
        :raises BackgroundBufferFull: the owner's buffer is full.
        :raises RuntimeError: the owner is closed.
        """
        self._jobs.append(self._reserve(signal, sender, kwargs))

    def release(self) -> None:
        """Queue the held sends and end the request's count; never raises."""
        jobs, self._jobs = self._jobs, []
        try:
            if jobs:
                self._submit(jobs)
        finally:
            self._done()

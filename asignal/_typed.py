"""Typed signals: a signal's payload declared once, with types, for mypy and pyright.

``@signal`` turns a spec function into a :class:`TypedSignal`: its keyword-only
parameters are the payload. At run time a ``TypedSignal`` is a ``Signal`` and
nothing more (the declared names become ``providing_args``); what it adds is for
the type checkers: ``send``/``asend`` and ``connect``/``@receiver`` signatures built
from the spec. The one run-time addition is ``strict=True``, which also checks the
payload's values against the spec's annotations.
"""

from __future__ import annotations

import inspect
import reprlib
import typing
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import (
    TYPE_CHECKING,
    Any,
    ClassVar,
    Generic,
    NoReturn,
    ParamSpec,
    Protocol,
    TypeVar,
    final,
    overload,
)

import anyio

from ._check_types import annotation_error
from ._routing import Plan
from ._signal import RESERVED_NAMES, Signal
from ._signal import receiver as _connect_decorator

__all__ = ["TypedReceiver", "TypedSignal", "Undeclared", "receiver", "signal"]

P = ParamSpec("P")
R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)
F = TypeVar("F", bound=Callable[..., Any])


@final
class Undeclared:
    """The type of no value. A spec that ends with ``**_: Undeclared`` makes the type
    checkers refuse a receiver without ``**kwargs`` (it is called with ``signal=``
    and with whatever a later version of the signal adds); a send with an
    undeclared name is refused either way, now as "expected Undeclared". The cost:
    pyright then lets the ``**`` fill a receiver parameter that is no payload name
    when it is unannotated, ``Any`` or ``object`` (see the README)."""

    def __new__(cls) -> NoReturn:
        raise TypeError("Undeclared has no instances; it only annotates a spec.")


class TypedReceiver(Protocol[R_co, P]):
    """What a typed signal's receivers must be: callable as
    ``receiver(sender, **payload)`` with ``sender`` by that name, since receivers
    are called as ``receiver(signal=..., sender=..., **payload)``."""

    def __call__(self, sender: Any, *args: P.args, **kwargs: P.kwargs) -> R_co: ...


class TypedSignal(Signal, Generic[P, R]):
    """A :class:`~asignal.Signal` whose payload and receivers the type checkers
    verify. Made by :func:`signal` from a spec function; see there.

    ``P`` is the payload (the spec's parameters) and ``R`` what each receiver
    returns (the spec's return annotation): ``send()`` returns
    ``[(receiver, R), ...]``, an async receiver's result awaited.
    """

    #: Whether sends check the payload at run time (``strict=True``).
    _validates: ClassVar[bool] = False

    def __init__(
        self,
        spec: Callable[P, R],
        *,
        name: str | None = None,
        thread_limit: int | anyio.CapacityLimiter | None = None,
    ) -> None:
        payload = _payload_names(spec)
        # Signal's own default unless given: one place says what it is.
        limit: dict[str, Any] = (
            {} if thread_limit is None else {"thread_limit": thread_limit}
        )
        super().__init__(
            providing_args=payload,
            name=name if name is not None else f"{spec.__module__}.{spec.__qualname__}",
            strict=self._validates,
            **limit,
        )
        #: The spec function the signal was declared with.
        self.spec = spec
        self.__doc__ = spec.__doc__

    if TYPE_CHECKING:
        # Signatures for the checkers only: at run time these are Signal's own
        # methods, so a typed signal costs nothing more per send. They narrow
        # Signal's (any keyword arguments, any receiver), hence the ignores.

        def connect(  # type: ignore[override]
            self,
            receiver: TypedReceiver[R | Awaitable[R], P],
            sender: object = None,
            weak: bool = True,
            dispatch_uid: Hashable | None = None,
            *,
            priority: int = 0,
            inline: bool = False,
        ) -> TypedReceiver[R | Awaitable[R], P]: ...

        # The sender positionally or as sender=, as at run time (the payload can
        # never be named sender: it is reserved).
        def send(  # type: ignore[override]
            self, sender: object, *args: P.args, **named: P.kwargs
        ) -> list[tuple[Callable[..., Any], R]]: ...

        def send_robust(  # type: ignore[override]
            self, sender: object, *args: P.args, **named: P.kwargs
        ) -> list[tuple[Callable[..., Any], R | Exception]]: ...

        # ParamSpec allows no keyword-only parameter beside the payload, so the
        # checkers see timeout as positional-or-keyword; pass it by keyword (a
        # positional one fails at run time).
        async def asend(  # type: ignore[override]
            self,
            sender: object,
            timeout: float | None = None,
            *args: P.args,
            **named: P.kwargs,
        ) -> list[tuple[Callable[..., Any], R]]: ...

        async def asend_robust(  # type: ignore[override]
            self,
            sender: object,
            timeout: float | None = None,
            *args: P.args,
            **named: P.kwargs,
        ) -> list[tuple[Callable[..., Any], R | Exception]]: ...


class _StrictTypedSignal(TypedSignal[P, R]):
    """A typed signal made with ``strict=True``: every send also checks each
    payload value against the spec's annotation. A class of its own so that a
    typed signal without ``strict`` sends exactly as a ``Signal`` does."""

    _validates = True
    _hints: dict[str, Any] | None = None

    def prepare(
        self, sender: object, named: dict[str, Any], method: str
    ) -> Plan | None:
        """Check each declared value against its annotation, then make the checks
        of every send (names included: strict). Every send method and the bridges
        come through here, before any receiver runs or any testing hook sees it."""
        hints = self._hints
        if hints is None:
            hints = self._hints = _resolved_hints(self.spec, self.providing_args)
        for key, value in named.items():
            expected = hints.get(key)
            if expected is None:  # undeclared or reserved: the core's check says so
                continue
            problem = annotation_error(value, expected)
            if problem is not None:
                raise TypeError(
                    f"{self!r}.{method}() argument {key}={_short_repr(value)}: "
                    f"{problem}, as {self.spec.__qualname__}() declares."
                )
        return super().prepare(sender, named, method)


def _short_repr(value: object) -> str:
    try:
        return reprlib.repr(value)
    except Exception:  # a broken __repr__ must not hide the payload error
        return f"<{type(value).__qualname__} object>"


def _resolved_hints(
    spec: Callable[..., Any], payload: frozenset[str] | None
) -> dict[str, Any]:
    """The spec's annotations of the payload names (not of ``**_``, nor the
    return), evaluated."""
    try:
        hints = typing.get_type_hints(spec)
    except Exception as exc:
        raise TypeError(
            f"strict=True checks payload values against the annotations of "
            f"{spec.__module__}.{spec.__qualname__}, but they do not resolve at run "
            f"time ({type(exc).__name__}: {exc}). Import what they name at run time "
            "(not only under TYPE_CHECKING), or drop strict=True."
        ) from exc
    return {name: hint for name, hint in hints.items() if name in (payload or ())}


def _payload_names(spec: Callable[..., Any]) -> list[str]:
    """The payload names a spec declares: its keyword-only parameters. Refuses,
    saying how to fix it, what a send could not match at run time."""
    if not inspect.isfunction(spec):
        raise TypeError(
            f"@asignal.signal decorates a spec function, got {spec!r}. Write "
            "`@asignal.signal` above `def my_signal(*, name: type, ...) -> None: ...`."
        )
    where = f"{spec.__module__}.{spec.__qualname__}"
    names: list[str] = []
    for parameter in inspect.signature(spec).parameters.values():
        kind = parameter.kind
        if kind is inspect.Parameter.VAR_KEYWORD:
            if not _is_undeclared(parameter.annotation):
                raise TypeError(
                    f"{where}: a typed signal's payload is its keyword-only "
                    f"parameters, so **{parameter.name} can only be annotated "
                    f"`**{parameter.name}: asignal.Undeclared` (which makes the "
                    "checkers require **kwargs in receivers). Declare each payload "
                    "argument by name instead."
                )
            continue
        if kind is not inspect.Parameter.KEYWORD_ONLY:
            raise TypeError(
                f"{where}: payload argument {parameter.name!r} must be keyword-only, "
                "as sends pass the payload by name. Start the parameters with `*,`: "
                f"def {getattr(spec, '__name__', 'spec')}(*, {parameter.name}: ...)."
            )
        if parameter.default is not inspect.Parameter.empty:
            raise TypeError(
                f"{where}: payload argument {parameter.name!r} has a default, but "
                "receivers get only what the send passes, never the spec's default. "
                "Drop the default and pass it in every send (use `X | None` and "
                "pass None for 'no value')."
            )
        if parameter.name in RESERVED_NAMES:
            raise ValueError(
                f"{where}: payload argument {parameter.name!r} is reserved: receivers "
                "get the signal and the sender as signal= and sender=, and asend() "
                "takes timeout= as its deadline. Rename it, e.g. "
                f"{parameter.name}_value."
            )
        names.append(parameter.name)
    return names


def _is_undeclared(annotation: object) -> bool:
    if annotation is Undeclared:
        return True
    # Under `from __future__ import annotations` the annotation is its source text.
    return isinstance(annotation, str) and annotation.rsplit(".", 1)[-1] == (
        "Undeclared"
    )


@overload
def signal(spec: Callable[P, R], /) -> TypedSignal[P, R]: ...


@overload
def signal(
    *,
    name: str | None = None,
    strict: bool = False,
    thread_limit: int | anyio.CapacityLimiter | None = None,
) -> Callable[[Callable[P, R]], TypedSignal[P, R]]: ...


def signal(
    spec: Callable[P, R] | None = None,
    /,
    *,
    name: str | None = None,
    strict: bool = False,
    thread_limit: int | anyio.CapacityLimiter | None = None,
) -> TypedSignal[P, R] | Callable[[Callable[P, R]], TypedSignal[P, R]]:
    """Declare a typed signal from a spec function, whose keyword-only parameters
    are the payload and whose return annotation is what receivers return::

        @asignal.signal
        def order_paid(*, order_id: int, total: Decimal) -> None:
            \"\"\"Sent when an order is paid.\"\"\"

    The result is a :class:`TypedSignal`: a ``Signal`` whose ``providing_args`` are
    the payload names, whose ``__doc__`` is the spec's docstring and whose name is
    ``module.function`` unless *name* is given. The spec itself is never called.

    :param strict: check every send at run time too: the names (as
        ``Signal(strict=True)``) and each value against its annotation (the outer
        type: ``list[int]`` checks for a list). For payloads from untyped code.
    :param thread_limit: as for ``Signal`` (whose default applies when None).
    :raises TypeError: a payload parameter is not keyword-only or has a default, or
        ``**kwargs`` is not annotated ``Undeclared``.
    :raises ValueError: a payload name is reserved (``signal``, ``sender``,
        ``timeout``).
    """

    def declare(spec: Callable[P, R]) -> TypedSignal[P, R]:
        if strict:
            return _StrictTypedSignal(spec, name=name, thread_limit=thread_limit)
        return TypedSignal(spec, name=name, thread_limit=thread_limit)

    if spec is None:
        return declare
    return declare(spec)


# A TypedSignal is a Signal too, with a narrower result: mypy calls that an unsafe
# overlap, but the first overload always wins for a TypedSignal.
@overload
def receiver(  # type: ignore[overload-overlap]
    signal: TypedSignal[P, R],
    *,
    sender: object = None,
    weak: bool = True,
    dispatch_uid: Hashable | None = None,
    priority: int = 0,
    inline: bool = False,
) -> Callable[
    [TypedReceiver[R | Awaitable[R], P]], TypedReceiver[R | Awaitable[R], P]
]: ...


@overload
def receiver(
    signal: Signal | Sequence[Signal],
    *,
    sender: object = None,
    weak: bool = True,
    dispatch_uid: Hashable | None = None,
    priority: int = 0,
    inline: bool = False,
) -> Callable[[F], F]: ...


def receiver(
    signal: Signal | Sequence[Signal],
    *,
    sender: object = None,
    weak: bool = True,
    dispatch_uid: Hashable | None = None,
    priority: int = 0,
    inline: bool = False,
) -> Callable[[Any], Any]:
    """Decorator: connect the function to *signal* (or to each of a list or tuple of
    signals) with the given ``connect()`` options, and return it unchanged::

        @receiver(post_save, sender=MyModel)
        def on_saved(sender, instance, created, **kwargs): ...

    For a :class:`TypedSignal` the checkers verify the function against the
    signal's payload (a list of signals is not checked).
    """
    return _connect_decorator(
        signal,
        sender=sender,
        weak=weak,
        dispatch_uid=dispatch_uid,
        priority=priority,
        inline=inline,
    )

"""Typed signals at run time: a ``@asignal.signal`` declaration is a plain ``Signal``
(payload names, name, docstring), refuses specs a send could not match, and with
``strict=True`` checks every send's payload values."""

from __future__ import annotations

import functools
import gc
import json
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, Literal, NewType, Protocol, runtime_checkable

import pytest

import asignal
from asignal import Signal, TypedSignal, Undeclared, receiver
from asignal.__main__ import main as cli_main
from asignal._integration import send_awaiting
from asignal.signals import post_save
from asignal.testing import capture_signals

OrderId = NewType("OrderId", int)


class Shop:
    pass


class Closable(Protocol):
    def close(self) -> None: ...


@runtime_checkable
class Flushable(Protocol):
    def flush(self) -> None: ...


class Buffer:
    def flush(self) -> None: ...


@asignal.signal
def order_paid(*, order_id: int, total: Decimal) -> None:
    """Sent when an order is paid."""


def _strict_signal() -> TypedSignal[..., object]:
    @asignal.signal(strict=True, name="tests.checked")
    def checked(
        *,
        count: int,
        ratio: float,
        label: str | None,
        mode: Literal["a", "b"],
        items: list[int],
        mapping: Mapping[str, int],
        kind: type[Shop],
        callback: Callable[[], None],
        order: OrderId,
        closable: Closable,
        flushable: Flushable,
        nothing: None,
        anything: Any,
        **_: Undeclared,
    ) -> object:
        """A payload of every kind of annotation strict=True checks."""

    return checked


GOOD: dict[str, Any] = {
    "count": 1,
    "ratio": 2,  # an int is a float, as for the type checkers
    "label": None,
    "mode": "a",
    "items": [1],
    "mapping": {"a": 1},
    "kind": Shop,
    "callback": lambda: None,
    "order": OrderId(3),
    "closable": object(),  # a Protocol that is not runtime_checkable: unchecked
    "flushable": Buffer(),
    "nothing": None,
    "anything": object(),
}


def _untyped(signal: Signal) -> Signal:
    """The signal as untyped code sees it: no payload checked by the checkers."""
    return signal


def on_anything(sender: object, **kwargs: Any) -> str:
    return "ok"


class TestDeclaration:
    def test_the_declaration_is_a_plain_signal(self) -> None:
        """Keyword-only names become providing_args, the docstring the signal's
        __doc__, module.function its name."""
        assert isinstance(order_paid, Signal)
        assert order_paid.providing_args == frozenset({"order_id", "total"})
        assert order_paid.name == f"{__name__}.order_paid"
        assert repr(order_paid) == f"<Signal '{__name__}.order_paid'>"
        assert order_paid.__doc__ == "Sent when an order is paid."
        assert order_paid.strict is False
        assert order_paid.spec.__name__ == "order_paid"

    @pytest.mark.anyio
    async def test_name_and_thread_limit_can_be_given(self) -> None:
        """@signal(name=..., thread_limit=...) passes them on to Signal; without
        thread_limit, Signal's default applies."""

        @asignal.signal(name="shop.refunded", thread_limit=3)
        def refunded(*, order_id: int) -> None: ...

        assert refunded.name == "shop.refunded"
        assert refunded.providing_args == frozenset({"order_id"})
        assert refunded.thread_limiter.total_tokens == 3
        assert (
            order_paid.thread_limiter.total_tokens
            == Signal().thread_limiter.total_tokens
        )

    @pytest.mark.parametrize("name", ["signal", "sender", "timeout"])
    def test_a_reserved_payload_name_is_refused(self, name: str) -> None:
        """signal, sender and timeout cannot be payload names: ValueError naming it."""
        namespace: dict[str, Any] = {}
        exec(f"def spec(*, {name}: int) -> None: ...", namespace)
        with pytest.raises(ValueError, match=f"'{name}' is reserved") as info:
            asignal.signal(namespace["spec"])
        assert f"{name}_value" in str(info.value)

    def test_a_positional_payload_parameter_is_refused(self) -> None:
        """A parameter a send could pass positionally is refused: start with `*,`."""

        def spec(order_id: int) -> None: ...

        with pytest.raises(TypeError, match=r"must be keyword-only.*\*,"):
            asignal.signal(spec)

    def test_a_default_is_refused(self) -> None:
        """Receivers never see a spec's default, so a default is refused."""

        def spec(*, order_id: int, note: str = "") -> None: ...

        with pytest.raises(TypeError, match="'note' has a default"):
            asignal.signal(spec)

    def test_kwargs_other_than_undeclared_are_refused(self) -> None:
        """**kwargs: Any would make the payload open: refused, Undeclared named."""

        def spec(*, order_id: int, **kwargs: Any) -> None: ...

        with pytest.raises(TypeError, match=r"\*\*kwargs: asignal\.Undeclared"):
            asignal.signal(spec)

    def test_undeclared_has_no_instances(self) -> None:
        """Undeclared only annotates a spec."""
        with pytest.raises(TypeError, match="no instances"):
            Undeclared()

    def test_only_a_function_is_a_spec(self) -> None:
        """@signal on something that is not a function says what it expects."""
        with pytest.raises(TypeError, match="spec function"):
            asignal.signal(42)  # type: ignore[call-overload]
        with pytest.raises(TypeError, match="spec function"):
            asignal.signal(functools.partial(order_paid.spec))


class TestLikeAnySignal:
    @pytest.mark.anyio
    async def test_every_send_method_delivers(self) -> None:
        """connect, send, send_robust, asend and asend_robust work as on Signal."""
        calls: list[tuple[object, int, Decimal]] = []

        def on_paid(sender: object, *, order_id: int, total: Decimal, **_: Any) -> None:
            calls.append((sender, order_id, total))

        async def on_paid_async(sender: object, **kwargs: Any) -> None:
            pass

        order_paid.connect(on_paid)
        order_paid.connect(on_paid_async)
        try:
            total = Decimal("9.50")
            assert await order_paid.asend(Shop, order_id=1, total=total) == [
                (on_paid, None),
                (on_paid_async, None),
            ]
            await order_paid.asend_robust(Shop, order_id=2, total=total, timeout=5)
            order_paid.disconnect(on_paid_async)
            assert order_paid.send(Shop, order_id=3, total=total) == [(on_paid, None)]
            order_paid.send_robust(Shop, order_id=4, total=total)
            assert [c[1] for c in calls] == [1, 2, 3, 4]
            assert {c[0] for c in calls} == {Shop}
        finally:
            order_paid.disconnect(on_paid)
            order_paid.disconnect(on_paid_async)

    def test_receivers_are_held_weakly_and_described(self) -> None:
        """A typed signal holds receivers weakly and describe() lists them."""

        def on_paid(sender: object, **kwargs: Any) -> None: ...

        receiver(order_paid, priority=3)(on_paid)
        (info,) = order_paid.describe()
        assert info.receiver is on_paid
        assert info.priority == 3
        del on_paid, info
        gc.collect()
        assert order_paid.describe() == []

    def test_connect_refuses_a_receiver_without_kwargs_at_run_time(self) -> None:
        """What the checkers catch is also refused by connect() itself."""

        def no_kwargs(sender: object, *, order_id: int, total: Decimal) -> None: ...

        with pytest.raises(ValueError, match=r"\*\*kwargs"):
            order_paid.connect(no_kwargs)

    def test_the_testing_toolkit_sees_typed_sends(self) -> None:
        """capture_signals records a typed signal's sends like any other."""
        with capture_signals(order_paid) as sent:
            order_paid.send(Shop, order_id=7, total=Decimal(1))
        sent.assert_sent_once_with(
            order_paid, sender=Shop, order_id=7, total=Decimal(1)
        )

    def test_asignal_list_shows_the_payload(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """`asignal list` shows typed signals (the built-in ones are) with their
        names and payload names."""
        assert (
            cli_main(["list", "--import", "asignal.signals", "--format", "json"]) == 0
        )
        listed = {s["name"]: s for s in json.loads(capsys.readouterr().out)}
        assert listed["asignal.signals.request_started"]["providing_args"] == ["scope"]
        assert listed["asignal.signals.pre_init"]["providing_args"] == [
            "args",
            "kwargs",
        ]


class TestBuiltinCatalogue:
    def test_django_style_receivers_still_work(self) -> None:
        """post_save is typed, and `def r(sender, instance, created, **kwargs)`
        is connected and called as before."""
        seen: list[tuple[object, bool]] = []

        @receiver(post_save, sender=Shop)
        def on_saved(sender, instance, created, **kwargs):  # type: ignore[no-untyped-def]
            seen.append((instance, created))

        try:
            shop = Shop()
            post_save.send(
                Shop,
                instance=shop,
                created=True,
                raw=False,
                using="default",
                update_fields=None,
                session=None,
                connection=None,
            )
            assert seen == [(shop, True)]
            assert post_save.providing_args == frozenset(
                {
                    "instance",
                    "created",
                    "raw",
                    "using",
                    "update_fields",
                    "session",
                    "connection",
                }
            )
            assert post_save.name == "asignal.signals.post_save"
            assert (post_save.__doc__ or "").startswith("Sent after a model instance")
        finally:
            post_save.disconnect(on_saved, sender=Shop)


class TestStrict:
    def test_good_values_pass(self) -> None:
        """Values that match their annotations (outer type) are delivered."""
        checked = _strict_signal()
        checked.connect(on_anything)
        untyped = _untyped(checked)
        assert untyped.send(Shop, **GOOD) == [(on_anything, "ok")]

    @pytest.mark.parametrize(
        ("key", "bad", "expected"),
        [
            ("count", "1", "expected int, got str"),
            ("ratio", "2.0", "expected float, got str"),
            ("label", 3, "expected str | None, got int"),
            ("mode", "c", "expected Literal['a', 'b'], got str"),
            ("items", (1,), "expected list[int], got tuple"),
            ("mapping", [("a", 1)], "expected Mapping[str, int], got list"),
            ("kind", int, "expected type["),
            ("kind", Shop(), "expected type["),
            ("callback", 1, "got int"),
            ("order", "3", "got str"),
            ("flushable", object(), "expected Flushable, got object"),
            ("nothing", 0, "expected None, got int"),
        ],
    )
    def test_a_wrong_value_is_refused(
        self, key: str, bad: object, expected: str
    ) -> None:
        """Each wrong value is a TypeError naming the argument, what was expected
        and what came, before any receiver runs."""
        checked = _strict_signal()
        checked.connect(on_anything)
        untyped = _untyped(checked)
        with pytest.raises(TypeError, match=f"argument {key}=") as info:
            untyped.send(Shop, **{**GOOD, key: bad})
        assert expected in str(info.value)
        assert "checked() declares" in str(info.value)

    def test_names_are_checked_too(self) -> None:
        """strict=True also refuses missing and undeclared names (as
        Signal(strict=True)), even with no receiver connected."""
        checked = _strict_signal()
        untyped = _untyped(checked)
        with pytest.raises(TypeError, match="missing count"):
            untyped.send(Shop, **{k: v for k, v in GOOD.items() if k != "count"})
        with pytest.raises(TypeError, match="undeclared extra"):
            untyped.send(Shop, **GOOD, extra=1)
        # the name of **_ is no payload name either
        with pytest.raises(TypeError, match="undeclared _"):
            untyped.send(Shop, **GOOD, _=1)

    @pytest.mark.anyio
    async def test_every_async_send_method_checks(self) -> None:
        """asend and asend_robust check the payload on asyncio and trio, and the
        robust one raises instead of returning the error: it is the caller's."""
        checked = _strict_signal()
        calls: list[object] = []

        async def on_checked(sender: object, **kwargs: Any) -> None:
            calls.append(sender)

        checked.connect(on_checked)
        untyped = _untyped(checked)
        for send in (untyped.asend, untyped.asend_robust):
            with pytest.raises(TypeError, match="argument count='1'"):
                await send(Shop, **{**GOOD, "count": "1"})
        assert calls == []
        await untyped.asend(Shop, **GOOD, timeout=5)
        assert calls == [Shop]

    def test_a_bridge_send_is_checked(self) -> None:
        """A payload handed over by a bridge (SQLAlchemy's greenlet path, through
        the integration seam) is checked as a direct send is."""
        checked = _strict_signal()
        checked.connect(on_anything)
        with pytest.raises(TypeError, match="argument items="):
            send_awaiting(
                checked,
                Shop,
                {**GOOD, "items": "not a list"},
                robust=True,
                await_=lambda coroutine: coroutine,
            )

    def test_send_robust_raises_for_a_bad_payload(self) -> None:
        """A bad payload is the sender's error, never a receiver's result."""
        checked = _strict_signal()
        checked.connect(on_anything)
        untyped = _untyped(checked)
        with pytest.raises(TypeError, match="argument ratio="):
            untyped.send_robust(Shop, **{**GOOD, "ratio": None})

    def test_without_strict_values_are_not_checked(self) -> None:
        """By default a typed signal costs nothing at run time: no value check."""

        def on_paid(sender: object, **kwargs: Any) -> None: ...

        order_paid.connect(on_paid)
        try:
            untyped = _untyped(order_paid)
            assert untyped.send(Shop, order_id="1", total=0.5) == [(on_paid, None)]
        finally:
            order_paid.disconnect(on_paid)

    def test_unresolvable_annotations_are_a_clear_error(self) -> None:
        """strict=True needs the annotations at run time; a name that only exists
        for the type checkers is reported with the fix."""

        @asignal.signal(strict=True)
        def late(*, shop: NotDefinedAnywhere) -> None:  # type: ignore[name-defined]  # noqa: F821
            """Its annotation names nothing that exists at run time."""

        with pytest.raises(TypeError, match="do not resolve at run time") as info:
            late.send(Shop, shop=Shop())
        assert "TYPE_CHECKING" in str(info.value)

"""connect(), disconnect(), has_listeners(), receivers, describe() and @receiver:
Django parity.

Identity is ``(receiver or dispatch_uid, sender)``; senders match by identity;
validation happens at connect time, always.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any

import pytest

from asignal import Connection, ReceiverInfo, Signal, receiver


def on_any(sender: object, **kwargs: Any) -> str:
    return "any"


def on_other(sender: object, **kwargs: Any) -> str:
    return "other"


class Sender:
    pass


class Handler:
    def __call__(self, sender: object, **kwargs: Any) -> str:
        return "called"

    def method(self, sender: object, **kwargs: Any) -> str:
        return "method"


def test_connect_returns_the_receiver_unchanged(signal: Signal) -> None:
    """connect() hands back the very object it was given."""
    assert signal.connect(on_any) is on_any


def test_send_reaches_a_receiver_with_result(signal: Signal) -> None:
    """A connected receiver is called and its result returned beside it."""
    signal.connect(on_any)
    assert signal.send(None) == [(on_any, "any")]


def test_connecting_twice_registers_once(signal: Signal) -> None:
    """The same receiver and sender connected six times is one connection."""
    handler = Handler()
    for _ in range(6):
        signal.connect(handler)
    assert len(signal.receivers) == 1
    assert signal.send(None) == [(handler, "called")]


def test_bound_method_fetched_twice_is_one_receiver(signal: Signal) -> None:
    """obj.method is a new object on each access but the same receiver."""
    handler = Handler()
    signal.connect(handler.method)
    signal.connect(handler.method)
    assert len(signal.receivers) == 1
    assert signal.disconnect(handler.method) is True
    assert signal.receivers == []


def test_same_receiver_any_and_specific_sender_called_twice(signal: Signal) -> None:
    """Connected for any sender and for S, the receiver is two connections and a
    send from S calls both, as in Django."""
    sender = Sender()
    signal.connect(on_any)
    signal.connect(on_any, sender=sender)
    assert signal.send(sender) == [(on_any, "any"), (on_any, "any")]
    assert signal.send(Sender()) == [(on_any, "any")]


def test_dispatch_uid_dedups_different_functions(signal: Signal) -> None:
    """A second receiver with the same dispatch_uid is ignored: first one wins."""
    signal.connect(on_any, dispatch_uid="uid")
    signal.connect(on_other, dispatch_uid="uid")
    assert signal.send(None) == [(on_any, "any")]
    assert signal.disconnect(dispatch_uid="uid") is True
    assert signal.disconnect(dispatch_uid="uid") is False
    assert signal.receivers == []


def test_sender_none_means_any_sender(signal: Signal) -> None:
    """A receiver connected without a sender gets sends from every sender."""
    signal.connect(on_any)
    for sender in (None, Sender, Sender(), 1, "text"):
        assert signal.send(sender) == [(on_any, "any")]


def test_sender_specific_receiver_ignores_other_senders(signal: Signal) -> None:
    """A receiver for one sender is not called for another."""
    signal.connect(on_any, sender=Sender)
    assert signal.send(Sender()) == []
    assert signal.send(None) == []
    assert signal.send(Sender) == [(on_any, "any")]


def test_senders_match_by_identity_not_equality(signal: Signal) -> None:
    """Two equal but distinct tuples are two senders."""
    key = (1, "a", [2])[:2]
    equal = tuple(list(key))  # noqa: C414 - tuple(key) would return key itself
    assert key == equal
    assert key is not equal
    signal.connect(on_any, sender=key)
    assert signal.send(equal) == []
    assert signal.send(key) == [(on_any, "any")]
    signal.disconnect(on_any, sender=key)


def test_non_weakrefable_sender_works(signal: Signal) -> None:
    """A bare object() sender connects, receives and disconnects."""
    sender = object()
    signal.connect(on_any, sender=sender)
    assert signal.send(sender) == [(on_any, "any")]
    assert signal.disconnect(on_any, sender=sender) is True
    assert signal.send(sender) == []


def test_disconnect_returns_whether_it_removed(signal: Signal) -> None:
    """True for a connected receiver, False for one never connected."""
    signal.connect(on_any)
    assert signal.disconnect(on_other) is False
    assert signal.disconnect(on_any) is True
    assert signal.disconnect(on_any) is False
    assert signal.receivers == []


def test_has_listeners_around_connect_and_disconnect(signal: Signal) -> None:
    """has_listeners goes False, True, False around connect and disconnect."""
    sender = object()
    assert not signal.has_listeners()
    assert not signal.has_listeners(sender)
    signal.connect(on_any)
    assert signal.has_listeners()
    assert signal.has_listeners(sender)
    signal.disconnect(on_any)
    assert not signal.has_listeners()
    assert not signal.has_listeners(sender)


def test_has_listeners_for_a_sender(signal: Signal) -> None:
    """has_listeners(sender) says whether a send from it would call anyone;
    has_listeners() counts only receivers for any sender, as in Django."""

    class S: ...

    signal.connect(on_any, sender=S)
    assert signal.has_listeners(S) is True
    assert signal.has_listeners() is False
    signal.connect(on_other)
    assert signal.has_listeners() is True


def test_receivers_is_a_list_of_one_entry_per_connection(signal: Signal) -> None:
    """receivers is [] when empty and has one Connection per connection."""
    assert signal.receivers == []
    assert isinstance(signal.receivers, list)
    signal.connect(on_any)
    signal.connect(on_any, sender=Sender)
    signal.connect(on_other)
    entries = signal.receivers
    assert len(entries) == 3
    assert all(isinstance(entry, Connection) for entry in entries)


def test_receivers_refuses_foreign_entries(signal: Signal) -> None:
    """Assigning something other than Connection entries says what it takes."""
    with pytest.raises(TypeError, match="Connection entries"):
        signal.receivers = [on_any]  # type: ignore[list-item]


def test_live_receivers_in_call_order(signal: Signal) -> None:
    """live_receivers(sender) lists what a send calls, in call order."""
    sender = Sender()
    signal.connect(on_other, sender=sender)
    signal.connect(on_any, priority=1)
    assert signal.live_receivers(sender) == [on_any, on_other]
    assert signal.live_receivers(None) == [on_any]
    assert Signal().live_receivers(None) == []


def test_priority_orders_higher_first_ties_in_connection_order(signal: Signal) -> None:
    """Priority decides first; equal priorities keep connection order."""
    order: list[str] = []

    def make(name: str) -> Any:
        def handler(sender: object, **kwargs: Any) -> None:
            order.append(name)

        return handler

    handlers = {
        name: make(name) for name in ("low", "mid1", "high", "mid2", "negative")
    }
    signal.connect(handlers["low"], weak=False)
    signal.connect(handlers["mid1"], weak=False, priority=5)
    signal.connect(handlers["high"], weak=False, priority=10)
    signal.connect(handlers["mid2"], weak=False, priority=5)
    signal.connect(handlers["negative"], weak=False, priority=-1)
    signal.send(None)
    assert order == ["high", "mid1", "mid2", "low", "negative"]
    assert signal.live_receivers(None) == [handlers[name] for name in order]


def test_priority_merges_any_and_sender_specific(signal: Signal) -> None:
    """Sender-specific and any-sender receivers share one priority order."""
    sender = Sender()
    signal.connect(on_other, sender=sender, priority=2)
    signal.connect(on_any, priority=1)
    assert signal.live_receivers(sender) == [on_other, on_any]


def test_priority_must_be_an_int(signal: Signal) -> None:
    """A non-int priority is refused at connect time."""
    with pytest.raises(TypeError, match="priority must be an int"):
        signal.connect(on_any, priority="high")  # type: ignore[arg-type]


# -- validation ------------------------------------------------------------------


def test_non_callable_is_a_type_error(signal: Signal) -> None:
    """connect(object()) raises TypeError and registers nothing."""
    with pytest.raises(TypeError, match="must be callable"):
        signal.connect(object())  # type: ignore[type-var]
    assert signal.receivers == []


def test_receiver_without_kwargs_is_a_value_error(signal: Signal) -> None:
    """A receiver that cannot take **kwargs raises ValueError showing the fix."""

    def no_kwargs(sender: object) -> None: ...

    with pytest.raises(ValueError, match=r"\*\*kwargs") as info:
        signal.connect(no_kwargs)
    assert "no_kwargs" in str(info.value)
    assert signal.receivers == []


def test_callable_instance_without_kwargs_is_refused(signal: Signal) -> None:
    """The check looks at a callable instance's __call__ too."""

    class Bad:
        def __call__(self, sender: object) -> None: ...

    with pytest.raises(ValueError, match=r"\*\*kwargs"):
        signal.connect(Bad())


def test_partial_with_kwargs_is_accepted(signal: Signal) -> None:
    """A functools.partial of a **kwargs function is a valid receiver."""

    def tagged(tag: str, sender: object, **kwargs: Any) -> str:
        return tag

    bound = functools.partial(tagged, "t")
    signal.connect(bound, weak=False)
    assert signal.send(None) == [(bound, "t")]


def test_coroutine_object_shows_the_fix(signal: Signal) -> None:
    """connect(handler()) explains to pass the function, without parentheses."""

    async def handler(sender: object, **kwargs: Any) -> None: ...

    with pytest.raises(TypeError, match=r"signal\.connect\(handler\)") as info:
        signal.connect(handler(None))  # type: ignore[type-var,unused-coroutine]
    assert "coroutine" in str(info.value)
    assert signal.receivers == []


# -- @receiver ---------------------------------------------------------------------


def test_receiver_decorator_with_list_and_tuple() -> None:
    """@receiver([a, b]) and @receiver((c,)) connect to every signal listed."""
    a, b, c = Signal(), Signal(), Signal()

    @receiver([a, b])
    @receiver((c,))
    def handler(sender: object, **kwargs: Any) -> str:
        return "ok"

    for sig in (a, b, c):
        assert sig.send(None) == [(handler, "ok")]


def test_receiver_decorator_passes_connect_options() -> None:
    """sender, dispatch_uid and priority reach connect()."""
    sig = Signal()
    sender = Sender()

    @receiver(sig, sender=sender, dispatch_uid="x", priority=4, weak=False)
    def handler(sender: object, **kwargs: Any) -> None: ...

    (info,) = sig.describe()
    assert (info.sender, info.dispatch_uid, info.priority, info.weak) == (
        sender,
        "x",
        4,
        False,
    )
    assert sig.send(None) == []


def test_receiver_decorator_rejects_a_non_signal() -> None:
    """@receiver(function) (signal forgotten) is a clear TypeError."""
    with pytest.raises(TypeError, match="takes a Signal"):
        receiver(on_any)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="takes a Signal"):
        receiver([Signal(), "post_save"])  # type: ignore[list-item]


def test_class_receiver_is_sync_even_with_async_call(signal: Signal) -> None:
    """A class connected as a receiver is called (it constructs an instance),
    even when its instances have an async __call__."""

    class Created:
        def __init__(self, sender: object, **kwargs: Any) -> None:
            self.sender = sender

        async def __call__(self, **kwargs: Any) -> None: ...

    signal.connect(Created)
    assert signal.describe()[0].is_async is False
    ((fn, result),) = signal.send("s")
    assert fn is Created
    assert isinstance(result, Created)
    assert result.sender == "s"


def test_same_receiver_different_senders_registers_twice(signal: Signal) -> None:
    """The key is (receiver, sender): two senders are two connections."""

    class A: ...

    class B: ...

    signal.connect(on_any, sender=A)
    signal.connect(on_any, sender=B)
    assert len(signal.receivers) == 2
    assert signal.send(A) == [(on_any, "any")]


def test_disconnect_by_dispatch_uid_needs_the_sender(signal: Signal) -> None:
    """disconnect() builds the same key as connect(): uid and sender."""

    class S: ...

    signal.connect(on_any, sender=S, dispatch_uid="uid")
    assert signal.disconnect(dispatch_uid="uid") is False
    assert signal.disconnect(dispatch_uid="uid", sender=S) is True
    assert signal.receivers == []


def test_disconnect_without_receiver_or_uid_is_an_error(signal: Signal) -> None:
    """disconnect() with nothing to identify the receiver says so."""
    with pytest.raises(TypeError, match="receiver or its dispatch_uid"):
        signal.disconnect()


def test_reconnect_goes_to_the_end(signal: Signal) -> None:
    """A receiver connected again after a disconnect runs last."""
    signal.connect(on_any)
    signal.connect(on_other)
    signal.disconnect(on_any)
    signal.connect(on_any)
    assert [r for r, _ in signal.send(None)] == [on_other, on_any]


def test_generator_function_is_rejected(signal: Signal) -> None:
    """A generator function would never run its body: rejected."""

    def gen(sender: object, **kwargs: Any) -> Any:
        yield 1

    with pytest.raises(TypeError, match="generator"):
        signal.connect(gen)


def test_weak_connect_of_non_weakrefable_says_weak_false(signal: Signal) -> None:
    """A receiver that cannot be weakly referenced gets a hint to use weak=False."""

    class Slotted:
        __slots__ = ()

        def __call__(self, sender: object, **kwargs: Any) -> str:
            return "slotted"

    instance = Slotted()
    with pytest.raises(TypeError, match="weak=False"):
        signal.connect(instance)
    signal.connect(instance, weak=False)
    assert signal.send(None) == [(instance, "slotted")]


def test_any_sender_and_sender_receivers_keep_connection_order(
    signal: Signal,
) -> None:
    """Receivers for any sender and for one sender interleave in connection
    order."""

    class S: ...

    def a(sender: object, **kwargs: Any) -> str:
        return "a"

    def b(sender: object, **kwargs: Any) -> str:
        return "b"

    def c(sender: object, **kwargs: Any) -> str:
        return "c"

    signal.connect(a)
    signal.connect(b, sender=S)
    signal.connect(c)
    assert [r for _, r in signal.send(S)] == ["a", "b", "c"]
    assert [r for _, r in signal.send(None)] == ["a", "c"]


def test_receivers_can_be_saved_and_restored(signal: Signal) -> None:
    """Django test tooling's mute pattern: save, assign [], restore."""
    signal.connect(on_any)
    saved = signal.receivers
    signal.receivers = []
    signal.sender_receivers_cache.clear()
    assert signal.send(None) == []
    signal.receivers = saved
    assert signal.send(None) == [(on_any, "any")]


def test_describe_gives_name_location_and_flags(signal: Signal) -> None:
    """describe() reports each live connection for tooling."""

    async def handler(sender: object, **kwargs: Any) -> None: ...

    signal.connect(on_any, priority=2)
    signal.connect(handler, weak=False, dispatch_uid="h")
    first, second = signal.describe()
    assert isinstance(first, ReceiverInfo)
    assert first.receiver is on_any
    assert first.name == f"{on_any.__module__}.on_any"
    assert first.file == __file__
    assert first.line == on_any.__code__.co_firstlineno
    assert (first.is_async, first.weak, first.priority) == (False, True, 2)
    assert (second.is_async, second.weak, second.dispatch_uid) == (
        True,
        False,
        "h",
    )


def test_receiver_decorator_returns_the_function_unchanged(signal: Signal) -> None:
    """@receiver connects and returns the very same function."""

    def handler(sender: object, **kwargs: Any) -> int:
        return 1

    assert receiver(signal, weak=False)(handler) is handler
    assert signal.send(None) == [(handler, 1)]


def test_receiver_decorator_connects_for_the_given_sender() -> None:
    """@receiver takes a list of signals and passes sender/priority through."""
    one, two = Signal(), Signal()

    class S: ...

    @receiver([one, two], sender=S, weak=False, priority=3)
    def handler(sender: object, **kwargs: Any) -> str:
        return "h"

    assert one.send(S) == [(handler, "h")]
    assert two.send(S) == [(handler, "h")]
    assert one.send(None) == []
    assert one.describe()[0].priority == 3


def test_partial_of_async_function_is_async(signal: Signal) -> None:
    """functools.partial of a coroutine function is classified as async."""

    async def handler(sender: object, tag: str, **kwargs: Any) -> str:
        return tag

    signal.connect(functools.partial(handler, tag="p"), weak=False)
    assert signal.describe()[0].is_async is True


@pytest.mark.skipif(
    not hasattr(inspect, "markcoroutinefunction"), reason="Python 3.12+"
)
def test_a_function_marked_as_a_coroutine_function_is_async() -> None:
    """inspect.markcoroutinefunction makes a sync function an async receiver."""

    def handler(sender: object, **kwargs: object) -> Any:
        async def run() -> str:
            return "ran"

        return run()

    marked = inspect.markcoroutinefunction(handler)  # type: ignore[attr-defined,unused-ignore]
    signal = Signal()
    signal.connect(marked)
    [info] = signal.describe()
    assert info.is_async

"""connect(), disconnect(), identity, validation and introspection."""

from __future__ import annotations

import functools
import gc
import inspect
from typing import Any

import pytest

from asignal import ReceiverInfo, Signal, receiver


def plain(sender: object, **kwargs: Any) -> str:
    return "plain"


def other(sender: object, **kwargs: Any) -> str:
    return "other"


class TestIdentity:
    def test_same_receiver_twice_registers_once(self, signal: Signal) -> None:
        """Connecting the same receiver for the same sender again changes nothing."""
        signal.connect(plain)
        signal.connect(plain)
        assert len(signal.receivers) == 1
        assert signal.send(None) == [(plain, "plain")]

    def test_same_receiver_different_senders_registers_twice(
        self, signal: Signal
    ) -> None:
        """The key is (receiver, sender): two senders are two connections."""

        class A: ...

        class B: ...

        signal.connect(plain, sender=A)
        signal.connect(plain, sender=B)
        assert len(signal.receivers) == 2
        assert signal.send(A) == [(plain, "plain")]

    def test_disconnect_by_dispatch_uid_needs_the_sender(self, signal: Signal) -> None:
        """disconnect() builds the same key as connect(): uid and sender."""

        class S: ...

        signal.connect(plain, sender=S, dispatch_uid="uid")
        assert signal.disconnect(dispatch_uid="uid") is False
        assert signal.disconnect(dispatch_uid="uid", sender=S) is True
        assert signal.receivers == []

    def test_disconnect_without_receiver_or_uid_is_an_error(
        self, signal: Signal
    ) -> None:
        """disconnect() with nothing to identify the receiver says so."""
        with pytest.raises(TypeError, match="receiver or its dispatch_uid"):
            signal.disconnect()

    def test_reconnect_goes_to_the_end(self, signal: Signal) -> None:
        """A receiver connected again after a disconnect runs last."""
        signal.connect(plain)
        signal.connect(other)
        signal.disconnect(plain)
        signal.connect(plain)
        assert [r for r, _ in signal.send(None)] == [other, plain]


class TestSenders:
    def test_senders_match_by_identity_not_equality(self, signal: Signal) -> None:
        """Two equal but distinct senders do not match each other."""
        first = [1]
        second = [1]
        signal.connect(plain, sender=first)  # lists cannot be weakly referenced
        assert signal.send(second) == []
        assert signal.send(first) == [(plain, "plain")]

    def test_dead_sender_connections_are_pruned(self, signal: Signal) -> None:
        """When a weakly held sender is collected, its connections go."""

        class Model: ...

        signal.connect(plain, sender=Model, weak=False)
        del Model
        gc.collect()
        signal.send(None)
        assert signal.receivers == []


class TestValidation:
    def test_generator_function_is_rejected(self, signal: Signal) -> None:
        """A generator function would never run its body: rejected."""

        def gen(sender: object, **kwargs: Any) -> Any:
            yield 1

        with pytest.raises(TypeError, match="generator"):
            signal.connect(gen)

    def test_weak_connect_of_non_weakrefable_says_weak_false(
        self, signal: Signal
    ) -> None:
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


class TestOrderAndIntrospection:
    def test_any_sender_and_sender_receivers_keep_connection_order(
        self, signal: Signal
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

    def test_receivers_can_be_saved_and_restored(self, signal: Signal) -> None:
        """Django test tooling's mute pattern: save, assign [], restore."""
        signal.connect(plain)
        saved = signal.receivers
        signal.receivers = []
        signal.sender_receivers_cache.clear()
        assert signal.send(None) == []
        signal.receivers = saved
        assert signal.send(None) == [(plain, "plain")]

    def test_has_listeners(self, signal: Signal) -> None:
        """has_listeners(sender) says whether a send from it would call anyone."""

        class S: ...

        assert signal.has_listeners() is False
        signal.connect(plain, sender=S)
        assert signal.has_listeners(S) is True
        assert signal.has_listeners() is False  # Django: only any-sender receivers
        signal.connect(other)
        assert signal.has_listeners() is True

    def test_describe_gives_name_location_and_flags(self, signal: Signal) -> None:
        """describe() reports each live connection for tooling."""

        async def handler(sender: object, **kwargs: Any) -> None: ...

        signal.connect(plain, priority=2)
        signal.connect(handler, weak=False, dispatch_uid="h")
        first, second = signal.describe()
        assert isinstance(first, ReceiverInfo)
        assert first.receiver is plain
        assert first.name.endswith("test_core_connect.plain")
        assert first.file is not None
        assert first.file.endswith("test_core_connect.py")
        assert first.line == plain.__code__.co_firstlineno
        assert (first.is_async, first.weak, first.priority) == (False, True, 2)
        assert (second.is_async, second.weak, second.dispatch_uid) == (
            True,
            False,
            "h",
        )


class TestReceiverDecorator:
    def test_returns_function_unchanged(self, signal: Signal) -> None:
        """@receiver connects and returns the very same function."""

        def handler(sender: object, **kwargs: Any) -> int:
            return 1

        assert receiver(signal, weak=False)(handler) is handler
        assert signal.send(None) == [(handler, 1)]

    def test_list_of_signals_and_connect_options(self) -> None:
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


class TestCallableKinds:
    def test_partial_of_async_function_is_async(self, signal: Signal) -> None:
        """functools.partial of a coroutine function is classified as async."""

        async def handler(sender: object, tag: str, **kwargs: Any) -> str:
            return tag

        signal.connect(functools.partial(handler, tag="p"), weak=False)
        assert signal.describe()[0].is_async is True


def test_tuple_dispatch_uids_never_collide_with_sender_specific_keys() -> None:
    # Connections to any sender are keyed by the bare receiver key when it is not a
    # tuple (to save memory); a tuple uid must still be told apart from the
    # (receiver key, sender key) of a connection to one sender.
    signal = Signal()

    class Sender:
        pass

    sender = Sender()

    def a(sender: object, **kwargs: object) -> str:
        return "a"

    def b(sender: object, **kwargs: object) -> str:
        return "b"

    signal.connect(a, dispatch_uid=("uid", id(sender)))
    signal.connect(b, sender=sender, dispatch_uid="uid")
    assert [r for r, _ in signal.send(sender)] == [a, b]
    assert signal.disconnect(dispatch_uid="uid", sender=sender)
    assert [r for r, _ in signal.send(sender)] == [a]
    assert signal.disconnect(dispatch_uid=("uid", id(sender)))
    assert signal.send(sender) == []


@pytest.mark.skipif(
    not hasattr(inspect, "markcoroutinefunction"), reason="Python 3.12+"
)
def test_a_function_marked_as_a_coroutine_function_is_async() -> None:
    def handler(sender: object, **kwargs: object) -> Any:
        async def run() -> str:
            return "ran"

        return run()

    marked = inspect.markcoroutinefunction(handler)  # type: ignore[attr-defined,unused-ignore]
    signal = Signal()
    signal.connect(marked)
    [info] = signal.describe()
    assert info.is_async


def test_connecting_a_plain_function_gives_it_no_attribute_dict() -> None:
    # Connecting must not add memory to the receiver itself (benchmarks/, M1):
    # reading a function's __dict__ would create one.
    def handler(sender: object, **kwargs: object) -> None:
        pass

    def dicts() -> int:
        return sum(type(r) is dict for r in gc.get_referents(handler))

    before = dicts()
    signal = Signal()
    signal.connect(handler)
    assert dicts() == before
    assert not signal.describe()[0].is_async

"""asignal.testing: capture_signals, mute, connected_to, isolated."""

from __future__ import annotations

import contextvars
import threading
from typing import Any

import anyio
import pytest

from asignal import Signal
from asignal.testing import capture_signals, connected_to, isolated, mute


def noop(sender: object, **kwargs: Any) -> str:
    return "called"


class TestCapture:
    def test_records_sends_with_nothing_connected(self, signal: Signal) -> None:
        """Every send is recorded: signal, sender, kwargs and method."""
        with capture_signals(signal) as sent:
            signal.send("S", a=1)
            signal.send_robust(sender="T", b=2)
        [first, second] = sent.records
        assert (first.signal, first.sender, first.kwargs, first.method) == (
            signal,
            "S",
            {"a": 1},
            "send",
        )
        assert second.method == "send_robust"

    def test_only_the_given_signals_or_all(self, signal: Signal) -> None:
        """capture_signals(sig) ignores other signals; no argument captures all."""
        other = Signal(name="other")
        with capture_signals(signal) as only, capture_signals() as every:
            signal.send(None)
            other.send(None)
        assert [r.signal for r in only] == [signal]
        assert [r.signal for r in every] == [signal, other]

    def test_stops_recording_on_exit(self, signal: Signal) -> None:
        """Nothing is recorded after the block."""
        with capture_signals(signal) as sent:
            pass
        signal.send(None)
        assert len(sent) == 0

    def test_assert_sent_matches_sender_and_kwargs_subset(self, signal: Signal) -> None:
        """assert_sent: same sender if given, kwargs include those given."""
        with capture_signals(signal) as sent:
            signal.send("S", a=1, b=2)
        sent.assert_sent(signal)
        sent.assert_sent(signal, sender="S", a=1)
        with pytest.raises(AssertionError, match=r"sent:\n.*a=1, b=2"):
            sent.assert_sent(signal, a=3)
        with pytest.raises(AssertionError, match="sender='X'"):
            sent.assert_sent(signal, sender="X")

    def test_assert_sent_once_with_is_exact(self, signal: Signal) -> None:
        """assert_sent_once_with: exactly one send, exactly those kwargs."""
        with capture_signals(signal) as sent:
            signal.send("S", a=1)
        sent.assert_sent_once_with(signal, sender="S", a=1)
        with pytest.raises(AssertionError):
            sent.assert_sent_once_with(signal, sender="S")  # kwargs differ
        with capture_signals(signal) as twice:
            signal.send("S", a=1)
            signal.send("S", a=1)
        with pytest.raises(AssertionError, match="2 times"):
            twice.assert_sent_once_with(signal, sender="S", a=1)

    def test_assert_not_sent(self, signal: Signal) -> None:
        """assert_not_sent fails listing what was sent."""
        with capture_signals() as sent:
            Signal(name="elsewhere").send(None)
        sent.assert_not_sent(signal)
        with capture_signals(signal) as sent:
            signal.send(None, x=1)
        with pytest.raises(AssertionError, match="x=1"):
            sent.assert_not_sent(signal)

    def test_records_while_muted(self, signal: Signal) -> None:
        """A muted send is still recorded, though no receiver runs."""
        calls: list[str] = []
        signal.connect(lambda sender, **kw: calls.append("r"), weak=False)
        with capture_signals(signal) as sent, mute(signal):
            assert signal.send(None) == []
        assert calls == []
        sent.assert_sent(signal)

    def test_records_sends_from_threads(self, signal: Signal) -> None:
        """Sends from other threads are recorded too."""
        with capture_signals(signal) as sent:
            thread = threading.Thread(target=signal.send, args=("thread",))
            thread.start()
            thread.join(5)
        sent.assert_sent(signal, sender="thread")

    def test_rejects_non_signals(self) -> None:
        """capture_signals() with a non-signal says what it got."""
        with pytest.raises(TypeError, match="takes signals"):
            capture_signals("post_save")  # type: ignore[arg-type]


@pytest.mark.anyio
class TestCaptureAsync:
    async def test_async_with_and_asend_method(self, signal: Signal) -> None:
        """capture_signals works with async with and records asend."""
        async with capture_signals(signal) as sent:
            await signal.asend("S", a=1)
            await signal.asend_robust("S")
        assert [r.method for r in sent] == ["asend", "asend_robust"]

    async def test_wait_for_background_send(self, signal: Signal) -> None:
        """wait_for returns the record once a background task sends it."""
        async with capture_signals(signal) as sent, anyio.create_task_group() as tg:

            async def later() -> None:
                await anyio.sleep(0.02)
                await signal.asend("bg", n=2)

            tg.start_soon(later)
            record = await sent.wait_for(signal, n=2, timeout=5)
            assert record.sender == "bg"

    async def test_wait_for_times_out_naming_what_was_sent(
        self, signal: Signal
    ) -> None:
        """wait_for raises TimeoutError listing the sends that did happen."""
        async with capture_signals(signal) as sent:
            await signal.asend("S", n=1)
            with pytest.raises(TimeoutError, match=r"n=2.*sent:\n.*n=1"):
                await sent.wait_for(signal, n=2, timeout=0.05)


class TestMute:
    def test_mutes_only_the_given_signals(self, signal: Signal) -> None:
        """mute(sig) silences that signal only; mute() silences all."""
        other = Signal()
        signal.connect(noop)
        other.connect(noop)
        with mute(signal):
            assert signal.send(None) == []
            assert other.send(None) == [(noop, "called")]
        with mute():
            assert other.send(None) == []
        assert signal.send(None) == [(noop, "called")]

    def test_decorator_sync(self, signal: Signal) -> None:
        """@mute(sig) mutes while the decorated function runs."""
        signal.connect(noop)

        @mute(signal)
        def inside() -> list[Any]:
            return signal.send(None)

        assert inside() == []
        assert signal.send(None) == [(noop, "called")]

    def test_is_task_local(self, signal: Signal) -> None:
        """A mute in one thread (context) does not mute another."""
        signal.connect(noop)
        seen: list[Any] = []
        with mute(signal):
            thread = threading.Thread(target=lambda: seen.append(signal.send(None)))
            thread.start()
            thread.join(5)
        assert seen == [[(noop, "called")]]

    def test_undone_when_the_context_changed(self, signal: Signal) -> None:
        """Entered in one context and left in another (as some runners do), the
        mute is still undone."""
        signal.connect(noop)
        muting = mute(signal)
        outer = contextvars.copy_context()
        outer.run(muting.__enter__)
        inner = outer.copy()
        inner.run(muting.__exit__)
        assert inner.run(signal.send, None) == [(noop, "called")]

    def test_undone_when_the_block_raises(self, signal: Signal) -> None:
        """An exception in the block still unmutes."""
        signal.connect(noop)
        with pytest.raises(RuntimeError), mute(signal):
            raise RuntimeError
        assert signal.send(None) == [(noop, "called")]

    def test_nested_mutes_add_up(self, signal: Signal) -> None:
        """An inner mute keeps the outer one's signals muted."""
        other = Signal()
        signal.connect(noop)
        other.connect(noop)
        with mute(signal), mute(other):
            assert signal.send(None) == []
            assert other.send(None) == []
        with mute(signal):
            assert signal.send(None) == []
        assert signal.send(None) != []


@pytest.mark.anyio
class TestMuteAsync:
    async def test_async_decorator_and_spawned_tasks(self, signal: Signal) -> None:
        """An async function decorated with @mute, and the tasks it starts, see the
        mute; a concurrent task that did not enter it does not."""
        signal.connect(noop)
        results: dict[str, Any] = {}
        muted_now = anyio.Event()
        release = anyio.Event()

        @mute(signal)
        async def muted_task() -> None:
            async with anyio.create_task_group() as tg:

                async def child() -> None:
                    results["child"] = await signal.asend(None)

                tg.start_soon(child)
            results["own"] = await signal.asend(None)
            muted_now.set()
            await release.wait()

        async def bystander() -> None:
            await muted_now.wait()
            results["bystander"] = await signal.asend(None)
            release.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(muted_task)
            tg.start_soon(bystander)
        assert results == {
            "child": [],
            "own": [],
            "bystander": [(noop, "called")],
        }


class TestConnectedToAndIsolated:
    def test_connected_to_disconnects_even_on_error(self, signal: Signal) -> None:
        """connected_to connects strongly for the block only."""

        def temp(sender: object, **kwargs: Any) -> str:
            return "temp"

        def use() -> None:
            with connected_to(temp, signal) as r:
                assert r is temp
                assert signal.send(None) == [(temp, "temp")]
                raise ValueError("inside the block")

        with pytest.raises(ValueError, match="inside the block"):
            use()
        assert signal.receivers == []

    @pytest.mark.anyio
    async def test_connected_to_async_with_sender(self, signal: Signal) -> None:
        """connected_to works with async with and a sender filter."""

        class S: ...

        async with connected_to(noop, signal, sender=S):
            assert await signal.asend(S) == [(noop, "called")]
            assert await signal.asend(None) == []
        assert signal.receivers == []

    @pytest.mark.anyio
    async def test_connected_to_keeps_the_apps_own_connection(
        self, signal: Signal
    ) -> None:
        """A receiver the app already connected stays connected after the block
        (with sync and async with), called once inside it."""

        class S: ...

        signal.connect(noop)
        signal.connect(noop, sender=S, priority=5)
        before = signal.describe()
        with connected_to(noop, signal) as r:
            assert r is noop
            assert signal.send(None) == [(noop, "called")]
        async with connected_to(noop, signal, sender=S):
            assert await signal.asend(S) == [(noop, "called"), (noop, "called")]
        assert signal.describe() == before

    def test_connected_to_removes_only_what_it_added(self, signal: Signal) -> None:
        """Connected under another key than the app's connection (another sender,
        or the app's has a dispatch_uid): the block's own connection goes, the
        app's stays."""

        class S: ...

        signal.connect(noop)
        with connected_to(noop, signal, sender=S):
            assert len(signal.receivers) == 2
        assert [info.sender for info in signal.describe()] == [None]
        signal.disconnect(noop)
        signal.connect(noop, dispatch_uid="app")  # another key: the block adds its own
        with connected_to(noop, signal):
            assert len(signal.receivers) == 2
        assert [info.dispatch_uid for info in signal.describe()] == ["app"]

    def test_isolated_restores_given_signals(self, signal: Signal) -> None:
        """isolated(sig) puts back exactly the receivers it had."""
        signal.connect(noop)
        with isolated(signal):
            signal.disconnect(noop)
            signal.connect(lambda sender, **kw: None, weak=False)
        assert signal.live_receivers(None) == [noop]

    def test_isolated_without_arguments_covers_every_signal(self) -> None:
        """isolated() snapshots every existing signal."""
        first, second = Signal(), Signal()
        with isolated():
            first.connect(noop)
            second.connect(noop)
        assert first.receivers == []
        assert second.receivers == []

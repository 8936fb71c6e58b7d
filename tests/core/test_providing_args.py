"""Signal(providing_args=[...]): Django's old spelling works, is kept for
introspection, and is checked on every send in strict or debug mode.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from typing import Any

import pytest

from asignal import Signal, SignalArgumentsWarning
from asignal import signals as builtin


def handler(sender: object, **kwargs: Any) -> str:
    return "handled"


async def ahandler(sender: object, **kwargs: Any) -> str:
    return "ahandled"


def test_without_providing_args_it_is_none() -> None:
    """A signal that declares nothing says so with None."""
    assert Signal().providing_args is None


def test_builtin_signals_declare_their_payload() -> None:
    """The built-in signals carry Django's payload names."""
    assert builtin.post_save.providing_args is not None
    assert {"instance", "created"} <= builtin.post_save.providing_args


@pytest.mark.parametrize("method", ["send", "send_robust"])
def test_strict_refuses_missing_and_extra(method: str) -> None:
    """strict=True: TypeError naming what is missing and what is undeclared; no
    receiver is called; even robust sends raise (a caller error)."""
    sig = Signal(providing_args=["instance", "created"], strict=True)
    called = False

    def spy(sender: object, **kwargs: Any) -> None:
        nonlocal called
        called = True

    sig.connect(spy)
    with pytest.raises(TypeError, match="missing created; undeclared colour"):
        getattr(sig, method)(object, instance=1, colour="red")
    assert not called
    getattr(sig, method)(object, instance=1, created=False)
    assert called


def test_strict_checks_even_with_nothing_connected() -> None:
    """A wrong send is caught before any receiver is connected."""
    sig = Signal(providing_args=["instance"], strict=True)
    with pytest.raises(TypeError, match="missing instance"):
        sig.send(sender=object)


@pytest.mark.anyio
@pytest.mark.parametrize("method", ["asend", "asend_robust"])
async def test_strict_checks_async_sends(method: str) -> None:
    """asend and asend_robust are checked too; timeout= is not payload."""
    sig = Signal(providing_args=["instance"], strict=True)
    with pytest.raises(TypeError, match="missing instance"):
        await getattr(sig, method)(object)  # checked with nothing connected too
    sig.connect(ahandler)
    with pytest.raises(TypeError, match="undeclared extra"):
        await getattr(sig, method)(object, instance=1, extra=2)
    results = await getattr(sig, method)(object, instance=1, timeout=5)
    assert results == [(ahandler, "ahandled")]


def test_debug_env_warns(monkeypatch: pytest.MonkeyPatch) -> None:
    """ASIGNAL_DEBUG=1: a mismatch warns SignalArgumentsWarning and still sends."""
    monkeypatch.setenv("ASIGNAL_DEBUG", "1")
    sig = Signal(providing_args=["instance"], name="orders")
    sig.connect(handler)
    with pytest.warns(SignalArgumentsWarning, match="'orders'.*missing instance"):
        assert sig.send(object) == [(handler, "handled")]
    with pytest.warns(SignalArgumentsWarning, match="undeclared extra"):
        sig.send(object, instance=1, extra=2)


def test_dev_mode_warns() -> None:
    """python -X dev turns the check on as a warning."""
    code = textwrap.dedent(
        """
        import warnings
        from asignal import Signal, SignalArgumentsWarning
        sig = Signal(providing_args=["instance"])
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            sig.send(object, other=1)
        print([w.category.__name__ for w in caught])
        """
    )
    out = subprocess.run(
        [sys.executable, "-X", "dev", "-c", code],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "SignalArgumentsWarning" in out


@pytest.mark.parametrize("method", ["send", "send_robust"])
def test_debug_warning_points_at_the_sending_line(
    monkeypatch: pytest.MonkeyPatch, method: str
) -> None:
    """The warning is attributed to the caller's file, for every send method."""
    monkeypatch.setenv("ASIGNAL_DEBUG", "1")
    sig = Signal(providing_args=["instance"])
    with pytest.warns(SignalArgumentsWarning) as caught:
        getattr(sig, method)(object)
    assert caught[0].filename == __file__


@pytest.mark.anyio
@pytest.mark.parametrize("method", ["asend", "asend_robust"])
async def test_debug_warning_points_at_the_awaiting_line(
    monkeypatch: pytest.MonkeyPatch, method: str
) -> None:
    """For the async methods too, the warning names the caller's file."""
    monkeypatch.setenv("ASIGNAL_DEBUG", "1")
    sig = Signal(providing_args=["instance"])
    with pytest.warns(SignalArgumentsWarning) as caught:
        await getattr(sig, method)(object)
    assert caught[0].filename == __file__


def test_old_spelling_works_and_is_kept() -> None:
    """providing_args is accepted and visible for introspection."""
    sig = Signal(providing_args=["instance", "created"])
    sig.connect(handler)
    assert sig.providing_args == frozenset({"instance", "created"})
    assert sig.send(sender=object, instance=1, created=True) == [(handler, "handled")]
    # without strict or debug mode, a mismatch is not checked (Django 3.x behaviour)
    assert sig.send(sender=object, unexpected=1) == [(handler, "handled")]


def test_strict_without_providing_args_is_an_error() -> None:
    """strict=True needs a declaration to check against."""
    with pytest.raises(ValueError, match="providing_args"):
        Signal(strict=True)


def test_a_string_is_not_a_list_of_arguments() -> None:
    """providing_args="instance" would be split into letters: refused."""
    with pytest.raises(TypeError, match="list of argument names") as info:
        Signal(providing_args="instance")
    assert "['instance']" in str(info.value)

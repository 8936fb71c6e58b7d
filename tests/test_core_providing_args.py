"""Signal(providing_args=[...]): the old Django spelling, kept and checked."""

from __future__ import annotations

from typing import Any

import pytest

from asignal import Signal


def handler(sender: object, **kwargs: Any) -> None: ...


def test_old_spelling_works_and_is_kept() -> None:
    """providing_args is accepted and visible for introspection."""
    sig = Signal(providing_args=["instance", "created"])
    sig.connect(handler)
    assert sig.providing_args == frozenset({"instance", "created"})
    assert sig.send(sender=object, instance=1, created=True) == [(handler, None)]
    # without strict or debug mode, a mismatch is not checked (Django 3.x behaviour)
    assert sig.send(sender=object, unexpected=1) == [(handler, None)]


def test_strict_without_providing_args_is_an_error() -> None:
    """strict=True needs a declaration to check against."""
    with pytest.raises(ValueError, match="providing_args"):
        Signal(strict=True)


def test_a_string_is_not_a_list_of_arguments() -> None:
    """providing_args="instance" would be split into letters: refused."""
    with pytest.raises(TypeError, match="list of argument names") as info:
        Signal(providing_args="instance")
    assert "['instance']" in str(info.value)

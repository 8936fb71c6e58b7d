"""The public surface of ``asignal``: ``__all__`` is honest and complete, and the
public objects name the public module (import cost: test_guards.py).
"""

from __future__ import annotations

import inspect
import types

import asignal


def _public_names() -> set[str]:
    return {
        name
        for name, value in vars(asignal).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and name != "annotations"  # from __future__ import annotations
    }


def test_all_names_exactly_the_public_attributes() -> None:
    """Every name in __all__ exists, and every public attribute is in __all__."""
    assert set(asignal.__all__) == _public_names()
    assert all(hasattr(asignal, name) for name in asignal.__all__)


def test_all_is_sorted_without_duplicates() -> None:
    """__all__ is kept sorted and lists each name once."""
    assert asignal.__all__ == sorted(set(asignal.__all__))


def test_the_django_api_is_exported() -> None:
    """`from asignal import Signal, receiver` works, with Django's methods."""
    from asignal import Signal, receiver

    assert callable(receiver)
    for method in (
        "connect",
        "disconnect",
        "has_listeners",
        "send",
        "send_robust",
        "asend",
        "asend_robust",
        "live_receivers",
    ):
        assert callable(getattr(Signal, method)), method
    assert inspect.iscoroutinefunction(Signal.asend)
    assert inspect.iscoroutinefunction(Signal.asend_robust)


def test_connect_signature_matches_django() -> None:
    """connect/disconnect keep Django's positional parameters; extras are
    keyword-only."""
    params = inspect.signature(asignal.Signal.connect).parameters
    assert list(params)[:5] == ["self", "receiver", "sender", "weak", "dispatch_uid"]
    for name in ("priority", "inline"):
        assert params[name].kind is inspect.Parameter.KEYWORD_ONLY
    disconnect = inspect.signature(asignal.Signal.disconnect).parameters
    assert list(disconnect) == ["self", "receiver", "sender", "dispatch_uid"]


def test_public_objects_show_the_public_module() -> None:
    """Reprs and tracebacks name asignal.X, not a private module."""
    for name in asignal.__all__:
        assert getattr(asignal, name).__module__ == "asignal", name


def test_version_is_a_string() -> None:
    """asignal.__version__ is available for bug reports."""
    assert isinstance(asignal.__version__, str)

"""The public surface of ``asignal.asgi``: a curated facade over private modules."""

from __future__ import annotations

import types

import asignal.asgi


def test_all_names_exactly_the_public_attributes() -> None:
    """Every name in __all__ exists, and every public attribute is in __all__."""
    public = {
        name
        for name, value in vars(asignal.asgi).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and name != "annotations"
    }
    assert set(asignal.asgi.__all__) == public


def test_classes_and_functions_show_the_public_module() -> None:
    """Reprs and tracebacks name asignal.asgi.X, not a private module."""
    for name in asignal.asgi.__all__:
        value = getattr(asignal.asgi, name)
        # Python 3.10 counts a generic alias such as Callable[...] as a type.
        if isinstance(value, (type, types.FunctionType)) and not isinstance(
            value, types.GenericAlias
        ):
            assert value.__module__ == "asignal.asgi", name

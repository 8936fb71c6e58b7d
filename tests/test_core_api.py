"""The public surface: __all__, public module paths, import cost."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import asignal


def test_all_lists_exactly_the_public_names() -> None:
    """asignal.__all__ is sorted and names every public attribute, no more."""
    public = {
        name
        for name, value in vars(asignal).items()
        if not name.startswith("_") and not isinstance(value, type(sys))
    }
    public.discard("annotations")  # from __future__
    assert sorted(asignal.__all__) == asignal.__all__
    assert set(asignal.__all__) == public


def test_public_objects_report_the_public_module() -> None:
    """Reprs and tracebacks show asignal.X, not the private module."""
    for name in asignal.__all__:
        assert getattr(asignal, name).__module__ == "asignal", name


def test_import_loads_only_stdlib_and_anyio() -> None:
    """`import asignal` imports nothing beyond the standard library and anyio
    (with anyio's own dependencies); no integration module is loaded."""
    code = textwrap.dedent(
        """
        import sys
        before = set(sys.modules)
        import asignal
        loaded = {m.split(".")[0] for m in set(sys.modules) - before}
        print(" ".join(sorted(loaded)))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    third_party = {
        name
        for name in out
        if name not in sys.stdlib_module_names and not name.startswith("_")
    }
    allowed = {
        "asignal",
        "anyio",
        "sniffio",
        "idna",
        "typing_extensions",
        "exceptiongroup",
    }
    assert third_party <= allowed, third_party - allowed
    integrations = [
        m for m in out if m in {"starlette", "sqlalchemy", "pytest", "trio"}
    ]
    assert integrations == []

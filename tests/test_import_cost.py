"""`import asignal` imports nothing beyond the standard library and anyio."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

#: anyio itself and what anyio imports on the Python versions we support.
ALLOWED = {"asignal", "anyio", "sniffio", "idna", "typing_extensions", "exceptiongroup"}


def _modules_loaded_by(statement: str) -> list[str]:
    code = textwrap.dedent(
        f"""
        import json, sys
        before = set(sys.modules)
        {statement}
        print(json.dumps(sorted(set(sys.modules) - before)))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    loaded: list[str] = json.loads(out)
    return loaded


def test_import_asignal_loads_only_stdlib_and_anyio() -> None:
    """Every top-level package loaded by `import asignal` is stdlib or allowed."""
    tops = {name.split(".")[0] for name in _modules_loaded_by("import asignal")}
    foreign = {
        name
        for name in tops
        if name not in sys.stdlib_module_names
        and not name.startswith("_")
        and name not in ALLOWED
    }
    assert foreign == set()


def test_import_asignal_loads_no_integration_or_backend() -> None:
    """No integration submodule, trio, web framework or ORM is imported."""
    loaded = _modules_loaded_by("import asignal")
    for forbidden in (
        "trio",
        "starlette",
        "fastapi",
        "sqlalchemy",
        "pytest",
        "asignal.asgi",
        "asignal.testing",
        "asignal.signals",
        "asignal.pytest_plugin",
    ):
        assert forbidden not in loaded, forbidden


def test_builtin_signals_import_no_integration() -> None:
    """`import asignal.signals` stays as light as the core."""
    tops = {name.split(".")[0] for name in _modules_loaded_by("import asignal.signals")}
    assert {"trio", "starlette", "sqlalchemy", "pytest"} & tops == set()

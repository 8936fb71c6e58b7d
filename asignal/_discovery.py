"""Making sure receiver modules are imported: asignal's ``AppConfig.ready()``.

A receiver connects when the module that defines it is imported; a module nobody
imports connects nothing, silently. :func:`autodiscover` imports them on purpose.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from types import ModuleType

from ._state import discovered

__all__ = ["ENTRY_POINT_GROUP", "AutodiscoverError", "autodiscover"]

#: Installed packages list their receiver modules under this entry-point group,
#: e.g. ``[project.entry-points."asignal.receivers"] myapp = "myapp.signals"``.
ENTRY_POINT_GROUP = "asignal.receivers"


class AutodiscoverError(ImportError):
    """Raised when a receiver module exists but fails to import; the original
    exception is its ``__cause__``."""


def _import(name: str) -> None:
    try:
        importlib.import_module(name)
    except Exception as exc:
        raise AutodiscoverError(
            f"asignal.autodiscover() could not import receiver module {name!r}: "
            f"{type(exc).__name__}: {exc}",
            name=name,
        ) from exc


def _submodule(base: str, module: str) -> str | None:
    """The name of module *module* inside the imported module *base*, or None if
    there is none: *base* (or a package on the way) is a plain module, which has no
    submodules, or a part of the path does not exist. Packages on the way are
    imported, as ``import base.a.b`` would."""
    name = base
    parts = module.split(".")
    for index, part in enumerate(parts):
        if not hasattr(sys.modules[name], "__path__"):
            return None
        name = f"{name}.{part}"
        if importlib.util.find_spec(name) is None:
            return None
        if index < len(parts) - 1:
            _import(name)
    return name


def _entry_points() -> list[str]:
    from importlib.metadata import entry_points  # here only: slow to import

    return [ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)]


def autodiscover(*packages: str | ModuleType, module: str = "signals") -> list[str]:
    """Import ``<package>.<module>`` for each package that has one, and every module
    registered under the ``asignal.receivers`` entry-point group; return the names
    of the modules imported by this call.

    Call it once at startup (for example in an ASGI lifespan), as Django calls each
    ``AppConfig.ready()``. Idempotent and thread-safe: a module is imported once.
    A package without such a module is skipped, and so is a plain module (one that
    is not a package has no submodules); *module* may be dotted
    (``module="hooks.signals"``), and a missing part on the way is skipped too.

    :raises ModuleNotFoundError: a package itself does not exist.
    :raises AutodiscoverError: a receiver module exists but raised while importing
        (the error names the module; the original exception is chained).
    """
    if not isinstance(module, str) or not module or "" in module.split("."):  # pyright: ignore[reportUnnecessaryIsInstance]
        raise ValueError(
            "autodiscover(module=...) takes a module name relative to each package, "
            f"such as 'signals' or 'hooks.signals'; got {module!r}."
        )
    names: list[str] = []
    for package in packages:
        base = package.__name__ if isinstance(package, ModuleType) else package
        if not isinstance(base, str) or not base:  # pyright: ignore[reportUnnecessaryIsInstance]
            raise TypeError(
                f"autodiscover() takes package names or modules, got {package!r}."
            )
        importlib.import_module(base)
        target = _submodule(base, module)
        if target is not None:
            names.append(target)
    for entry_point in _entry_points():
        names.append(entry_point.split(":")[0].strip())
    imported: list[str] = []
    with discovered.lock:
        for name in names:
            if name in discovered.modules:
                continue
            _import(name)
            discovered.modules.add(name)
            imported.append(name)
    return imported

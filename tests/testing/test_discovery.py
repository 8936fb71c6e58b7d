"""asignal.autodiscover(): importing receiver modules, like AppConfig.ready()."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import asignal._discovery as discovery
from asignal import AutodiscoverError, autodiscover
from asignal._state import discovered


@pytest.fixture
def packages(tmp_path: Path) -> Iterator[Path]:
    """Three packages on sys.path: with receivers, without, and broken."""
    (tmp_path / "app_ok").mkdir()
    (tmp_path / "app_ok" / "__init__.py").write_text("")
    (tmp_path / "app_ok" / "signals.py").write_text(
        "import app_ok\napp_ok.imports = getattr(app_ok, 'imports', 0) + 1\n"
    )
    (tmp_path / "app_ok" / "hooks.py").write_text("LOADED = True\n")
    (tmp_path / "app_none").mkdir()
    (tmp_path / "app_none" / "__init__.py").write_text("")
    (tmp_path / "app_bad").mkdir()
    (tmp_path / "app_bad" / "__init__.py").write_text("")
    (tmp_path / "app_bad" / "signals.py").write_text("raise RuntimeError('broken')\n")
    sys.path.insert(0, str(tmp_path))
    discovered.modules.clear()  # each test starts from a fresh process's state
    try:
        yield tmp_path
    finally:
        discovered.modules.clear()
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m.split(".")[0].startswith("app_")]:
            del sys.modules[name]


def test_imports_each_packages_signals_module(packages: Path) -> None:
    """autodiscover imports <package>.signals and skips packages without one."""
    assert autodiscover("app_ok", "app_none") == ["app_ok.signals"]
    import app_ok  # type: ignore[import-not-found]  # pyright: ignore[reportMissingImports]

    assert app_ok.imports == 1


def test_is_idempotent_and_thread_safe(packages: Path) -> None:
    """Calling it again, even from many threads at once, imports nothing twice."""
    autodiscover("app_ok")
    threads = [
        threading.Thread(target=autodiscover, args=("app_ok",)) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    import app_ok  # pyright: ignore[reportMissingImports]

    assert app_ok.imports == 1
    assert autodiscover("app_ok") == []


def test_other_module_name(packages: Path) -> None:
    """module= chooses which submodule to import."""
    assert autodiscover("app_ok", module="hooks") == ["app_ok.hooks"]


def test_import_error_names_the_module(packages: Path) -> None:
    """A receiver module that raises is reported by name, not swallowed."""
    with pytest.raises(AutodiscoverError, match=r"app_bad\.signals") as info:
        autodiscover("app_bad")
    assert isinstance(info.value.__cause__, RuntimeError)


def test_missing_package_raises(packages: Path) -> None:
    """A package that does not exist is an error, not a silent skip."""
    with pytest.raises(ModuleNotFoundError):
        autodiscover("no_such_app_anywhere")


def test_entry_points_are_imported(
    packages: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Modules registered under the asignal.receivers entry-point group are
    imported too."""
    monkeypatch.setattr(discovery, "_entry_points", lambda: ["app_ok.hooks"])
    assert autodiscover() == ["app_ok.hooks"]


def test_a_plain_module_is_skipped(packages: Path) -> None:
    """A module that is not a package has no receiver submodule: it is imported
    and skipped, not an error about __path__."""
    (packages / "app_plain.py").write_text("LOADED = True\n")
    assert autodiscover("app_plain", "app_ok") == ["app_ok.signals"]
    assert sys.modules["app_plain"].LOADED is True


def test_a_missing_dotted_module_is_skipped(packages: Path) -> None:
    """module='x.y' where the package has no x is skipped, like a missing
    'signals'; where it exists, the nested module is imported."""
    assert autodiscover("app_ok", "app_none", module="x.y") == []
    nested = packages / "app_none" / "receivers"
    nested.mkdir()
    (nested / "__init__.py").write_text("")
    (nested / "orders.py").write_text("LOADED = True\n")
    assert autodiscover("app_none", "app_ok", module="receivers.orders") == [
        "app_none.receivers.orders"
    ]
    assert autodiscover("app_ok", module="hooks.more") == []  # hooks: a plain module


@pytest.mark.parametrize("module", ["", ".signals", "a..b", 3])
def test_a_bad_module_name_says_what_was_expected(
    packages: Path, module: object
) -> None:
    """module= that is not a relative module name fails with a clear error."""
    with pytest.raises(ValueError, match="module name relative to each package"):
        autodiscover("app_ok", module=module)  # type: ignore[arg-type]

# /// script
# dependencies = ["nox>=2025.02.09"]
# ///
"""Development sessions: ``tests``, ``core_only``, ``sqlalchemy20``, ``lint``,
``typing``, ``examples`` and ``bench``.

``tests`` runs on every Python from 3.10 to 3.13 that is on PATH (nox skips the
missing ones with a message, and fails on them in CI). The package is installed from
a built wheel, not the working tree, and pytest runs as the ``pytest`` script so the
checkout's ``asignal/`` cannot shadow what was installed.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import nox

nox.needs_version = ">=2025.02.09"
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = [
    "tests",
    "core_only",
    "sqlalchemy20",
    "lint",
    "typing",
    "examples",
]

ROOT = Path(__file__).parent
PYPROJECT = nox.project.load_toml(ROOT / "pyproject.toml")
PYTHONS = nox.project.python_versions(PYPROJECT)
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _group(name: str) -> list[str]:
    return list(nox.project.dependency_groups(PYPROJECT, name))


@nox.session(python=PYTHONS, tags=["tests"])
def tests(session: nox.Session) -> None:
    """The test suite, on asyncio and trio, against the installed wheel."""
    session.install(".", *_group("tests"))
    session.run("pytest", *session.posargs)


@nox.session(python=PYTHONS[-1])
def core_only(session: nox.Session) -> None:
    """The core's tests with asignal and pytest alone installed: no extra, no trio,
    no pytest-asyncio. Proves the core needs nothing but anyio; the trio half of
    each async test is skipped. (``--strict-config`` is dropped: the ini options of
    the plugins not installed are unknown here.)"""
    session.install(".", *_group("core-tests"))
    session.run(
        "pytest",
        "tests/core",
        "-o",
        "addopts=-ra --strict-markers --import-mode=importlib",
        "-W",
        "ignore:Unknown config option:pytest.PytestConfigWarning",
        *session.posargs,
    )


@nox.session(python=PYTHONS[0])
def sqlalchemy20(session: nox.Session) -> None:
    """The SQLAlchemy bridge's tests on the oldest SQLAlchemy it supports (2.0, where
    SQLAlchemy's ``await_`` was still called ``await_only``)."""
    session.install(".", *_group("tests"), "sqlalchemy[asyncio]>=2.0,<2.1")
    session.run("pytest", "tests/sqlalchemy", *session.posargs)


@nox.session(python=PYTHONS[-1], default=False)
def coverage(session: nox.Session) -> None:
    """The suite under coverage (``coverage run -m pytest``: pytest-cov starts too
    late to see a package that ships a pytest plugin)."""
    session.install("-e", ".", *_group("tests"))
    session.run("coverage", "erase")
    session.run("coverage", "run", "-m", "pytest", *session.posargs)
    session.run("coverage", "report", "--show-missing")


@nox.session(tags=["lint"])
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check over the whole tree."""
    session.install(*_group("lint"))
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(tags=["lint"])
def typing(session: nox.Session) -> None:
    """mypy --strict on the package and the tests, and pyright."""
    session.install("-e", ".", *_group("typing"))
    session.run("mypy", "asignal", "tests")
    session.run("pyright")


@nox.session
def examples(session: nox.Session) -> None:
    """Run every example; each web example serves a real server and checks itself.

    Installs only the ``examples`` group, so a missing requirement fails here."""
    session.install(".", *_group("examples"))
    for script in sorted((ROOT / "examples").glob("*.py")):
        args = ["--check"] if "--check" in script.read_text() else []
        session.log(f"running {script.relative_to(ROOT)} {' '.join(args)}")
        session.run("python", str(script), *args, env={"PYTHONUNBUFFERED": "1"})
    for runner in sorted((ROOT / "examples").glob("*/run.py")):
        args = ["--check"] if "--check" in runner.read_text() else []
        session.log(f"running {runner.relative_to(ROOT)} {' '.join(args)}")
        session.run("python", str(runner), *args)


@nox.session(default=False)
def bench(session: nox.Session) -> None:
    """The benchmarks against Django, blinker, psygnal, pyee and aiosignal."""
    session.install(".", *_group("bench"))
    session.run("python", "benchmarks/run.py", *session.posargs)


if __name__ == "__main__":  # `python noxfile.py` works where nox is not installed
    sys.exit(nox.main())  # type: ignore[attr-defined]

"""A second copy of asignal, from another git revision, to time side by side.

``python benchmarks/baseline.py REV DEST`` writes the ``asignal/`` package of git
revision ``REV`` to ``DEST/asignal_baseline/``, its absolute ``asignal`` imports
renamed (the package's own imports are relative), with a ``BASELINE`` file naming the
revision. ``python benchmarks/run.py --baseline DEST`` then times that copy next to the
installed ``asignal`` in the same rounds (see ``benchmarks/README.md``). Keep ``DEST``
outside the repository: nothing under it is meant to be committed.

The two copies share nothing but the logger name: each has its own kept event loop,
hooks and caches.
"""

from __future__ import annotations

import argparse
import importlib
import io
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path, PurePosixPath
from types import ModuleType

NAME = "asignal_baseline"
MARKER = "BASELINE"
_ABSOLUTE = re.compile(r"\b(from|import)(\s+)asignal\b")


def make(revision: str, dest: Path, repo: Path) -> Path:
    """Write ``asignal/`` at ``revision`` of ``repo`` to ``dest/asignal_baseline``.

    :raises SystemExit: ``revision`` is unknown, or ``dest/asignal_baseline`` exists
        and was not made by this script (it is replaced only if it was).
    """
    target = dest / NAME
    if target.exists() and not (target / MARKER).is_file():
        raise SystemExit(
            f"{target} exists and has no {MARKER} file, so this script did not make"
            " it; remove it or choose another DEST."
        )
    sha = _git(repo, "rev-parse", "--verify", f"{revision}^{{commit}}").decode().strip()
    archive = _git(repo, "archive", "--format=tar", sha, "asignal")
    if target.exists():
        shutil.rmtree(target)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        for member in tar.getmembers():
            if not member.isfile():
                continue
            inside = PurePosixPath(member.name).relative_to("asignal")
            path = target.joinpath(*inside.parts)
            path.parent.mkdir(parents=True, exist_ok=True)
            extracted = tar.extractfile(member)
            assert extracted is not None
            data = extracted.read()
            if path.suffix == ".py":
                data = _ABSOLUTE.sub(rf"\1\2{NAME}", data.decode()).encode()
            path.write_bytes(data)
    (target / MARKER).write_text(f"{sha[:7]} ({sha}) of {repo}\n", encoding="utf-8")
    return target


def load(dest: Path) -> ModuleType:
    """Import ``asignal_baseline`` from ``dest`` (a directory :func:`make` wrote).

    :raises SystemExit: there is no such package in ``dest``, or another
        ``asignal_baseline`` was imported already.
    """
    target = dest.resolve() / NAME
    if not (target / "__init__.py").is_file():
        raise SystemExit(
            f"--baseline {dest}: no {NAME} package there. Make one with"
            f" `python benchmarks/baseline.py REV {dest}` (REV a git revision,"
            " e.g. main)."
        )
    sys.path.insert(0, str(target.parent))
    module = importlib.import_module(NAME)
    found = Path(module.__file__ or "").resolve().parent
    if found != target:
        raise SystemExit(f"--baseline {dest}: imported {NAME} from {found} instead")
    return module


def revision(dest: Path) -> str:
    """What :func:`make` recorded about the copy in ``dest``."""
    marker = dest / NAME / MARKER
    return marker.read_text(encoding="utf-8").strip() if marker.is_file() else "unknown"


def _git(repo: Path, *args: str) -> bytes:
    proc = subprocess.run(["git", *args], cwd=repo, capture_output=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"git {' '.join(args)}: {proc.stderr.decode().strip()}")
    return proc.stdout


def main() -> None:
    """``baseline.py REV DEST``: make the copy and say how to use it."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("revision", help="git revision, e.g. main or b69e28b")
    parser.add_argument("dest", type=Path, help="directory outside the repository")
    parser.add_argument(
        "--repo",
        type=Path,
        default=Path(__file__).resolve().parent.parent,
        help="the git repository to read (default: this checkout)",
    )
    args = parser.parse_args()
    target = make(args.revision, args.dest, args.repo)
    print(f"wrote {target} ({revision(args.dest)})")
    print(f"compare: python benchmarks/run.py --baseline {args.dest}")


if __name__ == "__main__":
    main()

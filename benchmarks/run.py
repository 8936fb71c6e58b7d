"""Benchmark runner for asignal (issue 3): ratios to plain-Python floors.

Run with ``python benchmarks/run.py [--quick] [--out DIR] [--suffix S]``. Each round
interleaves every scenario's floors and the libraries measured against them; the
reported figure is the median over rounds of (library time / floor time in the same
round), so a machine that slows down for a second moves both sides of a ratio
together. GC is disabled inside timed loops. Before timing, each library's send is
checked to reach exactly the expected receivers. Peers (django, blinker, psygnal,
pyee, aiosignal) are measured when importable and reported ``n/a`` otherwise; trio
rows need trio, the plot needs matplotlib.

Modules: ``_sync`` (S1-S4), ``_async`` (A1-A5), ``_memory`` (S5, M1), ``_report``
(tables, targets, plot), ``_common`` (cases, timing, interleaving).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from importlib import metadata, util
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from _async import run_async, run_blocking
from _memory import connect_growth, memory
from _report import markdown, plot
from _sync import run_sync

PACKAGES = [
    "asignal",
    "anyio",
    "trio",
    "django",
    "blinker",
    "psygnal",
    "pyee",
    "aiosignal",
    "matplotlib",
]


def _meta(quick: bool, rounds: int) -> dict[str, Any]:
    import asignal

    root = Path(asignal.__file__).resolve().parent  # the asignal actually measured

    def git(*args: str) -> str:
        try:
            return subprocess.run(
                ["git", *args], cwd=root, capture_output=True, text=True, check=False
            ).stdout.strip()
        except OSError:
            return ""

    # "-dirty" only for uncommitted changes to the package measured: the result
    # files this run rewrites do not count.
    rev = git("rev-parse", "--short", "HEAD")
    if rev and git("status", "--porcelain", "--", "."):
        rev += "-dirty"
    meta: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "asignal revision": rev or "unknown",
        "quick": quick,
        "rounds": rounds,
    }
    for pkg in PACKAGES:
        try:
            meta[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            meta[pkg] = "not installed"
    return meta


def main() -> None:
    """Parse arguments, run the suite, print and optionally write the results."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="few rounds, smoke run")
    parser.add_argument("--out", type=Path, help="directory for RESULTS.md and JSON")
    parser.add_argument(
        "--suffix", default="", help="file name suffix, e.g. -py312 for RESULTS-py312"
    )
    args = parser.parse_args()
    quick: bool = args.quick
    rounds = 3 if quick else 15
    budget = 0.002 if quick else 0.04  # seconds per timed loop
    meta = _meta(quick, rounds)
    started = time.perf_counter()

    results: dict[str, Any] = {}
    curves: dict[str, Any] = {}
    results["sync"], curves["sync"] = run_sync(quick, rounds, budget)
    results["asyncio"], curves["asyncio"] = run_async("asyncio", quick, rounds, budget)
    if util.find_spec("trio") is not None:
        results["trio"], curves["trio"] = run_async("trio", quick, rounds, budget)
    results["A5"] = run_blocking(rounds, budget)
    results["S5"] = connect_growth(1 if quick else 5)
    results["M1_count"] = 2000 if quick else 10000
    results["M1"] = memory(results["M1_count"])
    meta["duration"] = f"{time.perf_counter() - started:.0f} s"

    plot_name = None
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        name = f"send_cost{args.suffix}.png"
        if plot(curves, args.out / name):
            plot_name = name
    others: list[str] = []
    if args.out:
        mine = f"RESULTS{args.suffix}.md"
        others = sorted(p.name for p in args.out.glob("RESULTS*.md") if p.name != mine)
    md = markdown(results, meta, plot_name, others)
    print(md)
    if args.out:
        (args.out / f"RESULTS{args.suffix}.md").write_text(md, encoding="utf-8")
        payload = {"meta": meta, "results": results, "curves": curves}
        (args.out / f"results{args.suffix}.json").write_text(
            json.dumps(payload, indent=2), encoding="utf-8"
        )


if __name__ == "__main__":
    main()

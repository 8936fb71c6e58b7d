"""Benchmark runner for asignal: ratios to plain-Python floors.

Run with ``python benchmarks/run.py [--quick] [--rounds N] [--out DIR] [--suffix S]
[--baseline DIR] [--no-peers]``; ``benchmarks/README.md`` says what each scenario
measures and how to compare two versions of asignal (``--baseline``). Each round
interleaves every scenario's floors and the libraries measured against them; the
reported figure is the median over rounds of (library time / floor time in the same
round), so a machine that slows down for a second moves both sides of a ratio
together. GC is disabled inside timed loops. The receivers timed are no-ops; before
timing, each send is checked, with counting receivers, to call every receiver exactly
as often as expected. Peers (django, blinker, psygnal, pyee, aiosignal) are measured
when importable and reported ``n/a`` otherwise; trio rows need trio, the plot needs
matplotlib.

Modules: ``_sync`` (S1-S4, S1p-S3p), ``_async`` (A1-A5, A1p-A2p), ``_memory`` (S5,
M1), ``_report`` (tables, targets, plot), ``_common`` (settings, cases, receivers,
timing), ``baseline`` (the second copy of asignal for ``--baseline``).
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

import baseline
from _async import run_async, run_blocking
from _common import BASELINE, MINE, Settings, post_save_payload
from _memory import connect_growth, memory
from _report import markdown, plot
from _sync import run_sync

#: Marks results made with no-op receivers (older files counted receiver calls).
HARNESS = "no-op receivers, checked before timing (issue 11)"

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


def _meta(s: Settings, baseline_dir: Path | None) -> dict[str, Any]:
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
        "baseline": "none"
        if baseline_dir is None
        else f"{baseline.revision(baseline_dir)}, from {baseline_dir}",
        "harness": HARNESS,
        "quick": s.quick,
        "rounds": f"up to {s.rounds} of {s.budget * 1000:g} ms per case"
        f" ({s.slow_rounds} for A3 and A4)",
        "peers": "measured" if s.peers else "not measured (--no-peers)",
    }
    for pkg in PACKAGES:
        try:
            meta[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            meta[pkg] = "not installed"
    return meta


def main() -> None:
    """Parse arguments, run the suite, print and optionally write the results."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    parser.add_argument("--quick", action="store_true", help="few rounds, smoke run")
    parser.add_argument(
        "--rounds",
        type=int,
        help="rounds per scenario (default 3000 of 0.2 ms per case, fewer where one"
        " send takes longer; 3 with --quick; A3 and A4, whose sends take 10 ms,"
        " get 20, 60 with --no-peers, 3 with --quick)",
    )
    parser.add_argument("--out", type=Path, help="directory for RESULTS.md and JSON")
    parser.add_argument(
        "--suffix",
        default="",
        help="file name suffix: --suffix=-py312 for RESULTS-py312",
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        metavar="DIR",
        help="also time the asignal_baseline package in DIR (made by"
        " benchmarks/baseline.py) and report asignal / baseline per scenario",
    )
    parser.add_argument(
        "--no-peers", action="store_true", help="skip Django, blinker and the others"
    )
    args = parser.parse_args()
    if args.rounds is not None and args.rounds < 1:
        parser.error(f"--rounds must be at least 1, got {args.rounds}")
    import asignal

    signals: dict[str, Any] = {MINE: asignal.Signal}
    if args.baseline is not None:
        signals[BASELINE] = baseline.load(args.baseline).Signal
    quick: bool = args.quick
    s = Settings(
        quick=quick,
        rounds=args.rounds or (3 if quick else 3000),
        # A3 and A4 rounds take 10 ms a case, and about 1 s with the peers
        # (blinker and aiosignal serialise the sleeps): more rounds without them.
        slow_rounds=3 if quick else (20 if not args.no_peers else 60),
        budget=0.002 if quick else 0.0002,  # seconds per timed loop
        signals=signals,
        peers=not args.no_peers,
    )
    meta = _meta(s, args.baseline)
    started = time.perf_counter()

    payload = post_save_payload()
    results: dict[str, Any] = {}
    curves: dict[str, Any] = {}
    results["sync"], curves["sync"] = run_sync(s, payload)
    results["asyncio"], curves["asyncio"] = run_async("asyncio", s, payload)
    if util.find_spec("trio") is not None:
        results["trio"], curves["trio"] = run_async("trio", s, payload)
    results["A5"] = run_blocking(s)
    results["S5"] = connect_growth(s, 1 if quick else 3, 1 if quick else 25)
    results["M1_count"] = 2000 if quick else 10000
    results["M1"] = memory(s, results["M1_count"])
    meta["duration"] = f"{time.perf_counter() - started:.0f} s"

    plot_name = None
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        name = f"send_cost{args.suffix}.png"
        if plot(curves, args.out / name):
            plot_name = name
    others: dict[str, bool] = {}
    if args.out:
        mine = f"RESULTS{args.suffix}.md"
        for md_file in sorted(args.out.glob("RESULTS*.md")):
            if md_file.name != mine:
                others[md_file.name] = _same_harness(md_file)
    md = markdown(results, meta, plot_name, others)
    print(md)
    if args.out:
        (args.out / f"RESULTS{args.suffix}.md").write_text(md, encoding="utf-8")
        payload = {"meta": meta, "results": results, "curves": curves}
        (args.out / f"results{args.suffix}.json").write_text(
            json.dumps(payload, indent=2), encoding="utf-8"
        )


def _same_harness(md_file: Path) -> bool:
    """Whether the JSON next to a RESULTS file was made by this harness."""
    json_file = md_file.with_name("results" + md_file.stem[len("RESULTS") :] + ".json")
    try:
        meta = json.loads(json_file.read_text(encoding="utf-8"))["meta"]
    except (OSError, ValueError, KeyError):
        return False
    return bool(meta.get("harness") == HARNESS)


if __name__ == "__main__":
    main()

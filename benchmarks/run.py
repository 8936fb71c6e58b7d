"""Benchmark runner for asignal (issue 3): ratios to plain-Python floors.

Run with ``python benchmarks/run.py [--quick] [--out DIR]``. Each round interleaves
every scenario's floor and the libraries measured against it; the reported figure is
the median over rounds of (library time / floor time in the same round), so a machine
that slows down for a second moves both sides of a ratio together. GC is disabled
inside timed loops. Before timing, each library's send is checked to reach exactly the
expected receivers. Peer libraries (django, blinker, psygnal, pyee) are measured when
importable and reported ``n/a`` otherwise.
"""

from __future__ import annotations

import argparse
import functools
import gc
import importlib
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from asignal import Signal


def _timed(fn: Callable[[], object], loops: int) -> float:
    """Return seconds per call of ``fn`` over ``loops`` calls with GC disabled."""
    gc.disable()
    try:
        start = time.perf_counter()
        for _ in range(loops):
            fn()
        return (time.perf_counter() - start) / loops
    finally:
        gc.enable()


def _send_keeping(
    send: Callable[[object], object], sender: object, keep: object
) -> object:
    """Send from ``sender``; ``keep`` holds the weakly connected receivers alive."""
    return send(sender)


def _make_receivers(n: int, hits: list[int]) -> list[Callable[..., None]]:
    def make() -> Callable[..., None]:
        def r(*args: object, **kwargs: object) -> None:
            hits[0] += 1

        return r

    return [make() for _ in range(n)]


def _setups(n: int) -> dict[str, tuple[Callable[[], object], list[int]] | None]:
    """Build a send callable per library, each reaching ``n`` receivers."""
    out: dict[str, tuple[Callable[[], object], list[int]] | None] = {}
    hits = [0]
    recs = _make_receivers(n, hits)
    sender = object()

    def floor() -> None:
        for r in recs:
            r(sender)

    out["floor"] = (floor, hits)

    chits = [0]
    crecs = _make_receivers(n, chits)
    sig0 = Signal()

    def contract_floor() -> list[tuple[object, object]]:
        return [(r, r(signal=sig0, sender=sender)) for r in crecs]

    out["contract floor"] = (contract_floor, chits)

    ahits = [0]
    sig = Signal()
    arecs = _make_receivers(n, ahits)
    for r in arecs:
        sig.connect(r)
    out["asignal"] = (functools.partial(_send_keeping, sig.send, sender, arecs), ahits)

    try:
        DSignal: Any = importlib.import_module("django.dispatch").Signal

        dhits = [0]
        dsig = DSignal()
        drecs = _make_receivers(n, dhits)
        for r in drecs:
            dsig.connect(r)
        out["django"] = (
            functools.partial(_send_keeping, dsig.send, sender, drecs),
            dhits,
        )
    except ImportError:
        out["django"] = None
    try:
        blinker: Any = importlib.import_module("blinker")

        bhits = [0]
        bsig = blinker.Signal()
        brecs = _make_receivers(n, bhits)
        for r in brecs:
            bsig.connect(r)
        out["blinker"] = (
            functools.partial(_send_keeping, bsig.send, sender, brecs),
            bhits,
        )
    except ImportError:
        out["blinker"] = None
    return out


def run(quick: bool) -> dict[str, object]:
    """Run the sync-send scenarios and return medians of per-round ratios."""
    rounds = 3 if quick else 15
    results: dict[str, object] = {}
    for label, n in (("S1", 1), ("S2", 10), ("S3", 100)):
        setups = _setups(n)
        for name, item in setups.items():
            if item is None:
                continue
            fn, hits = item
            hits[0] = 0
            fn()
            if hits[0] != n:
                raise AssertionError(
                    f"{name} reached {hits[0]} receivers, expected {n}"
                )
        loops = max(200, 20000 // n) if not quick else max(50, 2000 // n)
        ratios: dict[str, list[float]] = {k: [] for k, v in setups.items() if v}
        floors: list[float] = []
        for _ in range(rounds):
            base = None
            for name, item in setups.items():
                if item is None:
                    continue
                t = _timed(item[0], loops)
                if name == "floor":
                    base = t
                    floors.append(t)
                assert base is not None
                ratios[name].append(t / base)
        results[label] = {
            "receivers": n,
            "floor_us": statistics.median(floors) * 1e6,
            **{
                k: (round(statistics.median(v), 2) if v else "n/a")
                for k, v in ((k, ratios.get(k, [])) for k in setups)
                if k != "floor"
            },
        }
    return results


def async_single(rounds: int, loops: int) -> dict[str, object]:
    """A1: ``asend`` to one async no-op receiver as a ratio to a direct await."""
    import asyncio

    async def areceiver(**kwargs: object) -> None:
        return None

    sig = Signal()
    sig.connect(areceiver)
    dsig: Any = None
    try:
        DSignal: Any = importlib.import_module("django.dispatch").Signal

        dsig = DSignal()
        dsig.connect(areceiver)
    except ImportError:
        pass

    async def main() -> dict[str, object]:
        assert len(await sig.asend(None)) == 1
        ratios: dict[str, list[float]] = {"asignal": [], "django": []}
        for _ in range(rounds):
            gc.disable()
            start = time.perf_counter()
            for _ in range(loops):
                await areceiver(signal=sig, sender=None)
            base = time.perf_counter() - start
            start = time.perf_counter()
            for _ in range(loops):
                await sig.asend(None)
            ratios["asignal"].append((time.perf_counter() - start) / base)
            if dsig is not None:
                start = time.perf_counter()
                for _ in range(loops):
                    await dsig.asend(None)
                ratios["django"].append((time.perf_counter() - start) / base)
            gc.enable()
        return {
            k: (round(statistics.median(v), 1) if v else "n/a")
            for k, v in ratios.items()
        }

    return asyncio.run(main())


def connect_growth() -> dict[str, object]:
    """S5: seconds to connect then disconnect 1,000 and 10,000 receivers, and growth."""
    factories: dict[str, Callable[[], Any]] = {"asignal": Signal}
    try:
        DSignal: Any = importlib.import_module("django.dispatch").Signal

        factories["django"] = DSignal
    except ImportError:
        pass
    out: dict[str, object] = {}
    for name, factory in factories.items():
        times = {}
        for count in (1000, 10000):
            recs = _make_receivers(count, [0])
            sig = factory()
            gc.disable()
            start = time.perf_counter()
            for r in recs:
                sig.connect(r)
            for r in recs:
                sig.disconnect(r)
            times[count] = time.perf_counter() - start
            gc.enable()
        out[name] = {
            "1k_ms": round(times[1000] * 1e3, 2),
            "10k_ms": round(times[10000] * 1e3, 2),
            "growth": round(times[10000] / times[1000], 1),
        }
    return out


def memory_per_receiver(count: int = 10000) -> dict[str, float]:
    """M1: tracemalloc bytes per weak receiver and per connect/disconnect cycle."""
    import tracemalloc

    recs = [_make_receivers(1, [0])[0] for _ in range(count)]
    sig = Signal()
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for r in recs:
        sig.connect(r)
    per_receiver = (tracemalloc.get_traced_memory()[0] - before) / count
    for r in recs:
        sig.disconnect(r)
    gc.collect()
    mid = tracemalloc.get_traced_memory()[0]
    for r in recs:
        sig.connect(r)
        sig.disconnect(r)
    gc.collect()
    per_cycle = (tracemalloc.get_traced_memory()[0] - mid) / count
    tracemalloc.stop()
    return {
        "bytes_per_receiver": round(per_receiver, 1),
        "bytes_per_cycle": round(per_cycle, 2),
    }


def _markdown(results: dict[str, object], meta: dict[str, object]) -> str:
    lines = ["# asignal benchmark results", ""]
    lines += [f"- {k}: {v}" for k, v in meta.items()]
    lines += [
        "",
        "Ratios to the bare `r(sender)` loop measured in the same round (median of"
        " rounds). Scope so far: S1-S3, S5, A1 and M1 only; S4, A2-A5, trio rows,"
        " psygnal/pyee/aiosignal and the plot are not implemented yet.",
        "",
    ]
    cols = ["contract floor", "asignal", "django", "blinker"]
    lines.append("| scenario | floor µs | " + " | ".join(cols) + " |")
    lines.append("|" + "---|" * (len(cols) + 2))
    for label, row in results.items():
        assert isinstance(row, dict)
        if label in ("M1", "S5", "A1"):
            continue
        cells = [str(row.get(c, "n/a")) for c in cols]
        lines.append(f"| {label} | {row['floor_us']:.2f} | " + " | ".join(cells) + " |")
    a1 = results.get("A1")
    if isinstance(a1, dict):
        lines += ["", "A1 asend to one async receiver, ratio to a direct await:", ""]
        lines += [f"- {k}: x{v}" for k, v in a1.items()]
    s5 = results.get("S5")
    if isinstance(s5, dict):
        lines += ["", "S5 connect then disconnect (single run, not a ratio):", ""]
        lines += [f"- {k}: {v}" for k, v in s5.items()]
    m1 = results.get("M1")
    if isinstance(m1, dict):
        lines += [
            "",
            f"M1 (asignal, 10,000 weak receivers): {m1['bytes_per_receiver']} bytes"
            f" per receiver, {m1['bytes_per_cycle']} bytes per connect/disconnect.",
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    """Parse arguments, run the suite, print and optionally write the results."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="few rounds, smoke run")
    parser.add_argument(
        "--out", type=Path, help="directory for RESULTS.md/results.json"
    )
    args = parser.parse_args()
    import os

    meta: dict[str, object] = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "quick": args.quick,
    }
    from importlib import metadata

    for pkg in ("asignal", "anyio", "django", "blinker"):
        try:
            meta[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            meta[pkg] = "not installed"
    results = run(args.quick)
    results["M1"] = memory_per_receiver()
    results["S5"] = connect_growth()
    results["A1"] = async_single(3 if args.quick else 15, 200 if args.quick else 2000)
    md = _markdown(results, meta)
    print(md)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "RESULTS.md").write_text(md, encoding="utf-8")
        (args.out / "results.json").write_text(
            json.dumps({"meta": meta, "results": results}, indent=2), encoding="utf-8"
        )
    sys.exit(0)


if __name__ == "__main__":
    main()

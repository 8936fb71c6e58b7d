"""Markdown tables, the targets of issues 3 and 11 (met or unmet), the comparison
with a baseline copy of asignal, and the send-cost plot."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from _common import BASELINE, MINE, PEERS

SYNC_COLS = ["contract floor", "asignal", "django", "django (cached)", *PEERS[1:]]
ASYNC_COLS = [
    "sequential await",
    "asyncio.gather",
    "asyncio.TaskGroup",
    "anyio task group",
    "thread pool",
    "asignal",
    *PEERS,
]
ASYNC_BASE = {
    "A1": "sequential await",
    "A2": "sequential await",
    "A3": "anyio task group",
    "A4": "thread pool",
}
PAYLOAD_SYNC_COLS = [
    "contract floor",
    "asignal",
    "django",
    "blinker",
    "psygnal",
    "pyee",
]
PAYLOAD_ASYNC_COLS = ["asignal", "django", "blinker", "aiosignal"]
CONTRACT = f"{MINE} / contract floor"
VS_BASELINE = f"{MINE} / {BASELINE}"


def _cell(row: dict[str, Any], name: str, unit: str = "µs") -> str:
    if name not in row:
        return "-"
    cell = row[name]
    if cell is None:
        return "n/a"
    amount = cell["us"] / 1000 if unit == "ms" else cell["us"]
    shown = f"{amount:,.0f}" if amount >= 100 else f"{amount:.3g}"
    return f"{cell['ratio']:.2f} ({shown} {unit})"


def _ratio(row: dict[str, Any] | None, name: str) -> float | None:
    cell = (row or {}).get(name)
    return None if cell is None else float(cell["ratio"])


def _us(row: dict[str, Any] | None, name: str) -> float | None:
    cell = (row or {}).get(name)
    return None if cell is None else float(cell["us"])


def targets(results: dict[str, Any]) -> list[tuple[str, str, bool | None]]:
    """(target, measured, met) for every target of issue 3; met None = not measured."""
    out: list[tuple[str, str, bool | None]] = []
    sync = results["sync"]

    def best_peer(row: dict[str, Any]) -> tuple[str, float] | None:
        peers = [(p, _ratio(row, p)) for p in ("django (cached)", *PEERS)]
        known = [(p, r) for p, r in peers if r is not None]
        return min(known, key=lambda x: x[1]) if known else None

    for label, limit in (("S1", 4.0), ("S2", 3.0), ("S3", 2.8)):
        row = sync[label]
        mine = _ratio(row, "asignal")
        assert mine is not None
        best = best_peer(row)
        ahead = best is None or mine < best[1]
        peer_txt = f"; best peer {best[0]} x{best[1]:.2f}" if best else ""
        out.append(
            (
                f"{label} ≤ x{limit} the floor, ahead of every peer",
                f"x{mine:.2f}{peer_txt}",
                mine <= limit and ahead,
            )
        )
    s4 = _ratio(sync["S4"], "asignal")
    assert s4 is not None
    dj = _ratio(sync["S4"], "django")
    dj_txt = f" (Django without caching x{dj:.1f})" if dj is not None else ""
    out.append(("S4 ≤ x4 the floor", f"x{s4:.2f}{dj_txt}", s4 <= 4.0))
    for label in ("S2p", "S3p"):
        row = sync.get(label)
        if row is None:
            continue
        vs = row["pairs"][CONTRACT]
        out.append(
            (
                f"{label} ≤ x1.15 the contract floor ({row['receivers']} receivers,"
                " post_save payload)",
                f"x{vs:.2f} ({row['asignal']['us']:.3g} µs against"
                f" {row['contract floor']['us']:.3g} µs)",
                vs <= 1.15,
            )
        )

    s5 = results["S5"]
    mine5 = s5["asignal"]
    peers10k = {p: v["10k_ms"] for p, v in s5.items() if p in PEERS and v}
    faster = all(mine5["10k_ms"] < v for v in peers10k.values())
    fastest = min(peers10k.items(), key=lambda x: x[1]) if peers10k else None
    out.append(
        (
            "S5 growth 1k→10k ≤ x11, faster than every peer at 10k",
            f"x{mine5['growth']}, {mine5['10k_ms']} ms"
            + (f"; fastest peer {fastest[0]} {fastest[1]} ms" if fastest else ""),
            mine5["growth"] <= 11 and faster,
        )
    )
    for backend in ("asyncio", "trio"):
        rows = results.get(backend)
        if not rows:
            continue
        a1 = _ratio(rows["A1"], "asignal")
        assert a1 is not None
        out.append((f"A1 ≤ x3 a direct await ({backend})", f"x{a1:.2f}", a1 <= 3.0))
        a3 = _ratio(rows["A3"], "asignal")
        assert a3 is not None
        out.append(
            (
                f"A3 ≤ x1.05 a bare anyio task group ({backend})",
                f"x{a3:.3f} ({_us(rows['A3'], 'asignal') or 0:.0f} µs)",
                a3 <= 1.05,
            )
        )
        a4 = _us(rows["A4"], "asignal")
        assert a4 is not None
        out.append(
            (
                f"A4 ≤ x1.5 the ideal 10 ms ({backend})",
                f"{a4 / 1000:.1f} ms = x{a4 / 10000:.2f}",
                a4 <= 15000,
            )
        )
    a2 = results["asyncio"]["A2"]
    mine2, dj2 = _us(a2, "asignal"), _us(a2, "django")
    out.append(
        (
            "A2 ≤ ½ of Django's asend (asyncio)",
            "n/a (Django not measured)"
            if dj2 is None or mine2 is None
            else f"{mine2:.1f} µs vs {dj2:.1f} µs = {mine2 / dj2:.2f}",
            None if dj2 is None or mine2 is None else mine2 <= dj2 / 2,
        )
    )
    a5 = results["A5"]
    mine5b, dj5 = _us(a5, "asignal"), _us(a5, "django")
    out.append(
        (
            "A5 ≤ 1/10 of Django's send() with async receivers",
            "n/a (Django not measured)"
            if dj5 is None or mine5b is None
            else f"{mine5b:.0f} µs vs {dj5:.0f} µs = {mine5b / dj5:.2f}",
            None if dj5 is None or mine5b is None else mine5b <= dj5 / 10,
        )
    )
    m1 = results["M1"]["asignal"]
    out.append(
        (
            "M1 ≤ 150 bytes per weakly held receiver",
            f"{m1['bytes_per_receiver']} bytes",
            m1["bytes_per_receiver"] <= 150,
        )
    )
    out.append(
        (
            "M1 zero bytes leaked per connect/disconnect cycle",
            f"{m1['bytes_per_cycle']} bytes (≤ 0: nothing retained)",
            m1["bytes_per_cycle"] <= 0,
        )
    )
    return out


# Profile notes for targets that may be unmet, shown only when unmet. They describe
# the revision profiled (cProfile / tracemalloc by line, Python 3.11).
NOTES = {
    "S1": "One send's fixed cost: every send method goes through one prelude"
    " (`Signal.prepare`: the sender, reserved names, `providing_args`, the testing"
    " hooks, the plan) and one call loop (`call_each`), a function call each; the"
    " core before issue 11 inlined both into `send()` and was x1.5 to x1.6 faster"
    " at one receiver without payload (see the table against the baseline), at"
    " the price of the copies issue 11 removed. Would get there: inline them"
    " again; not taken. Per receiver: see S3.",
    "S2": "See S1 (a send's fixed cost) and S3 (per receiver).",
    "S4 ≤": "See S1: one receiver is called, so the fixed cost is most of it.",
    "S3": "Behind pyee by a few percent (5 to 7% in runs with no-op receivers;"
    " 2 to 17% across runs with the earlier counting ones). Per receiver,"
    " the floor is one call; the contract floor adds the keyword call shape and"
    " the `(receiver, result)` pair; asignal adds dereferencing the weak"
    " reference (one C call), the `is not None` test that refuses a sync"
    " receiver's returned coroutine, and the loop's own bookkeeping (a dead"
    " receiver costs nothing until it shows up: calling None raises, and only"
    " then is it skipped). pyee calls `r(sender)` positionally, holds receivers"
    " strongly and returns no results. Tried: a comprehension with the coroutine"
    " check after it (a few percent faster, but later receivers"
    " would run before the error), dereferencing all receivers at once with"
    " `map` (slower). Would get there: a C loop; dropping weak references, the"
    " result pairs or the coroutine check is not on the table.",
    "S5": "Growth is linear (x9.9 to x12 across runs here, the 1k time, a few"
    " milliseconds, moving most on a busy machine; 100k/10k is x10 too), but"
    " aiosignal is faster: it is a plain list (strong references, no checks, no"
    " lock). A connect/disconnect pair costs about 2.5 µs: connect validates and"
    " classifies a plain function from one read of its code flags, builds the"
    " weak reference that is also the connection and its key, and takes the lock"
    " that makes connecting thread-safe; disconnect builds a weak reference as the"
    " lookup key and takes the lock. Would get there: a C extension for"
    " `connect`/`disconnect`; dropping the checks, the weak references or the"
    " lock is not on the table.",
    "A2": "With several async receivers, `asend` runs each one's first step in the"
    " sending task inside anyio's task group; no task is made for receivers that"
    " finish without suspending. What remains is the task group itself (its"
    " cancel scope, and the shielded checkpoint, a full event-loop iteration, it"
    " runs on exit even without tasks: about 13 µs), one copied `Context` per"
    " receiver merged back afterwards, and the calls. Entering the task group"
    " only once a receiver first suspends is not sound: by then that receiver may"
    " have entered a cancel scope or task group of its own, which the later task"
    " group's scope would be nested inside, and it cannot move to another task"
    " (trio parks the task that yielded; anyio scopes belong to the task that"
    " entered them). Tried: asyncio's own `TaskGroup` on asyncio, whose exit does"
    " not yield when no task was made; rejected, because it cancels the sending"
    " task natively when a sibling fails, which anyio's shielded scopes inside a"
    " receiver cannot hold off (a test caught it).",
    "A5": "`send()` from a plain thread runs async receivers on asignal's loop"
    " thread; about half of its time is the caller waiting on the cross-thread"
    " future, the same round trip as the floor"
    " (`run_coroutine_threadsafe(...).result()`). How that round trip compares with"
    " Django's `send()` (which runs each receiver through `async_to_sync`)"
    " depends on the machine's load: the floor took from a fifth to a sixteenth"
    " of Django's time across runs here, so a design that hands every send to"
    " another thread's loop has little or no room under a tenth. Stepping"
    " receivers in the calling thread first is not an option: a receiver's first"
    " step may call the loop (`asyncio.get_running_loop()`, anyio's backend"
    " detection), and there is no loop in that thread. Would get there: an event"
    " loop kept per calling thread, run with `run_until_complete` there (measured"
    " by hand: about 46 µs for these ten receivers against 141 µs for the hop)."
    " asignal does not do it, because async receivers' loop-bound resources"
    " (clients, pools, locks made on first use) would then stop working across the"
    " threads of a threaded server; one kept loop serves every thread. Code that"
    " has a loop uses `asend()`.",
    "S2p": "The receivers' keyword dict is built once per send (it was built per"
    " receiver before issue 11: x1.48 and x1.58 then). What is left is the fixed"
    " cost of S1, which weighs most at 10 receivers, and, per receiver, the weak"
    " reference's dereference and the test that refuses a returned coroutine."
    " Would get there: see S1.",
    "S3p": "See S2p.",
    "M1 ≤": "tracemalloc by line: a weakly held receiver's connection is itself a"
    " `weakref.ref` subclass with three slots (104 B) and, for a function, its own"
    " dict key; the dict slot is about 29 B. A callable object or a"
    " `dispatch_uid` adds its key (an int, 32 B); a bound method its"
    " `WeakMethod`.",
}


def markdown(
    results: dict[str, Any],
    meta: dict[str, Any],
    plot: str | None,
    others: dict[str, bool] | None = None,
) -> str:
    """The whole RESULTS.md text; ``others`` maps sibling result files to link to
    whether they were made by this harness."""
    lines = ["# asignal benchmark results", ""]
    lines += [f"- {k}: {v}" for k, v in meta.items()]
    if others:
        links = ", ".join(f"[{name}]({name})" for name in others)
        lines += ["", f"Other runs (other Python and peer versions): {links}."]
        old = [name for name, same in others.items() if not same]
        if old:
            lines[-1] += (
                " " + ", ".join(old) + " predate the no-op receivers: their receivers"
                " counted their calls, which added the same work to every call, floors"
                " included, and so made every ratio smaller; compare them with each"
                " other, not with this file."
            )
    lines += [
        "",
        "Produced by `benchmarks/run.py` (`nox -s bench`). Every figure is the median"
        " over rounds of (time / time of the row's floor measured in the same round);"
        " libraries are interleaved within each round (order rotated), GC is disabled"
        " inside timed loops. The receivers timed are no-ops (floors included); before"
        " timing, each send is checked with counting receivers to call every receiver"
        " exactly once (S4: only the sender's own), and a timed send that returns"
        " its `(receiver, result)` list is checked to return one pair per receiver."
        " Cells read `ratio (median time)`; `n/a`: the library cannot do it"
        " (or peers were not measured); `-`: not measured."
        " Scenario codes are described in [README.md](README.md).",
        "",
        *_comparison(results, meta),
        "## Targets (issues 3 and 11)",
        "",
        "| target | measured | met |",
        "|---|---|---|",
    ]
    notes: list[str] = []
    for target, measured, met in targets(results):
        verdict = "not measured" if met is None else ("met" if met else "**unmet**")
        lines.append(f"| {target} | {measured} | {verdict} |")
        for key, note in NOTES.items():
            if met is False and target.startswith(key + " "):
                notes.append(f"- **{target}**: {note}")
    if notes:
        lines += ["", "Unmet, from the profile (what it shows, what would get there):"]
        lines += ["", *notes]
    lines += [
        "",
        "## Sync send (S1-S4)",
        "",
        "Ratio base (`floor`): a loop calling the same receivers as `r(sender)`."
        " `contract floor`: the same receivers called as `r(signal=..., sender=...)`,"
        " collecting `(receiver, result)` pairs. S1/S2/S3: 1/10/100 receivers;"
        " S(1000): 1,000 receivers; S4: 100 receivers each connected to a different"
        " sender, send from one (floor: calling that one receiver). `django` is"
        " Django's default `use_caching=False`.",
        "",
        "| scenario | floor | " + " | ".join(SYNC_COLS) + " |",
        "|" + "---|" * (len(SYNC_COLS) + 2),
    ]
    for label, row in results["sync"].items():
        if "payload" in row:
            continue
        floor = row["floor"]["us"]
        cells = [_cell(row, c) for c in SYNC_COLS]
        lines.append(f"| {label} | {floor:.3g} µs | " + " | ".join(cells) + " |")
    if plot:
        lines += ["", f"![send cost against receivers]({plot})"]
    lines += _payload_tables(results)
    lines += [
        "",
        "## Async send (A1-A4), asyncio and trio",
        "",
        "A1/A2: `asend` to 1/10 async no-op receivers, ratio to awaiting the same"
        " coroutines one after another (`r(signal=..., sender=...)`). A3: 50 async"
        " receivers each `await anyio.sleep(0.01)`, ratio to a bare anyio task group"
        " doing the same (ideal 10 ms). A4: 8 sync receivers each `time.sleep(0.01)`"
        " through the async send, ratio to a `ThreadPoolExecutor(8)` (ideal 10 ms);"
        " blinker gets a `_sync_wrapper` running each receiver in a worker thread,"
        " aiosignal only awaits coroutines. Peers run on asyncio only. pyee and"
        " psygnal have no send that awaits async receivers.",
        "",
    ]
    cols = [c for c in ASYNC_COLS if c != "pyee" and c != "psygnal"]
    lines.append("| scenario | base | " + " | ".join(cols) + " | psygnal, pyee |")
    lines.append("|" + "---|" * (len(cols) + 3))
    for backend in ("asyncio", "trio"):
        for label, row in (results.get(backend) or {}).items():
            if "payload" in row:
                continue
            unit = "ms" if label in ("A3", "A4") else "µs"
            cells = [_cell(row, c, unit) for c in cols]
            lines.append(
                f"| {label} {backend} | {ASYNC_BASE[label]} | "
                + " | ".join(cells)
                + " | n/a |"
            )
    a5 = results["A5"]
    lines += [
        "",
        "## Blocking send with async receivers (A5)",
        "",
        "`send()` from plain sync code (no running loop) to 10 async receivers. Ratio"
        " base: `asyncio.run_coroutine_threadsafe` of the sequential awaits on a loop"
        " already running in another thread. blinker, psygnal, pyee and aiosignal have"
        " no blocking send that awaits async receivers (`n/a`).",
        "",
        "| floor | asignal | django |",
        "|---|---|---|",
        f"| {a5['floor']['us']:.0f} µs | {_cell(a5, 'asignal')}"
        f" | {_cell(a5, 'django')} |",
        "",
        "## Connect then disconnect (S5)",
        "",
        "Median of interleaved repetitions.",
        "",
        "| library | 1,000 | 10,000 | growth (10 = linear) |",
        "|---|---|---|---|",
    ]
    for name, row in results["S5"].items():
        if name in (BASELINE, "pairs"):
            continue
        if row is None:
            lines.append(f"| {name} | n/a | n/a | n/a |")
        else:
            lines.append(
                f"| {name} | {row['1k_ms']} ms | {row['10k_ms']} ms"
                f" | x{row['growth']} |"
            )
    lines += [
        "",
        "## Memory (M1)",
        "",
        f"tracemalloc, {results['M1_count']:,} receivers connected; then bytes still"
        f" allocated per connect/disconnect cycle after {results['M1_count']:,}"
        " cycles (≤ 0 means nothing retained)."
        " pyee, psygnal (for plain functions) and aiosignal hold receivers strongly.",
        "",
        "| library | weak | bytes per receiver | bytes per cycle |",
        "|---|---|---|---|",
    ]
    for name, row in results["M1"].items():
        if name == BASELINE:
            continue
        if row is None:
            lines.append(f"| {name} | n/a | n/a | n/a |")
        else:
            lines.append(
                f"| {name} | {'yes' if row['weak'] else 'no'}"
                f" | {row['bytes_per_receiver']} | {row['bytes_per_cycle']} |"
            )
    return "\n".join(lines) + "\n"


def _payload_tables(results: dict[str, Any]) -> list[str]:
    """The S1p-S3p and A1p-A2p tables: sends carrying a post_save payload."""
    lines = [
        "",
        "## Sends with a post_save payload (S1p-S3p, A1p-A2p)",
        "",
        "Every send carries the five keyword arguments of Django's `post_save`"
        " (`instance`, `created`, `raw`, `using`, `update_fields`). Ratio base"
        " (`floor`): a loop calling the receivers as `r(sender, **payload)`."
        " `contract floor`: the least a send honouring the contract does, a function"
        " called like a send (`f(sender, **payload)`) that builds the receivers'"
        " keyword dict once, `{'signal': ..., 'sender': ..., **named}`, and calls"
        " `r(**kw)` per receiver collecting `(receiver, result)` pairs."
        " `asignal / contract floor` is the median of each round's own ratio"
        " (issue 11's target: x1.15 at 10 and 100 receivers). psygnal passes the"
        " payload positionally, `r(sender, instance, ...)`: no keyword dict per"
        " call, which is why it can be below the floor.",
        "",
        "| scenario | floor | "
        + " | ".join(PAYLOAD_SYNC_COLS)
        + " | asignal / contract floor |",
        "|" + "---|" * (len(PAYLOAD_SYNC_COLS) + 3),
    ]
    for label, row in results["sync"].items():
        if "payload" not in row:
            continue
        cells = [_cell(row, c) for c in PAYLOAD_SYNC_COLS]
        vs = row.get("pairs", {}).get(CONTRACT)
        lines.append(
            f"| {label} | {row['floor']['us']:.3g} µs | "
            + " | ".join(cells)
            + f" | x{vs:.2f} |"
        )
    lines += [
        "",
        "A1p/A2p: `asend` to 1/10 async no-op receivers with the payload; ratio base:"
        " the async contract floor (the keyword dict built once per send, each"
        " receiver awaited in turn, `(receiver, result)` pairs collected). Peers on"
        " asyncio only.",
        "",
        "| scenario | contract floor | " + " | ".join(PAYLOAD_ASYNC_COLS) + " |",
        "|" + "---|" * (len(PAYLOAD_ASYNC_COLS) + 2),
    ]
    for backend in ("asyncio", "trio"):
        for label, row in (results.get(backend) or {}).items():
            if "payload" not in row:
                continue
            cells = [_cell(row, c) for c in PAYLOAD_ASYNC_COLS]
            base = row["sequential await"]["us"]
            lines.append(
                f"| {label} {backend} | {base:.3g} µs | " + " | ".join(cells) + " |"
            )
    return lines


def _comparison(results: dict[str, Any], meta: dict[str, Any]) -> list[str]:
    """asignal against the baseline copy, scenario by scenario (empty without one)."""
    if meta.get("baseline", "none") == "none":
        return []
    lines = [
        "## asignal against the baseline",
        "",
        f"Baseline: {meta['baseline']}. `asignal / baseline` is the median over"
        " rounds of each round's own ratio (both timed in the same round), so"
        " x1.00 means no change and x1.05 means 5% slower. Times are medians.",
        "",
        "| scenario | asignal | baseline | asignal / baseline |",
        "|---|---|---|---|",
    ]
    groups = [("", results["sync"])]
    groups += [(f" {b}", results[b]) for b in ("asyncio", "trio") if b in results]
    groups.append(("", {"A5": results["A5"]}))
    for suffix, rows in groups:
        for label, row in rows.items():
            new, old = _us(row, MINE), _us(row, BASELINE)
            vs = row.get("pairs", {}).get(VS_BASELINE)
            if new is None or old is None or vs is None:
                continue
            unit, scale = ("ms", 1000) if label in ("A3", "A4") else ("µs", 1)
            lines.append(
                f"| {label}{suffix} | {new / scale:.4g} {unit}"
                f" | {old / scale:.4g} {unit} | x{vs:.3f} |"
            )
    s5 = results["S5"]
    if s5.get(MINE) and s5.get(BASELINE) and "pairs" in s5:
        for size in ("1k", "10k"):
            vs = s5["pairs"][f"{VS_BASELINE} {size}"]
            lines.append(
                f"| S5 {size} connect+disconnect | {s5[MINE][f'{size}_ms']} ms"
                f" | {s5[BASELINE][f'{size}_ms']} ms | x{vs:.3f} |"
            )
    m1 = results["M1"]
    if m1.get(MINE) and m1.get(BASELINE):
        for key, what in (
            ("bytes_per_receiver", "bytes per receiver"),
            ("bytes_per_cycle", "bytes per cycle"),
        ):
            new_b, old_b = m1[MINE][key], m1[BASELINE][key]
            vs_txt = f"x{new_b / old_b:.3f}" if old_b > 0 else "-"
            lines.append(f"| M1 {what} | {new_b} | {old_b} | {vs_txt} |")
    return [*lines, ""]


def plot(curves: dict[str, dict[str, dict[int, float]]], path: Path) -> bool:
    """Draw µs per send against receivers (log-log), sync and async panels."""
    try:
        matplotlib: Any = importlib.import_module("matplotlib")
        matplotlib.use("Agg")
        plt: Any = importlib.import_module("matplotlib.pyplot")
    except ImportError:
        return False
    fig, axes = plt.subplots(1, 2, figsize=(12, 5))
    titles = {
        "sync": "sync send (floor: r(sender) loop)",
        "asyncio": "async send on asyncio (floor: sequential await)",
    }
    for ax, (key, title) in zip(axes, titles.items(), strict=True):
        for name, points in sorted(curves.get(key, {}).items()):
            xs = sorted(points)
            style = (
                "--"
                if "floor" in name or name.startswith(("seq", "async", "any"))
                else "-"
            )
            width = 2.5 if name == "asignal" else 1.2
            ax.plot(
                xs, [points[x] for x in xs], style, marker="o", lw=width, label=name
            )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("receivers")
        ax.set_ylabel("µs per send (median)")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True

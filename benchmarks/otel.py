"""What watching sends costs: asignal with nothing watching, with a slow-receiver
threshold, and instrumented by ``asignal.otel`` with the OpenTelemetry SDK.

Run with ``python benchmarks/otel.py [--rounds N] [--out FILE]`` (needs
``opentelemetry-sdk``). Scenarios: S1p and S2p (``send`` to 1 and 10 sync receivers)
and A1p and A2p (``asend`` to 1 and 10 async receivers), each with the post_save
payload and no-op receivers. Each round times every mode of a scenario back to back
(the mode switched between timed loops, never inside one) and the figure is the
median over rounds of (time in that mode / time with nothing watching).

The SDK runs with a span processor that drops every span and a metric reader that
is never collected: what is measured is asignal's share plus the SDK's span and
measurement creation, not an exporter's. What nothing-watching costs against the
code before the seam existed is in RESULTS.md (``--baseline``; see README.md).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio

sys.path.insert(0, str(Path(__file__).parent))

from _common import atimed, post_save_payload, timed
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider

import asignal
import asignal.otel

MODES = ("off", "slow threshold", "otel")


def _set_mode(mode: str, tracer: TracerProvider, meter: MeterProvider) -> None:
    asignal.otel.uninstrument()
    asignal.set_slow_threshold(None)
    if mode == "slow threshold":
        asignal.set_slow_threshold(60.0)  # timed, never reached
    elif mode == "otel":
        asignal.otel.instrument(tracer_provider=tracer, meter_provider=meter)


def _receivers(n: int, is_async: bool) -> list[Callable[..., Any]]:
    if is_async:

        async def areceiver(sender: object, **kwargs: Any) -> None:
            pass

        return [areceiver for _ in range(n)]

    def receiver(sender: object, **kwargs: Any) -> None:
        pass

    return [receiver for _ in range(n)]


def _signal(n: int, is_async: bool) -> asignal.Signal:
    signal = asignal.Signal(name="bench")
    for index, receiver in enumerate(_receivers(n, is_async)):
        signal.connect(receiver, weak=False, dispatch_uid=index)
    return signal


def _loops(per_call: float) -> int:
    return max(1, int(0.002 / max(per_call, 1e-9)))


def run(rounds: int) -> dict[str, dict[str, float]]:
    """``{scenario: {mode: median ratio to "off", "off_us": microseconds}}``."""
    tracer = TracerProvider()
    tracer.add_span_processor(SpanProcessor())  # the base class drops every span
    meter = MeterProvider(metric_readers=[InMemoryMetricReader()])
    payload = post_save_payload()
    results: dict[str, dict[str, float]] = {}
    for name, n in (("S1p", 1), ("S2p", 10)):
        signal = _signal(n, False)

        def time_loops(loops: int, signal: asignal.Signal = signal) -> float:
            return timed(lambda: signal.send(None, **payload), loops)

        results[name] = _rounds(rounds, time_loops, tracer, meter)

    async def async_scenarios() -> None:
        for name, n in (("A1p", 1), ("A2p", 10)):
            signal = _signal(n, True)

            async def asend(signal: asignal.Signal = signal) -> object:
                return await signal.asend(None, **payload)

            times: dict[str, list[float]] = {mode: [] for mode in MODES}
            loops = _loops(await atimed(asend, 100))
            for _ in range(rounds):
                for mode in MODES:
                    _set_mode(mode, tracer, meter)
                    times[mode].append(await atimed(asend, loops))
            results[name] = _summary(times)

    anyio.run(async_scenarios)
    _set_mode("off", tracer, meter)
    return results


def _rounds(
    rounds: int,
    time_loops: Callable[[int], float],
    tracer: TracerProvider,
    meter: MeterProvider,
) -> dict[str, float]:
    times: dict[str, list[float]] = {mode: [] for mode in MODES}
    loops = _loops(time_loops(100))
    for _ in range(rounds):
        for mode in MODES:
            _set_mode(mode, tracer, meter)
            times[mode].append(time_loops(loops))
    return _summary(times)


def _summary(times: dict[str, list[float]]) -> dict[str, float]:
    off = times["off"]
    summary = {
        mode: statistics.median(t / o for t, o in zip(times[mode], off, strict=True))
        for mode in MODES
        if mode != "off"
    }
    summary["off_us"] = statistics.median(off) * 1e6
    return summary


def markdown(results: dict[str, dict[str, float]], rounds: int) -> str:
    lines = [
        f"What watching a send costs ({rounds} rounds; median ratio to the same send "
        "with nothing watching):",
        "",
        "| Scenario | nothing watching | slow threshold | otel (SDK) |",
        "|---|---|---|---|",
    ]
    for name, row in results.items():
        lines.append(
            f"| {name} | {row['off_us']:.2f} µs | x{row['slow threshold']:.2f} "
            f"| x{row['otel']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--out", type=Path, help="write the table to this file")
    args = parser.parse_args()
    table = markdown(run(args.rounds), args.rounds)
    print(table)
    if args.out is not None:
        args.out.write_text(table, encoding="utf-8")


if __name__ == "__main__":
    main()

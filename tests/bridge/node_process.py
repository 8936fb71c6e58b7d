"""One bridge node in a process of its own, for the multi-process tests.

    python node_process.py URL PREFIX NODE_ID SIGNAL DELIVERY OUT [DELAY]

Opens the bridge, writes ``ready`` to OUT, then appends one line per event a
receiver handles (``<n>``, flushed), sleeping DELAY seconds in the receiver; runs
until killed or SIGTERM.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from typing import Any

from asignal import Signal
from asignal.bridge import Bridge


async def main(argv: list[str]) -> None:
    url, prefix, node_id, name, delivery, out = argv[:6]
    delay = float(argv[6]) if len(argv) > 6 else 0.0
    bridged = Signal(name=name)
    bridge = Bridge(
        url,
        node_id=node_id,
        prefix=prefix,
        delivery=delivery,  # type: ignore[arg-type]
        max_in_flight=1,
        retry_delay=0.05,
        shutdown_timeout=1,
    )
    bridge.add(bridged)

    with open(out, "a", buffering=1) as lines:

        async def record(sender: object, n: int, **kwargs: Any) -> None:
            if delay:
                await asyncio.sleep(delay)
            lines.write(f"{n}\n")

        bridged.connect(record)
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        async with bridge:
            lines.write("ready\n")
            await stop.wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))

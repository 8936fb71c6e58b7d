"""The ``asignal`` command: ``asignal list`` shows signals and their receivers.

``asignal list [--import MODULE ...] [--format text|json|mermaid] [--traceback]``
imports the modules (the current directory is importable, as with ``python -m``),
runs :func:`asignal.autodiscover` for the entry-point group, finds every ``Signal``
in the imported modules (every live signal when none is given), and prints each with
its declared arguments and its live receivers in call order. A signal added to an
``asignal.bridge.Bridge`` is marked with the bridge's transport: its URL without
password, its delivery mode and its node id.

Exit status: 0 on success, 1 when a module does not import, 2 for a usage error.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import traceback
from collections.abc import Sequence
from types import ModuleType
from typing import Any

from ._connection import ReceiverInfo
from ._discovery import autodiscover
from ._receivers import describe_callable
from ._signal import Signal, all_signals

__all__ = ["main"]


def _describe_sender(sender: object) -> str:
    if sender is None:
        return "any"
    if isinstance(sender, type):
        return f"{sender.__module__}.{sender.__qualname__}"
    return describe_callable(sender)


def _bridges(signal: Signal) -> list[dict[str, str]]:
    """The bridges *signal* is added to, as ``url`` (without password), ``delivery``
    and ``node_id``. Only a program that imported ``asignal.bridge`` has bridges, so
    the command imports it only then."""
    if "asignal.bridge" not in sys.modules:
        return []
    from .bridge import bridges_of

    return [
        {"url": bridge.url, "delivery": bridge.delivery, "node_id": bridge.node_id}
        for bridge in bridges_of(signal)
    ]


def _bridge_text(bridge: dict[str, str]) -> str:
    return f"{bridge['url']} ({bridge['delivery']}, node {bridge['node_id']})"


def _signal_name(signal: Signal, found_as: dict[int, str]) -> str:
    return signal.name or found_as.get(id(signal)) or repr(signal)


def _receiver_json(info: ReceiverInfo) -> dict[str, Any]:
    return {
        "name": info.name,
        "file": info.file,
        "line": info.line,
        "kind": "async" if info.is_async else "sync",
        "sender": _describe_sender(info.sender),
        "weak": info.weak,
        "priority": info.priority,
        "inline": info.inline,
        "dispatch_uid": None if info.dispatch_uid is None else str(info.dispatch_uid),
    }


def _collect(modules: list[ModuleType]) -> tuple[list[Signal], dict[int, str]]:
    found_as: dict[int, str] = {}
    signals: dict[int, Signal] = {}
    for module in modules:
        for attr, value in vars(module).items():
            if isinstance(value, Signal):
                signals.setdefault(id(value), value)
                found_as.setdefault(id(value), f"{module.__name__}.{attr}")
    if not modules:
        for signal in all_signals():
            signals.setdefault(id(signal), signal)
    ordered = sorted(signals.values(), key=lambda s: _signal_name(s, found_as))
    return ordered, found_as


def _text(signals: list[Signal], found_as: dict[int, str]) -> str:
    lines: list[str] = []
    for signal in signals:
        args = sorted(signal.providing_args or ())
        declared = f"  (providing_args: {', '.join(args)})" if args else ""
        lines.append(f"{_signal_name(signal, found_as)}{declared}")
        lines.extend(f"  bridged: {_bridge_text(b)}" for b in _bridges(signal))
        infos = signal.describe()
        if not infos:
            lines.append("  (no receivers)")
        for position, info in enumerate(infos, 1):
            where = f"{info.file}:{info.line}" if info.file else "?"
            line = (
                f"  {position}. {info.name}  {where}  "
                f"{'async' if info.is_async else 'sync'}  "
                f"sender={_describe_sender(info.sender)}  "
                f"{'weak' if info.weak else 'strong'}  priority={info.priority}"
            )
            if info.inline:
                line += "  inline"
            if info.dispatch_uid is not None:
                line += f"  dispatch_uid={info.dispatch_uid!r}"
            lines.append(line)
    return "\n".join(lines) if lines else "no signals found"


def _mermaid_label(text: str) -> str:
    """*text* as a quoted Mermaid label: the characters that Mermaid or its HTML
    labels would read as syntax (``<lambda>``, quotes) become entity codes."""
    for char, code in (("#", "#35;"), ("&", "#38;"), ('"', "#quot;")):
        text = text.replace(char, code)
    return '"' + text.replace("<", "#lt;").replace(">", "#gt;") + '"'


def _mermaid(signals: list[Signal], found_as: dict[int, str]) -> str:
    """A flowchart whose every edge is a true route.

    Each signal is one node, standing for a send from any sender; each sender
    that some receiver is restricted to is one node; each connection is its own
    receiver node (two receivers with one name stay two). A receiver connected
    for any sender hangs from its signal; one connected for a sender hangs from
    that sender, on an edge labelled with the signal. A bridged signal has a
    dotted edge, labelled ``bridged``, to a node for its bridge's transport.
    """
    lines = ["flowchart LR"]
    senders: dict[int, tuple[object, str]] = {}  # the object keeps its id() unique
    receivers = 0
    for index, signal in enumerate(signals):
        signal_id = f"s{index}"
        name = _mermaid_label(_signal_name(signal, found_as))
        lines.append(f"    {signal_id}(({name}))")
        for position, bridge in enumerate(_bridges(signal)):
            bridge_id = f"{signal_id}b{position}"
            label = _mermaid_label(_bridge_text(bridge))
            lines.append(f"    {bridge_id}{{{{{label}}}}}")
            lines.append(f"    {signal_id} -. bridged .-> {bridge_id}")
        for info in signal.describe():
            receiver_id = f"r{receivers}"
            receivers += 1
            lines.append(f"    {receiver_id}[{_mermaid_label(info.name)}]")
            if info.sender is None:
                lines.append(f"    {signal_id} --> {receiver_id}")
                continue
            if id(info.sender) in senders:
                sender_id = senders[id(info.sender)][1]
            else:
                sender_id = f"p{len(senders)}"
                senders[id(info.sender)] = (info.sender, sender_id)
                label = _mermaid_label(_describe_sender(info.sender))
                lines.append(f"    {sender_id}[/{label}/]")
            lines.append(f"    {sender_id} -- {name} --> {receiver_id}")
    return "\n".join(lines)


def _list(args: argparse.Namespace) -> int:
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # as `python -m` does
    modules: list[ModuleType] = []
    for name in args.imports:
        try:
            modules.append(importlib.import_module(name))
        except Exception as exc:
            print(
                f"asignal: cannot import module {name!r}: {type(exc).__name__}: {exc}",
                file=sys.stderr,
            )
            if args.traceback:
                traceback.print_exc()
            else:
                print("(run with --traceback for details)", file=sys.stderr)
            return 1
    try:
        autodiscover()
    except ImportError as exc:
        print(f"asignal: {exc}", file=sys.stderr)
        if args.traceback:
            traceback.print_exc()
        return 1
    signals, found_as = _collect(modules)
    if args.format == "json":
        payload = [
            {
                "name": _signal_name(signal, found_as),
                "providing_args": sorted(signal.providing_args or ()),
                "bridges": _bridges(signal),
                "receivers": [_receiver_json(info) for info in signal.describe()],
            }
            for signal in signals
        ]
        print(json.dumps(payload, indent=2))
    elif args.format == "mermaid":
        print(_mermaid(signals, found_as))
    else:
        print(_text(signals, found_as))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``asignal`` command with *argv* (default: ``sys.argv[1:]``)."""
    parser = argparse.ArgumentParser(
        prog="asignal", description="Inspect asignal signals and their receivers."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser(
        "list", help="list signals and their live receivers, in call order"
    )
    listing.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=[],
        metavar="MODULE",
        help="import this module and list the signals found in it (repeatable)",
    )
    listing.add_argument(
        "--format", choices=("text", "json", "mermaid"), default="text"
    )
    listing.add_argument(
        "--traceback", action="store_true", help="show tracebacks of import errors"
    )
    args = parser.parse_args(argv)
    return _list(args)

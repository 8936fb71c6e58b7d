"""The `asignal list` command."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from asignal._cli import main
from asignal.signals import post_save

MODULE = """
from asignal import Signal, receiver
from asignal.signals import post_save


class Order:
    pass


order_paid = Signal(providing_args=["order", "amount"])


@receiver(order_paid, priority=5, weak=False)
def notify(sender, **kwargs):
    pass


@receiver(order_paid)
async def audit(sender, **kwargs):
    pass


@receiver(post_save, sender=Order, weak=False)
def on_saved(sender, **kwargs):
    pass


refunded = Signal(name="shop.refunded")
first = refunded.connect(lambda sender, **kwargs: None, weak=False)
second = refunded.connect(lambda sender, **kwargs: None, weak=False, inline=True)
refunded.connect(notify, sender=Order, dispatch_uid="refund-notify")
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    (tmp_path / "shop_signals.py").write_text(MODULE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    module = sys.modules.pop("shop_signals", None)
    if module is not None:  # imported in-process by main(): undo its connections
        post_save.disconnect(module.on_saved, sender=module.Order)


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "asignal", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,
    )


def test_text_lists_receivers_in_call_order(project: Path) -> None:
    """Text output: each signal, its arguments, receivers in call order with
    location, kind, sender, weak/strong and priority."""
    result = run("list", "--import", "shop_signals", cwd=project)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "shop_signals.order_paid  (providing_args: amount, order)" in out
    notify_line = next(
        line for line in out.splitlines() if "notify" in line and "any" in line
    )
    audit_line = next(line for line in out.splitlines() if "audit" in line)
    assert out.index(notify_line) < out.index(audit_line)
    assert "1. shop_signals.notify" in notify_line
    assert "shop_signals.py:" in notify_line
    assert "sync  sender=any  strong  priority=5" in notify_line
    assert "async  sender=any  weak  priority=0" in audit_line
    saved = next(line for line in out.splitlines() if "on_saved" in line)
    assert "sender=shop_signals.Order" in saved
    assert "asignal.signals.post_save" in out


def test_json_format(project: Path) -> None:
    """--format json gives the same facts, machine-readable."""
    result = run("list", "--import", "shop_signals", "--format", "json", cwd=project)
    data = {entry["name"]: entry for entry in json.loads(result.stdout)}
    paid = data["shop_signals.order_paid"]
    assert paid["providing_args"] == ["amount", "order"]
    assert [r["name"] for r in paid["receivers"]] == [
        "shop_signals.notify",
        "shop_signals.audit",
    ]
    assert paid["receivers"][1]["kind"] == "async"


def test_mermaid_format(project: Path) -> None:
    """--format mermaid draws sender -> signal -> receiver edges."""
    result = main(["list", "--import", "shop_signals", "--format", "mermaid"])
    assert result == 0


def test_mermaid_output(project: Path) -> None:
    """The mermaid text is a flowchart with nodes for senders and receivers."""
    out = run(
        "list", "--import", "shop_signals", "--format", "mermaid", cwd=project
    ).stdout
    assert out.startswith("flowchart LR")
    assert '[/"shop_signals.Order"/]' in out
    assert '"shop_signals.on_saved"' in out
    assert "-->" in out


def _mermaid_graph(out: str) -> tuple[dict[str, str], set[tuple[str, str]]]:
    """The node labels by id, and the edges, of a flowchart without subgraphs."""
    nodes: dict[str, str] = {}
    edges: set[tuple[str, str]] = set()
    for line in out.splitlines()[1:]:
        line = line.strip()
        if "-->" in line:
            edges.add((line.split()[0], line.split()[-1]))
        else:
            node_id, _, rest = line.partition("[")
            if not rest:
                node_id, _, rest = line.partition("((")
            nodes[node_id] = rest.strip("[]()/")
    return nodes, edges


def test_mermaid_nodes_are_per_connection_and_edges_true(project: Path) -> None:
    """Two receivers with one name (two lambdas) are two nodes with their own
    edges; a receiver connected for one sender is reached from that sender only,
    not from the signal; labels carry no raw angle brackets."""
    out = run(
        "list", "--import", "shop_signals", "--format", "mermaid", cwd=project
    ).stdout
    assert "<" not in out.replace("-->", "")
    nodes, edges = _mermaid_graph(out)
    [refunded] = [i for i, label in nodes.items() if label == '"shop.refunded"']
    lambdas = [i for i, label in nodes.items() if "#lt;lambda#gt;" in label]
    assert len(lambdas) == 2
    assert {(refunded, lam) for lam in lambdas} <= edges
    [order] = [i for i, label in nodes.items() if label == '"shop_signals.Order"']
    [saved] = [i for i, label in nodes.items() if label == '"shop_signals.on_saved"']
    assert (order, saved) in edges
    assert not any(target == saved for source, target in edges if source != order)
    notify = [i for i, label in nodes.items() if label == '"shop_signals.notify"']
    assert len(notify) == 2  # connected to order_paid (any) and refunded (Order)
    assert {source for source, target in edges if target in notify} == {
        order,
        next(i for i, label in nodes.items() if "order_paid" in label),
    }


def test_json_has_inline_and_text_has_dispatch_uid(project: Path) -> None:
    """--format json reports inline; the text format shows dispatch_uid (and
    inline) where set."""
    result = run("list", "--import", "shop_signals", "--format", "json", cwd=project)
    data = {entry["name"]: entry for entry in json.loads(result.stdout)}
    refunded = data["shop.refunded"]["receivers"]
    assert [r["inline"] for r in refunded] == [False, True, False]
    assert refunded[2]["dispatch_uid"] == "refund-notify"
    text = run("list", "--import", "shop_signals", cwd=project).stdout
    [line] = [x for x in text.splitlines() if "dispatch_uid" in x]
    assert "shop_signals.notify" in line
    assert line.endswith("dispatch_uid='refund-notify'")
    assert sum(1 for x in text.splitlines() if x.endswith("  inline")) == 1


def test_import_error_is_reported_without_traceback(project: Path) -> None:
    """A module that does not import: its name, exit status 1, no traceback unless
    asked."""
    (project / "broken_mod.py").write_text("raise ValueError('nope')\n")
    result = run("list", "--import", "broken_mod", cwd=project)
    assert result.returncode == 1
    assert "cannot import module 'broken_mod': ValueError: nope" in result.stderr
    assert "Traceback" not in result.stderr
    verbose = run("list", "--import", "broken_mod", "--traceback", cwd=project)
    assert "Traceback" in verbose.stderr


def test_usage_error_exits_2(project: Path) -> None:
    """A bad option is a usage error."""
    assert run("list", "--format", "xml", cwd=project).returncode == 2


BRIDGED_MODULE = """
from asignal import Signal
from asignal.bridge import Bridge

saved = Signal(name="shop.saved")
local = Signal(name="shop.local")
bridge = Bridge(
    "redis://:hunter2@127.0.0.1:6379/13?password=hunter2",
    node_id="web-1",
    delivery="at_least_once",
)
bridge.add(saved)
"""


@pytest.mark.parametrize("fmt", ["text", "json", "mermaid"])
def test_bridged_signals_show_their_transport_without_password(
    tmp_path: Path, fmt: str
) -> None:
    """A signal added to a bridge is marked with the bridge's URL (password
    redacted), delivery mode and node, in every format; an unbridged signal is not;
    the password appears nowhere in the output."""
    (tmp_path / "bridged_signals.py").write_text(BRIDGED_MODULE)
    result = run("list", "--import", "bridged_signals", "--format", fmt, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "hunter2" not in out + result.stderr
    url = "redis://:***@127.0.0.1:6379/13?password=***"
    if fmt == "json":
        data = {entry["name"]: entry for entry in json.loads(out)}
        assert data["shop.saved"]["bridges"] == [
            {"url": url, "delivery": "at_least_once", "node_id": "web-1"}
        ]
        assert data["shop.local"]["bridges"] == []
    elif fmt == "text":
        lines = out.splitlines()
        saved = lines.index("shop.saved")
        assert lines[saved + 1] == f"  bridged: {url} (at_least_once, node web-1)"
        assert not any(
            "bridged:" in line for line in lines[: lines.index("shop.saved")]
        )
    else:
        nodes = dict(
            line.strip().split("((", 1) for line in out.splitlines() if "((" in line
        )
        saved_id = next(i for i, label in nodes.items() if '"shop.saved"' in label)
        local_id = next(i for i, label in nodes.items() if '"shop.local"' in label)
        assert f'    {saved_id}b0{{{{"{url} (at_least_once, node web-1)"}}}}' in out
        assert f"    {saved_id} -. bridged .-> {saved_id}b0" in out
        assert f"{local_id} -. bridged" not in out

"""The public surface of ``asignal.bridge``."""

from __future__ import annotations

import subprocess
import sys
import types

import asignal.bridge


def test_all_is_exactly_the_public_names() -> None:
    """__all__ is sorted and lists every public attribute, each reporting the public
    module."""
    public = {
        name
        for name, value in vars(asignal.bridge).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and name != "annotations"
    }
    assert set(asignal.bridge.__all__) == public
    assert asignal.bridge.__all__ == sorted(public)
    assert asignal.bridge.Bridge.__module__ == "asignal.bridge"


def test_importing_the_bridge_loads_no_broker_client() -> None:
    """`import asignal.bridge` loads neither redis-py nor anything else optional; a
    transport's client is imported when a bridge with its URL is made."""
    code = (
        "import sys, asignal.bridge; "
        "print(sorted(m for m in ('redis', 'nats') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_import_asignal_does_not_import_the_bridge() -> None:
    """The core never imports the bridge package."""
    code = "import sys, asignal; print('asignal.bridge' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "False"

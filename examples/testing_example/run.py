"""Run this example's test suite: ``python examples/testing_example/run.py``.

It runs pytest on ``tests/`` in a subprocess from this folder (so ``shop`` is
importable) and exits with pytest's status; the ``examples`` nox session uses it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

here = Path(__file__).resolve().parent
sys.exit(
    subprocess.call(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=here,
    )
)

"""The pytest plugin, run against small real test suites with pytester."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytest_plugins = ["pytester"]

APP = """
from asignal import Signal

order_placed = Signal(name="shop.order_placed", providing_args=["order"])
calls = []


def on_order(sender, order, **kwargs):
    calls.append(order)


order_placed.connect(on_order)


def place(order):
    order_placed.send(sender="shop", order=order)


async def aplace(order):
    await order_placed.asend(sender="shop", order=order)
"""

SUITE = """
import pytest
import shopapp


def test_capture_sync(asignal_capture):
    sent = asignal_capture(shopapp.order_placed)
    shopapp.place(1)
    sent.assert_sent_once_with(shopapp.order_placed, sender="shop", order=1)


def test_mute_fixture_sync(asignal_mute):
    before = list(shopapp.calls)
    asignal_mute(shopapp.order_placed)
    shopapp.place(2)
    assert shopapp.calls == before


@pytest.mark.asignal_mute(shopapp.order_placed)
def test_marker_sync():
    before = list(shopapp.calls)
    shopapp.place(3)
    assert shopapp.calls == before


def test_isolate(asignal_isolate):
    shopapp.order_placed.disconnect(shopapp.on_order)


def test_isolate_restored():
    assert shopapp.order_placed.live_receivers("shop") == [shopapp.on_order]


def test_not_muted_afterwards():
    before = len(shopapp.calls)
    shopapp.place(4)
    assert len(shopapp.calls) == before + 1
"""

ASYNC_SUITE = """
import pytest
import shopapp

pytestmark = pytest.mark.{marker}


async def test_capture_async(asignal_capture):
    sent = asignal_capture()
    await shopapp.aplace(5)
    sent.assert_sent(shopapp.order_placed, order=5)


async def test_mute_fixture_async(asignal_mute):
    before = list(shopapp.calls)
    asignal_mute()
    await shopapp.aplace(6)
    assert shopapp.calls == before


@pytest.mark.asignal_mute(shopapp.order_placed)
async def test_marker_async():
    before = list(shopapp.calls)
    await shopapp.aplace(7)
    assert shopapp.calls == before


async def test_not_muted_afterwards():
    before = len(shopapp.calls)
    await shopapp.aplace(8)
    assert len(shopapp.calls) == before + 1
"""


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(shopapp=APP)
    pytester.syspathinsert()
    return pytester


def test_sync_suite(project: pytest.Pytester) -> None:
    """Fixtures and marker work in plain sync tests, and undo themselves."""
    project.makepyfile(test_shop=SUITE)
    result = project.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=6)


@pytest.mark.parametrize("mode", ["strict", "auto"])
def test_pytest_asyncio_suite(project: pytest.Pytester, mode: str) -> None:
    """The sync fixtures work under pytest-asyncio, strict and auto mode."""
    marker = "asyncio"
    project.makepyfile(test_shop=ASYNC_SUITE.format(marker=marker))
    result = project.runpytest_subprocess(
        "-p", "no:cacheprovider", "-o", f"asyncio_mode={mode}", "-p", "no:anyio"
    )
    result.assert_outcomes(passed=4)


def test_anyio_suite_on_asyncio_and_trio(project: pytest.Pytester) -> None:
    """The sync fixtures work under anyio's plugin, on asyncio and on trio."""
    project.makeconftest(
        """
        import pytest

        @pytest.fixture(params=["asyncio", "trio"])
        def anyio_backend(request):
            return request.param
        """
    )
    project.makepyfile(test_shop=ASYNC_SUITE.format(marker="anyio"))
    result = project.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=8)


def test_marker_is_registered(project: pytest.Pytester) -> None:
    """--strict-markers accepts asignal_mute: the plugin registers it."""
    result = project.runpytest_subprocess("--markers")
    result.stdout.fnmatch_lines(["*asignal_mute(*signals)*"])


def test_plugin_import_is_light() -> None:
    """Importing the plugin (as every pytest run does) does not import
    asignal.testing."""
    code = textwrap.dedent(
        """
        import sys
        import asignal.pytest_plugin
        print("asignal.testing" in sys.modules)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "False"


def test_no_autouse_fixtures(project: pytest.Pytester) -> None:
    """A test that asks for nothing gets none of the plugin's fixtures."""
    project.makepyfile(
        test_bare="""
        def test_bare(request):
            assert not [f for f in request.fixturenames if f.startswith("asignal")]
        """
    )
    project.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)

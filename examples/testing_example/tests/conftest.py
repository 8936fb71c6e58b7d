import pytest

import asignal


@pytest.fixture(scope="session", autouse=True)
def _receivers() -> None:
    """Connect the shop's receivers once, as an app does at startup."""
    asignal.autodiscover("shop")


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)

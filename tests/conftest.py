"""Shared fixtures: ``traced`` for the boundary tests, ``use_uvloop`` for the loop tests.

The clean-state reset is ../conftest.py.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from boundaries_support import LOOPS, Traced, make_traced

from harn_async_trace import AsyncioInstrumentation, instrument_asyncio

pytest_plugins = ["pytester"]


@pytest.fixture(params=LOOPS)
def traced(request: pytest.FixtureRequest) -> Iterator[Traced]:
    """A collector, an installed MockClock and a runner on asyncio or uvloop.

    Shared by the ``test_boundaries_*`` modules; ``test_boundaries_vtime``
    overrides it to run on the virtual-time loops only.
    """
    value, restore = make_traced(request.param)
    yield value
    restore()


@pytest.fixture(params=[False, True], ids=["asyncio", "uvloop"])
def use_uvloop(request: pytest.FixtureRequest) -> bool:
    """Run the test on the stock asyncio loop and on uvloop (the ``test_loop*`` modules)."""
    return bool(request.param)


@pytest.fixture
def instrumented() -> Iterator[AsyncioInstrumentation]:
    """instrument_asyncio() for the test (the autouse reset turns it off after, too)."""
    with instrument_asyncio() as handle:
        yield handle

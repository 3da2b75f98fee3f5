"""Shared fixtures: clean process-wide tracing state for every test; ``traced`` for boundaries."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from boundaries_support import LOOPS, Traced, make_traced

from harn_async_trace.testing import reset_tracing_state

pytest_plugins = ["pytester"]


@pytest.fixture(autouse=True)
def _clean_tracing_state() -> Iterator[None]:
    """Reset the default collector, clock overrides and subscribers around each test."""
    reset_tracing_state()
    yield
    reset_tracing_state()


@pytest.fixture(params=LOOPS)
def traced(request: pytest.FixtureRequest) -> Iterator[Traced]:
    """A collector, an installed MockClock and a runner on asyncio or uvloop.

    Shared by the ``test_boundaries_*`` modules; ``test_boundaries_vtime``
    overrides it to run on the virtual-time loops only.
    """
    value, restore = make_traced(request.param)
    yield value
    restore()

"""Shared fixtures: ``traced`` for the boundary tests (the clean-state reset is ../conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from boundaries_support import LOOPS, Traced, make_traced

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

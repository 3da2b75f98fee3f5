"""Helpers for the virtual-loop tests (``test_loop*.py``): a runner and the mock's time.

The ``use_uvloop`` fixture they share is in ``conftest.py``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from harn_async_trace import MockClock, active_mock_clock
from harn_async_trace.loop import run

T = TypeVar("T")


def run_virtual(
    use_uvloop: bool, main: Callable[[], Awaitable[T]], clock: MockClock | None = None
) -> T:
    """Run ``main()`` on a fresh virtual loop of the requested kind."""

    async def wrapper() -> T:
        return await main()

    return run(wrapper(), clock=clock or MockClock(start_wall_ms=0), use_uvloop=use_uvloop)


def now_ms() -> int:
    """The active mock clock's monotonic time in ms (a mock must be active)."""
    clock = active_mock_clock()
    assert clock is not None
    return clock.now_monotonic_ms()

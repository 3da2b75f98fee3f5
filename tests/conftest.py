"""Shared fixtures: every test starts from clean process-wide tracing state."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from harn_async_trace import clock as clock_module
from harn_async_trace import context, events

pytest_plugins = ["pytester"]


@pytest.fixture(autouse=True)
def _clean_tracing_state() -> Iterator[None]:
    """Reset the default collector, clock overrides and subscribers around each test."""
    default = context.default_collector()
    default.reset()
    default.enabled = False
    del clock_module._ACTIVE[1:]
    yield
    default.reset()
    default.enabled = False
    del clock_module._ACTIVE[1:]
    events._subscribers = ()

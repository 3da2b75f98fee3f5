"""Repository-wide pytest set-up: every test and doctest starts from a clean tracing state."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from harn_async_trace.testing import reset_tracing_state


@pytest.fixture(autouse=True)
def _clean_tracing_state() -> Iterator[None]:
    """Reset the default collector, clock overrides and listeners around each test."""
    reset_tracing_state()
    yield
    reset_tracing_state()

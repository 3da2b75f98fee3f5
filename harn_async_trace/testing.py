"""Helpers for test suites of code traced with harn-async-trace.

* :func:`reset_tracing_state` gives every test a clean process: the default
  collector emptied and switched off, no clock override left installed, no
  event listener (or root-parent hook) left, ``instrument_asyncio`` off. Call
  it from an autouse fixture.
* :func:`render_trace_tree` renders spans as the readable tree that the
  pytest plugin's ``trace_snapshot`` compares with golden files.

Example ``conftest.py``::

    import pytest
    from harn_async_trace.testing import reset_tracing_state

    @pytest.fixture(autouse=True)
    def _clean_tracing():
        reset_tracing_state()
        yield
        reset_tracing_state()
"""

from __future__ import annotations

from . import clock as _clock
from . import events as _events
from ._snapshot import render_trace_tree
from .boundaries import uninstrument_asyncio
from .context import default_collector

__all__ = ("render_trace_tree", "reset_tracing_state")


def reset_tracing_state() -> None:
    """Empty and disable the default collector; drop clock overrides, listeners, instrumentation.

    Example:
        >>> from harn_async_trace import install_override, MockClock, active_mock_clock
        >>> _ = install_override(MockClock())
        >>> reset_tracing_state(); active_mock_clock() is None
        True
    """
    collector = default_collector()
    collector.reset()
    collector.enabled = False
    del _clock._ACTIVE[1:]  # index 0 is the system clock
    _events.unsubscribe_all()
    _events._set_root_parent(None)
    uninstrument_asyncio()

"""Which collector the module API talks to, per context.

The per-task parent chains themselves live in each collector (one
``ContextVar`` per collector, see ``collector.py``); this module chooses the
collector: a process default, overridable per context with
:func:`use_collector`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Final

from . import _core
from .collector import SpanCollector

__all__ = ("current_collector", "default_collector", "use_collector")

# Tracing is off in the process default until set_tracing_enabled(True), as in harn-vm.
_DEFAULT: Final = SpanCollector(enabled=False)
# The default is the process collector itself, so a lookup is one C call
# with no fallback.
_current: Final[ContextVar[SpanCollector]] = ContextVar(
    "harn_current_collector", default=_DEFAULT
)
# The core's span(), span_start() & co. read it directly (compiled: in C).
_core.use_current_var(_current)


def default_collector() -> SpanCollector:
    """The process-wide collector used when no :func:`use_collector` is active.

    Example:
        >>> isinstance(default_collector(), SpanCollector)
        True
    """
    return _DEFAULT


def current_collector() -> SpanCollector:
    """The collector the module functions act on in this context.

    Example:
        >>> with use_collector(SpanCollector()) as c:
        ...     current_collector() is c
        True
    """
    return _current.get()


@contextmanager
def use_collector(collector: SpanCollector) -> Iterator[SpanCollector]:
    """Route the module API to ``collector`` inside the block (and tasks created there).

    Example:
        >>> with use_collector(SpanCollector()) as c:
        ...     c.enabled
        True
    """
    if not isinstance(collector, SpanCollector):
        raise TypeError(f"use_collector() needs a SpanCollector, got {collector!r}")
    token = _current.set(collector)
    try:
        yield collector
    finally:
        _current.reset(token)

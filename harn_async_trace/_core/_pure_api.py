"""The hot functions of the module API, in pure Python (the compiled core has its own).

Each reads the current collector (``ContextVar.get`` bound once: a C call,
no Python frame) and calls the collector's core interface directly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..kinds import SpanKind
from ..model import Span

if TYPE_CHECKING:
    from ._pure import CoreCollector

__all__ = (
    "current_span_id",
    "span_attach_metadata",
    "span_close",
    "span_end",
    "span_set_metadata",
    "span_start",
)


def _no_collector() -> CoreCollector:
    raise RuntimeError("harn_async_trace.context is not imported yet")


# Replaced by ``ContextVar.get`` of the current-collector var (see __init__.py).
_collector: Callable[[], CoreCollector] = _no_collector


def span_start(kind: SpanKind | str, name: str) -> int:
    """Open a span under the current task's innermost open span; 0 when disabled.

    Example:
        >>> span_id = span_start(SpanKind.STEP, "load")   # 0 unless tracing is on
        >>> span_close(span_id) == bool(span_id)
        True
    """
    collector = _collector()
    if not collector.enabled:
        return 0
    return collector.open(kind, name)


def span_set_metadata(span_id: int, key: str, value: Any) -> None:
    """Set metadata on an open span (ignored for 0, unknown or ended ids).

    Example:
        >>> span_set_metadata(0, "model", "gpt")
    """
    if span_id:
        _collector().set_metadata(span_id, key, value)


def span_attach_metadata(span_id: int, key: str, value: Any) -> None:
    """Set metadata on an open span; an ended span is left alone.

    Use ``span_attach_metadata_if_absent`` to add a key to a finished span.

    Example:
        >>> span_attach_metadata(0, "k", 1)
    """
    if span_id:
        _collector().set_metadata(span_id, key, value)


def span_end(span_id: int) -> Span | None:
    """End a span and return its record; None for 0 or ids that are not open.

    Example:
        >>> span_end(0) is None
        True
    """
    if not span_id:
        return None
    return _collector().end(span_id)


def span_close(span_id: int) -> bool:
    """End a span without building its record; True if it was open (the cheap end).

    Example:
        >>> span_close(0)
        False
    """
    if not span_id:
        return False
    return _collector().close(span_id)


def current_span_id() -> int | None:
    """The current task's innermost open span id; None when none or disabled.

    Example:
        >>> current_span_id() is None or isinstance(current_span_id(), int)
        True
    """
    collector = _collector()
    if not collector.enabled:
        return None
    return collector.current_span_id()

"""The module-level tracing API (the functions harn-vm has), acting on the current collector.

Every function reads the current collector (see ``context.py``) and checks
``collector.enabled`` first, so the disabled path is one lookup and a branch.
The hot ones (``span_start``, ``span_set_metadata``, ``span_attach_metadata``,
``span_end``, ``span_close``, ``current_span_id``) come from the core
(``harn_async_trace._core``): compiled C functions, or their pure-Python
fallback. The rest call the collector's core interface directly rather
than through the harn-vm-named wrappers: each Python call level costs about
as much as a ContextVar set (docs/performance.md).
"""

from __future__ import annotations

from typing import Any

from ._core import (
    current_span_id,
    span_attach_metadata,
    span_close,
    span_end,
    span_set_metadata,
    span_start,
)
from .context import _current, current_collector
from .kinds import SpanKind
from .model import Span, SpanLink

_collector = _current.get  # == current_collector(), minus a Python call level

__all__ = (
    "current_span_id",
    "current_span_link",
    "is_tracing_enabled",
    "peek_spans",
    "reset_tracing",
    "set_tracing_enabled",
    "span_attach_metadata",
    "span_attach_metadata_if_absent",
    "span_close",
    "span_end",
    "span_link",
    "span_record_event",
    "span_set_metadata",
    "span_start",
    "span_start_detached_with_links",
    "span_start_user_timing",
    "span_start_with_links",
    "take_spans",
)


def set_tracing_enabled(enabled: bool) -> None:
    """Turn tracing on or off for the current collector; turning it on resets it.

    Example:
        >>> set_tracing_enabled(True); is_tracing_enabled()
        True
        >>> set_tracing_enabled(False)
    """
    if not isinstance(enabled, bool):
        raise TypeError(f"enabled must be a bool, got {enabled!r}")
    collector = current_collector()
    if enabled:
        collector.reset()
    collector.enabled = enabled


def is_tracing_enabled() -> bool:
    """Whether the current collector records spans.

    Example:
        >>> isinstance(is_tracing_enabled(), bool)
        True
    """
    return current_collector().enabled



def span_start_with_links(kind: SpanKind | str, name: str, links: list[SpanLink]) -> int:
    """Open a span with links to other spans; 0 when disabled.

    Example:
        >>> _ = span_end(span_start_with_links("step", "b", [SpanLink("t", "1")]))
    """
    collector = _collector()
    if not collector.enabled:
        return 0
    return collector.open(kind, name, links)


def span_start_detached_with_links(
    kind: SpanKind | str, name: str, links: list[SpanLink]
) -> int:
    """Open a parentless span (still pushed, so children nest); 0 when disabled.

    Example:
        >>> _ = span_end(span_start_detached_with_links("spawn", "job", []))
    """
    collector = _collector()
    if not collector.enabled:
        return 0
    return collector.open(kind, name, links, detached=True)




def span_attach_metadata_if_absent(span_id: int, key: str, value: Any) -> None:
    """Add ``key`` unless already present, on an open or completed span.

    Example:
        >>> span_attach_metadata_if_absent(0, "k", 1)
    """
    if span_id:
        current_collector().attach_metadata_if_absent(span_id, key, value)




def span_start_user_timing(
    name: str, attrs: dict[str, Any] | None = None
) -> tuple[int, str, int | None, int]:
    """Open a ``user_timing`` span, even when tracing is disabled.

    Returns ``(span_id, trace_id, parent_id, start_unix_ms)``.

    Example:
        >>> span_id, trace_id, parent_id, start_unix_ms = span_start_user_timing("phase")
        >>> span_end(span_id).kind
        <SpanKind.USER_TIMING: 'user_timing'>
    """
    if attrs is not None and not isinstance(attrs, dict):
        raise TypeError(f"attrs must be a dict, got {attrs!r}")
    collector = current_collector()
    span_id = collector.open(SpanKind.USER_TIMING, name, metadata=attrs)
    trace_id, parent_id, start_unix_ns = collector.open_details(span_id)
    return span_id, trace_id, parent_id, start_unix_ns // 1_000_000


def span_record_event(
    span_id: int, name: str, attrs: dict[str, Any] | None = None, *, at_ns: int | None = None
) -> bool:
    """Record an event on an open span; False for 0 or ids that are not open.

    ``at_ns`` places it at that time (ns since the Unix epoch, the clock of
    ``Span.start_unix_ns``) instead of now.

    Example:
        >>> span_record_event(0, "retry")
        False
        >>> span_record_event(0, "first_token", at_ns=1_700_000_000_125_000_000)
        False
    """
    if not span_id:
        return False
    if at_ns is None:  # a collector subclass may still take three arguments
        return current_collector().record_event(span_id, name, attrs)
    return current_collector().record_event(span_id, name, attrs, at_ns)



def span_link(span_id: int) -> SpanLink | None:
    """A link to an open span; None when disabled or not open.

    Example:
        >>> span_link(0) is None
        True
    """
    collector = current_collector()
    if not collector.enabled or not span_id:
        return None
    return collector.span_link(span_id)


def current_span_link() -> SpanLink | None:
    """A link to the current task's innermost open span; None when none or disabled.

    Example:
        >>> current_span_link() is None or current_span_link().trace_id.startswith("trace_")
        True
    """
    collector = current_collector()
    if not collector.enabled:
        return None
    return collector.current_span_link()


def take_spans() -> list[Span]:
    """Remove and return the current collector's finished spans.

    Example:
        >>> isinstance(take_spans(), list)
        True
    """
    return current_collector().take_spans()


def peek_spans() -> list[Span]:
    """The current collector's finished spans, left in place.

    Example:
        >>> isinstance(peek_spans(), list)
        True
    """
    return current_collector().spans()


def reset_tracing() -> None:
    """Forget every span of the current collector and start a new trace.

    Example:
        >>> reset_tracing(); peek_spans()
        []
    """
    current_collector().reset()

"""Readable trace trees for golden-file tests (used by the pytest plugin).

The tree shows what a reviewer needs to see change: kind, name, timing under
a mock clock, metadata, events and links. Link targets in the same trace are
written as ``#id`` references, which are stable under a mock clock because
ids are allocated in program order.
"""

from __future__ import annotations

from collections.abc import Sequence

from .clock import MockClock
from .export.summary import format_metadata_value
from .model import Span

__all__ = ("render_trace_tree",)


def _timed_by_mock(span: Span) -> bool:
    # A span read its time from the clock bound at its start; only mock time is
    # reproducible, so real-clock timings are left out of snapshots.
    return isinstance(span.clock, MockClock)


def _pairs(values: dict[str, object]) -> str:
    return ", ".join(f"{k}={format_metadata_value(values[k])}" for k in sorted(values))


def _span_lines(span: Span, depth: int, trace_id: str | None) -> list[str]:
    pad = "  " * depth
    head = f"{pad}#{span.span_id} {span.kind.value} {span.name}"
    if _timed_by_mock(span):
        head += f" @{span.start_ms}ms +{span.duration_ms}ms"
    lines = [head]
    detail = pad + "    "
    if span.metadata:
        lines.append(f"{detail}meta: {_pairs(span.metadata)}")
    for link in span.links:
        same_trace = link.trace_id == trace_id
        target = f"#{link.span_id}" if same_trace else f"{link.trace_id}#{link.span_id}"
        suffix = f" ({_pairs(dict(link.attributes))})" if link.attributes else ""
        lines.append(f"{detail}link -> {target}{suffix}")
    for event in span.events:
        suffix = f" ({_pairs(event.attributes)})" if event.attributes else ""
        when = f"+{event.offset_ms}ms " if _timed_by_mock(span) else ""
        lines.append(f"{detail}event {when}{event.name}{suffix}")
    return lines


def render_trace_tree(spans: Sequence[Span]) -> str:
    """Render spans as an indented tree ordered by start time (then id).

    Spans whose parent is missing are shown at the top level with a
    ``(parent #N missing)`` note, so nothing recorded is hidden.

    Example:
        >>> from harn_async_trace import SpanCollector
        >>> c = SpanCollector(); _ = c.end(c.start("step", "load"))
        >>> render_trace_tree(c.spans())
        '#1 step load\\n'
    """
    if not spans:
        return "(no spans)\n"
    trace_id = spans[0].trace_id
    ids = {s.span_id for s in spans}
    children: dict[int, list[Span]] = {}
    roots: list[Span] = []
    for span in spans:
        if span.parent_id is not None and span.parent_id in ids:
            children.setdefault(span.parent_id, []).append(span)
        else:
            roots.append(span)

    def order(items: list[Span]) -> list[Span]:
        return sorted(items, key=lambda s: (s.start_ns, s.span_id))

    lines: list[str] = []
    stack = [(span, 0) for span in reversed(order(roots))]
    while stack:
        span, depth = stack.pop()
        span_lines = _span_lines(span, depth, trace_id)
        if depth == 0 and span.parent_id is not None:
            span_lines[0] += f" (parent #{span.parent_id} missing)"
        lines.extend(span_lines)
        kids = children.get(span.span_id)
        if kids:
            stack.extend((kid, depth + 1) for kid in reversed(order(kids)))
    return "\n".join(lines) + "\n"

"""The summary tree: harn-vm's ``format_summary`` text, in O(n)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..model import Span
from ._encoding import json_safe, text_of
from ._io import check_spans
from ._serde_text import serde_json_text

__all__ = ("format_metadata_value", "format_summary")


def format_metadata_value(value: Any) -> str:
    """JSON the way harn-vm's serde_json prints it: compact, sorted keys, UTF-8 as is.

    Any value is accepted: it is first made JSON-safe by the exporters' rule.

    Example:
        >>> format_metadata_value({"b": 1.5e-05, "a": "é", "n": float("nan")})
        '{"a":"é","b":0.000015,"n":"NaN"}'
    """
    return serde_json_text(json_safe(value))


def _first(pair: tuple[str, Any]) -> str:
    return pair[0]


def _line(span: Span, depth: int) -> str:
    text = f"{'  ' * depth}{span.kind.value} {span.name} {span.duration_ms}ms"
    metadata = span.metadata
    if metadata:
        # Keys may be any object too: sorted and shown by their text.
        keyed = sorted(((text_of(key), value) for key, value in metadata.items()), key=_first)
        pairs = ", ".join(f"{key}={format_metadata_value(value)}" for key, value in keyed)
        text += f" ({pairs})"
    return text


def format_summary(spans: Sequence[Span] | None = None) -> str:
    """Render spans as harn-vm's indented summary tree: ``"\\n".join(lines)``, no final newline.

    Defaults to the current collector's finished spans. Roots are spans with
    no parent; a span whose parent is absent is counted but not printed.
    Parents are looked up by ``(trace_id, span_id)``, so traces that reuse
    ids do not mix. Bad input cannot hang it: with duplicate ids, the
    children of an id are printed under the first span that has it; spans
    in a parent cycle (a span its own ancestor) have no root and, like
    orphans, are counted but not printed. Each span is printed at most
    once, in O(n). Metadata values follow the exporters' encoding rule.

    Example:
        >>> format_summary([])
        'No spans recorded.'
    """
    if spans is None:
        from ..api import peek_spans  # late: api sits above the exporters

        spans = peek_spans()
    check_spans(spans, "format_summary")
    if not spans:
        return "No spans recorded."
    children: dict[tuple[str, int], list[Span]] = {}
    roots: list[Span] = []
    for span in spans:
        if span.parent_id is None:
            roots.append(span)
        else:
            children.setdefault((span.trace_id, span.parent_id), []).append(span)
    total = sum(root.duration_ms for root in roots)
    lines = [f"Trace: {len(spans)} spans, {total}ms total", ""]
    # Iterative depth-first walk: deep traces must not hit the recursion limit.
    # Popping a child list when it is expanded makes the walk O(n) and
    # loop-free: every span sits in one list, and each list is used once.
    stack: list[tuple[Span, int]] = [(root, 0) for root in reversed(roots)]
    while stack:
        span, depth = stack.pop()
        lines.append(_line(span, depth))
        kids = children.pop((span.trace_id, span.span_id), None)
        if kids:
            stack.extend((kid, depth + 1) for kid in reversed(kids))
    return "\n".join(lines)

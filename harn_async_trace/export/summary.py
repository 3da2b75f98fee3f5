"""The summary tree: harn-vm's ``format_summary`` text, in O(n)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..model import Span
from ._serde_text import serde_json_text

__all__ = ("format_metadata_value", "format_summary")


def format_metadata_value(value: Any) -> str:
    """JSON the way harn-vm's serde_json prints it: compact, sorted keys, UTF-8 as is.

    Example:
        >>> format_metadata_value({"b": 1.5e-05, "a": "é"})
        '{"a":"é","b":0.000015}'
    """
    return serde_json_text(value)


def _line(span: Span, depth: int) -> str:
    text = f"{'  ' * depth}{span.kind.value} {span.name} {span.duration_ms}ms"
    metadata = span.metadata
    if metadata:
        pairs = ", ".join(f"{k}={format_metadata_value(metadata[k])}" for k in sorted(metadata))
        text += f" ({pairs})"
    return text


def format_summary(spans: Sequence[Span] | None = None) -> str:
    """Render spans as harn-vm's indented summary tree.

    Defaults to the current collector's finished spans. Roots are spans with
    no parent; a span whose parent is absent is counted but not printed.

    Example:
        >>> format_summary([])
        'No spans recorded.'
    """
    if spans is None:
        from ..api import peek_spans  # late: api sits above the exporters

        spans = peek_spans()
    checked: object = spans  # typed callers pass a Sequence; untyped ones get a clear error
    if not isinstance(checked, Sequence) or isinstance(checked, str):
        raise TypeError(
            f"format_summary(): spans must be a list of Span, got {type(spans).__name__}"
        )
    if not spans:
        return "No spans recorded."
    children: dict[int, list[Span]] = {}
    roots: list[Span] = []
    for span in spans:
        if span.parent_id is None:
            roots.append(span)
        else:
            children.setdefault(span.parent_id, []).append(span)
    total = sum(root.duration_ms for root in roots)
    lines = [f"Trace: {len(spans)} spans, {total}ms total", ""]
    # Iterative depth-first walk: deep traces must not hit the recursion limit.
    stack: list[tuple[Span, int]] = [(root, 0) for root in reversed(roots)]
    while stack:
        span, depth = stack.pop()
        lines.append(_line(span, depth))
        kids = children.get(span.span_id)
        if kids:
            stack.extend((kid, depth + 1) for kid in reversed(kids))
    return "\n".join(lines) + "\n"

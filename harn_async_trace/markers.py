"""Marker spans: zero-duration spans that note a decision under the current span."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .context import current_collector
from .kinds import SpanKind, coerce_kind, meta

__all__ = (
    "emit_deferred_tool_load",
    "emit_marker_span",
    "emit_model_route",
    "emit_tool_mount",
)


def emit_marker_span(
    kind: SpanKind | str,
    name: str,
    metadata: Mapping[str, Any] | Iterable[tuple[str, Any]],
) -> int:
    """Record a zero-duration span under the current span; returns its id (0 when disabled).

    Example:
        >>> emit_marker_span(SpanKind.MODEL_ROUTE, "model_route", {"reason": "cost"})
        0
    """
    collector = current_collector()
    if not collector.enabled:
        return 0
    kind = coerce_kind(kind)
    pairs = dict(metadata.items() if isinstance(metadata, Mapping) else metadata)
    span_id = collector.open(kind, name, metadata=pairs)
    collector.close(span_id, instant=True)
    return span_id


def emit_model_route(from_model: str, to_model: str, reason: str) -> int:
    """Mark a switch of model (e.g. an escalation).

    Example:
        >>> emit_model_route("small", "large", "low confidence")
        0
    """
    return emit_marker_span(
        SpanKind.MODEL_ROUTE,
        SpanKind.MODEL_ROUTE.value,
        [(meta.FROM_MODEL, from_model), (meta.TO_MODEL, to_model), (meta.REASON, reason)],
    )


def emit_tool_mount(tool_names: list[str], source: str, detail: str | None = None) -> int:
    """Mark tools being registered; a no-op (returns 0) for an empty list.

    Example:
        >>> emit_tool_mount([], "mcp")
        0
    """
    if not tool_names:
        return 0
    pairs: list[tuple[str, Any]] = [
        (meta.TOOL_NAMES, list(tool_names)),
        (meta.TOOL_COUNT, len(tool_names)),
        (meta.SOURCE, source),
    ]
    if detail is not None:
        pairs.append((meta.DETAIL, detail))
    return emit_marker_span(SpanKind.TOOL_MOUNT, SpanKind.TOOL_MOUNT.value, pairs)


def emit_deferred_tool_load(tool_name: str, query: str, score: float | None = None) -> int:
    """Mark a tool loaded on demand by a search.

    Example:
        >>> emit_deferred_tool_load("grep", "find text", 0.9)
        0
    """
    pairs: list[tuple[str, Any]] = [(meta.TOOL_NAME, tool_name), (meta.QUERY, query)]
    if score is not None:
        pairs.append((meta.SCORE, score))
    return emit_marker_span(
        SpanKind.DEFERRED_TOOL_LOAD, SpanKind.DEFERRED_TOOL_LOAD.value, pairs
    )

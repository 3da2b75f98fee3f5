"""Spans as plain JSON-serialisable dicts, and back."""

from __future__ import annotations

from typing import Any

from ..model import Span, SpanEvent, SpanLink

__all__ = ("span_from_dict", "span_to_dict")


def _link_to_dict(link: SpanLink) -> dict[str, Any]:
    data: dict[str, Any] = {"trace_id": link.trace_id, "span_id": link.span_id}
    if link.attributes:
        data["attributes"] = dict(link.attributes)
    return data


def _event_to_dict(event: SpanEvent) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": event.name,
        "time_unix_ms": event.time_unix_ms,
        "offset_ms": event.offset_ms,
    }
    if event.attributes:
        data["attributes"] = dict(event.attributes)
    return data


def span_to_dict(span: Span) -> dict[str, Any]:
    """A span as plain data; metadata/links/events keys only when non-empty.

    Example:
        >>> from harn_async_trace import SpanKind
        >>> s = Span(trace_id="t", span_id=1, parent_id=None, kind=SpanKind.STEP,
        ...          name="a", start_ms=0, start_unix_ms=10, duration_ms=2)
        >>> span_to_dict(s)["kind"]
        'step'
    """
    if not isinstance(span, Span):
        raise TypeError(f"span_to_dict() needs a Span, got {type(span).__name__}")
    data: dict[str, Any] = {
        "trace_id": span.trace_id,
        "span_id": span.span_id,
        "parent_id": span.parent_id,
        "kind": span.kind.value,
        "name": span.name,
        "start_ms": span.start_ms,
        "start_unix_ms": span.start_unix_ms,
        "duration_ms": span.duration_ms,
    }
    if span.metadata:
        data["metadata"] = dict(span.metadata)
    if span._links:
        data["links"] = [_link_to_dict(link) for link in span._links]
    if span._events:
        data["events"] = [_event_to_dict(event) for event in span._events]
    return data


def span_from_dict(data: dict[str, Any], *, where: str = "span") -> Span:
    """Rebuild a span from :func:`span_to_dict` output (keeps ``start_ns``/``duration_ns``).

    Raises ``ValueError`` naming ``where`` and the bad key on malformed input.

    Example:
        >>> span_from_dict({"trace_id": "t", "span_id": 1, "parent_id": None, "kind": "step",
        ...                 "name": "a", "start_ms": 0, "start_unix_ms": 1, "duration_ms": 2}).name
        'a'
    """
    try:
        return Span(
            trace_id=str(data["trace_id"]),
            span_id=int(data["span_id"]),
            parent_id=None if data["parent_id"] is None else int(data["parent_id"]),
            kind=data["kind"],
            name=str(data["name"]),
            start_ms=int(data["start_ms"]),
            start_unix_ms=int(data["start_unix_ms"]),
            duration_ms=int(data["duration_ms"]),
            metadata=dict(data.get("metadata") or {}),
            links=[
                SpanLink(str(ln["trace_id"]), str(ln["span_id"]), dict(ln.get("attributes") or {}))
                for ln in data.get("links") or ()
            ],
            events=[
                SpanEvent(
                    str(ev["name"]),
                    int(ev["time_unix_ms"]),
                    int(ev["offset_ms"]),
                    dict(ev.get("attributes") or {}),
                )
                for ev in data.get("events") or ()
            ],
            start_ns=data.get("start_ns"),
            duration_ns=data.get("duration_ns"),
            lane=int(data.get("lane") or 0),  # recorded task lane, when the file has it
        )
    except KeyError as exc:
        raise ValueError(f"{where}: missing key {exc.args[0]!r}") from None
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: {exc}") from None

"""Spans as plain JSON-serialisable dicts, and back."""

from __future__ import annotations

from typing import Any, Final

from ..kinds import coerce_kind
from ..model import Span, SpanEvent, SpanLink
from ._encoding import text_of

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


_MAX_ID: Final = 1 << 64


def _shown(value: Any) -> str:
    text = text_of(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _bad(where: str, key: str, wanted: str, value: Any) -> ValueError:
    shown = f"{type(value).__name__} {_shown(value)}"
    return ValueError(f"{where}: {key} must be {wanted}, got {shown}")


def _integer(data: dict[str, Any], key: str, where: str, *, low: int | None = None) -> int:
    value = data[key]
    if type(value) is not int:
        raise _bad(where, key, "an integer", value)
    if low is not None and value < low:
        raise ValueError(f"{where}: {key} must be >= {low}, got {value}")
    return value


def _span_id(data: dict[str, Any], key: str, where: str) -> int:
    value = data[key]
    if type(value) is not int or not 0 <= value < _MAX_ID:
        raise _bad(where, key, "an integer from 0 to 2**64-1", value)
    return value


def _text(data: dict[str, Any], key: str, where: str) -> str:
    value = data[key]
    if not isinstance(value, str):
        raise _bad(where, key, "a string", value)
    return value


def _mapping(value: Any, key: str, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _bad(where, key, "an object", value)
    return dict(value)


def _records(data: dict[str, Any], key: str, where: str) -> list[dict[str, Any]]:
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise _bad(where, key, "a list of objects", value)
    return value


def _link_from(data: dict[str, Any], where: str) -> SpanLink:
    span_id = data["span_id"]
    if type(span_id) is int:
        span_id = str(span_id)
    elif not isinstance(span_id, str):
        raise _bad(where, "links[].span_id", "a string", span_id)
    return SpanLink(
        _text(data, "trace_id", where),
        span_id,
        _mapping(data.get("attributes"), "links[].attributes", where),
    )


def _event_from(data: dict[str, Any], where: str) -> SpanEvent:
    return SpanEvent(
        _text(data, "name", where),
        _integer(data, "time_unix_ms", where),
        _integer(data, "offset_ms", where),
        _mapping(data.get("attributes"), "events[].attributes", where),
    )


def span_from_dict(data: dict[str, Any], *, where: str = "span") -> Span:
    """Rebuild a span from :func:`span_to_dict` output (keeps ``start_ns``/``duration_ns``).

    Every field is checked: ids are integers from 0 to 2**64-1, times are
    integers, durations are not negative, names are strings. Raises
    ``ValueError`` naming ``where`` and the bad key on malformed input.

    Example:
        >>> span_from_dict({"trace_id": "t", "span_id": 1, "parent_id": None, "kind": "step",
        ...                 "name": "a", "start_ms": 0, "start_unix_ms": 1, "duration_ms": 2}).name
        'a'
        >>> span_from_dict({"trace_id": "t", "span_id": 1e999}, where="t.jsonl:3")
        Traceback (most recent call last):
        ValueError: t.jsonl:3: span_id must be an integer from 0 to 2**64-1, got float inf
    """
    if not isinstance(data, dict):
        raise TypeError(f"span_from_dict(): data must be a dict, got {type(data).__name__}")
    try:
        trace_id = _text(data, "trace_id", where)
        span_id = _span_id(data, "span_id", where)
        parent_id = None if data["parent_id"] is None else _span_id(data, "parent_id", where)
        kind = coerce_kind(data["kind"], "kind")
        name = _text(data, "name", where)
        start_ms = _integer(data, "start_ms", where)
        start_unix_ms = _integer(data, "start_unix_ms", where)
        duration_ms = _integer(data, "duration_ms", where, low=0)
        start_ns = None if data.get("start_ns") is None else _integer(data, "start_ns", where)
        duration_ns = (
            None if data.get("duration_ns") is None
            else _integer(data, "duration_ns", where, low=0)
        )  # fmt: skip
        metadata = _mapping(data.get("metadata"), "metadata", where)
        links = [_link_from(link, where) for link in _records(data, "links", where)]
        events = [_event_from(event, where) for event in _records(data, "events", where)]
        # The recorded task lane, when the file has it (0: none recorded).
        lane = 0 if data.get("lane") is None else _integer(data, "lane", where, low=0)
    except KeyError as exc:
        raise ValueError(f"{where}: missing key {exc.args[0]!r}") from None
    except TypeError as exc:  # coerce_kind's message lists the valid kinds
        raise ValueError(f"{where}: {exc}") from None
    return Span(
        trace_id=trace_id,
        span_id=span_id,
        parent_id=parent_id,
        kind=kind,
        name=name,
        start_ms=start_ms,
        start_unix_ms=start_unix_ms,
        duration_ms=duration_ms,
        metadata=metadata,
        links=links,
        events=events,
        start_ns=start_ns,
        duration_ns=duration_ns,
        lane=lane,
    )

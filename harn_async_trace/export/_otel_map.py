"""How a span maps to OpenTelemetry, shared by the SDK bridge and the OTLP/JSON writer.

Pure Python (no OTel import), so the OTLP/JSON file writer works without
the ``[otel]`` extra and both outputs agree by construction:

* trace id: the 32-hex form of the uuid7 (``trace_id_hex``); span id: the
  span's integer id as 16 hex digits (collector ids are unique per trace);
* kind: ``llm_call``/``tool_call`` -> CLIENT, everything else INTERNAL;
* attributes: metadata (values OTel cannot carry become JSON strings,
  ``None`` is left out), ``harn.span.kind``, and for ``llm_call``/``tool_call``
  the GenAI semantic-convention keys next to ours;
* status: ERROR with the ``error`` message when the span recorded one;
* a root span with a ``relation=remote_parent`` link (a trace continued from
  a ``traceparent``) gets that remote span as its OTel parent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from .._trace_id import trace_id_hex
from ..kinds import SpanKind, meta
from ..model import Span, SpanLink
from ._encoding import dumps, json_int, safe_text, text_of
from ._io import start_unix_ns

__all__ = (
    "CLIENT_KINDS",
    "REMOTE_PARENT",
    "clean_attributes",
    "link_context",
    "otel_attributes",
    "remote_parent",
    "span_id_hex",
)

CLIENT_KINDS: Final = frozenset({SpanKind.LLM_CALL, SpanKind.TOOL_CALL})
REMOTE_PARENT: Final = "remote_parent"
_MAX_INT64: Final = (1 << 63) - 1
_MIN_INT64: Final = -(1 << 63)
_SCALARS: Final = frozenset({str, bool, int, float})

AttributeValue = str | bool | int | float | list[str] | list[bool] | list[int] | list[float]


def span_id_hex(span_id: int) -> str:
    """A span id as the 16-hex OTel/W3C form.

    Example:
        >>> span_id_hex(3)
        '0000000000000003'
    """
    return f"{span_id & 0xFFFF_FFFF_FFFF_FFFF:016x}"


def _clean(value: Any) -> AttributeValue | None:
    # The exporters' encoding rule (_encoding), in OTel's attribute types.
    if value is None:
        return None
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        number = int.__int__(value)
        return number if _MIN_INT64 <= number <= _MAX_INT64 else str(json_int(number))
    if isinstance(value, float):
        return float.__float__(value)  # NaN and inf are valid OTLP doubles
    if isinstance(value, str):
        return safe_text(str.__str__(value))
    if isinstance(value, list | tuple) and value:
        first = type(value[0])
        if first in _SCALARS and all(type(v) is first for v in value):
            if first is str:
                return [safe_text(v) for v in value]
            if first is not int or all(_MIN_INT64 <= v <= _MAX_INT64 for v in value):
                return list(value)
    # OTel attributes are scalars or homogeneous arrays; keep the rest readable.
    return dumps(value, sort_keys=True)


def clean_attributes(values: Mapping[str, Any]) -> dict[str, AttributeValue]:
    """Metadata as OTel-valid attributes (see module doc).

    Example:
        >>> clean_attributes({"a": 1, "b": {"x": 1}, "c": None})
        {'a': 1, 'b': '{"x":1}'}
    """
    out: dict[str, AttributeValue] = {}
    for key, value in values.items():
        cleaned = _clean(value)
        if cleaned is not None:
            out[text_of(key)] = cleaned
    return out


def otel_attributes(span: Span) -> dict[str, AttributeValue]:
    """The attributes a span carries in OTel output, GenAI keys included.

    Example:
        >>> s = Span(trace_id="t", span_id=1, parent_id=None, kind="llm_call", name="chat",
        ...          start_ms=0, start_unix_ms=1, duration_ms=2, metadata={"model": "m"})
        >>> otel_attributes(s)["gen_ai.request.model"]
        'm'
    """
    metadata = span.metadata
    attributes = clean_attributes(metadata)
    attributes["harn.span.kind"] = span.kind.value
    kind = span.kind
    if kind is SpanKind.LLM_CALL:
        attributes["gen_ai.operation.name"] = "chat"
        for ours, theirs in (
            (meta.PROVIDER, "gen_ai.provider.name"),
            (meta.MODEL, "gen_ai.request.model"),
            (meta.INPUT_TOKENS, "gen_ai.usage.input_tokens"),
            (meta.OUTPUT_TOKENS, "gen_ai.usage.output_tokens"),
        ):
            if ours in attributes:
                attributes[theirs] = attributes[ours]
    elif kind is SpanKind.TOOL_CALL:
        attributes["gen_ai.operation.name"] = "execute_tool"
        tool = attributes.get(meta.TOOL_NAME, safe_text(span.name))
        attributes["gen_ai.tool.name"] = tool
    return attributes


def link_context(link: SpanLink) -> tuple[str, int] | None:
    """``(trace_hex, span_id)`` for a link, or None when its span id is not a valid id.

    Example:
        >>> link_context(SpanLink("trace_x", "nope")) is None
        True
    """
    try:
        number = int(link.span_id)
    except ValueError:
        return None
    if not 0 < number <= 0xFFFF_FFFF_FFFF_FFFF:
        return None
    return trace_id_hex(link.trace_id), number


def remote_parent(span: Span) -> tuple[str, int] | None:
    """The remote parent of a continued trace's root (see module doc), else None."""
    if span.parent_id is not None:
        return None
    for link in span.links:
        if link.attributes.get("relation") == REMOTE_PARENT and link.trace_id == span.trace_id:
            return link_context(link)
    return None


def status_of(span: Span) -> tuple[bool, str | None]:
    """(is_error, message): a span is an error when it recorded ``error``."""
    error = span.metadata.get("error")
    if error is None:
        return False, None
    return True, text_of(error)


def times_ns(span: Span) -> tuple[int, int]:
    """Exact (start, end) in ns since the Unix epoch."""
    start = start_unix_ns(span)
    return start, start + span.duration_ns


def event_time_ns(start_ns: int, time_unix_ms: int) -> int:
    """An event's time in ns; never before the span's start (ms flooring)."""
    return max(start_ns, time_unix_ms * 1_000_000)

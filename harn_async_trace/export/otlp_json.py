"""OTLP/JSON file writer (the OTLP protobuf JSON mapping), no SDK needed.

Writes one ``ExportTraceServiceRequest``: ``resourceSpans`` -> one resource
(``service.name``) -> one scope (``harn_async_trace``) -> the spans, one per
line, streamed. Per the OTLP JSON encoding, ids are lower-case hex, 64-bit
integers (times, ``intValue``) are decimal strings, and ``kind`` and status
``code`` are enum integers. The mapping is the SDK bridge's (``_otel_map``),
so a collector that accepts OTLP/HTTP JSON (``/v1/traces``) can ingest the
file as is.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from .._trace_id import trace_id_hex
from ..model import Span
from ._encoding import text_of
from ._io import Target, check_span, dumps, open_target
from ._otel_map import (
    CLIENT_KINDS,
    clean_attributes,
    event_time_ns,
    link_context,
    otel_attributes,
    remote_parent,
    span_id_hex,
    status_of,
    times_ns,
)

__all__ = ("otlp_span_json", "write_otlp_json")

_KIND_INTERNAL: Final = 1  # SPAN_KIND_INTERNAL
_KIND_CLIENT: Final = 3  # SPAN_KIND_CLIENT
_STATUS_ERROR: Final = 2  # STATUS_CODE_ERROR


def _any_value(value: Any) -> dict[str, Any]:
    # Values come from clean_attributes (ints within int64, safe strings);
    # a NaN double is written "NaN" by dumps, proto3 JSON's own spelling.
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, list):
        return {"arrayValue": {"values": [_any_value(v) for v in value]}}
    return {"stringValue": text_of(value)}


def _key_values(attributes: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [{"key": key, "value": _any_value(value)} for key, value in attributes.items()]


def otlp_span_json(span: Span) -> dict[str, Any]:
    """One span in the OTLP JSON encoding.

    Example:
        >>> s = Span(trace_id="trace_0190a3b4-0000-7000-8000-000000000000", span_id=2,
        ...          parent_id=1, kind="step", name="s", start_ms=0, start_unix_ms=5,
        ...          duration_ms=1)
        >>> otlp_span_json(s)["parentSpanId"], otlp_span_json(s)["endTimeUnixNano"]
        ('0000000000000001', '6000000')
    """
    check_span(span, "otlp_span_json")
    trace_hex = trace_id_hex(span.trace_id)
    start, end = times_ns(span)
    data: dict[str, Any] = {
        "traceId": trace_hex,
        "spanId": span_id_hex(span.span_id),
        "name": span.name,
        "kind": _KIND_CLIENT if span.kind in CLIENT_KINDS else _KIND_INTERNAL,
        "startTimeUnixNano": str(start),
        "endTimeUnixNano": str(end),
        "attributes": _key_values(otel_attributes(span)),
    }
    if span.parent_id is not None:
        data["parentSpanId"] = span_id_hex(span.parent_id)
    else:
        remote = remote_parent(span)
        if remote is not None:
            data["parentSpanId"] = span_id_hex(remote[1])
    if span.events:
        data["events"] = [
            {
                "timeUnixNano": str(event_time_ns(start, event.time_unix_ms)),
                "name": event.name,
                "attributes": _key_values(clean_attributes(event.attributes)),
            }
            for event in span.events
        ]
    links = []
    for link in span.links:
        ids = link_context(link)
        if ids is not None:
            links.append(
                {
                    "traceId": ids[0],
                    "spanId": span_id_hex(ids[1]),
                    "attributes": _key_values(clean_attributes(link.attributes)),
                }
            )
    if links:
        data["links"] = links
    is_error, message = status_of(span)
    data["status"] = {"code": _STATUS_ERROR, "message": message} if is_error else {}
    return data


def write_otlp_json(
    spans: Iterable[Span], target: Target, *, service_name: str = "harn-async-trace"
) -> int:
    """Write spans as an OTLP/JSON ``ExportTraceServiceRequest``; returns the span count.

    Example:
        >>> import io, json
        >>> buf = io.StringIO(); write_otlp_json([], buf)
        0
        >>> json.loads(buf.getvalue())["resourceSpans"][0]["scopeSpans"][0]["spans"]
        []
    """
    from .. import __version__  # late: the package imports this module

    resource = {"attributes": _key_values(clean_attributes({"service.name": service_name}))}
    scope = {"name": "harn_async_trace", "version": __version__}
    count = 0
    with open_target(target, "write_otlp_json") as out:
        write = out.write
        write(f'{{"resourceSpans":[{{"resource":{dumps(resource)},')
        write(f'"scopeSpans":[{{"scope":{dumps(scope)},"spans":[')
        for span in spans:
            item: object = span  # typed callers pass Spans; others get a clear TypeError
            if item.__class__ is not Span:
                check_span(item, "write_otlp_json", count)
            write(",\n" if count else "\n")
            write(dumps(otlp_span_json(span)))
            count += 1
        write("\n]}]}]}\n" if count else "]}]}]}\n")
        out.flush()
    return count

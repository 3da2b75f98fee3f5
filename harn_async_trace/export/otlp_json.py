"""OTLP/JSON file writer (the OTLP protobuf JSON mapping).

Writes one ``ExportTraceServiceRequest``: ``resourceSpans`` -> one resource
(``OTEL_SERVICE_NAME`` / ``OTEL_RESOURCE_ATTRIBUTES``) -> one scope
(``harn_async_trace``) -> the spans, one per line, streamed. Per the OTLP
JSON encoding, ids are lower-case hex, 64-bit integers (times,
``intValue``) are decimal strings, and ``kind`` and status ``code`` are enum
integers, so a collector that accepts OTLP/HTTP JSON (``/v1/traces``) can
ingest the file as is.

With the ``[otel]`` extra installed, each span is the SDK bridge's
``ReadableSpan`` put through the SDK's own OTLP protobuf encoder, then the
protobuf JSON mapping (ids turned from base64 to hex, as OTLP asks): the
file and the live export cannot drift apart. Without it, the same mapping
(``_otel.mapping``) is written by hand.
"""

from __future__ import annotations

import base64
import functools
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

from .._trace_id import trace_id_hex
from .._version import __version__
from ..model import Span
from ._encoding import safe_text, text_of
from ._io import Target, check_span, dumps, open_target, write_span_array
from ._otel.mapping import (
    clean_attributes,
    error_of,
    event_time_ns,
    exception_attributes,
    is_client,
    link_context,
    otel_attributes,
    otel_name,
    otel_span_id,
    remote_parent,
    resource_attributes,
    span_id_hex,
    times_ns,
)

__all__ = ("otlp_span_json", "write_otlp_json")

_KIND_INTERNAL: Final = 1  # SPAN_KIND_INTERNAL
_KIND_CLIENT: Final = 3  # SPAN_KIND_CLIENT
_STATUS_ERROR: Final = 2  # STATUS_CODE_ERROR
# SpanFlags: the is_remote bit of the parent (or link target) is known / set.
_HAS_IS_REMOTE: Final = 0x100
_IS_REMOTE: Final = 0x200


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


_Encoder = tuple[Callable[[Span], dict[str, Any]], Callable[[dict[str, str]], dict[str, Any]]]


def _hex_ids(data: dict[str, Any]) -> dict[str, Any]:
    # The protobuf JSON mapping writes bytes as base64; OTLP/JSON wants hex ids.
    for key in ("traceId", "spanId", "parentSpanId"):
        if key in data:
            data[key] = base64.b64decode(data[key]).hex()
    for link in data.get("links", ()):
        _hex_ids(link)
    return data


@functools.cache
def _sdk_encoder() -> _Encoder | None:
    try:
        from google.protobuf.json_format import MessageToDict  # type: ignore[import-untyped]  # protobuf ships no stubs
        from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
        from opentelemetry.sdk.trace import ReadableSpan
        from opentelemetry.trace import SpanContext

        from .otlp import _resource_for, to_otel_span
    except ImportError:
        return None

    def first(request: Any) -> Any:
        return request.resource_spans[0]

    def encode_span(span: Span) -> dict[str, Any]:
        message = first(encode_spans([to_otel_span(span)])).scope_spans[0].spans[0]
        data: dict[str, Any] = MessageToDict(message, use_integers_for_enums=True)
        data.setdefault("status", {})
        return _hex_ids(data)

    def encode_resource(attributes: dict[str, str]) -> dict[str, Any]:
        # The encoder encodes resources only as part of spans: encode a dummy one.
        resource = _resource_for(tuple(attributes.items()))
        dummy = ReadableSpan("resource", SpanContext(1, 1, False), resource=resource)
        return dict(MessageToDict(first(encode_spans([dummy])).resource))

    return encode_span, encode_resource


def otlp_span_json(span: Span) -> dict[str, Any]:
    """One span in the OTLP JSON encoding (the SDK's encoder when the extra is installed).

    Example:
        >>> s = Span(trace_id="trace_0190a3b4-0000-7000-8000-000000000000", span_id=2,
        ...          parent_id=1, kind="step", name="s", start_ms=0, start_unix_ms=5,
        ...          duration_ms=1)
        >>> data = otlp_span_json(s)
        >>> data["parentSpanId"] == span_id_hex(otel_span_id(s.trace_id, 1))
        True
        >>> data["endTimeUnixNano"]
        '6000000'
    """
    check_span(span, "otlp_span_json")
    encoder = _sdk_encoder()
    if encoder is not None:
        return encoder[0](span)
    return _plain_span_json(span)


def _plain_span_json(span: Span) -> dict[str, Any]:
    trace_hex = trace_id_hex(span.trace_id)
    start, end = times_ns(span)
    metadata = span.metadata
    data: dict[str, Any] = {
        "traceId": trace_hex,
        "spanId": span_id_hex(otel_span_id(span.trace_id, span.span_id)),
        "name": safe_text(otel_name(span.kind, span.name, metadata)),
        "kind": _KIND_CLIENT if is_client(span.kind) else _KIND_INTERNAL,
        "startTimeUnixNano": str(start),
        "endTimeUnixNano": str(end),
        "attributes": _key_values(otel_attributes(span)),
    }
    data["flags"] = _HAS_IS_REMOTE
    if span.parent_id is not None:
        data["parentSpanId"] = span_id_hex(otel_span_id(span.trace_id, span.parent_id))
    else:
        remote = remote_parent(span)
        if remote is not None:
            data["parentSpanId"] = span_id_hex(remote[1])
            data["flags"] = _HAS_IS_REMOTE | _IS_REMOTE
    events = [
        {
            "timeUnixNano": str(event_time_ns(start, event.time_unix_ms)),
            "name": safe_text(event.name),
            "attributes": _key_values(clean_attributes(event.attributes)),
        }
        for event in span.events
    ]
    error = error_of(metadata)
    if error is not None:
        events.append({
            "timeUnixNano": str(end),
            "name": "exception",
            "attributes": _key_values(exception_attributes(error)),
        })
    if events:
        data["events"] = events
    links = []
    for link in span.links:
        ids = link_context(link)
        if ids is not None:
            links.append(
                {
                    "traceId": ids[0],
                    "spanId": span_id_hex(ids[1]),
                    "attributes": _key_values(clean_attributes(link.attributes)),
                    "flags": _HAS_IS_REMOTE,
                }
            )
    if links:
        data["links"] = links
    data["status"] = (
        {"message": error[1] or error[0], "code": _STATUS_ERROR} if error is not None else {}
    )
    return data


def write_otlp_json(
    spans: Iterable[Span], target: Target, *, service_name: str | None = None
) -> int:
    """Write spans as an OTLP/JSON ``ExportTraceServiceRequest``; returns the span count.

    The resource is :func:`~._otel.mapping.resource_attributes` (the OTel
    environment variables); ``service_name`` overrides its ``service.name``.

    Example:
        >>> import io, json
        >>> buf = io.StringIO(); write_otlp_json([], buf)
        0
        >>> json.loads(buf.getvalue())["resourceSpans"][0]["scopeSpans"][0]["spans"]
        []
    """
    attributes = resource_attributes()
    if service_name is not None:
        attributes["service.name"] = service_name
    encoder = _sdk_encoder()
    if encoder is not None:
        resource = encoder[1](attributes)
        encode = encoder[0]
    else:
        resource = {"attributes": _key_values(clean_attributes(attributes))}
        encode = _plain_span_json
    scope = {"name": "harn_async_trace", "version": __version__}
    with open_target(target, "write_otlp_json") as out:
        write = out.write
        write(f'{{"resourceSpans":[{{"resource":{dumps(resource)},')
        write(f'"scopeSpans":[{{"scope":{dumps(scope)},"spans":')
        count = write_span_array(write, spans, encode, "write_otlp_json")
        write("}]}]}\n")
        out.flush()
    return count

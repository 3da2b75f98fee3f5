"""How a span maps to OpenTelemetry: shared by the SDK bridge, the live export and the files.

Pure Python (no OTel import), so the OTLP/JSON writer works without the
``[otel]`` extra and every output agrees by construction:

* trace id: the 32-hex form of the uuid7 (``trace_id_hex``); span id: a
  64-bit hash of (trace id, harn span id), so ids never repeat across runs
  (backends drop a span whose id they already stored) and stay the same
  under a mock clock (:func:`otel_span_id`);
* GenAI semantic conventions: ``llm_call`` is ``chat {model}``, kind CLIENT,
  with ``gen_ai.*`` request/usage keys; ``tool_call`` is
  ``execute_tool {tool}``, INTERNAL; ``pipeline`` is
  ``invoke_workflow {name}``; every other kind keeps its name, INTERNAL;
* attributes: metadata keys that already carry a namespace (a dot, e.g.
  ``gen_ai.request.model`` from an OTel instrumentation) are kept as they
  are, plain harn keys (``cost_usd``) go under ``harn.`` so they can never
  collide with a spec name; values OTel cannot carry become JSON strings;
  message content is dropped unless asked for (:data:`CONTENT_KEYS`);
* errors: status ERROR with the message, ``error.type`` and an
  ``exception`` event;
* a root with a ``relation=remote_parent`` link (a continued trace) gets
  that remote span as its parent; its id is the remote one, not a hash;
* the resource comes from ``OTEL_SERVICE_NAME`` / ``OTEL_RESOURCE_ATTRIBUTES``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import unquote

from ..._trace_id import trace_id_hex
from ...kinds import SpanKind, meta
from ...model import Span, SpanLink
from .._encoding import dumps, json_int, safe_text, text_of
from .._io import start_unix_ns

__all__ = (
    "CONTENT_KEYS",
    "DEFAULT_SERVICE_NAME",
    "REMOTE_PARENT",
    "attributes_for",
    "clean_attributes",
    "error_of",
    "event_time_ns",
    "exception_attributes",
    "is_client",
    "is_content_key",
    "link_context",
    "otel_attributes",
    "otel_name",
    "otel_span_id",
    "remote_parent",
    "resource_attributes",
    "span_id_hex",
    "times_ns",
)

REMOTE_PARENT: Final = "remote_parent"
DEFAULT_SERVICE_NAME: Final = "harn-async-trace"
_MAX_INT64: Final = (1 << 63) - 1
_MIN_INT64: Final = -(1 << 63)
_SCALARS: Final = frozenset({str, bool, int, float})
_MASK64: Final = 0xFFFF_FFFF_FFFF_FFFF

CONTENT_KEYS: Final = frozenset({
    "gen_ai.input.messages",
    "gen_ai.output.messages",
    "gen_ai.system_instructions",
    "gen_ai.tool.call.arguments",
    "gen_ai.tool.call.result",
})
# gen_ai.prompt.0.content, gen_ai.completion.0.role, ... (the older flat form).
_CONTENT_PREFIXES: Final = ("gen_ai.prompt", "gen_ai.completion")
# gen_ai.prompt.name is metadata about a prompt template, not its content.
_NOT_CONTENT: Final = frozenset({"gen_ai.prompt.name"})

# Our canonical keys and their GenAI names, per kind.
_LLM_KEYS: Final = (
    (meta.MODEL, "gen_ai.request.model"),
    (meta.PROVIDER, "gen_ai.provider.name"),
    (meta.INPUT_TOKENS, "gen_ai.usage.input_tokens"),
    (meta.OUTPUT_TOKENS, "gen_ai.usage.output_tokens"),
    (meta.CACHE_READ_TOKENS, "gen_ai.usage.cache_read.input_tokens"),
    (meta.CACHE_WRITE_TOKENS, "gen_ai.usage.cache_creation.input_tokens"),
    ("response_model", "gen_ai.response.model"),
    ("finish_reasons", "gen_ai.response.finish_reasons"),
    ("response_id", "gen_ai.response.id"),
)
_TOOL_KEYS: Final = ((meta.TOOL_NAME, "gen_ai.tool.name"),)
_OPERATION: Final = "gen_ai.operation.name"

AttributeValue = str | bool | int | float | list[str] | list[bool] | list[int] | list[float]


def otel_span_id(trace_id: str, span_id: int) -> int:
    """The OTel span id of harn span ``span_id`` in ``trace_id``: a 64-bit hash of both.

    Harn ids count from 1 in every run; hashing in the trace id makes the
    exported id unique across runs, and it is still a pure function, so a
    replay under a mock clock exports the same ids.

    Example:
        >>> a = otel_span_id("trace_a", 1)
        >>> a == otel_span_id("trace_a", 1), a != otel_span_id("trace_b", 1), 0 < a < 2**64
        (True, True, True)
    """
    digest = hashlib.blake2b(f"{trace_id}/{span_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") or 1  # 0 is the invalid span id


def span_id_hex(span_id: int) -> str:
    """A 64-bit span id as the 16-hex OTel/W3C form.

    Example:
        >>> span_id_hex(3)
        '0000000000000003'
    """
    return f"{span_id & _MASK64:016x}"


def is_content_key(key: str) -> bool:
    """Whether an attribute holds message content (dropped unless content capture is on).

    Example:
        >>> is_content_key("gen_ai.input.messages"), is_content_key("gen_ai.prompt.0.content")
        (True, True)
        >>> is_content_key("gen_ai.request.model")
        False
    """
    if key in CONTENT_KEYS:
        return True
    return key.startswith(_CONTENT_PREFIXES) and key not in _NOT_CONTENT


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
    """Values as OTel-valid attributes (keys as they are; see module doc for values).

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


def is_client(kind: SpanKind) -> bool:
    """Whether a span of ``kind`` is an OTel CLIENT span (a call out of the process).

    Example:
        >>> is_client(SpanKind.LLM_CALL), is_client(SpanKind.TOOL_CALL)
        (True, False)
    """
    return kind is SpanKind.LLM_CALL


def otel_name(kind: SpanKind, name: str, metadata: Mapping[str, Any]) -> str:
    """The OTel span name: GenAI's ``{operation} {target}`` for GenAI kinds, else ``name``.

    Example:
        >>> otel_name(SpanKind.LLM_CALL, "gpt-x", {"model": "gpt-x"})
        'chat gpt-x'
        >>> otel_name(SpanKind.TOOL_CALL, "grep", {}), otel_name(SpanKind.STEP, "plan", {})
        ('execute_tool grep', 'plan')
    """
    # Metadata may hold any object: text_of is the encoding rule's str().
    if kind is SpanKind.LLM_CALL:
        operation = text_of(metadata.get(_OPERATION) or "chat")
        model = metadata.get(meta.MODEL) or metadata.get("gen_ai.request.model")
        return f"{operation} {text_of(model)}" if model else operation
    if kind is SpanKind.TOOL_CALL:
        return f"execute_tool {text_of(metadata.get(meta.TOOL_NAME) or name)}"
    if kind is SpanKind.PIPELINE:
        return f"invoke_workflow {name}"
    return name


def error_of(metadata: Mapping[str, Any]) -> tuple[str, str] | None:
    """``(error.type, message)`` when a span recorded an error, else None.

    A span is an error when it has ``error`` metadata or ``status="error"``;
    ``error_type`` (the exception class, set by ``span()``) is the type, else
    ``_OTHER`` as the semantic conventions ask.

    Example:
        >>> error_of({"error": "boom", "error_type": "ValueError"})
        ('ValueError', 'boom')
        >>> error_of({"status": "ok"}) is None
        True
    """
    error = metadata.get("error")
    if error is None and metadata.get("status") != "error":
        return None
    kind = metadata.get("error_type") or metadata.get("error.type") or "_OTHER"
    return safe_text(text_of(kind)), "" if error is None else safe_text(text_of(error))


def exception_attributes(error: tuple[str, str]) -> dict[str, str]:
    """The attributes of the ``exception`` event of an error span (from :func:`error_of`).

    Example:
        >>> exception_attributes(("ValueError", "bad"))
        {'exception.type': 'ValueError', 'exception.message': 'bad'}
    """
    return {"exception.type": error[0], "exception.message": error[1]}


def attributes_for(
    kind: SpanKind,
    name: str,
    metadata: Mapping[str, Any],
    span_id: int,
    *,
    capture_content: bool = False,
) -> dict[str, AttributeValue]:
    """The OTel attributes of a span from its kind, name and metadata (see module doc).

    Example:
        >>> attrs = attributes_for(SpanKind.LLM_CALL, "m", {"model": "m", "cost_usd": 0.5}, 4)
        >>> attrs["gen_ai.request.model"], attrs["harn.cost_usd"], attrs["harn.span.id"]
        ('m', 0.5, 4)
    """
    out: dict[str, AttributeValue] = {}
    mapped: tuple[tuple[str, str], ...] = ()
    if kind is SpanKind.LLM_CALL:
        mapped = _LLM_KEYS
    elif kind is SpanKind.TOOL_CALL:
        mapped = _TOOL_KEYS
    ours = {key for key, _ in mapped}
    for raw_key, value in metadata.items():
        key = text_of(raw_key)
        if key in ours:
            continue
        if "." in key:
            if not capture_content and is_content_key(key):
                continue
            target = key
        else:
            target = "harn." + key
        cleaned = _clean(value)
        if cleaned is not None:
            out[target] = cleaned
    # Our keys fill the spec names the metadata did not already set (a span
    # recorded from an OTel instrumentation has both; its own attribute wins).
    for key, theirs in mapped:
        if theirs not in out and key in metadata:
            cleaned = _clean(metadata[key])
            if cleaned is not None:
                out[theirs] = cleaned
    if kind is SpanKind.LLM_CALL:
        out.setdefault(_OPERATION, "chat")
    elif kind is SpanKind.TOOL_CALL:
        out.setdefault(_OPERATION, "execute_tool")
        out.setdefault("gen_ai.tool.name", safe_text(name))
    elif kind is SpanKind.PIPELINE:
        out.setdefault(_OPERATION, "invoke_workflow")
        out.setdefault("gen_ai.workflow.name", safe_text(name))
    error = error_of(metadata)
    if error is not None:
        out["error.type"] = error[0]
    out["harn.span.kind"] = kind.value
    out["harn.span.id"] = span_id
    return out


def otel_attributes(span: Span, *, capture_content: bool = False) -> dict[str, AttributeValue]:
    """The attributes a finished span carries in OTel output.

    Example:
        >>> s = Span(trace_id="t", span_id=1, parent_id=None, kind="llm_call", name="chat",
        ...          start_ms=0, start_unix_ms=1, duration_ms=2, metadata={"model": "m"})
        >>> otel_attributes(s)["gen_ai.request.model"]
        'm'
    """
    return attributes_for(
        span.kind, span.name, span.metadata, span.span_id, capture_content=capture_content
    )


def link_context(link: SpanLink) -> tuple[str, int] | None:
    """``(trace_hex, otel span id)`` of a link's target; None when its id is not a span id.

    A ``remote_parent`` link names a span of another process by its own id;
    every other link names a harn span, whose OTel id is derived.

    Example:
        >>> link_context(SpanLink("trace_x", "nope")) is None
        True
        >>> link_context(SpanLink("trace_x", "2"))[1] == otel_span_id("trace_x", 2)
        True
    """
    try:
        number = int(link.span_id)
    except ValueError:
        return None
    if not 0 < number <= _MASK64:
        return None
    if link.attributes.get("relation") == REMOTE_PARENT:
        return trace_id_hex(link.trace_id), number
    return trace_id_hex(link.trace_id), otel_span_id(link.trace_id, number)


def remote_parent(span: Span) -> tuple[str, int] | None:
    """The remote parent of a continued trace's root (see module doc), else None."""
    if span.parent_id is not None:
        return None
    for link in span.links:
        if link.attributes.get("relation") == REMOTE_PARENT and link.trace_id == span.trace_id:
            return link_context(link)
    return None


def times_ns(span: Span) -> tuple[int, int]:
    """Exact (start, end) in ns since the Unix epoch."""
    start = start_unix_ns(span)
    return start, start + span.duration_ns


def event_time_ns(start_ns: int, time_unix_ms: int) -> int:
    """An event's time in ns; never before the span's start (ms flooring)."""
    return max(start_ns, time_unix_ms * 1_000_000)


def resource_attributes(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The resource of every OTel output, from the standard environment variables.

    ``OTEL_RESOURCE_ATTRIBUTES`` (``k=v,k2=v2``, percent-encoded values) and
    ``OTEL_SERVICE_NAME`` (which wins for ``service.name``); the service is
    ``harn-async-trace`` when neither names one.

    Example:
        >>> resource_attributes({"OTEL_RESOURCE_ATTRIBUTES": "team=ml,service.name=a",
        ...                      "OTEL_SERVICE_NAME": "agent"})
        {'team': 'ml', 'service.name': 'agent'}
        >>> resource_attributes({})
        {'service.name': 'harn-async-trace'}
    """
    env = os.environ if environ is None else environ
    out: dict[str, str] = {}
    for item in env.get("OTEL_RESOURCE_ATTRIBUTES", "").split(","):
        key, sep, value = item.partition("=")
        if sep and key.strip():
            out[unquote(key.strip())] = unquote(value.strip())
    service = env.get("OTEL_SERVICE_NAME", "").strip()
    if service:
        out["service.name"] = service
    out.setdefault("service.name", DEFAULT_SERVICE_NAME)
    return out

"""OTel spans into the harn trace: a span processor that records each one as a harn span.

Spans that tracers of the provider start (OTel instrumentations: httpx,
openai, ...) get a harn copy, a "mirror", in the current collector, opened
under the harn span open at their start (or under the harn span their OTel
parent stands for) and closed when they end:

* ``gen_ai.operation.name`` ``chat``/``text_completion``/``generate_content``
  -> ``llm_call`` with the ``LlmCallUsage`` keys read from the ``gen_ai.*``
  attributes; ``execute_tool`` -> ``tool_call``; anything else -> ``fn_call``;
* the attributes become metadata (message content only with
  ``capture_content``); an error status becomes ``error`` / ``error_type``;
* a streamed call's ``gen_ai.response.time_to_first_chunk`` becomes a
  ``first_token`` event at the mirror's start plus that time;
* a mirror with no harn span above it is in its OTel span's trace (the
  live export's root-parent hook), with a ``remote_parent`` link to its
  OTel parent when it has one.

OTel exports the span itself; the live export skips its mirror.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from ...context import _current
from ...kinds import SpanKind, meta
from .mapping import is_content_key

if TYPE_CHECKING:
    from .live import LiveExport

__all__ = ("harn_kind_of", "make_ingest_processor", "usage_metadata")

_LLM_OPERATIONS: Final = frozenset({"chat", "text_completion", "generate_content"})
_TTFT: Final = "gen_ai.response.time_to_first_chunk"
# Beyond this (a year, in seconds) a TTFT is no time to place an event at;
# NaN and inf fail the range test too.
_MAX_TTFT_S: Final = 365 * 24 * 3600.0
# LlmCallUsage key -> the gen_ai.* attributes it is read from, first found wins.
_USAGE: Final = (
    (meta.MODEL, ("gen_ai.response.model", "gen_ai.request.model")),
    (meta.PROVIDER, ("gen_ai.provider.name", "gen_ai.system")),
    (meta.INPUT_TOKENS, ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens")),
    (meta.OUTPUT_TOKENS, ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens")),
    (meta.CACHE_READ_TOKENS, ("gen_ai.usage.cache_read.input_tokens",)),
    (meta.CACHE_WRITE_TOKENS, ("gen_ai.usage.cache_creation.input_tokens",)),
)


def harn_kind_of(attributes: Mapping[str, Any]) -> SpanKind:
    """The harn kind of an OTel span, by its ``gen_ai.operation.name``.

    Example:
        >>> harn_kind_of({"gen_ai.operation.name": "chat"}), harn_kind_of({})
        (<SpanKind.LLM_CALL: 'llm_call'>, <SpanKind.FN_CALL: 'fn_call'>)
    """
    operation = attributes.get("gen_ai.operation.name")
    if operation in _LLM_OPERATIONS:
        return SpanKind.LLM_CALL
    if operation == "execute_tool":
        return SpanKind.TOOL_CALL
    return SpanKind.FN_CALL


def usage_metadata(kind: SpanKind, attributes: Mapping[str, Any]) -> dict[str, Any]:
    """The canonical harn keys an ``llm_call``/``tool_call`` mirror gets from ``gen_ai.*``.

    Example:
        >>> usage_metadata(SpanKind.LLM_CALL, {"gen_ai.request.model": "m",
        ...                                    "gen_ai.usage.input_tokens": 3})["input_tokens"]
        3
    """
    out: dict[str, Any] = {}
    if kind is SpanKind.LLM_CALL:
        for ours, sources in _USAGE:
            found = next((attributes[s] for s in sources if s in attributes), None)
            if found is not None:
                out[ours] = found
            elif ours not in (meta.MODEL, meta.PROVIDER):
                out[ours] = 0
    elif kind is SpanKind.TOOL_CALL and "gen_ai.tool.name" in attributes:
        out[meta.TOOL_NAME] = attributes["gen_ai.tool.name"]
    return out


def _metadata(attributes: Mapping[str, Any], capture_content: bool) -> dict[str, Any]:
    return {
        key: list(value) if isinstance(value, tuple) else value
        for key, value in attributes.items()
        if capture_content or not is_content_key(key)
    }


def make_ingest_processor(live: LiveExport) -> Any:
    """A ``SpanProcessor`` recording the provider's OTel spans as harn mirrors (module doc).

    Example:
        >>> from opentelemetry.sdk.trace import TracerProvider
        >>> from harn_async_trace.export._otel.live import LiveExport
        >>> live = LiveExport(TracerProvider(), capture_content=False)
        >>> type(make_ingest_processor(live)).__name__
        'HarnIngest'
        >>> live.close()
    """
    from opentelemetry.sdk.trace import SpanProcessor
    from opentelemetry.trace import StatusCode

    # OTel span id -> (collector, harn id) of its mirror, while it is open.
    open_mirrors: dict[int, tuple[Any, int]] = {}

    class HarnIngest(SpanProcessor):
        """Records OTel spans as harn spans; added to the provider by ``use_otel``.

        ``active`` switches it off (the SDK cannot remove a processor), and a
        later ``use_otel`` on the same provider hands it its new ``live``.
        """

        def __init__(self) -> None:
            self.active = True
            self.live = live

        def on_start(self, span: Any, parent_context: Any = None) -> None:
            live = self.live
            if not self.active or live.local.exporting:
                return  # one of our own harn spans, already in the trace
            collector = _current.get()
            if not collector.enabled:
                return
            attributes = dict(span.attributes or {})
            kind = harn_kind_of(attributes)
            metadata = _metadata(attributes, live.capture_content)
            metadata.update(usage_metadata(kind, attributes))
            parent = span.parent
            owner = None if parent is None else live.harn_of.get(parent.span_id)
            live.local.mirroring = True
            # A mirror with no harn span above it takes its OTel span's trace
            # (the live export's root-parent hook reads it from here).
            live.local.mirror_of = span
            try:
                if (
                    owner is not None
                    and owner[0] is collector
                    and owner[1] != collector.current_span_id()
                    and collector.is_open(owner[1])
                ):
                    # The OTel parent is a harn span that is not this task's
                    # innermost one (a context passed explicitly): nest there.
                    with collector.bind(owner[1]):
                        span_id = collector.open(kind, span.name, push=False, metadata=metadata)
                else:
                    span_id = collector.open(kind, span.name, push=False, metadata=metadata)
            finally:
                live.local.mirroring = False
                live.local.mirror_of = None
            live.add_mirror(collector, span_id, span)
            open_mirrors[span.get_span_context().span_id] = (collector, span_id)

        def on_end(self, span: Any) -> None:
            entry = open_mirrors.pop(span.context.span_id, None)
            if entry is None:
                return
            collector, span_id = entry
            attributes = dict(span.attributes or {})
            kind = harn_kind_of(attributes)
            metadata = _metadata(attributes, self.live.capture_content)
            metadata.update(usage_metadata(kind, attributes))
            for key, value in metadata.items():
                collector.set_metadata(span_id, key, value)
            if span.status.status_code is StatusCode.ERROR:
                error_type = attributes.get("error.type") or "_OTHER"
                collector.set_metadata(span_id, "error", span.status.description or error_type)
                collector.set_metadata(span_id, "error_type", error_type)
            ttft = attributes.get(_TTFT)
            if isinstance(ttft, int | float):
                # At the first token, not at the span's end: the mirror's start
                # plus the time the instrumentation measured (a value that is
                # no time, e.g. NaN, keeps the event at the end, as before).
                at_ns = None
                if 0 <= ttft < _MAX_TTFT_S:
                    at_ns = collector.open_details(span_id)[2] + round(ttft * 1_000_000_000)
                collector.record_event(
                    span_id, "first_token", {"time_to_first_token_ms": round(ttft * 1000, 3)},
                    at_ns,
                )
            collector.close(span_id)

        def shutdown(self) -> None:
            self.active = False

        def force_flush(self, timeout_millis: int = 30000) -> bool:
            return True

    return HarnIngest()

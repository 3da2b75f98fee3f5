"""OpenTelemetry bridge: finished spans as OTel SDK ``ReadableSpan`` objects.

Needs the ``[otel]`` extra (``pip install 'harn-async-trace[otel]'``); the SDK
is imported lazily, on first use, so ``import harn_async_trace`` never needs
it. The spans go to any OTel ``SpanExporter`` (``export(batch)``) or
``SpanProcessor`` (``on_end(span)``), e.g. a ``BatchSpanProcessor`` around an
OTLP exporter. The mapping (ids, kinds, GenAI attributes, status, remote
parent) lives in ``_otel/mapping.py`` and is shared with the OTLP/JSON writer.

``OtelBridge`` does it live: subscribed to the event stream, it converts
each span the moment it ends.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, Final, final

from .. import events as _events
from .._trace_id import trace_id_hex
from .._version import __version__
from ..model import Span
from ._encoding import safe_text
from ._io import check_filter, check_span, ended_span_of
from ._otel.mapping import (
    attributes_for,
    clean_attributes,
    error_of,
    event_time_ns,
    exception_attributes,
    is_client,
    link_context,
    otel_name,
    otel_span_id,
    remote_parent,
    resource_attributes,
    times_ns,
)

if TYPE_CHECKING:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
    from opentelemetry.sdk.trace.export import SpanExporter

    from ..collector import SpanCollector

__all__ = (
    "OtelBridge",
    "OtelUnavailableError",
    "default_resource",
    "export_to_otel",
    "to_otel_span",
    "to_otel_spans",
)

_SCOPE_NAME: Final = "harn_async_trace"
_INSTALL_HINT: Final = (
    "the OpenTelemetry SDK is not installed; install the [otel] extra: "
    "pip install 'harn-async-trace[otel]'"
)


class OtelUnavailableError(ImportError):
    """Raised when an OTel bridge function runs without the ``[otel]`` extra."""


@functools.cache
def _sdk() -> Any:
    try:
        from opentelemetry import trace as api
        from opentelemetry.sdk import trace as sdk
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.util.instrumentation import InstrumentationScope
    except ImportError as exc:
        raise OtelUnavailableError(_INSTALL_HINT) from exc

    return types.SimpleNamespace(
        api=api,
        sdk=sdk,
        scope=InstrumentationScope(_SCOPE_NAME, __version__),
        Resource=Resource,
        sampled=api.TraceFlags(api.TraceFlags.SAMPLED),
    )


def default_resource() -> Resource:
    """The resource of harn spans: ``OTEL_SERVICE_NAME`` / ``OTEL_RESOURCE_ATTRIBUTES``.

    ``service.name`` is ``harn-async-trace`` unless the environment names
    one; read at each call, so a changed environment is seen.

    Example:
        >>> default_resource().attributes["service.name"]
        'harn-async-trace'
    """
    attributes = tuple(resource_attributes().items())
    return _resource_for(attributes)


@functools.lru_cache(maxsize=8)
def _resource_for(attributes: tuple[tuple[str, str], ...]) -> Resource:
    resource_type = _sdk().Resource  # imported lazily
    created = dict(resource_type.create(dict(attributes)).attributes)
    if "service.instance.id" not in dict(attributes):
        # The SDK makes up a random one per process; files written under a
        # mock clock must be byte-for-byte the same on every run.
        created.pop("service.instance.id", None)
    resource: Resource = resource_type(created)
    return resource


def to_otel_span(
    span: Span, *, resource: Resource | None = None, capture_content: bool = False
) -> ReadableSpan:
    """One finished span as an OTel SDK ``ReadableSpan`` (mapping: ``_otel.mapping``).

    Example:
        >>> s = Span(trace_id="trace_0190a3b4-0000-7000-8000-000000000000", span_id=1,
        ...          parent_id=None, kind="tool_call", name="grep", start_ms=0,
        ...          start_unix_ms=1_000, duration_ms=5)
        >>> r = to_otel_span(s); (r.name, r.kind.name)
        ('execute_tool grep', 'INTERNAL')
    """
    check_span(span, "to_otel_span")
    otel = _sdk()
    api = otel.api
    trace_hex = trace_id_hex(span.trace_id)
    trace_int = int(trace_hex, 16)
    context = api.SpanContext(
        trace_int, otel_span_id(span.trace_id, span.span_id), False, otel.sampled
    )
    parent = None
    if span.parent_id is not None:
        parent = api.SpanContext(
            trace_int, otel_span_id(span.trace_id, span.parent_id), False, otel.sampled
        )
    else:
        remote = remote_parent(span)
        if remote is not None:
            parent = api.SpanContext(int(remote[0], 16), remote[1], True, otel.sampled)
    start, end = times_ns(span)
    links = []
    for link in span.links:
        ids = link_context(link)
        if ids is not None:
            linked = api.SpanContext(int(ids[0], 16), ids[1], False, otel.sampled)
            links.append(api.Link(linked, clean_attributes(link.attributes)))
    events = [
        otel.sdk.Event(
            safe_text(event.name),
            clean_attributes(event.attributes),
            event_time_ns(start, event.time_unix_ms),
        )
        for event in span.events
    ]
    metadata = span.metadata
    error = error_of(metadata)
    if error is not None:
        events.append(otel.sdk.Event("exception", exception_attributes(error), end))
        status = api.Status(api.StatusCode.ERROR, error[1] or error[0])
    else:
        status = api.Status(api.StatusCode.UNSET)
    readable: ReadableSpan = otel.sdk.ReadableSpan(
        name=safe_text(otel_name(span.kind, span.name, metadata)),
        context=context,
        parent=parent,
        resource=resource if resource is not None else default_resource(),
        attributes=attributes_for(
            span.kind, span.name, metadata, span.span_id, capture_content=capture_content
        ),
        events=events,
        links=links,
        kind=api.SpanKind.CLIENT if is_client(span.kind) else api.SpanKind.INTERNAL,
        status=status,
        start_time=start,
        end_time=end,
        instrumentation_scope=otel.scope,
    )
    return readable


def to_otel_spans(
    spans: Iterable[Span], *, resource: Resource | None = None
) -> Iterator[ReadableSpan]:
    """Lazily convert many spans (see :func:`to_otel_span`).

    Example:
        >>> list(to_otel_spans([]))
        []
    """
    resource = resource if resource is not None else default_resource()  # once, not per span
    for span in spans:
        yield to_otel_span(span, resource=resource)


def _check_target(target: object, func: str) -> None:
    if not callable(getattr(target, "on_end", None)) and not callable(
        getattr(target, "export", None)
    ):
        raise TypeError(
            f"{func}(): target must be an OTel SpanExporter (export) or "
            f"SpanProcessor (on_end), got {type(target).__name__}"
        )


def _hand_to(target: SpanExporter | SpanProcessor, batch: list[ReadableSpan]) -> None:
    on_end = getattr(target, "on_end", None)
    if on_end is not None:
        for readable in batch:
            on_end(readable)
    else:
        target.export(batch)  # type: ignore[union-attr]  # an exporter when it has no on_end


def export_to_otel(
    spans: Iterable[Span],
    target: SpanExporter | SpanProcessor,
    *,
    batch_size: int = 512,
    resource: Resource | None = None,
) -> int:
    """Hand finished spans to an OTel ``SpanExporter`` or ``SpanProcessor``; returns the count.

    Exporters get batches of ``batch_size`` (memory stays bounded for huge
    traces); processors get ``on_end`` per span (``on_start`` is not called:
    the spans are already finished). Flushing/shutdown stays the caller's job.

    Example:
        >>> from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
        ...     InMemorySpanExporter)
        >>> export_to_otel([], InMemorySpanExporter())
        0
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int):
        raise TypeError(f"export_to_otel(): batch_size must be an int, got {batch_size!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size!r}")
    _sdk()  # the install hint first: without the SDK no target is right
    _check_target(target, "export_to_otel")
    count = 0
    batch: list[ReadableSpan] = []
    for readable in to_otel_spans(spans, resource=resource):
        batch.append(readable)
        if len(batch) >= batch_size:
            _hand_to(target, batch)
            count += len(batch)
            batch = []
    if batch:
        _hand_to(target, batch)
        count += len(batch)
    return count


@final
class OtelBridge:
    """Live bridge: every span that ends goes to ``target`` at once.

    Filter with ``collector`` (the spans of that collector, whatever their
    trace ids) or a fixed ``trace_id``; by default every span is bridged.

    Subscribes on creation; ``close()`` (or leaving the ``with`` block)
    unsubscribes. Conversion runs on the thread that ends the span; wrap a slow
    exporter in a ``BatchSpanProcessor`` (or use :func:`subscribe_queued`)
    to keep it off the traced program's path.

    Example:
        >>> from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
        ...     InMemorySpanExporter)
        >>> with OtelBridge(InMemorySpanExporter()) as bridge:
        ...     bridge.count
        0
    """

    __slots__ = ("_subscription", "collector", "count", "resource", "target", "trace_id")

    def __init__(
        self,
        target: SpanExporter | SpanProcessor,
        *,
        collector: SpanCollector | None = None,
        trace_id: str | None = None,
        resource: Resource | None = None,
    ) -> None:
        _sdk()  # fail now, with the install hint, not on the first span
        _check_target(target, "OtelBridge")
        check_filter("OtelBridge", collector, trace_id)
        self.target = target
        self.collector = collector
        self.trace_id = trace_id
        self.resource = resource if resource is not None else default_resource()
        self.count = 0
        self._subscription: _events.Subscription | None = _events.subscribe(on_end=self._on_event)

    def _on_event(self, event: _events.SpanStartEvent | _events.SpanEndEvent) -> None:
        span = ended_span_of(event, self.trace_id, self.collector)
        if span is None:
            return
        _hand_to(self.target, [to_otel_span(span, resource=self.resource)])
        self.count += 1

    def close(self) -> None:
        """Stop bridging (idempotent); does not shut the target down."""
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            subscription.close()

    def __enter__(self) -> OtelBridge:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

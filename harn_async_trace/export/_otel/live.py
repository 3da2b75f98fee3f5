"""Live export: every harn span, as it starts and ends, to an OTel provider's span processors.

Listens to the span event stream (``events.subscribe``). At a harn span's
start it starts an SDK span through a tracer of the provider, so the
provider's sampler and processors see it as they see any OTel span
(``on_start`` now, ``on_end`` at the end); at the harn span's end it sets the
final name, attributes, events and status and ends it. The OTel ids are the
ones every other export uses (``_otel.mapping.otel_span_id``): the tracer's id
generator is handed them just before each start.

This module also keeps the registry both directions read: which OTel span
stands for each open harn span, and which harn span for each OTel span id
(harn spans exported here and the harn copies of OTel spans, "mirrors",
recorded by ``_otel.ingest``). Mirrors are never exported again: OTel
already exports the span they copy.

While it runs it is also the cores' root-parent hook (``events._root_parent``):
a harn root opened inside someone else's OTel span (no harn span open, no
links) takes that span's trace id (``trace_id_from_hex``) and a
``relation=remote_parent`` link to it, as ``continue_trace`` gives a root,
so the harn trace and OTel name the same trace; its export is that span's
child. A mirror opened with no harn span above it takes its OTel span's
trace id (and a link to its OTel parent) the same way. And as
``continue_trace`` does, the first time a collector joins a foreign trace
its span ids restart from a random base (``_trace_id.fresh_id_base``): other
processes in that trace count from 1 too, and the OTel span id is a hash of
(trace id, harn id).
"""

from __future__ import annotations

import functools
import threading
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final, final

from ... import events as _events
from ..._trace_id import fresh_id_base, trace_id_from_hex, trace_id_hex
from ..._version import __version__
from ...clock import current_clock
from ...model import SpanLink
from .._encoding import safe_text
from .mapping import (
    REMOTE_PARENT,
    attributes_for,
    clean_attributes,
    error_of,
    event_time_ns,
    exception_attributes,
    is_client,
    link_context,
    otel_name,
    otel_span_id,
    times_ns,
)

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

    from ...collector import SpanCollector

__all__ = ("LiveExport",)

_SCOPE: Final = "harn_async_trace"
# Open harn span: (its trace id, its id).
_Key = tuple[str, int]
# The uuid parse behind trace_id_hex is a visible part of a live span's cost.
_trace_int = functools.lru_cache(maxsize=256)(lambda trace_id: int(trace_id_hex(trace_id), 16))


@functools.lru_cache(maxsize=256)
def _harn_trace_of(own: str, trace_int: int) -> str:
    """The harn trace id of OTel trace ``trace_int`` for a collector whose trace is ``own``.

    ``own`` itself when it is that trace (so its roots stay in it), else the
    ``trace_<uuid>`` form; cached, so the roots of one foreign trace share one
    string (and the cores one interned (trace, clock) pair).
    """
    trace_hex = f"{trace_int:032x}"
    return own if trace_id_hex(own) == trace_hex else trace_id_from_hex(trace_hex)


class _Local(threading.local):
    # Set while this thread starts one of our spans (ingest must skip it) and
    # while it opens a mirror (the live export must skip that harn span).
    exporting = False
    mirroring = False
    next_ids: tuple[int, int] | None = None
    # The OTel span ingest is mirroring (the hook reads its trace and parent).
    mirror_of: Any = None
    # The remote_parent link the hook just gave a root, and the foreign span
    # it stands for: the root's start exports under that very span.
    foreign_root: tuple[SpanLink, Any] | None = None


def _derived_ids(local: _Local) -> Any:
    from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator

    fallback = RandomIdGenerator()

    class DerivedIds(IdGenerator):
        """Hands the tracer the ids the live export computed for the span it starts."""

        def generate_span_id(self) -> int:
            ids = local.next_ids
            return fallback.generate_span_id() if ids is None else ids[1]

        def generate_trace_id(self) -> int:
            ids = local.next_ids
            return fallback.generate_trace_id() if ids is None else ids[0]

        def is_trace_id_random(self) -> bool:
            return False  # derived from the uuid7 (time-ordered), not random

    return DerivedIds()


@final
class LiveExport:
    """Harn spans to ``provider`` while subscribed; see the module doc.

    Example:
        >>> from opentelemetry.sdk.trace import TracerProvider
        >>> live = LiveExport(TracerProvider(), capture_content=False); live.close()
    """

    def __init__(self, provider: TracerProvider, *, capture_content: bool) -> None:
        from opentelemetry import trace as api

        self._api = api
        self.capture_content = capture_content
        self.local = _Local()
        tracer: Any = provider.get_tracer(_SCOPE, __version__)
        # The SDK tracer draws ids from this attribute at each start_span.
        tracer.id_generator = _derived_ids(self.local)
        self.tracer = tracer
        self._sampled = api.TraceFlags(api.TraceFlags.SAMPLED)
        self._empty = _empty_context()
        # Open harn span -> the OTel span standing for it.
        self.spans: dict[_Key, Any] = {}
        # OTel span id -> (collector, harn span id), for open spans only.
        self.harn_of: dict[int, tuple[SpanCollector, int]] = {}
        self.mirrors: set[_Key] = set()
        # The attributes each open span started with: its end sets only what changed.
        self._started_with: dict[_Key, dict[str, Any]] = {}
        self._subscription: _events.Subscription | None = _events.subscribe(
            on_start=self._on_start, on_end=self._on_end
        )
        # Collector -> its trace id when its ids were restarted (a reset
        # starts a new trace and counts from 1 again: restart again then).
        self._rebased: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()
        self._hook = self._root_parent  # one bound method: close() compares it by identity
        _events._set_root_parent(self._hook)

    # -- the registry ------------------------------------------------------------

    def otel_span_of(self, collector: SpanCollector, span_id: int) -> Any:
        """The OTel span of an open harn span (a non-recording stand-in if it was not exported)."""
        trace_id = collector.open_details(span_id)[0]
        span = self.spans.get((trace_id, span_id))
        if span is None:
            span = self._stand_in(trace_id, span_id)
        return span

    def add_mirror(self, collector: SpanCollector, span_id: int, otel_span: Any) -> None:
        """Record that harn span ``span_id`` copies ``otel_span`` (so it is not exported)."""
        key = (collector.open_details(span_id)[0], span_id)
        self.mirrors.add(key)
        self.spans[key] = otel_span
        self.harn_of[otel_span.get_span_context().span_id] = (collector, span_id)

    def _stand_in(self, trace_id: str, span_id: int) -> Any:
        api = self._api
        context = api.SpanContext(
            _trace_int(trace_id), otel_span_id(trace_id, span_id), False, self._sampled
        )
        return api.NonRecordingSpan(context)

    # -- the root-parent hook ----------------------------------------------------

    def _root_parent(self, collector: SpanCollector) -> tuple[str, SpanLink | None] | None:
        """Trace id and ``remote_parent`` link of a harn root (see the module doc)."""
        local = self.local
        try:
            if local.mirroring:
                otel_span = local.mirror_of
                if otel_span is None:
                    return None
                context, parent = otel_span.get_span_context(), otel_span.parent
            else:
                otel_span = _foreign_current_span(self._api)
                if otel_span is None:
                    return None
                context = parent = otel_span.get_span_context()
            trace_id = _harn_trace_of(collector.trace_id, context.trace_id)
        except Exception:  # OTel's context must never fail the open of a harn span
            return None
        if trace_id is not collector.trace_id:
            self._join(collector, trace_id)
        if parent is None or not parent.is_valid:
            # An OTel root mirrored: its trace, no parent to point at.
            return None if trace_id is collector.trace_id else (trace_id, None)
        link = SpanLink(trace_id, str(parent.span_id), {"relation": REMOTE_PARENT})
        if not local.mirroring:
            local.foreign_root = (link, otel_span)
        return trace_id, link

    def _join(self, collector: SpanCollector, trace_id: str) -> None:
        """Restart ``collector``'s ids from a random base once per trace of its own (module doc)."""
        own = collector.trace_id
        try:
            if self._rebased.get(collector) == own:
                return
            self._rebased[collector] = own
        except TypeError:  # a collector that takes no weak references: restart every time
            pass
        # The root's id is taken after this hook returns: it gets one of the new ids too.
        collector.adopt_trace(own, fresh_id_base(trace_id, current_clock()))

    # -- harn -> OTel ------------------------------------------------------------

    def _links(self, links: Sequence[SpanLink]) -> list[Any]:
        api = self._api
        out = []
        for link in links:
            known = None
            if link.attributes.get("relation") != REMOTE_PARENT and link.span_id.isdigit():
                known = self.spans.get((link.trace_id, int(link.span_id)))
            if known is not None:
                context = known.get_span_context()
            else:
                ids = link_context(link)
                if ids is None:
                    continue
                context = api.SpanContext(int(ids[0], 16), ids[1], False, self._sampled)
            out.append(api.Link(context, clean_attributes(link.attributes)))
        return out

    def _parent_context(
        self, trace_id: str, parent_id: int | None, links: Sequence[SpanLink], foreign: Any
    ) -> tuple[Any, int]:
        """(OTel context holding the parent, trace id to use when it has none)."""
        api = self._api
        trace_int = _trace_int(trace_id)
        if parent_id is not None:
            parent = self.spans.get((trace_id, parent_id)) or self._stand_in(trace_id, parent_id)
            return api.set_span_in_context(parent, self._empty), trace_int
        if foreign is not None:
            # A harn root opened inside an OTel span of someone else: its child.
            # The span itself rather than its remote_parent link, so its
            # sampling decision and trace state carry over as before.
            return api.set_span_in_context(foreign, self._empty), trace_int
        for link in links:
            if link.attributes.get("relation") == REMOTE_PARENT and link.trace_id == trace_id:
                ids = link_context(link)
                if ids is not None:
                    remote = api.SpanContext(int(ids[0], 16), ids[1], True, self._sampled)
                    return api.set_span_in_context(api.NonRecordingSpan(remote), self._empty), 0
        if links:
            # Work handed to another task stays in the OTel trace of the span
            # that handed it off (which may be a foreign trace, see below).
            first = links[0]
            known = self.spans.get((first.trace_id, int(first.span_id))) if (
                first.span_id.isdigit()
            ) else None
            if known is not None:
                return self._empty, known.get_span_context().trace_id
            return self._empty, trace_int
        return self._empty, trace_int

    def _start(
        self,
        key: _Key,
        collector: SpanCollector | None,
        kind: Any,
        name: str,
        metadata: Any,
        parent_id: int | None,
        links: Sequence[SpanLink],
        start_ns: int,
        foreign: Any,
    ) -> Any:
        trace_id, span_id = key
        context, trace_int = self._parent_context(trace_id, parent_id, links, foreign)
        local = self.local
        local.next_ids = (trace_int, otel_span_id(trace_id, span_id))
        local.exporting = True
        attributes = attributes_for(
            kind, name, metadata, span_id, capture_content=self.capture_content
        )
        try:
            span = self.tracer.start_span(
                safe_text(otel_name(kind, name, metadata)),
                context=context,
                kind=self._api.SpanKind.CLIENT if is_client(kind) else self._api.SpanKind.INTERNAL,
                attributes=attributes,
                links=self._links(links),
                start_time=start_ns,
                record_exception=False,
                set_status_on_exception=False,
            )
        finally:
            local.exporting = False
            local.next_ids = None
        self.spans[key] = span
        self._started_with[key] = attributes
        if collector is not None:
            self.harn_of[span.get_span_context().span_id] = (collector, span_id)
        return span

    def _on_start(self, event: _events.SpanStartEvent) -> None:
        if self.local.mirroring:
            return  # a copy of an OTel span: _otel.ingest registers it
        foreign = None
        local = self.local
        pending = local.foreign_root
        if pending is not None:
            # Set by the hook in this very open: only its own root uses it.
            local.foreign_root = None
            if event.parent_id is None and event.links and event.links[0] is pending[0]:
                foreign = pending[1]
        self._start(
            (event.trace_id, event.span_id), event.collector, event.kind, event.name,
            event.metadata, event.parent_id, event.links, event.start_unix_ns, foreign,
        )

    def _on_end(self, event: _events.SpanEndEvent) -> None:
        record = event.span
        key = (record.trace_id, record.span_id)
        if key in self.mirrors:
            self.mirrors.discard(key)
            span = self.spans.pop(key, None)
            if span is not None:
                self.harn_of.pop(span.get_span_context().span_id, None)
            return
        metadata = record.metadata
        start, end = times_ns(record)
        span = self.spans.pop(key, None)
        if span is None:  # opened before the export began: send it whole now
            span = self._start(
                key, None, record.kind, record.name, metadata, record.parent_id,
                record.links, start, None,
            )
        self.harn_of.pop(span.get_span_context().span_id, None)
        started_with = self._started_with.pop(key, {})
        if not span.is_recording():
            return
        span.update_name(safe_text(otel_name(record.kind, record.name, metadata)))
        final = attributes_for(
            record.kind, record.name, metadata, record.span_id,
            capture_content=self.capture_content,
        )
        changed = {k: v for k, v in final.items() if started_with.get(k, final) != v}
        if changed:
            span.set_attributes(changed)
        for item in record.events:
            span.add_event(
                safe_text(item.name), clean_attributes(item.attributes),
                event_time_ns(start, item.time_unix_ms),
            )
        error = error_of(metadata)
        if error is not None:
            api = self._api
            span.add_event("exception", exception_attributes(error), end)
            span.set_status(api.Status(api.StatusCode.ERROR, error[1] or error[0]))
        span.end(end_time=end)

    def close(self) -> None:
        """Stop exporting (idempotent); spans still open are not exported."""
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            subscription.close()
        if _events._root_parent[0] is self._hook:
            _events._set_root_parent(None)


def _empty_context() -> Any:
    from opentelemetry.context import Context

    return Context()


def _foreign_current_span(api: Any) -> Any:
    """The span OTel's own context holds right now (not the harn overlay), if valid."""
    from .context import underlying_context

    span = api.get_current_span(underlying_context())
    return span if span.get_span_context().is_valid else None
